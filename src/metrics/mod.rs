//! Metrics: figures that `fit` and `evaluate` report besides the loss, and
//! the reports made from predictions: [`confusion_matrix`] and
//! [`classification_report`].
//!
//! A [`Metric`] keeps a running value over an epoch; the model resets it at
//! the start of each epoch and of each evaluation. `compile` takes metrics by
//! Keras' names (`"accuracy"`) or as values.

mod accuracy;
mod precision_recall;
pub mod report;

pub use accuracy::Accuracy;
pub use precision_recall::{Precision, Recall};
pub use report::{
    classification_report, confusion_matrix, confusion_matrix_csv, ClassReport,
    ClassificationReport,
};

use ndarray::ArrayViewD;

use crate::{Error, Result};

/// A running figure over the batches of an epoch.
pub trait Metric: Send + Sync {
    /// The key under which the value is logged, e.g. `"accuracy"`; the
    /// validation value is logged as `val_` followed by it.
    fn name(&self) -> &str;

    /// Accumulates one batch of targets and predictions.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] or [`Error::LabelOutOfRange`] for targets
    /// that do not fit the predictions.
    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()>;

    /// The value over everything accumulated since the last reset.
    fn result(&self) -> f64;

    /// Forgets everything accumulated.
    fn reset(&mut self);

    /// A fresh metric of the same kind and configuration.
    fn boxed_clone(&self) -> Box<dyn Metric>;
}

/// Something `compile` accepts as a metric: a Keras name or a metric value.
pub trait IntoMetric {
    /// Makes the metric.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a name kerust does not know.
    fn into_metric(self) -> Result<Box<dyn Metric>>;
}

impl IntoMetric for &str {
    fn into_metric(self) -> Result<Box<dyn Metric>> {
        match self {
            "accuracy"
            | "acc"
            | "sparse_categorical_accuracy"
            | "categorical_accuracy"
            | "binary_accuracy" => Ok(Box::new(Accuracy::named(self))),
            "precision" => Ok(Box::new(Precision::new())),
            "recall" => Ok(Box::new(Recall::new())),
            other => Err(Error::invalid(
                "metrics",
                format!("\"{other}\""),
                "known metric names: \"accuracy\" (or \"acc\"), \
                 \"sparse_categorical_accuracy\", \"categorical_accuracy\", \
                 \"binary_accuracy\", \"precision\", \"recall\"; pass a `Box<dyn Metric>` \
                 for others",
            )),
        }
    }
}

impl IntoMetric for Box<dyn Metric> {
    fn into_metric(self) -> Result<Box<dyn Metric>> {
        Ok(self)
    }
}

impl IntoMetric for Accuracy {
    fn into_metric(self) -> Result<Box<dyn Metric>> {
        Ok(Box::new(self))
    }
}
