//! Metrics: figures that `fit` and `evaluate` report besides the loss, and
//! the reports made from predictions: [`confusion_matrix`] and
//! [`classification_report`].
//!
//! A [`Metric`] keeps a running value over an epoch; the model resets it at
//! the start of each epoch and of each evaluation. `compile` takes metrics by
//! Keras' names (`"accuracy"`) or as values.
//!
//! | Keras | kerust | name in `compile` |
//! | --- | --- | --- |
//! | `Accuracy`, `BinaryAccuracy`, `CategoricalAccuracy`, `SparseCategoricalAccuracy` | [`Accuracy`] | `"accuracy"`, `"acc"`, `"binary_accuracy"`, `"categorical_accuracy"`, `"sparse_categorical_accuracy"` |
//! | `Precision`, `Recall` | [`Precision`], [`Recall`] | `"precision"`, `"recall"` |
//! | `AUC` | [`Auc`] | `"auc"` |
//! | `F1Score`, `FBetaScore` | [`F1Score`], [`FBetaScore`] (averaged: one number) | none: give the average |
//! | `TopKCategoricalAccuracy` | [`TopKCategoricalAccuracy`] | `"top_k_categorical_accuracy"` |
//! | `SparseTopKCategoricalAccuracy` | [`SparseTopKCategoricalAccuracy`] | `"sparse_top_k_categorical_accuracy"` |
//!
//! Metrics that differ in their options need different names to be compiled
//! together: `Auc::new().curve(Curve::Pr).named("pr_auc")` beside `"auc"`.
//!
//! # Examples
//!
//! Names and values together, boxed:
//!
//! ```
//! use kerust::metrics::{Auc, Average, Curve, F1Score, IntoMetric, Metric};
//! use kerust::prelude::*;
//!
//! # fn main() -> kerust::Result<()> {
//! let mut model = Sequential::new()
//!     .input_shape([4])
//!     .add(Dense::new(3).activation(Activation::Softmax));
//! let metrics: Vec<Box<dyn Metric>> = vec![
//!     "accuracy".into_metric()?,
//!     "auc".into_metric()?,
//!     Box::new(Auc::new().curve(Curve::Pr).named("pr_auc")),
//!     Box::new(F1Score::new(Average::Macro)),
//!     "top_k_categorical_accuracy".into_metric()?,
//! ];
//! model.compile(Adam::new(), CategoricalCrossentropy::new(), metrics)?;
//! assert_eq!(
//!     model.metric_names(),
//!     ["accuracy", "auc", "pr_auc", "f1_score", "top_k_categorical_accuracy"]
//! );
//! # Ok(())
//! # }
//! ```

mod accuracy;
mod auc;
mod f_score;
mod precision_recall;
pub mod report;
mod top_k;

pub use accuracy::Accuracy;
pub use auc::{Auc, Curve, SummationMethod};
pub use f_score::{Average, F1Score, FBetaScore};
pub use precision_recall::{Precision, Recall};
pub use report::{
    classification_report, confusion_matrix, confusion_matrix_csv, ClassReport,
    ClassificationReport,
};
pub use top_k::{SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy};

use ndarray::ArrayViewD;
use serde_json::Value;

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

    /// Checks the options; `compile` calls this, and the built-in metrics'
    /// `update` too. The default accepts everything.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the option, what it holds and what
    /// it takes.
    fn validate(&self) -> Result<()> {
        Ok(())
    }

    /// The metric as a model file keeps it, for
    /// [`metric_from_config`](crate::saving::metric_from_config) to make it
    /// again: a name that `compile` knows, as a JSON string, or, for a metric
    /// with options, `{"class_name": ..., "config": {"name": ..., ...}}` as
    /// Keras writes its metrics. The default is the metric's name, which
    /// makes a metric of one's own save; loading it fails with an error
    /// naming it unless `compile` knows the name.
    fn config(&self) -> Value {
        Value::String(self.name().to_string())
    }
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
            "auc" => Ok(Box::new(Auc::new())),
            "top_k_categorical_accuracy" => Ok(Box::new(TopKCategoricalAccuracy::new())),
            "sparse_top_k_categorical_accuracy" => {
                Ok(Box::new(SparseTopKCategoricalAccuracy::new()))
            }
            "f1_score" | "fbeta_score" => Err(Error::invalid(
                "metrics",
                format!("\"{self}\""),
                "Keras' string logs one score per class, and kerust logs one number per \
                 metric: pass `F1Score::new(Average::Macro)` (or `Average::Micro`, \
                 `Average::Weighted`; `FBetaScore` likewise), boxed",
            )),
            other => Err(Error::invalid(
                "metrics",
                format!("\"{other}\""),
                "known metric names: \"accuracy\" (or \"acc\"), \
                 \"sparse_categorical_accuracy\", \"categorical_accuracy\", \
                 \"binary_accuracy\", \"precision\", \"recall\", \"auc\", \
                 \"top_k_categorical_accuracy\", \"sparse_top_k_categorical_accuracy\"; \
                 pass a `Box<dyn Metric>` for others",
            )),
        }
    }
}

impl IntoMetric for Box<dyn Metric> {
    fn into_metric(self) -> Result<Box<dyn Metric>> {
        Ok(self)
    }
}

/// `IntoMetric` for built-in metric values, so that `compile` takes
/// `[Auc::new()]` as it takes `[Accuracy::new()]`.
macro_rules! into_metric_for {
    ($($metric:ty),*) => {
        $(
            impl IntoMetric for $metric {
                fn into_metric(self) -> Result<Box<dyn Metric>> {
                    Ok(Box::new(self))
                }
            }
        )*
    };
}

into_metric_for!(
    Accuracy,
    Precision,
    Recall,
    Auc,
    F1Score,
    FBetaScore,
    TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy
);

/// The shape error of a metric that reads one target per prediction, as
/// Keras' AUC, precision and recall do, with a hint when the targets are
/// class labels given to several output units.
pub(crate) fn not_one_target_per_prediction(
    metric: &str,
    y_true: &ArrayViewD<'_, f32>,
    y_pred: &ArrayViewD<'_, f32>,
) -> Error {
    let mut got = crate::error::format_shape(y_true.shape());
    let classes = y_pred.shape().get(1).copied().unwrap_or(1);
    let labels = y_true.ndim() == 1 || (y_true.ndim() == 2 && y_true.shape()[1] == 1);
    if labels && classes > 1 && y_true.shape().first() == y_pred.shape().first() {
        got.push_str(&format!(
            ": class labels? `{metric}` reads one-hot rows, as in Keras; train on \
             `kerust::utils::to_categorical(&y, {classes})` with `CategoricalCrossentropy`"
        ));
    }
    Error::ShapeMismatch {
        layer: metric.into(),
        expected: format!(
            "one target per prediction, {} (or one per sample for one output unit)",
            crate::error::format_shape(y_pred.shape())
        ),
        got,
    }
}
