//! Model files: save, load, checkpoint and resume, in safetensors.
//!
//! A model is one `.safetensors` file: its weights as named tensors, and
//! everything else (the layers' configuration, how the model was compiled,
//! the optimizer's step count, the epoch reached) as strings in the file's
//! `__metadata__`. Python's `safetensors` package reads the weights as they
//! are, `safetensors.numpy.load_file("model.safetensors")["dense/kernel"]`.
//!
//! - [`Sequential::save`](crate::model::Sequential::save) writes a model;
//!   [`load_model`] makes it again, compiled as it was when it was compiled.
//! - [`save_checkpoint`] also records the epoch reached, and
//!   [`load_checkpoint`] gives it back, so that `fit` resumes with
//!   [`FitOptions::initial_epoch`](crate::model::FitOptions::initial_epoch)
//!   and trains on as if it had never stopped, to the bit.
//!   [`ModelCheckpoint`](crate::callbacks::ModelCheckpoint) writes them
//!   during training.
//! - [`Sequential::save_weights`](crate::model::Sequential::save_weights) and
//!   [`Sequential::load_weights`](crate::model::Sequential::load_weights)
//!   move the weights alone between models of one architecture.
//! - [`LayerRegistry`] makes layers from their configuration: the built-in
//!   layers are known, and a program registers its own.
//!
//! Every file is written atomically ([`write_atomic`](crate::io::write_atomic)):
//! a crash or a full disk during a save leaves the previous file whole.
//!
//! # The file
//!
//! A safetensors file: an 8-byte little-endian header length, a JSON header,
//! then the tensors' bytes. kerust writes:
//!
//! ```text
//! tensor                          dtype  shape
//! {layer}/{weight}                F32    as the layer has it, e.g.
//!                                        dense/kernel [input_dim, units]
//!                                        dense/bias   [units]
//! optimizer/{slot}/{index}        F32    [len]: the optimizer's state of
//!                                        weight number `index` (weights
//!                                        counted layer after layer), e.g.
//!                                        optimizer/m/0, optimizer/v/0 (Adam)
//! ```
//!
//! Values are little-endian float32, in row-major order. The metadata keys:
//!
//! ```text
//! key                   in            value
//! format                every file    "kerust"
//! format_version        every file    "1"
//! model_config          save, check-  {"name": "sequential",
//!                       points          "input_shape": [28, 28, 1],
//!                                       "layers": [{"class_name": "Dense",
//!                                                   "config": {...}}, ...]}
//! compile_config        compiled      {"optimizer": {"name": "adam", ...},
//!                       models          "loss": {"name": "...", ...},
//!                                       "metrics": ["accuracy",
//!                                         {"class_name": "AUC",
//!                                          "config": {"name": "auc", ...}}]}
//! optimizer_iterations  compiled      the optimizer's step count, "1875"
//!                       models
//! epoch                 checkpoints   epochs completed, "2": pass it to
//!                                     `initial_epoch` to resume
//! ```
//!
//! A layer frozen with
//! [`Sequential::set_trainable`](crate::model::Sequential::set_trainable)
//! has `"trainable": false` beside its `class_name` and `config`; the key
//! is left out for the others, and a layer without it is trained.
//!
//! A file from [`Sequential::save_weights`](crate::model::Sequential::save_weights)
//! holds the weight tensors, `format` and `format_version` only. The header
//! is written with its keys in sorted order, so one model gives the same
//! bytes at every save.
//!
//! # Versions
//!
//! This build writes format version [`FORMAT_VERSION`] and reads the versions
//! in [`SUPPORTED_FORMAT_VERSIONS`]; a file of another version is an
//! [`Error::Format`](crate::Error::Format) naming both.
//!
//! # Errors
//!
//! A damaged file (empty, truncated, a header that lies about offsets,
//! shapes or types, missing metadata, a missing weight or one of the wrong
//! shape) is an [`Error::Format`](crate::Error::Format) naming the file and
//! what is wrong with it; loading never panics on what a file holds.
//!
//! # Limitations
//!
//! - Only [`Sequential`](crate::model::Sequential) models, with layers the
//!   [`LayerRegistry`] knows.
//! - The optimizers, losses and metrics made again from a file are the
//!   built-in ones ([`optimizer_from_config`], [`loss_from_config`],
//!   [`metric_from_config`]), with their options; a model compiled with a
//!   custom one is saved, but loading it fails with an error naming it.
//!   Load its weights into a model compiled by hand instead.
//! - Weights are float32 only.
//!
//! # Examples
//!
//! ```
//! use kerust::prelude::*;
//! use ndarray::array;
//!
//! # fn main() -> kerust::Result<()> {
//! let mut model = Sequential::new()
//!     .input_shape([2])
//!     .add(Dense::new(3).activation(Activation::Relu))
//!     .add(Dense::new(2).activation(Activation::Softmax));
//! model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
//!
//! let path = std::env::temp_dir().join(format!("kerust-doc-{}.safetensors", std::process::id()));
//! model.save(&path)?;
//! let mut loaded = kerust::saving::load_model(&path)?;
//!
//! let x = array![[0.5_f32, -1.0]];
//! assert_eq!(loaded.predict(&x)?, model.predict(&x)?);
//! assert_eq!(loaded.optimizer().map(|o| o.name()), Some("adam"));
//! # std::fs::remove_file(&path).ok();
//! # Ok(())
//! # }
//! ```

mod compile;
mod file;
mod model;
mod registry;

pub use compile::{loss_from_config, metric_from_config, optimizer_from_config};
pub use model::{
    load_checkpoint, load_checkpoint_with, load_model, load_model_with, restore_checkpoint,
    save_checkpoint,
};
pub use registry::{LayerMaker, LayerRegistry};

pub(crate) use model::check_file_name;

/// The value of the `format` metadata key of every kerust file.
pub const FORMAT: &str = "kerust";

/// The format version this build writes.
pub const FORMAT_VERSION: &str = "1";

/// The format versions this build reads.
pub const SUPPORTED_FORMAT_VERSIONS: &[&str] = &["1"];
