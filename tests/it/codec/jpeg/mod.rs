//! JPEG: our decoder and saver, and the libjpeg-turbo paths.

mod decode;
mod mpf;
mod save;
mod turbo;
