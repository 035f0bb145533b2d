//! kerust: a Keras-style deep-learning library for Rust.
#![warn(missing_docs)]

pub mod error;
pub mod io;
pub mod metrics;
pub mod model;
#[cfg(feature = "plots")]
pub mod plots;
pub mod random;

pub use error::{Error, Result};
