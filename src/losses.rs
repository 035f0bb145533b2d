//! Losses: how far the predictions are from the targets.
//!
//! Every loss is the mean over the batch of a per-sample loss, as Keras'
//! default reduction (`sum_over_batch_size`) computes it, and gives its
//! gradient with respect to the predictions.
//!
//! Cross-entropy from probabilities follows Keras: the probabilities are
//! renormalised to sum to one and clipped to `[1e-7, 1 - 1e-7]`, so the loss
//! of a probability 0 is `-ln(1e-7) = 16.118096`, never infinite. When the
//! model's last layer ends in a softmax, `fit` fuses the pair and takes the
//! gradient with respect to the logits, `(softmax - one_hot) / batch`, which
//! is exact and stable for any logits.

use ndarray::{ArrayD, ArrayViewD, Axis, CowArray, Ix1, Zip};
use serde_json::json;

use crate::activations::softmax_row;
use crate::error::format_shape;
use crate::layers::resize;
use crate::{Error, Result};

/// Keras' fuzz factor: probabilities are clipped to `[EPSILON, 1 - EPSILON]`.
pub const EPSILON: f32 = 1e-7;

/// A loss function.
pub trait Loss: Send + Sync {
    /// The loss' name as Keras spells it, e.g.
    /// `"sparse_categorical_crossentropy"`.
    fn name(&self) -> &str;

    /// The mean loss over the batch. When `gradient` is given, writes the
    /// gradient of that mean with respect to `y_pred` into it, shaped like
    /// `y_pred`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when the targets do not fit the predictions
    /// and [`Error::LabelOutOfRange`] for a bad class label.
    fn compute(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        gradient: Option<&mut ArrayD<f32>>,
    ) -> Result<f32>;

    /// For a cross-entropy over probabilities: writes the gradient of the
    /// mean loss with respect to the logits of the softmax that made
    /// `probs`, and returns `Some`. Other losses return `None`.
    ///
    /// # Errors
    ///
    /// As [`compute`](Loss::compute).
    fn softmax_logits_gradient(
        &self,
        y_true: ArrayViewD<'_, f32>,
        probs: ArrayViewD<'_, f32>,
        gradient: &mut ArrayD<f32>,
    ) -> Option<Result<()>> {
        let _ = (y_true, probs, gradient);
        None
    }

    /// Checks whole targets against the shape of the predictions they
    /// will meet, `(samples, ...)`, before any training: `fit` calls it on
    /// its arrays and its validation data, so that a bad label is reported
    /// before the first step changes a weight, not in the middle of an
    /// epoch. The default accepts any targets, which
    /// [`compute`](Loss::compute) then checks batch by batch.
    ///
    /// # Errors
    ///
    /// As [`compute`](Loss::compute).
    fn check_targets(&self, y_true: ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        let _ = (y_true, y_pred_shape);
        Ok(())
    }

    /// The configuration, as Keras' `get_config`.
    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name() })
    }
}

/// A boxed loss is a loss: `compile` takes one made at run time, such as
/// [`loss_from_config`](crate::saving::loss_from_config) returns.
impl Loss for Box<dyn Loss> {
    fn name(&self) -> &str {
        self.as_ref().name()
    }

    fn compute(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        gradient: Option<&mut ArrayD<f32>>,
    ) -> Result<f32> {
        self.as_ref().compute(y_true, y_pred, gradient)
    }

    fn softmax_logits_gradient(
        &self,
        y_true: ArrayViewD<'_, f32>,
        probs: ArrayViewD<'_, f32>,
        gradient: &mut ArrayD<f32>,
    ) -> Option<Result<()>> {
        self.as_ref()
            .softmax_logits_gradient(y_true, probs, gradient)
    }

    fn check_targets(&self, y_true: ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        self.as_ref().check_targets(y_true, y_pred_shape)
    }

    fn config(&self) -> serde_json::Value {
        self.as_ref().config()
    }
}

/// Cross-entropy between integer class labels and predicted scores.
///
/// `y_true` holds one label per sample, shaped `(batch,)` or `(batch, 1)`,
/// as whole numbers in `[0, classes)`; `y_pred` is `(batch, classes)`.
///
/// # Examples
///
/// ```
/// use kerust::losses::{Loss, SparseCategoricalCrossentropy};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let loss = SparseCategoricalCrossentropy::new().from_logits(true);
/// let logits = array![[1000.0_f32, 0.0]].into_dyn();
/// let labels = array![1.0_f32].into_dyn();
/// let value = loss.compute(labels.view(), logits.view(), None)?;
/// assert_eq!(value, 1000.0);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct SparseCategoricalCrossentropy {
    from_logits: bool,
}

impl SparseCategoricalCrossentropy {
    /// The loss over probabilities (`from_logits` false, Keras' default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `y_pred` holds logits rather than probabilities (default
    /// false).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    /// Checks the labels and returns them as one value per sample.
    fn labels<'a>(
        &self,
        y_true: &'a ArrayViewD<'_, f32>,
        y_pred: &ArrayViewD<'_, f32>,
    ) -> Result<CowArray<'a, f32, Ix1>> {
        let batch = self.check_labels(y_true, y_pred.shape())?;
        Ok(y_true.to_shape(batch).expect("one value per sample"))
    }

    /// Checks the labels for predictions of `y_pred_shape` and returns the
    /// number of samples.
    fn check_labels(&self, y_true: &ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<usize> {
        let (batch, classes) = rows_shape(self.name(), y_pred_shape)?;
        let sparse_shape = y_true.ndim() == 1 || (y_true.ndim() == 2 && y_true.shape()[1] == 1);
        if !sparse_shape || y_true.shape()[0] != batch {
            let hint = if y_true.shape() == y_pred_shape {
                ": these look like one-hot rows; use `CategoricalCrossentropy` for them"
            } else {
                ""
            };
            return Err(Error::ShapeMismatch {
                layer: self.name().into(),
                expected: format!(
                    "({batch},), one integer label per row of predictions ({batch}, {classes})"
                ),
                got: format!("{}{hint}", format_shape(y_true.shape())),
            });
        }
        for (i, &v) in y_true.iter().enumerate() {
            label_at(i, v, classes).map_err(|e| match classes {
                // One output unit holds no classes to choose from: the
                // labels were meant for a binary model.
                1 => Error::ShapeMismatch {
                    layer: self.name().into(),
                    expected: format!("predictions ({batch}, classes), one unit per class"),
                    got: format!(
                        "({batch}, 1): one output unit, for which labels 0 and 1 need \
                         `BinaryCrossentropy`"
                    ),
                },
                _ => e,
            })?;
        }
        Ok(batch)
    }
}

impl Loss for SparseCategoricalCrossentropy {
    fn name(&self) -> &str {
        "sparse_categorical_crossentropy"
    }

    fn compute(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        gradient: Option<&mut ArrayD<f32>>,
    ) -> Result<f32> {
        let labels = self.labels(&y_true, &y_pred)?;
        let targets = Targets::Sparse(&labels);
        Ok(cross_entropy(&targets, &y_pred, self.from_logits, gradient))
    }

    fn softmax_logits_gradient(
        &self,
        y_true: ArrayViewD<'_, f32>,
        probs: ArrayViewD<'_, f32>,
        gradient: &mut ArrayD<f32>,
    ) -> Option<Result<()>> {
        if self.from_logits {
            return None;
        }
        Some(self.labels(&y_true, &probs).map(|labels| {
            logits_gradient(&Targets::Sparse(&labels), &probs, gradient);
        }))
    }

    fn check_targets(&self, y_true: ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        self.check_labels(&y_true, y_pred_shape).map(|_| ())
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "from_logits": self.from_logits })
    }
}

/// Cross-entropy between one-hot (or soft) targets and predicted scores,
/// both shaped `(batch, classes)`.
///
/// # Examples
///
/// ```
/// use kerust::losses::{CategoricalCrossentropy, Loss};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let loss = CategoricalCrossentropy::new();
/// let probs = array![[0.0_f32, 1.0]].into_dyn();
/// let one_hot = array![[1.0_f32, 0.0]].into_dyn();
/// // Probability 0 is clipped to 1e-7: the loss is -ln(1e-7), not infinite.
/// let value = loss.compute(one_hot.view(), probs.view(), None)?;
/// assert!((value - 16.118096).abs() < 1e-5);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct CategoricalCrossentropy {
    from_logits: bool,
}

impl CategoricalCrossentropy {
    /// The loss over probabilities (`from_logits` false, Keras' default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `y_pred` holds logits rather than probabilities (default
    /// false).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    fn check(&self, y_true: &ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        let (batch, classes) = rows_shape(self.name(), y_pred_shape)?;
        if y_true.shape() != [batch, classes] {
            let hint = if y_true.len() == batch {
                ": these look like integer labels; use `SparseCategoricalCrossentropy` for them"
            } else {
                ""
            };
            return Err(Error::ShapeMismatch {
                layer: self.name().into(),
                expected: format!("({batch}, {classes}), one-hot targets like the predictions"),
                got: format!("{}{hint}", format_shape(y_true.shape())),
            });
        }
        Ok(())
    }
}

impl Loss for CategoricalCrossentropy {
    fn name(&self) -> &str {
        "categorical_crossentropy"
    }

    fn compute(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        gradient: Option<&mut ArrayD<f32>>,
    ) -> Result<f32> {
        self.check(&y_true, y_pred.shape())?;
        let targets = Targets::Dense(&y_true);
        Ok(cross_entropy(&targets, &y_pred, self.from_logits, gradient))
    }

    fn softmax_logits_gradient(
        &self,
        y_true: ArrayViewD<'_, f32>,
        probs: ArrayViewD<'_, f32>,
        gradient: &mut ArrayD<f32>,
    ) -> Option<Result<()>> {
        if self.from_logits {
            return None;
        }
        Some(self.check(&y_true, probs.shape()).map(|()| {
            logits_gradient(&Targets::Dense(&y_true), &probs, gradient);
        }))
    }

    fn check_targets(&self, y_true: ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        self.check(&y_true, y_pred_shape)
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "from_logits": self.from_logits })
    }
}

/// Cross-entropy between targets in [0, 1] and independent probabilities,
/// one per output unit, as a sigmoid gives them: Keras'
/// `binary_crossentropy`.
///
/// ```text
/// from probabilities   p clipped to [1e-7, 1 - 1e-7], then
///                      loss = -(y ln p + (1 - y) ln(1 - p))
/// from logits z        loss = -(y ln sigmoid(z) + (1 - y) ln sigmoid(-z))
/// ```
///
/// averaged over the last axis, then over the batch. `y_true` has the
/// predictions' shape, or `(batch,)` for predictions `(batch, 1)`. As in
/// Keras on JAX, a probability outside the clip's range gets no gradient,
/// and the logits' gradient is `(1 - y) sigmoid(z) - y sigmoid(-z)`, exact
/// for any logits.
///
/// # Examples
///
/// ```
/// use kerust::losses::{BinaryCrossentropy, Loss};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let loss = BinaryCrossentropy::new();
/// let probs = array![[0.9_f32], [0.2]].into_dyn();
/// let labels = array![1.0_f32, 0.0].into_dyn();
/// let value = loss.compute(labels.view(), probs.view(), None)?;
/// let expected = -(0.9_f32.ln() + 0.8_f32.ln()) / 2.0;
/// assert!((value - expected).abs() < 1e-6);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default)]
pub struct BinaryCrossentropy {
    from_logits: bool,
}

impl BinaryCrossentropy {
    /// The loss over probabilities (`from_logits` false, Keras' default).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether `y_pred` holds logits rather than probabilities (default
    /// false).
    pub fn from_logits(mut self, from_logits: bool) -> Self {
        self.from_logits = from_logits;
        self
    }

    fn check(&self, y_true: &ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        let batch = y_pred_shape.first().copied().unwrap_or(0);
        let count: usize = y_pred_shape.iter().product();
        let labels = y_pred_shape.len() == 2 && y_pred_shape[1] == 1 && y_true.shape() == [batch];
        if y_pred_shape.len() < 2 || count == 0 {
            return Err(Error::shape(
                self.name(),
                "predictions (batch, units)",
                y_pred_shape,
            ));
        }
        if y_true.shape() != y_pred_shape && !labels {
            return Err(Error::ShapeMismatch {
                layer: self.name().into(),
                expected: format!(
                    "{}, one target in [0, 1] per prediction",
                    format_shape(y_pred_shape)
                ),
                got: format_shape(y_true.shape()),
            });
        }
        Ok(())
    }
}

impl Loss for BinaryCrossentropy {
    /// Also refuses a target outside [0, 1] (NaN included), which Keras
    /// would take: its loss has no meaning. Soft targets within [0, 1] are
    /// accepted.
    fn check_targets(&self, y_true: ArrayViewD<'_, f32>, y_pred_shape: &[usize]) -> Result<()> {
        self.check(&y_true, y_pred_shape)?;
        let per_sample = y_true.len() / y_pred_shape[0];
        let outside = y_true
            .iter()
            .enumerate()
            .find(|(_, v)| !(0.0..=1.0).contains(*v));
        match outside {
            Some((i, &value)) => Err(Error::TargetOutOfRange {
                data: "y".into(),
                index: i / per_sample,
                value: f64::from(value),
                loss: self.name().into(),
                expected: "a probability in [0, 1]".into(),
            }),
            None => Ok(()),
        }
    }

    fn name(&self) -> &str {
        "binary_crossentropy"
    }

    fn compute(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        gradient: Option<&mut ArrayD<f32>>,
    ) -> Result<f32> {
        self.check(&y_true, y_pred.shape())?;
        let y_true = y_true
            .to_shape(y_pred.raw_dim())
            .expect("checked: as many targets as predictions");
        let count = y_pred.len() as f32;
        let mut sum = 0.0_f64;
        if self.from_logits {
            // ln sigmoid(z) = -softplus(-z), in a form that neither
            // overflows nor loses the small end.
            let log_sigmoid = |z: f32| -((-z).max(0.0) + (-z.abs()).exp().ln_1p());
            Zip::from(&y_true).and(&y_pred).for_each(|&y, &z| {
                sum -= f64::from(y * log_sigmoid(z) + (1.0 - y) * log_sigmoid(-z));
            });
        } else {
            Zip::from(&y_true).and(&y_pred).for_each(|&y, &p| {
                let p = p.clamp(EPSILON, 1.0 - EPSILON);
                sum -= f64::from(y * p.ln() + (1.0 - y) * (1.0 - p).ln());
            });
        }
        if let Some(gradient) = gradient {
            resize(gradient, y_pred.shape());
            let sigmoid = |z: f32| 1.0 / (1.0 + (-z).exp());
            let from_logits = self.from_logits;
            Zip::from(gradient)
                .and(&y_true)
                .and(&y_pred)
                .for_each(|g, &y, &v| {
                    *g = if from_logits {
                        ((1.0 - y) * sigmoid(v) - y * sigmoid(-v)) / count
                    } else if v == v.clamp(EPSILON, 1.0 - EPSILON) {
                        (-y / v + (1.0 - y) / (1.0 - v)) / count
                    } else {
                        0.0
                    };
                });
        }
        Ok((sum / f64::from(count)) as f32)
    }

    fn config(&self) -> serde_json::Value {
        json!({ "name": self.name(), "from_logits": self.from_logits })
    }
}

/// Mean squared error: the mean over the last axis of `(y_pred - y_true)^2`,
/// then over the batch.
#[derive(Debug, Clone, Default)]
pub struct MeanSquaredError;

impl MeanSquaredError {
    /// The loss.
    pub fn new() -> Self {
        MeanSquaredError
    }
}

impl Loss for MeanSquaredError {
    fn name(&self) -> &str {
        "mean_squared_error"
    }

    fn compute(
        &self,
        y_true: ArrayViewD<'_, f32>,
        y_pred: ArrayViewD<'_, f32>,
        gradient: Option<&mut ArrayD<f32>>,
    ) -> Result<f32> {
        let matches = y_true.shape() == y_pred.shape()
            || (y_pred.ndim() == 2 && y_pred.shape()[1] == 1 && y_true.len() == y_pred.len());
        if !matches || y_pred.is_empty() {
            return Err(Error::ShapeMismatch {
                layer: self.name().into(),
                expected: format!(
                    "{} for the targets, the predictions' shape",
                    format_shape(y_pred.shape())
                ),
                got: format_shape(y_true.shape()),
            });
        }
        let y_true = y_true
            .to_shape(y_pred.raw_dim())
            .expect("same number of elements");
        let count = y_pred.len() as f32;
        let mut sum = 0.0_f64;
        Zip::from(&y_true).and(&y_pred).for_each(|&t, &p| {
            sum += f64::from((p - t) * (p - t));
        });
        if let Some(gradient) = gradient {
            resize(gradient, y_pred.shape());
            Zip::from(gradient)
                .and(&y_true)
                .and(&y_pred)
                .for_each(|g, &t, &p| {
                    *g = 2.0 * (p - t) / count;
                });
        }
        Ok((sum / f64::from(count)) as f32)
    }
}

/// The class label at `index`, checked: a whole number in `[0, classes)`.
///
/// # Errors
///
/// [`Error::LabelOutOfRange`] otherwise.
pub fn label_at(index: usize, value: f32, classes: usize) -> Result<usize> {
    if value.fract() == 0.0 && value >= 0.0 && (value as usize) < classes {
        Ok(value as usize)
    } else {
        Err(Error::LabelOutOfRange {
            data: "y".into(),
            index,
            label: f64::from(value),
            classes,
        })
    }
}

/// The position of the largest value (the first one on ties).
pub fn argmax(values: impl IntoIterator<Item = f32>) -> usize {
    let mut best = (0, f32::NEG_INFINITY);
    for (i, v) in values.into_iter().enumerate() {
        if v > best.1 {
            best = (i, v);
        }
    }
    best.0
}

enum Targets<'a, 'b> {
    /// Checked class labels, one per sample.
    Sparse(&'a CowArray<'b, f32, Ix1>),
    Dense(&'a ArrayViewD<'b, f32>),
}

impl Targets<'_, '_> {
    /// The target weight of class `class` for sample `row`.
    fn weight(&self, row: usize, class: usize) -> f32 {
        match self {
            Targets::Sparse(labels) => f32::from(u8::from(labels[row] as usize == class)),
            Targets::Dense(y) => y[[row, class]],
        }
    }

    fn row_sum(&self, row: usize) -> f32 {
        match self {
            Targets::Sparse(_) => 1.0,
            Targets::Dense(y) => y.index_axis(Axis(0), row).sum(),
        }
    }
}

fn rows_shape(name: &str, y_pred_shape: &[usize]) -> Result<(usize, usize)> {
    match *y_pred_shape {
        [batch, classes] if batch > 0 && classes > 0 => Ok((batch, classes)),
        _ => Err(Error::shape(
            name,
            "predictions (batch, classes)",
            y_pred_shape,
        )),
    }
}

/// The mean cross-entropy, and its gradient with respect to `y_pred`.
fn cross_entropy(
    targets: &Targets<'_, '_>,
    y_pred: &ArrayViewD<'_, f32>,
    from_logits: bool,
    mut gradient: Option<&mut ArrayD<f32>>,
) -> f32 {
    let (batch, classes) = (y_pred.shape()[0], y_pred.shape()[1]);
    if let Some(g) = gradient.as_deref_mut() {
        resize(g, y_pred.shape());
    }
    let scale = 1.0 / batch as f32;
    let mut total = 0.0_f32;
    for (r, row) in y_pred.axis_iter(Axis(0)).enumerate() {
        if !from_logits {
            total += probs_row(targets, r, row, gradient.as_deref_mut(), scale);
            continue;
        }
        // log_softmax(z)_c = z_c - max - ln(sum exp(z - max)), stable for
        // any logits; computed in place, with no buffer.
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_sum = row.iter().map(|z| (z - max).exp()).sum::<f32>().ln();
        total -= row
            .iter()
            .enumerate()
            .map(|(c, &z)| targets.weight(r, c) * (z - max - log_sum))
            .sum::<f32>();
        if let Some(g) = gradient.as_deref_mut() {
            let sum = targets.row_sum(r);
            for (c, &z) in row.iter().enumerate() {
                let p = (z - max - log_sum).exp();
                g[[r, c]] = (p * sum - targets.weight(r, c)) * scale;
            }
        }
    }
    let _ = classes;
    total * scale
}

/// Loss of one row of probabilities, Keras' way: renormalised, clipped, then
/// `-sum(y * ln(p))`. The clip has zero gradient outside its range.
fn probs_row(
    targets: &Targets<'_, '_>,
    r: usize,
    row: ArrayViewD<'_, f32>,
    gradient: Option<&mut ArrayD<f32>>,
    scale: f32,
) -> f32 {
    let sum: f32 = row.sum();
    // dL/dq_c for the renormalised row q = p / sum: -y_c / q_c inside the
    // clip's range, 0 outside it.
    let dq = |c: usize, p: f32| {
        let q = p / sum;
        if q == q.clamp(EPSILON, 1.0 - EPSILON) {
            -targets.weight(r, c) / q
        } else {
            0.0
        }
    };
    let mut loss = 0.0;
    for (c, &p) in row.iter().enumerate() {
        let clipped = (p / sum).clamp(EPSILON, 1.0 - EPSILON);
        loss -= targets.weight(r, c) * clipped.ln();
    }
    if let Some(g) = gradient {
        // q_j = p_j / S, so dL/dp_k = dq_k / S - sum_j dq_j p_j / S^2.
        let weighted = row
            .iter()
            .enumerate()
            .map(|(c, &p)| dq(c, p) * p)
            .sum::<f32>()
            / (sum * sum);
        for (c, &p) in row.iter().enumerate() {
            g[[r, c]] = (dq(c, p) / sum - weighted) * scale;
        }
    }
    loss
}

/// `(softmax * sum(y) - y) / batch`: the gradient of the mean cross-entropy
/// with respect to the logits of the softmax that made `probs`.
fn logits_gradient(
    targets: &Targets<'_, '_>,
    probs: &ArrayViewD<'_, f32>,
    gradient: &mut ArrayD<f32>,
) {
    resize(gradient, probs.shape());
    let scale = 1.0 / probs.shape()[0] as f32;
    for (r, (row, mut g)) in probs
        .axis_iter(Axis(0))
        .zip(gradient.axis_iter_mut(Axis(0)))
        .enumerate()
    {
        let sum = targets.row_sum(r);
        for (c, (&p, g)) in row.iter().zip(g.iter_mut()).enumerate() {
            *g = (p * sum - targets.weight(r, c)) * scale;
        }
    }
}

/// Softmax of each row of `logits`, stable for any values.
pub fn softmax(logits: ArrayViewD<'_, f32>) -> ArrayD<f32> {
    let mut out = ArrayD::zeros(logits.shape());
    let last = Axis(logits.ndim().saturating_sub(1));
    for (row, mut out_row) in logits.lanes(last).into_iter().zip(out.lanes_mut(last)) {
        let values = row.to_vec();
        let mut probs = vec![0.0; values.len()];
        softmax_row(&values, &mut probs);
        out_row.assign(&ndarray::ArrayView1::from(&probs));
    }
    out
}
