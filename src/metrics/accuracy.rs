//! Accuracy, for class labels or one-hot targets.

use ndarray::{ArrayViewD, Axis};

use super::Metric;
use crate::error::format_shape;
use crate::losses::{argmax, label_at};
use crate::{Error, Result};

/// The share of samples whose highest-scoring class is the true one.
///
/// Like Keras' `"accuracy"`, it reads the targets as class labels when they
/// have one value per sample (`(batch,)` or `(batch, 1)`) and as one-hot rows
/// when they are shaped like the predictions. For a model with one output
/// unit, such as a sigmoid's probability, it is Keras' binary accuracy: a
/// sample is right when its prediction is above 0.5 and its target is 1, or
/// not above it and its target is 0.
///
/// It logs as `accuracy`, or under the name `compile` was given: as in
/// Keras, `"acc"` logs `acc` and `val_acc`. `compile` also makes it for
/// Keras' `"sparse_categorical_accuracy"`, `"categorical_accuracy"` and
/// `"binary_accuracy"`, which it computes the same way.
#[derive(Debug, Clone)]
pub struct Accuracy {
    name: String,
    correct: u64,
    total: u64,
}

impl Default for Accuracy {
    fn default() -> Self {
        Accuracy::named("accuracy")
    }
}

impl Accuracy {
    /// A new accuracy, at zero samples, logged as `accuracy`.
    pub fn new() -> Self {
        Self::default()
    }

    /// A new accuracy logged under `name`.
    ///
    /// ```
    /// use kerust::metrics::{Accuracy, Metric};
    ///
    /// assert_eq!(Accuracy::named("acc").name(), "acc");
    /// ```
    pub fn named(name: impl Into<String>) -> Self {
        Accuracy {
            name: name.into(),
            correct: 0,
            total: 0,
        }
    }
}

impl Metric for Accuracy {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        let classes = *y_pred.shape().last().unwrap_or(&0);
        let batch = y_pred.shape().first().copied().unwrap_or(0);
        let rows = y_pred
            .to_shape((batch, classes))
            .map_err(|_| Error::shape("accuracy", "(batch, classes)", y_pred.shape()))?;
        let one_hot = y_true.shape() == y_pred.shape() && classes > 1;
        if !one_hot && y_true.len() != batch {
            return Err(Error::ShapeMismatch {
                layer: "accuracy".into(),
                expected: format!(
                    "labels ({batch},) or one-hot {}",
                    format_shape(y_pred.shape())
                ),
                got: format_shape(y_true.shape()),
            });
        }
        let truth = y_true
            .to_shape((batch, y_true.len() / batch.max(1)))
            .map_err(|_| Error::shape("accuracy", "contiguous targets", y_true.shape()))?;
        for (i, (pred, target)) in rows
            .axis_iter(Axis(0))
            .zip(truth.axis_iter(Axis(0)))
            .enumerate()
        {
            let right = if classes == 1 {
                // Keras' binary accuracy, threshold 0.5.
                f32::from(u8::from(pred[0] > 0.5)) == target[0]
            } else {
                let label = if one_hot {
                    argmax(target.iter().copied())
                } else {
                    label_at(i, target[0], classes)?
                };
                argmax(pred.iter().copied()) == label
            };
            if right {
                self.correct += 1;
            }
            self.total += 1;
        }
        Ok(())
    }

    fn result(&self) -> f64 {
        if self.total == 0 {
            0.0
        } else {
            self.correct as f64 / self.total as f64
        }
    }

    fn reset(&mut self) {
        self.correct = 0;
        self.total = 0;
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        Box::new(Accuracy::named(self.name.clone()))
    }
}
