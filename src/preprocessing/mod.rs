//! Preparing data for a model: image augmentation.

pub mod image;
