//! kerust: a Keras-style deep-learning library for Rust.
//!
//! kerust builds, trains, evaluates and ships neural networks the way Keras
//! does, with the names a Keras user knows, in a crate that behaves like the
//! best of Rust's ecosystem: typed errors instead of panics, builders,
//! serde, and results that are reproducible to the bit.
//!
//! The pieces fit together as in Keras:
//!
//! - [`layers`]: the [`Layer`](layers::Layer) trait and [`Dense`](layers::Dense),
//!   [`Conv2D`](layers::Conv2D), [`MaxPooling2D`](layers::MaxPooling2D),
//!   [`AveragePooling2D`](layers::AveragePooling2D),
//!   [`GlobalAveragePooling2D`](layers::GlobalAveragePooling2D),
//!   [`GlobalMaxPooling2D`](layers::GlobalMaxPooling2D),
//!   [`BatchNormalization`](layers::BatchNormalization),
//!   [`LayerNormalization`](layers::LayerNormalization), [`Dropout`](layers::Dropout),
//!   [`Flatten`](layers::Flatten), [`Reshape`](layers::Reshape), [`ReLU`](layers::ReLU),
//!   [`LeakyReLU`](layers::LeakyReLU), [`Softmax`](layers::Softmax) and
//!   [`ActivationLayer`](layers::ActivationLayer) (Keras' `layers.Activation`).
//! - [`model::Sequential`]: a stack of layers, compiled with an
//!   [`Optimizer`](optimizers::Optimizer), a [`Loss`](losses::Loss) and
//!   [`Metric`](metrics::Metric)s, then `fit`, `evaluate`, `predict`.
//! - [`callbacks`]: code that runs during training (logs, early stopping,
//!   checkpoints, learning-rate schedules, the progress bar).
//! - [`saving`]: model files in safetensors: save and load a model, its
//!   weights, or a checkpoint to resume training from.
//! - [`datasets::mnist`]: the MNIST digits, read from their IDX files.
//! - [`preprocessing`]: the image augmenter and the preparation of pictures
//!   drawn by a person.
//!
//! # Reproducibility
//!
//! Every random draw comes from a ChaCha stream derived from the seed, what
//! it is for, the epoch and the sample ([`random`]). Two runs with one seed
//! give the same weights, history and predictions, with any number of
//! threads.
//!
//! # Example
//!
//! ```
//! use kerust::prelude::*;
//! use ndarray::Array2;
//!
//! # fn main() -> kerust::Result<()> {
//! // Two classes: is the sum of the inputs positive?
//! let x = Array2::from_shape_fn((64, 4), |(i, j)| ((i * 7 + j * 3) % 11) as f32 - 5.0);
//! let y = x.sum_axis(ndarray::Axis(1)).mapv(|s| f32::from(s > 0.0));
//!
//! let mut model = Sequential::new()
//!     .input_shape([4])
//!     .seed(42)
//!     .add(Dense::new(8).activation(Activation::Relu))
//!     .add(Dense::new(2).activation(Activation::Softmax));
//! model.compile(Adam::new().learning_rate(0.05), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
//! let history = model.fit((&x, &y), FitOptions::new().epochs(40).verbose(Verbosity::Silent))?;
//! let scores = model.evaluate(&x, &y)?;
//! assert!(scores.get("accuracy").unwrap() > 0.9);
//! assert_eq!(history.len(), 40);
//! # Ok(())
//! # }
//! ```
#![warn(missing_docs)]

pub mod activations;
pub mod callbacks;
pub mod datasets;
pub mod error;
pub mod gradcheck;
pub mod initializers;
pub mod io;
pub mod layers;
pub mod losses;
pub mod metrics;
pub mod model;
pub mod optimizers;
#[cfg(feature = "plots")]
pub mod plots;
pub mod preprocessing;
pub mod random;
pub mod saving;
pub mod tutorial;
pub mod utils;

pub use error::{Error, Result};

// The crates whose types appear in kerust's API, so that a crate that
// implements `Layer` or `Callback` uses the very versions kerust does.
pub use ndarray;
pub use rand;
pub use serde_json;

/// The names most programs need: `use kerust::prelude::*;`.
pub mod prelude {
    pub use crate::activations::Activation;
    pub use crate::callbacks::{
        BackupAndRestore, Callback, CsvLogger, EarlyStopping, LambdaCallback,
        LearningRateScheduler, Logs, Mode, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
    };
    pub use crate::layers::{
        ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
        GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, LayerNormalization, LeakyReLU,
        MaxPooling2D, Padding, ReLU, Reshape, Softmax,
    };
    pub use crate::losses::{
        BinaryCrossentropy, CategoricalCrossentropy, Loss, MeanSquaredError,
        SparseCategoricalCrossentropy,
    };
    pub use crate::metrics::{
        Accuracy, Auc, Average, F1Score, FBetaScore, IntoMetric, Metric, Precision, Recall,
        SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy,
    };
    pub use crate::model::{
        BatchSource, EvaluateOptions, FitOptions, History, PredictOptions, Sequential, Verbosity,
    };
    pub use crate::optimizers::{Adagrad, Adam, AdamW, Nadam, Optimizer, RmsProp, Sgd};
    pub use crate::preprocessing::image::ImageDataGenerator;
    pub use crate::saving::load_model;
    pub use crate::{Error, Result};
}
