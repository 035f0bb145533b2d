//! The area under the ROC or precision-recall curve, as Keras' `AUC`
//! metric computes it: from confusion counts at evenly spaced thresholds,
//! accumulated over batches.

use std::fmt;
use std::str::FromStr;

use ndarray::ArrayViewD;
use serde_json::{json, Value};

use super::Metric;
use crate::{Error, Result};

/// The largest `num_thresholds`: Keras places a prediction among the
/// thresholds by multiplying it by `num_thresholds - 1` in float32, which
/// counts exactly up to 2^24.
const MAX_THRESHOLDS: usize = (1 << 24) + 1;

/// Keras' `backend.epsilon()`, by which the outer thresholds lie outside
/// [0, 1].
const EPSILON: f64 = 1e-7;

/// The curve whose area [`Auc`] measures (Keras' `curve`).
///
/// ```
/// use kerust::metrics::Curve;
///
/// assert_eq!("pr".parse::<Curve>().unwrap(), Curve::Pr);
/// assert_eq!(Curve::default().as_str(), "ROC");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Curve {
    /// The receiver operating characteristic: recall (the true-positive
    /// rate) against the false-positive rate. Keras' `"ROC"`, the default.
    #[default]
    Roc,
    /// Precision against recall. Keras' `"PR"`.
    Pr,
}

impl Curve {
    /// Keras' spelling: `"ROC"` or `"PR"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Curve::Roc => "ROC",
            Curve::Pr => "PR",
        }
    }
}

impl fmt::Display for Curve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Curve {
    type Err = Error;

    /// Reads `"ROC"` or `"PR"`, in upper or lower case, as Keras does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for anything else.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "ROC" | "roc" => Ok(Curve::Roc),
            "PR" | "pr" => Ok(Curve::Pr),
            _ => Err(Error::invalid(
                "curve",
                format!("\"{text}\""),
                "expected \"ROC\" or \"PR\" (Keras' \"PRGAIN\" is not in kerust)",
            )),
        }
    }
}

/// How [`Auc`] sums the area between two thresholds (Keras'
/// `summation_method`).
///
/// ```
/// use kerust::metrics::SummationMethod;
///
/// assert_eq!("Majoring".parse::<SummationMethod>().unwrap(), SummationMethod::Majoring);
/// assert_eq!(SummationMethod::default().to_string(), "interpolation");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SummationMethod {
    /// The default. For the ROC curve, trapezoids: the mean of the two
    /// heights. For the PR curve, true and false positives vary linearly
    /// between the thresholds and precision follows from them (Davis and
    /// Goadrich, 2006), which Keras integrates in closed form.
    #[default]
    Interpolation,
    /// The lower of the two heights: a lower bound.
    Minoring,
    /// The higher of the two heights: an upper bound.
    Majoring,
}

impl SummationMethod {
    /// Keras' spelling: `"interpolation"`, `"minoring"` or `"majoring"`.
    pub fn as_str(self) -> &'static str {
        match self {
            SummationMethod::Interpolation => "interpolation",
            SummationMethod::Minoring => "minoring",
            SummationMethod::Majoring => "majoring",
        }
    }
}

impl fmt::Display for SummationMethod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for SummationMethod {
    type Err = Error;

    /// Reads Keras' names, lower case or capitalised.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for anything else.
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "interpolation" | "Interpolation" => Ok(SummationMethod::Interpolation),
            "minoring" | "Minoring" => Ok(SummationMethod::Minoring),
            "majoring" | "Majoring" => Ok(SummationMethod::Majoring),
            _ => Err(Error::invalid(
                "summation_method",
                format!("\"{text}\""),
                "expected \"interpolation\", \"minoring\" or \"majoring\"",
            )),
        }
    }
}

/// Keras' `AUC`: the area under the ROC curve (or, as an option, the
/// precision-recall curve) of the predictions, over everything accumulated
/// since the last reset.
///
/// As in Keras, the curve is drawn through `num_thresholds` points (default
/// 200): thresholds at `i / (num_thresholds - 1)` for `i` from 1 to
/// `num_thresholds - 2`, and two more just outside [0, 1], at `-1e-7` and
/// `1 + 1e-7`, so that a prediction of exactly 0 is above the first and one
/// of exactly 1 is not above the last. A prediction counts as positive at a
/// threshold when it is above it; a target counts as positive when it is
/// not 0. Each batch adds to the true and false positives and negatives at
/// every threshold, and the area is computed from those counts, so that
/// the value over several batches is the value over all their samples.
/// Predictions are placed among the thresholds as Keras places them, by
/// multiplying them by `num_thresholds - 1` in float32, so that one lying
/// on a threshold is counted on the same side as in Keras. Predictions
/// outside [0, 1] are clipped to it, unless they are logits
/// ([`from_logits`](Auc::from_logits)), which go through a sigmoid first.
///
/// Every output unit counts as one prediction, as with Keras'
/// `multi_label=False`: for a sigmoid's one unit, each sample; for several
/// units, each unit of each sample, with targets of the predictions' shape.
/// Targets for one output unit may also be one value per sample. Keras'
/// `multi_label`, `num_labels`, `label_weights`, explicit `thresholds` and
/// the `"PRGAIN"` curve are not in kerust.
///
/// `compile` makes it for `"auc"`, and it logs as `auc` and `val_auc`, or
/// under the name given to [`named`](Auc::named). Before any update its
/// value is 0.
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Auc, Curve, Metric};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// // Three thresholds: -1e-7, 0.5 and 1 + 1e-7.
/// let mut auc = Auc::new().num_thresholds(3);
/// let y_true = array![0.0_f32, 0.0, 1.0, 1.0].into_dyn();
/// let y_pred = array![[0.0_f32], [0.5], [0.3], [0.9]].into_dyn();
/// auc.update(y_true.view(), y_pred.view())?;
/// // Recall 1, 0.5, 0 and false-positive rate 1, 0, 0 at the thresholds:
/// // trapezoids of (1 + 0.5) / 2 over a width of 1, and of none.
/// assert_eq!(auc.true_positives(), [2, 1, 0]);
/// assert_eq!(auc.false_positives(), [2, 0, 0]);
/// assert!((auc.result() - 0.75).abs() < 1e-12);
///
/// let pr = Auc::new().curve(Curve::Pr).named("pr_auc");
/// assert_eq!(pr.name(), "pr_auc");
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Auc {
    name: String,
    num_thresholds: usize,
    curve: Curve,
    summation_method: SummationMethod,
    from_logits: bool,
    /// Positive targets by bucket: bucket `b` holds the predictions above
    /// thresholds 0 to `b` and not above threshold `b + 1`. Empty before
    /// the first update.
    positives: Vec<u64>,
    /// Negative targets by bucket.
    negatives: Vec<u64>,
}

impl Default for Auc {
    fn default() -> Self {
        Auc::new()
    }
}

impl Auc {
    /// The ROC AUC with Keras' defaults: 200 thresholds, interpolation,
    /// probabilities (not logits), logged as `auc`.
    pub fn new() -> Self {
        Auc {
            name: "auc".to_string(),
            num_thresholds: 200,
            curve: Curve::Roc,
            summation_method: SummationMethod::Interpolation,
            from_logits: false,
            positives: Vec::new(),
            negatives: Vec::new(),
        }
    }

    /// The number of thresholds, at least 2 (default 200). More thresholds
    /// follow the curve more closely.
    pub fn num_thresholds(mut self, num_thresholds: usize) -> Self {
        self.num_thresholds = num_thresholds;
        self.reset();
        self
    }

    /// The curve: [`Curve::Roc`] (default) or [`Curve::Pr`].
    pub fn curve(mut self, curve: Curve) -> Self {
        self.curve = curve;
        self
    }

    /// How the area between two thresholds is summed (default
    /// [`SummationMethod::Interpolation`]).
    pub fn summation_method(mut self, summation_method: SummationMethod) -> Self {
        self.summation_method = summation_method;
        self
    }

    /// Whether the predictions are logits, which a sigmoid turns into
    /// probabilities first (default false), as for a model that ends
    /// without one and is trained with
    /// `BinaryCrossentropy::new().from_logits(true)`.
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// The name it logs under (default `auc`), needed to compile two AUCs
    /// together.
    pub fn named(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The thresholds, as Keras' `thresholds`: `-1e-7`, then
    /// `i / (num_thresholds - 1)` for `i` from 1 to `num_thresholds - 2`,
    /// then `1 + 1e-7`.
    ///
    /// ```
    /// use kerust::metrics::Auc;
    ///
    /// assert_eq!(Auc::new().num_thresholds(5).thresholds(), [-1e-7, 0.25, 0.5, 0.75, 1.0 + 1e-7]);
    /// ```
    pub fn thresholds(&self) -> Vec<f64> {
        let inner = self.num_thresholds.saturating_sub(2);
        let step = self.num_thresholds.saturating_sub(1) as f64;
        std::iter::once(0.0 - EPSILON)
            .chain((0..inner).map(|i| (i + 1) as f64 / step))
            .chain(std::iter::once(1.0 + EPSILON))
            .collect()
    }

    /// At each threshold, the positive targets whose prediction is above it.
    pub fn true_positives(&self) -> Vec<u64> {
        above(&self.positives, self.num_thresholds)
    }

    /// At each threshold, the negative targets whose prediction is above it.
    pub fn false_positives(&self) -> Vec<u64> {
        above(&self.negatives, self.num_thresholds)
    }

    /// At each threshold, the negative targets whose prediction is not
    /// above it.
    pub fn true_negatives(&self) -> Vec<u64> {
        not_above(&self.negatives, self.num_thresholds)
    }

    /// At each threshold, the positive targets whose prediction is not
    /// above it.
    pub fn false_negatives(&self) -> Vec<u64> {
        not_above(&self.positives, self.num_thresholds)
    }

    /// The bucket of a prediction, as Keras computes it: `ceil(p * (n -
    /// 1)) - 1` in float32, with `p` clipped to [0, 1], and at least 0
    /// (every prediction is above the first threshold).
    fn bucket(&self, prediction: f32) -> usize {
        let p = if self.from_logits {
            1.0 / (1.0 + (-prediction).exp())
        } else {
            prediction
        };
        let scale = (self.num_thresholds - 1) as f32;
        let bucket = (p.clamp(0.0, 1.0) * scale).ceil() - 1.0;
        // A NaN lands in bucket 0.
        if bucket > 0.0 {
            bucket as usize
        } else {
            0
        }
    }

    /// The area under the PR curve with Keras' interpolation: within each
    /// interval between two thresholds, the true positives and the
    /// predicted positives vary linearly, and precision is their ratio.
    fn interpolated_pr_auc(&self, tp: &[f64], fp: &[f64], fn_: &[f64]) -> f64 {
        let p: Vec<f64> = tp.iter().zip(fp).map(|(t, f)| t + f).collect();
        let mut area = 0.0;
        for i in 0..tp.len().saturating_sub(1) {
            let dtp = tp[i] - tp[i + 1];
            let dp = p[i] - p[i + 1];
            let slope = divide_no_nan(dtp, dp.max(0.0));
            let intercept = tp[i + 1] - slope * p[i + 1];
            let ratio = if p[i] > 0.0 && p[i + 1] > 0.0 {
                divide_no_nan(p[i], p[i + 1].max(0.0))
            } else {
                1.0
            };
            let positives = (tp[i + 1] + fn_[i + 1]).max(0.0);
            area += divide_no_nan(slope * (dtp + intercept * ratio.ln()), positives);
        }
        area
    }
}

/// Per threshold, the counts in the buckets at and above it.
fn above(buckets: &[u64], thresholds: usize) -> Vec<u64> {
    let mut counts = vec![0; thresholds];
    let mut sum = 0;
    for i in (0..buckets.len().min(thresholds)).rev() {
        sum += buckets[i];
        counts[i] = sum;
    }
    counts
}

/// Per threshold, the counts in the buckets below it.
fn not_above(buckets: &[u64], thresholds: usize) -> Vec<u64> {
    let total: u64 = buckets.iter().sum();
    above(buckets, thresholds)
        .into_iter()
        .map(|count| total - count)
        .collect()
}

/// `a / b`, or 0 when `b` is 0, as Keras' `divide_no_nan`.
fn divide_no_nan(a: f64, b: f64) -> f64 {
    if b == 0.0 {
        0.0
    } else {
        a / b
    }
}

/// `u64` counts as `f64`.
fn as_f64(counts: Vec<u64>) -> Vec<f64> {
    counts.into_iter().map(|c| c as f64).collect()
}

impl Metric for Auc {
    fn name(&self) -> &str {
        &self.name
    }

    fn update(&mut self, y_true: ArrayViewD<'_, f32>, y_pred: ArrayViewD<'_, f32>) -> Result<()> {
        self.validate()?;
        let rows = |a: &ArrayViewD<'_, f32>| a.shape().first().copied();
        if y_true.len() != y_pred.len() || rows(&y_true) != rows(&y_pred) {
            return Err(super::not_one_target_per_prediction(
                &self.name, &y_true, &y_pred,
            ));
        }
        if self.positives.len() != self.num_thresholds {
            self.positives = vec![0; self.num_thresholds];
            self.negatives = vec![0; self.num_thresholds];
        }
        for (&t, &p) in y_true.iter().zip(y_pred.iter()) {
            let bucket = self.bucket(p);
            if t != 0.0 {
                self.positives[bucket] += 1;
            } else {
                self.negatives[bucket] += 1;
            }
        }
        Ok(())
    }

    fn result(&self) -> f64 {
        if self.positives.is_empty() || self.num_thresholds < 2 {
            return 0.0;
        }
        let tp = as_f64(self.true_positives());
        let fp = as_f64(self.false_positives());
        let tn = as_f64(self.true_negatives());
        let fn_ = as_f64(self.false_negatives());
        if self.curve == Curve::Pr && self.summation_method == SummationMethod::Interpolation {
            return self.interpolated_pr_auc(&tp, &fp, &fn_);
        }
        let recall: Vec<f64> = (0..tp.len())
            .map(|i| divide_no_nan(tp[i], tp[i] + fn_[i]))
            .collect();
        let (x, y) = match self.curve {
            Curve::Roc => {
                let fp_rate: Vec<f64> = (0..tp.len())
                    .map(|i| divide_no_nan(fp[i], fp[i] + tn[i]))
                    .collect();
                (fp_rate, recall)
            }
            Curve::Pr => {
                let precision: Vec<f64> = (0..tp.len())
                    .map(|i| divide_no_nan(tp[i], tp[i] + fp[i]))
                    .collect();
                (recall, precision)
            }
        };
        (0..x.len() - 1)
            .map(|i| {
                let height = match self.summation_method {
                    SummationMethod::Interpolation => (y[i] + y[i + 1]) / 2.0,
                    SummationMethod::Minoring => y[i].min(y[i + 1]),
                    SummationMethod::Majoring => y[i].max(y[i + 1]),
                };
                (x[i] - x[i + 1]) * height
            })
            .sum()
    }

    fn reset(&mut self) {
        self.positives.clear();
        self.negatives.clear();
    }

    fn boxed_clone(&self) -> Box<dyn Metric> {
        let mut fresh = self.clone();
        fresh.reset();
        Box::new(fresh)
    }

    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for `num_thresholds` below 2 (or above
    /// 2^24 + 1).
    fn validate(&self) -> Result<()> {
        if self.num_thresholds < 2 {
            return Err(Error::invalid(
                "num_thresholds",
                self.num_thresholds,
                "AUC needs at least 2 thresholds (Keras' default is 200)",
            ));
        }
        if self.num_thresholds > MAX_THRESHOLDS {
            return Err(Error::invalid(
                "num_thresholds",
                self.num_thresholds,
                format!(
                    "at most {MAX_THRESHOLDS}: predictions are placed among the thresholds \
                     in float32, as in Keras"
                ),
            ));
        }
        Ok(())
    }

    fn config(&self) -> Value {
        json!({
            "class_name": "AUC",
            "config": {
                "name": self.name,
                "num_thresholds": self.num_thresholds,
                "curve": self.curve.as_str(),
                "summation_method": self.summation_method.as_str(),
                "from_logits": self.from_logits,
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn a_prediction_on_a_threshold_is_not_above_it_and_the_ends_are_kept() {
        // Thresholds -1e-7, 0.5, 1 + 1e-7: 0 is above the first only, 0.5
        // too, 1 above the first two.
        let mut auc = Auc::new().num_thresholds(3);
        let y_true = array![1.0_f32, 1.0, 1.0, 0.0].into_dyn();
        let y_pred = array![0.0_f32, 0.5, 1.0, 7.0].into_dyn();
        auc.update(y_true.view(), y_pred.view()).unwrap();
        assert_eq!(auc.true_positives(), [3, 1, 0]);
        assert_eq!(auc.false_negatives(), [0, 2, 3]);
        // 7 is clipped to 1.
        assert_eq!(auc.false_positives(), [1, 1, 0]);
        assert_eq!(auc.true_negatives(), [0, 0, 1]);
    }

    #[test]
    fn logits_go_through_a_sigmoid_and_nan_does_not_panic() {
        let mut auc = Auc::new().num_thresholds(3).from_logits(true);
        let y_true = array![1.0_f32, 0.0, 1.0].into_dyn();
        let y_pred = array![3.0_f32, -3.0, f32::NAN].into_dyn();
        auc.update(y_true.view(), y_pred.view()).unwrap();
        assert_eq!(auc.true_positives(), [2, 1, 0]);
        assert_eq!(auc.false_positives(), [1, 0, 0]);
    }

    #[test]
    fn a_reset_or_a_fresh_clone_counts_from_nothing() {
        let mut auc = Auc::new().curve(Curve::Pr).named("pr");
        let (t, p) = (
            array![1.0_f32, 0.0].into_dyn(),
            array![0.9_f32, 0.2].into_dyn(),
        );
        auc.update(t.view(), p.view()).unwrap();
        assert!(auc.result() > 0.9);
        let fresh = auc.boxed_clone();
        assert_eq!(fresh.result(), 0.0);
        assert_eq!(fresh.config(), auc.config());
        auc.reset();
        assert_eq!(auc.result(), 0.0);
        assert_eq!(auc.true_positives(), vec![0; 200]);
    }

    #[test]
    fn bad_options_and_shapes_are_refused_with_what_was_expected() {
        for n in [0, 1] {
            let err = Auc::new().num_thresholds(n).validate().unwrap_err();
            assert_eq!(
                err.to_string(),
                format!(
                    "invalid `num_thresholds` = {n}: AUC needs at least 2 thresholds \
                     (Keras' default is 200)"
                )
            );
        }
        let mut auc = Auc::new().num_thresholds(1);
        let (t, p) = (array![1.0_f32].into_dyn(), array![0.5_f32].into_dyn());
        assert!(auc.update(t.view(), p.view()).is_err());
        assert!(Auc::new()
            .num_thresholds(MAX_THRESHOLDS + 1)
            .validate()
            .is_err());
        let err = "prgain".parse::<Curve>().unwrap_err().to_string();
        assert!(err.contains("\"ROC\" or \"PR\""), "{err}");
        let err = "trapezoid"
            .parse::<SummationMethod>()
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"interpolation\", \"minoring\""), "{err}");
        let labels = array![1.0_f32, 0.0].into_dyn();
        let probs = array![[0.9_f32, 0.1], [0.2, 0.8]].into_dyn();
        let err = Auc::new()
            .update(labels.view(), probs.view())
            .unwrap_err()
            .to_string();
        assert!(err.contains("one target per prediction"), "{err}");
        assert!(
            err.contains("class labels?") && err.contains("to_categorical(&y, 2)"),
            "{err}"
        );
        // Targets of another count are not taken for labels.
        let short = array![1.0_f32].into_dyn();
        let err = Auc::new()
            .update(short.view(), probs.view())
            .unwrap_err()
            .to_string();
        assert!(!err.contains("class labels?"), "{err}");
    }
}
