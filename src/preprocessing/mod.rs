//! Preparing pictures for a model: drawn digits made to look like MNIST.
//!
//! [`digits`] (feature `images`) loads a picture a person drew in a paint
//! program and turns it into a 28x28 input in the layout of MNIST.

#[cfg(feature = "images")]
pub mod digits;
