//! Preparing pictures for a model.
//!
//! - [`image`]: Keras' `ImageDataGenerator`, the augmenter that draws a
//!   random rotation, shift and zoom for each training image, exactly as
//!   Keras does, on worker threads and reproducibly.
// `digits` exists, and is linked, only with the feature that makes it.
#![cfg_attr(
    feature = "images",
    doc = "- [`digits`] (feature `images`): loads a picture a person drew in a \
           paint\n  program and turns it into a 28x28 input in the layout of MNIST."
)]
#![cfg_attr(
    not(feature = "images"),
    doc = "- `digits` (feature `images`, off in this build): loads a picture a \
           person\n  drew in a paint program and turns it into a 28x28 input in the \
           layout of MNIST."
)]

#[cfg(feature = "images")]
pub mod digits;
pub mod image;
