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
    feature = "images",
    doc = "- [`directory`] (feature `images`): a folder of pictures, one \
           subfolder per class,\n  as a data set, as Keras' \
           `image_dataset_from_directory`."
)]
#![cfg_attr(
    not(feature = "images"),
    doc = "- `digits` (feature `images`, off in this build): loads a picture a \
           person\n  drew in a paint program and turns it into a 28x28 input in the \
           layout of MNIST."
)]

#[cfg(feature = "images")]
pub mod digits;
#[cfg(feature = "images")]
pub mod directory;
pub mod image;
