//! Top-k accuracy, as Keras' `TopKCategoricalAccuracy` and
//! `SparseTopKCategoricalAccuracy`.

use ndarray::{ArrayView1, ArrayViewD, Axis};
use serde_json::{json, Value};

use super::Metric;
use crate::error::format_shape;
use crate::losses::{argmax, label_at};
use crate::{Error, Result};

/// Whether class `target` is among the `k` highest scores of `scores`, as
/// Keras on JAX decides it: when fewer than `k` scores are strictly above
/// the target's. A target tied with others is in when the ties would put
/// it there at best; a NaN score of the target counts as the lowest, and
/// NaN scores elsewhere are above nothing.
fn in_top_k(scores: ArrayView1<'_, f32>, target: usize, k: usize) -> bool {
    let own = scores[target];
    let own = if own.is_nan() { f32::NEG_INFINITY } else { own };
    scores.iter().filter(|&&s| s > own).count() < k
}

/// The predictions as `(rows, classes)`, with `classes` the last axis.
fn score_rows<'a>(
    metric: &str,
    y_pred: &'a ArrayViewD<'a, f32>,
) -> Result<ndarray::CowArray<'a, f32, ndarray::Ix2>> {
    let classes = match y_pred.shape().last() {
        Some(&classes) if y_pred.ndim() >= 2 && classes > 0 => classes,
        _ => {
            return Err(Error::shape(
                metric,
                "predictions (batch, classes)",
                y_pred.shape(),
            ))
        }
    };
    y_pred
        .to_shape((y_pred.len() / classes, classes))
        .map_err(|_| Error::shape(metric, "predictions (batch, classes)", y_pred.shape()))
}

/// The `k` of both metrics' `validate`.
fn check_k(k: usize) -> Result<()> {
    if k == 0 {
        return Err(Error::invalid(
            "k",
            k,
            "expected at least 1 top score to look at (Keras' default is 5)",
        ));
    }
    Ok(())
}

/// The share of hits, or 0 before any sample.
fn share(hits: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        hits as f64 / total as f64
    }
}

/// Keras' `SparseTopKCategoricalAccuracy`: the share of samples whose class
/// label is among the `k` highest predictions of their row (default 5),
/// over everything accumulated since the last reset.
///
/// The targets are class labels, `(batch,)` or `(batch, 1)`; the
/// predictions `(batch, classes)` scores. Ties go the target's way, as in
/// Keras on JAX: the target is in when fewer than `k` scores are strictly
/// above its own, so a target tied for first place is in at `k = 1`. A `k`
/// of the number of classes or more counts every sample. `compile` makes it
/// for `"sparse_top_k_categorical_accuracy"`, and it logs under that name
/// and `val_` followed by it, or under the name given to
/// [`named`](SparseTopKCategoricalAccuracy::named). Keras'
/// `from_sorted_ids` is not in kerust.
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Metric, SparseTopKCategoricalAccuracy};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut top2 = SparseTopKCategoricalAccuracy::new().k(2).named("top_2");
/// let labels = array![2.0_f32, 0.0, 1.0].into_dyn();
/// let scores = array![[0.5_f32, 0.2, 0.3], [0.1, 0.6, 0.3], [0.4, 0.3, 0.3]].into_dyn();
/// top2.update(labels.view(), scores.view())?;
/// // 2 is second, 0 third, 1 ties for second with 2.
/// assert_eq!(top2.result(), 2.0 / 3.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct SparseTopKCategoricalAccuracy {
    name: String,
    k: usize,
    hits: u64,
    total: u64,
}

impl Default for SparseTopKCategoricalAccuracy {
    fn default() -> Self {
        SparseTopKCategoricalAccuracy::new()
    }
}

impl SparseTopKCategoricalAccuracy {
    /// Top-5 accuracy (Keras' default `k`), logged as
    /// `sparse_top_k_categorical_accuracy`.
    pub fn new() -> Self {
        SparseTopKCategoricalAccuracy {
            name: "sparse_top_k_categorical_accuracy".to_string(),
            k: 5,
            hits: 0,
            total: 0,
        }
    }

    /// How many of the highest scores the label may be among, at least 1
    /// (default 5).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// The name it logs under.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Metric for SparseTopKCategoricalAccuracy {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        self.validate()?;
        let rows = score_rows(&self.name, &y_pred)?;
        let (batch, classes) = rows.dim();
        if y_true.len() != batch {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("labels ({batch},) or ({batch}, 1)"),
                got: format_shape(y_true.shape()),
            });
        }
        let mut hits = 0;
        for (i, (&label, scores)) in y_true.iter().zip(rows.axis_iter(Axis(0))).enumerate() {
            let label = label_at(i, label, classes)?;
            hits += u64::from(in_top_k(scores, label, self.k));
        }
        self.hits += hits;
        self.total += batch as u64;
        Ok(())
    }

    fn result(&self) -> f64 {
        share(self.hits, self.total)
    }

    fn reset(&mut self) {
        self.hits = 0;
        self.total = 0;
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset();
        Box::new(fresh)
    }

    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a `k` of 0.
    fn validate(&self) -> Result<()> {
        check_k(self.k)
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "SparseTopKCategoricalAccuracy",
            "config": { "name": self.name, "k": self.k },
        })
    }
}

/// Keras' `TopKCategoricalAccuracy`: the share of samples whose target
/// class is among the `k` highest predictions of their row (default 5),
/// over everything accumulated since the last reset.
///
/// The targets are rows of the predictions' shape, one-hot or not: the
/// target class of a row is its highest value (the first, on ties, as
/// Keras' arg-max). Ties among the scores go the target's way, as in
/// [`SparseTopKCategoricalAccuracy`]. `compile` makes it for
/// `"top_k_categorical_accuracy"`, and it logs under that name and `val_`
/// followed by it, or under the name given to
/// [`named`](TopKCategoricalAccuracy::named).
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Metric, TopKCategoricalAccuracy};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut top1 = TopKCategoricalAccuracy::new().k(1);
/// let one_hot = array![[0.0_f32, 0.0, 1.0], [0.0, 1.0, 0.0]].into_dyn();
/// let scores = array![[0.1_f32, 0.9, 0.8], [0.05, 0.95, 0.0]].into_dyn();
/// top1.update(one_hot.view(), scores.view())?;
/// assert_eq!(top1.result(), 0.5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct TopKCategoricalAccuracy {
    name: String,
    k: usize,
    hits: u64,
    total: u64,
}

impl Default for TopKCategoricalAccuracy {
    fn default() -> Self {
        TopKCategoricalAccuracy::new()
    }
}

impl TopKCategoricalAccuracy {
    /// Top-5 accuracy (Keras' default `k`), logged as
    /// `top_k_categorical_accuracy`.
    pub fn new() -> Self {
        TopKCategoricalAccuracy {
            name: "top_k_categorical_accuracy".to_string(),
            k: 5,
            hits: 0,
            total: 0,
        }
    }

    /// How many of the highest scores the target class may be among, at
    /// least 1 (default 5).
    pub fn k(mut self, k: usize) -> Self {
        self.k = k;
        self
    }

    /// The name it logs under.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }
}

impl Metric for TopKCategoricalAccuracy {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        self.validate()?;
        let rows = score_rows(&self.name, &y_pred)?;
        if y_true.shape() != y_pred.shape() {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!(
                    "one-hot targets {} (for class labels, use \
                     SparseTopKCategoricalAccuracy)",
                    format_shape(y_pred.shape())
                ),
                got: format_shape(y_true.shape()),
            });
        }
        let targets = score_rows(&self.name, &y_true)?;
        let mut hits = 0;
        for (target, scores) in targets.axis_iter(Axis(0)).zip(rows.axis_iter(Axis(0))) {
            let class = argmax(target.iter().copied());
            hits += u64::from(in_top_k(scores, class, self.k));
        }
        self.hits += hits;
        self.total += rows.nrows() as u64;
        Ok(())
    }

    fn result(&self) -> f64 {
        share(self.hits, self.total)
    }

    fn reset(&mut self) {
        self.hits = 0;
        self.total = 0;
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset();
        Box::new(fresh)
    }

    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a `k` of 0.
    fn validate(&self) -> Result<()> {
        check_k(self.k)
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "TopKCategoricalAccuracy",
            "config": { "name": self.name, "k": self.k },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn ties_go_the_targets_way_and_nan_is_the_lowest_score() {
        let scores = array![0.2_f32, 0.5, 0.5, 0.1];
        assert!(in_top_k(scores.view(), 1, 1));
        assert!(in_top_k(scores.view(), 2, 1));
        assert!(!in_top_k(scores.view(), 0, 2));
        assert!(in_top_k(scores.view(), 0, 3));
        let with_nan = array![f32::NAN, 0.5, 0.4];
        assert!(!in_top_k(with_nan.view(), 0, 2));
        assert!(in_top_k(with_nan.view(), 0, 3));
        // A NaN elsewhere is above nothing.
        assert!(in_top_k(with_nan.view(), 2, 2));
    }

    #[test]
    fn bad_k_labels_and_shapes_are_refused_with_what_was_expected() {
        let err = SparseTopKCategoricalAccuracy::new()
            .k(0)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `k` = 0: expected at least 1 top score to look at (Keras' default is 5)"
        );
        let scores = array![[0.2_f32, 0.8], [0.6, 0.4]].into_dyn();
        let mut zero = TopKCategoricalAccuracy::new().k(0);
        assert!(zero.update(scores.view(), scores.view()).is_err());
        let mut sparse = SparseTopKCategoricalAccuracy::new();
        let err = sparse
            .update(array![0.0_f32, 2.0].into_dyn().view(), scores.view())
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::LabelOutOfRange {
                    index: 1,
                    classes: 2,
                    ..
                }
            ),
            "{err}"
        );
        let err = sparse
            .update(array![0.0_f32].into_dyn().view(), scores.view())
            .unwrap_err();
        assert!(err.to_string().contains("labels (2,) or (2, 1)"), "{err}");
        let flat = array![0.2_f32, 0.8].into_dyn();
        let err = sparse.update(flat.view(), flat.view()).unwrap_err();
        assert!(
            err.to_string().contains("predictions (batch, classes)"),
            "{err}"
        );
        let err = TopKCategoricalAccuracy::new()
            .update(array![1.0_f32, 0.0].into_dyn().view(), scores.view())
            .unwrap_err();
        assert!(
            err.to_string().contains("SparseTopKCategoricalAccuracy"),
            "{err}"
        );
        assert_eq!(sparse.result(), 0.0);
    }
}
