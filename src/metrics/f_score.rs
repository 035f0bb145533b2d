//! The F-beta and F1 scores, as Keras' `FBetaScore` and `F1Score`, averaged
//! over the classes to one number.

use std::fmt;
use std::str::FromStr;

use ndarray::{Array2, ArrayViewD, Ix2};
use serde_json::{json, Value};

use super::Metric;
use crate::error::format_shape;
use crate::losses::label_at;
use crate::{Error, Result};

/// Keras' `backend.epsilon()`, added to every denominator of the score.
const EPSILON: f64 = 1e-7;

/// How [`F1Score`] and [`FBetaScore`] make one number of the classes'
/// scores (Keras' `average`).
///
/// Keras' default, `None`, gives one score per class; kerust's logs hold
/// one number per metric, so an average is always chosen. The per-class
/// scores of a model's predictions are in
/// [`classification_report`](super::classification_report).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Average {
    /// The unweighted mean of the classes' scores: every class counts
    /// alike, however rare.
    Macro,
    /// One score from the true positives, false positives and false
    /// negatives of all classes added up.
    Micro,
    /// The mean of the classes' scores weighted by their support, the sum
    /// of their targets.
    Weighted,
}

impl Average {
    /// Keras' spelling: `"macro"`, `"micro"` or `"weighted"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Average::Macro => "macro",
            Average::Micro => "micro",
            Average::Weighted => "weighted",
        }
    }
}

impl fmt::Display for Average {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Average {
    type Err = Error;

    /// Reads Keras' names.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for anything else, Keras' `None`
    /// included.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::metrics::Average;
    ///
    /// assert_eq!("weighted".parse::<Average>().unwrap(), Average::Weighted);
    /// let err = "samples".parse::<Average>().unwrap_err();
    /// assert!(err.to_string().contains("expected \"macro\", \"micro\" or \"weighted\""));
    /// ```
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "macro" => Ok(Average::Macro),
            "micro" => Ok(Average::Micro),
            "weighted" => Ok(Average::Weighted),
            _ => Err(Error::invalid(
                "average",
                format!("\"{text}\""),
                "expected \"macro\", \"micro\" or \"weighted\" (Keras' None, one score per \
                 class, does not fit in kerust's logs, which hold one number per metric)",
            )),
        }
    }
}

/// Keras' `FBetaScore`: the weighted harmonic mean of precision and recall,
/// `(1 + beta²) · precision · recall / (beta² · precision + recall)`, per
/// class and then averaged ([`Average`]), over everything accumulated since
/// the last reset. `beta` above 1 weighs recall more, below 1 precision.
///
/// The predictions are `(batch, classes)`. With a
/// [`threshold`](FBetaScore::threshold), a prediction above it is a
/// positive; without one (the default, as Keras' `None`), the highest
/// prediction of each row is, and every prediction tied with it too, as in
/// Keras (a row of zeros has none). The targets are one-hot or multi-label
/// rows of the predictions' shape, read as numbers as Keras reads them.
/// Beyond Keras, which refuses them, class labels (one per sample) are
/// taken as one-hot rows for several output units, and, for one output
/// unit, one target per sample is its column. One output unit (a sigmoid's)
/// needs a threshold such as 0.5: Keras, without one, counts every
/// prediction other than 0 as a positive, a score that means nothing, so
/// kerust refuses that with an [`Error::InvalidArgument`] naming
/// `threshold`.
///
/// The score is computed as Keras does, with `1e-7` added to the
/// denominators of precision, recall and the score (and to the total
/// support of the weighted average), so that a class never predicted and
/// never a target scores 0. Before any update the value is 0.
///
/// It logs as `fbeta_score`, or under the name given to
/// [`named`](FBetaScore::named). Keras' string `"fbeta_score"` gives one
/// score per class, so `compile` does not take it: pass the metric.
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Average, FBetaScore, Metric};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut f2 = FBetaScore::new(Average::Micro).beta(2.0).threshold(0.5);
/// let y_true = array![[1.0_f32, 1.0], [0.0, 1.0]].into_dyn();
/// let y_pred = array![[0.9_f32, 0.4], [0.6, 0.8]].into_dyn();
/// f2.update(y_true.view(), y_pred.view())?;
/// // Precision 2/3, recall 2/3: their F2 is 2/3 as well.
/// assert!((f2.result() - 2.0 / 3.0).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct FBetaScore {
    name: String,
    average: Average,
    beta: f64,
    threshold: Option<f32>,
    /// Per class, once the first batch gave the number of classes.
    true_positives: Vec<f64>,
    false_positives: Vec<f64>,
    false_negatives: Vec<f64>,
    support: Vec<f64>,
}

impl FBetaScore {
    /// The score averaged as `average`, with Keras' defaults otherwise:
    /// beta 1, the arg-max of each row as the prediction, logged as
    /// `fbeta_score`.
    pub fn new(average: Average) -> Self {
        FBetaScore {
            name: "fbeta_score".to_string(),
            average,
            beta: 1.0,
            threshold: None,
            true_positives: Vec::new(),
            false_positives: Vec::new(),
            false_negatives: Vec::new(),
            support: Vec::new(),
        }
    }

    /// How much more recall weighs than precision, above 0 (default 1).
    pub fn beta(mut self, beta: f64) -> Self {
        self.beta = beta;
        self
    }

    /// The value a prediction must be above to be a positive, in (0, 1];
    /// `None` (the default) takes the highest prediction of each row.
    pub fn threshold(mut self, threshold: impl Into<Option<f32>>) -> Self {
        self.threshold = threshold.into();
        self
    }

    /// The name it logs under (default `fbeta_score`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The targets of a batch as `(batch, classes)` rows.
    fn targets(&self, y_true: &ArrayViewD<'_, f32>, classes: usize) -> Result<Array2<f32>> {
        let batch = y_true.shape().first().copied().unwrap_or(0);
        if y_true.ndim() == 2 && y_true.shape()[1] == classes {
            return Ok(y_true
                .view()
                .into_dimensionality::<Ix2>()
                .map_err(|_| Error::shape(&self.name, "(batch, classes)", y_true.shape()))?
                .to_owned());
        }
        let per_sample = y_true.ndim() == 1 || (y_true.ndim() == 2 && y_true.shape()[1] == 1);
        if !per_sample {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("targets ({batch}, {classes}) or labels ({batch},)"),
                got: format_shape(y_true.shape()),
            });
        }
        if classes == 1 {
            return Ok(Array2::from_shape_fn((batch, 1), |(i, _)| {
                y_true.iter().nth(i).copied().unwrap_or(0.0)
            }));
        }
        let mut rows = Array2::zeros((batch, classes));
        for (i, &label) in y_true.iter().enumerate() {
            rows[[i, label_at(i, label, classes)?]] = 1.0;
        }
        Ok(rows)
    }

    /// The score of one class, or of all added up, from its counts.
    fn score(&self, tp: f64, fp: f64, fn_: f64) -> f64 {
        let precision = tp / (tp + fp + EPSILON);
        let recall = tp / (tp + fn_ + EPSILON);
        let b2 = self.beta * self.beta;
        precision * recall / (b2 * precision + recall + EPSILON) * (1.0 + b2)
    }
}

impl Metric for FBetaScore {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        self.validate()?;
        let shape = y_pred.shape().to_vec();
        let y_pred = y_pred
            .into_dimensionality::<Ix2>()
            .map_err(|_| Error::shape(&self.name, "predictions (batch, classes)", &shape))?;
        let (batch, classes) = y_pred.dim();
        if classes == 1 && self.threshold.is_none() {
            // The arg-max of a single column is that column: every
            // prediction but 0 would be a positive, whatever its value.
            return Err(Error::invalid(
                "threshold",
                "None",
                format!(
                    "`{}` sees one output unit, and without a threshold every prediction \
                     above 0 would count as a positive; set one, e.g. `.threshold(0.5)` \
                     for a sigmoid",
                    self.name
                ),
            ));
        }
        let known = self.support.len();
        if known != 0 && known != classes {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("predictions ({batch}, {known}), as in the earlier batches"),
                got: format_shape(y_pred.shape()),
            });
        }
        let y_true = self.targets(&y_true, classes)?;
        if y_true.nrows() != batch {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("targets for {batch} samples"),
                got: format_shape(y_true.shape()),
            });
        }
        if known == 0 {
            self.true_positives = vec![0.0; classes];
            self.false_positives = vec![0.0; classes];
            self.false_negatives = vec![0.0; classes];
            self.support = vec![0.0; classes];
        }
        for (pred, target) in y_pred.outer_iter().zip(y_true.outer_iter()) {
            // Keras' row maximum: NaN when the row holds one, so that no
            // prediction of that row is a positive.
            let max = pred.iter().fold(f32::NEG_INFINITY, |m, &v| {
                if m.is_nan() || v.is_nan() {
                    f32::NAN
                } else {
                    m.max(v)
                }
            });
            for (c, (&p, &t)) in pred.iter().zip(target.iter()).enumerate() {
                let positive = match self.threshold {
                    Some(threshold) => p > threshold,
                    None => p >= max && p.abs() > 1e-9,
                };
                let (p, t) = (f64::from(u8::from(positive)), f64::from(t));
                self.true_positives[c] += p * t;
                self.false_positives[c] += p * (1.0 - t);
                self.false_negatives[c] += (1.0 - p) * t;
                self.support[c] += t;
            }
        }
        Ok(())
    }

    fn result(&self) -> f64 {
        let classes = self.support.len();
        if classes == 0 {
            return 0.0;
        }
        let per_class = (0..classes).map(|c| {
            self.score(
                self.true_positives[c],
                self.false_positives[c],
                self.false_negatives[c],
            )
        });
        match self.average {
            Average::Micro => self.score(
                self.true_positives.iter().sum(),
                self.false_positives.iter().sum(),
                self.false_negatives.iter().sum(),
            ),
            Average::Macro => per_class.sum::<f64>() / classes as f64,
            Average::Weighted => {
                let total = self.support.iter().sum::<f64>() + EPSILON;
                per_class
                    .zip(&self.support)
                    .map(|(score, support)| score * (support / total))
                    .sum()
            }
        }
    }

    fn reset(&mut self) {
        self.true_positives.clear();
        self.false_positives.clear();
        self.false_negatives.clear();
        self.support.clear();
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset();
        Box::new(fresh)
    }

    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a beta that is not above 0 and
    /// finite, or a threshold outside (0, 1].
    fn validate(&self) -> Result<()> {
        if !(self.beta > 0.0 && self.beta.is_finite()) {
            return Err(Error::invalid(
                "beta",
                self.beta,
                "expected a finite number above 0 (Keras' default is 1)",
            ));
        }
        if let Some(threshold) = self.threshold {
            if !(threshold > 0.0 && threshold <= 1.0) {
                return Err(Error::invalid(
                    "threshold",
                    threshold,
                    "expected a value in (0, 1], or None for the arg-max of each row",
                ));
            }
        }
        Ok(())
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "FBetaScore",
            "config": {
                "name": self.name,
                "average": self.average.as_str(),
                "beta": self.beta,
                "threshold": self.threshold,
            },
        })
    }
}

/// Keras' `F1Score`: the harmonic mean of precision and recall, `2 ·
/// precision · recall / (precision + recall)`, which is [`FBetaScore`] with
/// beta 1, per class and then averaged ([`Average`]).
///
/// It reads predictions and targets as [`FBetaScore`] does: without a
/// [`threshold`](F1Score::threshold) (the default, Keras' `None`), the
/// highest prediction of each row, and those tied with it, are the
/// positives. It logs as `f1_score` and `val_f1_score`, or under the name
/// given to [`named`](F1Score::named). Keras' string `"f1_score"` gives one
/// score per class, which kerust's logs cannot hold, so `compile` does not
/// take it: pass `F1Score::new(Average::Macro)` (or another average).
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Average, F1Score, Metric};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let mut f1 = F1Score::new(Average::Macro);
/// let labels = array![0.0_f32, 1.0, 1.0].into_dyn();
/// let probs = array![[0.8_f32, 0.2], [0.3, 0.7], [0.6, 0.4]].into_dyn();
/// f1.update(labels.view(), probs.view())?;
/// // Class 0: precision 1/2, recall 1; class 1: precision 1, recall 1/2.
/// // Both score 2/3.
/// assert!((f1.result() - 2.0 / 3.0).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct F1Score {
    inner: FBetaScore,
}

impl F1Score {
    /// The F1 score averaged as `average`, with the arg-max of each row as
    /// the prediction, logged as `f1_score`.
    pub fn new(average: Average) -> Self {
        F1Score {
            inner: FBetaScore::new(average).named("f1_score"),
        }
    }

    /// The value a prediction must be above to be a positive, in (0, 1];
    /// `None` (the default) takes the highest prediction of each row.
    pub fn threshold(mut self, threshold: impl Into<Option<f32>>) -> Self {
        self.inner = self.inner.threshold(threshold);
        self
    }

    /// The name it logs under (default `f1_score`).
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.inner = self.inner.named(name);
        self
    }
}

impl Metric for F1Score {
    fn name(&self) -> &str {
        self.inner.name()
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        self.inner.update(y_true, y_pred)
    }

    fn result(&self) -> f64 {
        self.inner.result()
    }

    fn reset(&mut self) {
        self.inner.reset();
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset();
        Box::new(fresh)
    }

    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a threshold outside (0, 1].
    fn validate(&self) -> Result<()> {
        self.inner.validate()
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "F1Score",
            "config": {
                "name": self.inner.name,
                "average": self.inner.average.as_str(),
                "threshold": self.inner.threshold,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn tied_maxima_are_all_positives_and_a_row_of_zeros_has_none() {
        let mut f1 = F1Score::new(Average::Micro);
        let y_true = array![[1.0_f32, 0.0, 0.0], [0.0, 0.0, 1.0]].into_dyn();
        let y_pred = array![[0.4_f32, 0.4, 0.2], [0.0, 0.0, 0.0]].into_dyn();
        f1.update(y_true.view(), y_pred.view()).unwrap();
        // One true positive, one false positive, one false negative.
        assert_eq!(f1.inner.true_positives, [1.0, 0.0, 0.0]);
        assert_eq!(f1.inner.false_positives, [0.0, 1.0, 0.0]);
        assert_eq!(f1.inner.false_negatives, [0.0, 0.0, 1.0]);
        assert!((f1.result() - 0.5).abs() < 1e-6);
    }

    #[test]
    fn labels_count_as_their_one_hot_rows() {
        let probs = array![[0.8_f32, 0.1, 0.1], [0.2, 0.5, 0.3], [0.3, 0.3, 0.4]].into_dyn();
        let one_hot = array![[1.0_f32, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]].into_dyn();
        for labels in [
            array![0.0_f32, 2.0, 2.0].into_dyn(),
            array![[0.0_f32], [2.0], [2.0]].into_dyn(),
        ] {
            for average in [Average::Macro, Average::Micro, Average::Weighted] {
                let mut a = FBetaScore::new(average).beta(0.5);
                let mut b = a.clone();
                a.update(labels.view(), probs.view()).unwrap();
                b.update(one_hot.view(), probs.view()).unwrap();
                assert_eq!(a.result(), b.result());
            }
        }
        let err = F1Score::new(Average::Macro)
            .update(array![0.0_f32, 3.0, 1.0].into_dyn().view(), probs.view())
            .unwrap_err();
        assert!(matches!(err, Error::LabelOutOfRange { label, classes: 3, .. } if label == 3.0));
    }

    #[test]
    fn bad_options_and_shapes_are_refused_with_what_was_expected() {
        let err = FBetaScore::new(Average::Macro)
            .beta(0.0)
            .validate()
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid `beta` = 0: expected a finite number above 0 (Keras' default is 1)"
        );
        for threshold in [0.0, 1.5, f32::NAN] {
            let err = F1Score::new(Average::Micro)
                .threshold(threshold)
                .validate()
                .unwrap_err();
            assert!(
                err.to_string().contains("expected a value in (0, 1]"),
                "{err}"
            );
        }
        assert!(F1Score::new(Average::Micro)
            .threshold(1.0)
            .validate()
            .is_ok());
        let mut f1 = F1Score::new(Average::Macro);
        let probs = array![[0.8_f32, 0.2]].into_dyn();
        let err = f1
            .update(array![[1.0_f32, 0.0, 0.0]].into_dyn().view(), probs.view())
            .unwrap_err();
        assert!(
            err.to_string().contains("targets (1, 2) or labels (1,)"),
            "{err}"
        );
        f1.update(array![[1.0_f32, 0.0]].into_dyn().view(), probs.view())
            .unwrap();
        let wider = array![[0.8_f32, 0.1, 0.1]].into_dyn();
        let err = f1
            .update(array![0.0_f32].into_dyn().view(), wider.view())
            .unwrap_err();
        assert!(
            err.to_string().contains("as in the earlier batches"),
            "{err}"
        );
        let flat = array![0.8_f32, 0.2].into_dyn();
        assert!(f1.update(flat.view(), flat.view()).is_err());
    }
}
