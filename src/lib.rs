//! kerust: a Keras-style deep-learning library for Rust.
#![warn(missing_docs)]

pub mod error;
pub mod io;
pub mod model;
pub mod preprocessing;
pub mod random;

pub use error::{Error, Result};
