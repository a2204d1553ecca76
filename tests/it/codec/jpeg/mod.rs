//! JPEG: our decoder and saver, and the libjpeg-turbo paths.

mod dc;
mod decode;
mod gainmap;
mod mpf;
mod save;
mod turbo;
