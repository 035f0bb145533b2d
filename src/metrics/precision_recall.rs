//! Precision and recall of thresholded predictions, as Keras' `Precision`
//! and `Recall` metrics.

use ndarray::ArrayViewD;
use serde_json::{json, Value};

use super::Metric;
use crate::Result;

/// Counts of one batch: true positives, false positives, false negatives.
/// A prediction above `threshold` is positive; a target other than 0 is.
fn count(
    metric: &str,
    y_true: &ArrayViewD<'_, f32>,
    y_pred: &ArrayViewD<'_, f32>,
    threshold: f32,
) -> Result<(u64, u64, u64)> {
    let rows = |a: &ArrayViewD<'_, f32>| a.shape().first().copied();
    if y_true.len() != y_pred.len() || rows(y_true) != rows(y_pred) {
        return Err(super::not_one_target_per_prediction(metric, y_true, y_pred));
    }
    let (mut tp, mut fp, mut fn_) = (0, 0, 0);
    for (&t, &p) in y_true.iter().zip(y_pred.iter()) {
        match (t != 0.0, p > threshold) {
            (true, true) => tp += 1,
            (false, true) => fp += 1,
            (true, false) => fn_ += 1,
            (false, false) => {}
        }
    }
    Ok((tp, fp, fn_))
}

/// `part / (part + other)`, or 0 when both are 0, as Keras divides.
fn share(part: u64, other: u64) -> f64 {
    if part + other == 0 {
        0.0
    } else {
        part as f64 / (part + other) as f64
    }
}

/// Keras' `Precision`: of the predictions above the threshold (default 0.5),
/// the share whose target is positive (not 0), over everything accumulated
/// since the last reset; 0 when no prediction is above it.
///
/// Every output unit counts: for a sigmoid's one unit, that is a
/// sample; for several units with one-hot targets, each unit of each
/// sample, as Keras counts them. The targets have the predictions' shape,
/// or one value per sample for one output unit. `compile` makes it for
/// `"precision"`, and it logs as `precision` and `val_precision`, or under
/// the name given to [`named`](Precision::named).
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Metric, Precision};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut precision = Precision::new();
/// let y_true = array![1.0_f32, 0.0, 1.0].into_dyn();
/// // 0.5 is not above the threshold: one right and one wrong positive.
/// let y_pred = array![[0.6_f32], [0.7], [0.5]].into_dyn();
/// precision.update(y_true.view(), y_pred.view())?;
/// assert_eq!(precision.result(), 0.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Precision {
    name: String,
    threshold: f32,
    true_positives: u64,
    false_positives: u64,
}

impl Default for Precision {
    fn default() -> Self {
        Precision::new()
    }
}

impl Precision {
    /// Precision at Keras' default threshold, 0.5.
    pub fn new() -> Self {
        Precision {
            name: "precision".to_string(),
            threshold: 0.5,
            true_positives: 0,
            false_positives: 0,
        }
    }

    /// The value a prediction must be above to count as positive (Keras'
    /// `thresholds`, one value; default 0.5).
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// The name it logs under, needed to compile two of them together.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Metric for Precision {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        let (tp, fp, _) = count(self.name(), &y_true, &y_pred, self.threshold)?;
        self.true_positives += tp;
        self.false_positives += fp;
        Ok(())
    }

    fn result(&self) -> f64 {
        share(self.true_positives, self.false_positives)
    }

    fn reset(&mut self) {
        self.true_positives = 0;
        self.false_positives = 0;
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        Box::new(
            Precision::new()
                .threshold(self.threshold)
                .named(self.name.clone()),
        )
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "Precision",
            "config": { "name": self.name, "thresholds": self.threshold },
        })
    }
}

/// Keras' `Recall`: of the positive targets (not 0), the share whose
/// prediction is above the threshold (default 0.5), over everything
/// accumulated since the last reset; 0 when no target is positive.
///
/// It counts output units and reads targets as [`Precision`] does.
/// `compile` makes it for `"recall"`, and it logs as `recall` and
/// `val_recall`, or under the name given to [`named`](Recall::named).
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Metric, Recall};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut recall = Recall::new();
/// let y_true = array![1.0_f32, 0.0, 1.0].into_dyn();
/// let y_pred = array![[0.6_f32], [0.7], [0.5]].into_dyn();
/// recall.update(y_true.view(), y_pred.view())?;
/// assert_eq!(recall.result(), 0.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Recall {
    name: String,
    threshold: f32,
    true_positives: u64,
    false_negatives: u64,
}

impl Default for Recall {
    fn default() -> Self {
        Recall::new()
    }
}

impl Recall {
    /// Recall at Keras' default threshold, 0.5.
    pub fn new() -> Self {
        Recall {
            name: "recall".to_string(),
            threshold: 0.5,
            true_positives: 0,
            false_negatives: 0,
        }
    }

    /// The value a prediction must be above to count as positive (Keras'
    /// `thresholds`, one value; default 0.5).
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// The name it logs under, needed to compile two of them together.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Metric for Recall {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        let (tp, _, fn_) = count(self.name(), &y_true, &y_pred, self.threshold)?;
        self.true_positives += tp;
        self.false_negatives += fn_;
        Ok(())
    }

    fn result(&self) -> f64 {
        share(self.true_positives, self.false_negatives)
    }

    fn reset(&mut self) {
        self.true_positives = 0;
        self.false_negatives = 0;
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        Box::new(
            Recall::new()
                .threshold(self.threshold)
                .named(self.name.clone()),
        )
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "Recall",
            "config": { "name": self.name, "thresholds": self.threshold },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn counts_accumulate_over_batches_and_one_hot_units_count_each() {
        let mut precision = Precision::new();
        let mut recall = Recall::new();
        for (y_true, y_pred) in [
            (
                array![[1.0_f32, 0.0], [0.0, 1.0]],
                array![[0.9_f32, 0.8], [0.2, 0.4]],
            ),
            (
                array![[0.0_f32, 1.0], [1.0, 0.0]],
                array![[0.1_f32, 0.6], [0.3, 0.7]],
            ),
        ] {
            let (t, p) = (y_true.into_dyn(), y_pred.into_dyn());
            precision.update(t.view(), p.view()).unwrap();
            recall.update(t.view(), p.view()).unwrap();
        }
        // Positives predicted: 0.9 (right), 0.8 (wrong), 0.6 (right), 0.7
        // (wrong); positive targets: 4, of which 2 found.
        assert_eq!(precision.result(), 0.5);
        assert_eq!(recall.result(), 0.5);
        precision.reset();
        assert_eq!(precision.result(), 0.0);
        let strict = Precision::new().threshold(0.85);
        let mut strict = strict.boxed_clone();
        let (t, p) = (
            array![1.0_f32, 0.0].into_dyn(),
            array![[0.9_f32], [0.8]].into_dyn(),
        );
        strict.update(t.view(), p.view()).unwrap();
        assert_eq!(strict.result(), 1.0);
    }

    #[test]
    fn sparse_labels_for_several_units_are_refused() {
        let labels = array![1.0_f32, 0.0].into_dyn();
        let probs = array![[0.9_f32, 0.1], [0.2, 0.8]].into_dyn();
        let err = Recall::new()
            .update(labels.view(), probs.view())
            .unwrap_err();
        assert!(
            err.to_string()
                .starts_with("`recall` expected shape one target per"),
            "{err}"
        );
        assert!(
            err.to_string()
                .contains("class labels? `recall` reads one-hot rows"),
            "{err}"
        );
    }
}
