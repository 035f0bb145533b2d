//! Preparing pictures for a model.
//!
//! - [`image`]: Keras' `ImageDataGenerator`, the augmenter that draws a
//!   random rotation, shift and zoom for each training image, exactly as
//!   Keras does, on worker threads and reproducibly.
//! - [`digits`] (feature `images`): loads a picture a person drew in a paint
//!   program and turns it into a 28x28 input in the layout of MNIST.

#[cfg(feature = "images")]
pub mod digits;
pub mod image;
