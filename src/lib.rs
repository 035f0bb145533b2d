//! kerust: a Keras-style deep-learning library for Rust.
#![warn(missing_docs)]

pub mod datasets;
pub mod error;
pub mod io;
pub mod preprocessing;
pub mod random;

pub use error::{Error, Result};
