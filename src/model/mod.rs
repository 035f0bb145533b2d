//! Models: [`Sequential`], its training loop and what it returns.
//!
//! A model is built (its weights created) once the shape of its input is
//! known, compiled with an optimizer, a loss and metrics, and then trained
//! with [`Sequential::fit`], scored with [`Sequential::evaluate`] and used
//! with [`Sequential::predict`].

mod history;
mod options;
mod sequential;
mod source;
mod training;

pub use history::History;
pub use options::{EvaluateOptions, FitData, FitOptions, IntoFitData, PredictOptions, Verbosity};
pub use sequential::{Sequential, Summary};
pub use source::{epoch_order, gather_rows, ArraySource, Batch, BatchSource};
