#[cfg(feature = "rawdb")]
pub mod common;
#[cfg(feature = "rawdb")]
mod dng;
#[cfg(feature = "rawdb")]
mod issues;
#[cfg(feature = "rawdb")]
mod rawdb;
