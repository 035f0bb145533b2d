//! [`Sequential`]: a stack of layers, each feeding the next.

use std::fmt;

use ndarray::ArrayD;

use crate::error::{format_batch_shape, format_shape};
use crate::layers::Layer;
use crate::losses::Loss;
use crate::metrics::{IntoMetric, Metric};
use crate::optimizers::Optimizer;
use crate::random::{stream, Purpose};
use crate::{Error, Result};

/// What `compile` attaches to a model.
pub(crate) struct Compiled {
    pub(crate) optimizer: Box<dyn Optimizer>,
    pub(crate) loss: Box<dyn Loss>,
    pub(crate) metrics: Vec<Box<dyn Metric>>,
}

/// Buffers of the training step, kept from step to step.
#[derive(Default)]
pub(crate) struct Buffers {
    /// The output of each layer in the last forward pass.
    pub(crate) outputs: Vec<ArrayD<f32>>,
    /// Gradient with respect to the current layer's output, and to its input.
    pub(crate) grad: ArrayD<f32>,
    pub(crate) grad_input: ArrayD<f32>,
    /// The weight of each sample of the batch, under `class_weight`.
    pub(crate) sample_weights: Vec<f32>,
}

/// A linear stack of layers, as Keras' `Sequential`.
///
/// The weights are created when the input shape is known: given with
/// [`input_shape`](Sequential::input_shape), or taken from the first data
/// the model sees. Initial weights come from the model's seed (default 0),
/// so two models made alike start alike.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new()
///     .input_shape([28, 28, 1])
///     .add(Flatten::new())
///     .add(Dense::new(128).activation(Activation::Relu))
///     .add(Dense::new(10).activation(Activation::Softmax));
/// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
/// assert_eq!(model.count_params(), 101_770);
/// println!("{}", model.summary());
/// # Ok(())
/// # }
/// ```
pub struct Sequential {
    pub(crate) layers: Vec<Box<dyn Layer>>,
    /// Whether each layer's weights are trained, one flag per layer.
    pub(crate) trainable: Vec<bool>,
    pub(crate) input_shape: Option<Vec<usize>>,
    pub(crate) shapes: Vec<Vec<usize>>,
    seed: u64,
    name: String,
    pub(crate) compiled: Option<Compiled>,
    pub(crate) buffers: Buffers,
    /// Set by a callback to end training after the current step or epoch,
    /// as Keras' `model.stop_training`.
    pub stop_training: bool,
}

impl Default for Sequential {
    fn default() -> Self {
        Self::new()
    }
}

impl Sequential {
    /// An empty model named `sequential`, with seed 0.
    pub fn new() -> Self {
        Sequential {
            layers: Vec::new(),
            trainable: Vec::new(),
            input_shape: None,
            shapes: Vec::new(),
            seed: 0,
            name: "sequential".to_string(),
            compiled: None,
            buffers: Buffers::default(),
            stop_training: false,
        }
    }

    /// Adds a layer on top, naming it after its type (`dense`, `dense_1`,
    /// ...) unless it has a name.
    // `add` is Keras' name; this is a builder, not `std::ops::Add`.
    #[allow(clippy::should_implement_trait)]
    pub fn add(mut self, layer: impl Layer + 'static) -> Self {
        self.push(Box::new(layer));
        self
    }

    /// Adds a boxed layer on top; see [`add`](Sequential::add).
    ///
    /// On a built model (trained, or loaded from a file) the layers below
    /// keep their weights: the next build makes the new layer's only, as
    /// when a new head is put on a trained model.
    pub fn push(&mut self, mut layer: Box<dyn Layer>) {
        if layer.name().is_empty() {
            let base = snake_case(layer.class_name());
            let taken = |name: &str| self.layers.iter().any(|l| l.name() == name);
            let mut name = base.clone();
            let mut n = 0;
            while taken(&name) {
                n += 1;
                name = format!("{base}_{n}");
            }
            layer.set_name(name);
        }
        self.layers.push(layer);
        self.trainable.push(true);
    }

    /// Removes the top layer and gives it back, as Keras' `pop`; `None`
    /// for a model without layers. The layers below keep their weights.
    ///
    /// The model is no longer compiled (the optimizer's state belonged to
    /// the weights of the whole stack): compile it again before training,
    /// as after any change of its layers.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let mut model = Sequential::new()
    ///     .input_shape([4])
    ///     .add(Dense::new(8).activation(Activation::Relu))
    ///     .add(Dense::new(3).activation(Activation::Softmax));
    /// model.build()?;
    /// let body = model.get_weights()[0].clone();
    ///
    /// // A new head for two classes on the same body.
    /// let head = model.pop().expect("a top layer");
    /// assert_eq!(head.name(), "dense_1");
    /// model.push(Box::new(Dense::new(2).activation(Activation::Softmax).name("head")));
    /// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
    /// assert_eq!(model.output_shape()?, [2]);
    /// assert_eq!(model.get_weights()[0], body);
    /// # Ok(())
    /// # }
    /// ```
    pub fn pop(&mut self) -> Option<Box<dyn Layer>> {
        let layer = self.layers.pop()?;
        self.trainable.pop();
        self.shapes.truncate(self.layers.len());
        self.compiled = None;
        self.buffers = Buffers::default();
        Some(layer)
    }

    /// Freezes (`false`) or unfreezes (`true`) the weights of the layer
    /// named `name`, as Keras' `layer.trainable = False`: `fit` and
    /// `train_on_batch` leave a frozen layer's weights as they are, and the
    /// optimizer's state for them too, while gradients still flow through
    /// the layer to the layers below it. Layers below the lowest trainable
    /// one are not back-propagated at all. The change takes effect at the
    /// next step (Keras needs `compile` again); it is saved with the model.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when no layer has that name.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    /// use ndarray::array;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let mut model = Sequential::new()
    ///     .input_shape([2])
    ///     .add(Dense::new(4).activation(Activation::Relu))
    ///     .add(Dense::new(2).activation(Activation::Softmax));
    /// model.set_trainable("dense", false)?;
    /// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
    /// model.build()?;
    ///
    /// let before = model.get_weights();
    /// let (x, y) = (array![[1.0_f32, 0.0], [0.0, 1.0]], array![0.0_f32, 1.0]);
    /// model.train_on_batch(&x, &y)?;
    /// let after = model.get_weights();
    /// assert_eq!(after[0], before[0]); // dense's kernel: frozen
    /// assert_ne!(after[2], before[2]); // dense_1's kernel: trained
    /// assert_eq!(model.summary().non_trainable_params(), 12);
    /// # Ok(())
    /// # }
    /// ```
    pub fn set_trainable(&mut self, name: &str, trainable: bool) -> Result<()> {
        let index = self.layer_index(name)?;
        self.trainable[index] = trainable;
        self.layers[index].on_trainable_changed(trainable);
        Ok(())
    }

    /// Whether the weights of the layer named `name` are trained (see
    /// [`set_trainable`](Sequential::set_trainable)); `None` when no layer
    /// has that name.
    pub fn is_trainable(&self, name: &str) -> Option<bool> {
        self.layer_index(name).ok().map(|i| self.trainable[i])
    }

    /// The position of the layer named `name`.
    fn layer_index(&self, name: &str) -> Result<usize> {
        self.layers
            .iter()
            .position(|l| l.name() == name)
            .ok_or_else(|| {
                let names: Vec<&str> = self.layers.iter().map(|l| l.name()).collect();
                Error::invalid(
                    "layer",
                    format!("\"{name}\""),
                    format!("no layer has that name; the model has {names:?}"),
                )
            })
    }

    /// The shape of one input sample, batch axis left out, e.g.
    /// `[28, 28, 1]`. Without it the model is built on the first data.
    pub fn input_shape(mut self, shape: impl Into<Vec<usize>>) -> Self {
        self.input_shape = Some(shape.into());
        self.shapes.clear();
        self
    }

    /// The seed of the initial weights (default 0).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// The model's name (default `sequential`).
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// The model's name.
    pub fn model_name(&self) -> &str {
        &self.name
    }

    /// The layers, first to last.
    pub fn layers(&self) -> &[Box<dyn Layer>] {
        &self.layers
    }

    /// The layers, mutably.
    pub fn layers_mut(&mut self) -> &mut [Box<dyn Layer>] {
        &mut self.layers
    }

    /// The layer called `name`.
    pub fn layer(&self, name: &str) -> Option<&dyn Layer> {
        self.layers
            .iter()
            .find(|l| l.name() == name)
            .map(|l| l.as_ref())
    }

    /// Whether the weights exist.
    pub fn is_built(&self) -> bool {
        !self.layers.is_empty() && self.shapes.len() == self.layers.len()
    }

    /// The input shape given or built for, batch axis left out.
    pub fn get_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    /// Creates the weights for the input shape given to
    /// [`input_shape`](Sequential::input_shape).
    ///
    /// # Errors
    ///
    /// [`Error::NotBuilt`] when no input shape was given,
    /// [`Error::InvalidArgument`] when two layers have the same name, and
    /// whatever a layer finds wrong with the shape it receives.
    pub fn build(&mut self) -> Result<()> {
        let shape = self.input_shape.clone().ok_or_else(|| Error::NotBuilt {
            layer: self.name.clone(),
        })?;
        self.build_for(&shape, None)
    }

    /// Builds for samples of `shape` unless already built for it. Layers
    /// already built for it keep their weights, so after
    /// [`push`](Sequential::push) only the new layers are made. `rows`, the
    /// number of samples given, only shows in the error for a shape the
    /// model was not built for.
    pub(crate) fn build_for(&mut self, shape: &[usize], rows: Option<usize>) -> Result<()> {
        let same_input = self.input_shape.as_deref() == Some(shape);
        if self.is_built() && same_input {
            return Ok(());
        }
        if self.layers.is_empty() {
            return Err(Error::invalid(
                "layers",
                0,
                "a model needs at least one layer",
            ));
        }
        let mut names = std::collections::BTreeSet::new();
        if let Some(layer) = self.layers.iter().find(|l| !names.insert(l.name())) {
            return Err(Error::invalid(
                "layer name",
                format!("\"{}\"", layer.name()),
                format!(
                    "two layers of `{}` have this name; layer names must be unique \
                     (leave a name out and the model makes one)",
                    self.name
                ),
            ));
        }
        if let Some(given) = &self.input_shape {
            // Built layers are not made again for another input: that would
            // throw away their weights.
            if !self.shapes.is_empty() && given.as_slice() != shape {
                let full = rows.map(|rows| [&[rows][..], shape].concat());
                let mut got = full
                    .as_deref()
                    .map_or_else(|| format_batch_shape(shape), format_shape);
                if full.as_ref() == Some(given) {
                    got.push_str(
                        ": one sample without the batch axis? Give a batch of one, \
                         e.g. with `insert_axis(Axis(0))`",
                    );
                }
                return Err(Error::ShapeMismatch {
                    layer: self.name.clone(),
                    expected: format_batch_shape(given),
                    got,
                });
            }
        }
        // The layers built for this input (all but those pushed since) stay
        // as they are; the others are built on top of them.
        let kept = if same_input { self.shapes.len() } else { 0 };
        let mut shapes = self.shapes[..kept].to_vec();
        let mut current = shapes.last().cloned().unwrap_or_else(|| shape.to_vec());
        for (i, layer) in self.layers.iter_mut().enumerate().skip(kept) {
            let mut rng = stream(self.seed, Purpose::Init, 0, i as u64);
            current = layer.build(&current, &mut rng)?;
            shapes.push(current.clone());
        }
        self.input_shape = Some(shape.to_vec());
        self.shapes = shapes;
        Ok(())
    }

    /// The shape of one output sample.
    ///
    /// # Errors
    ///
    /// [`Error::NotBuilt`] before the model is built.
    pub fn output_shape(&self) -> Result<Vec<usize>> {
        self.shapes
            .last()
            .cloned()
            .filter(|_| self.is_built())
            .ok_or_else(|| Error::NotBuilt {
                layer: self.name.clone(),
            })
    }

    /// Total number of weights.
    pub fn count_params(&self) -> usize {
        self.layers.iter().map(|l| l.param_count()).sum()
    }

    /// Attaches the optimizer, the loss and the metrics (Keras' names such
    /// as `"accuracy"`, or metric values), and builds the model if its input
    /// shape is known.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for an unknown metric name, a metric
    /// option or an optimizer hyperparameter out of range, two metrics of
    /// one name, and what [`build`](Sequential::build) returns.
    pub fn compile<M: IntoMetric>(
        &mut self,
        optimizer: impl Optimizer + 'static,
        loss: impl Loss + 'static,
        metrics: impl IntoIterator<Item = M>,
    ) -> Result<()> {
        optimizer.validate()?;
        let metrics = metrics
            .into_iter()
            .map(IntoMetric::into_metric)
            .collect::<Result<Vec<_>>>()?;
        let mut names: Vec<&str> = vec!["loss"];
        for metric in &metrics {
            metric.validate()?;
            if names.contains(&metric.name()) {
                return Err(Error::invalid(
                    "metrics",
                    metric.name(),
                    "each metric name must be unique",
                ));
            }
            names.push(metric.name());
        }
        if self.input_shape.is_some() && !self.is_built() {
            self.build()?;
        }
        self.compiled = Some(Compiled {
            optimizer: Box::new(optimizer),
            loss: Box::new(loss),
            metrics,
        });
        Ok(())
    }

    /// Whether `compile` was called.
    pub fn is_compiled(&self) -> bool {
        self.compiled.is_some()
    }

    pub(crate) fn compiled(&self, call: &str) -> Result<&Compiled> {
        self.compiled.as_ref().ok_or_else(|| Error::NotCompiled {
            call: call.to_string(),
        })
    }

    /// The optimizer, once compiled.
    pub fn optimizer(&self) -> Option<&dyn Optimizer> {
        self.compiled.as_ref().map(|c| c.optimizer.as_ref())
    }

    /// The optimizer, mutably: a callback changes the learning rate here.
    pub fn optimizer_mut(&mut self) -> Option<&mut (dyn Optimizer + 'static)> {
        self.compiled.as_mut().map(|c| c.optimizer.as_mut())
    }

    /// The loss, once compiled.
    pub fn loss(&self) -> Option<&dyn Loss> {
        self.compiled.as_ref().map(|c| c.loss.as_ref())
    }

    /// The metrics given to `compile`, in order; none before.
    pub fn metrics(&self) -> &[Box<dyn Metric>] {
        self.compiled
            .as_ref()
            .map(|c| c.metrics.as_slice())
            .unwrap_or_default()
    }

    /// The names of the metrics given to `compile`, in order.
    pub fn metric_names(&self) -> Vec<String> {
        self.compiled
            .as_ref()
            .map(|c| c.metrics.iter().map(|m| m.name().to_string()).collect())
            .unwrap_or_default()
    }

    /// Copies of every weight, layer after layer, in the order of each
    /// layer's [`weights`](Layer::weights).
    pub fn get_weights(&self) -> Vec<ArrayD<f32>> {
        self.layers
            .iter()
            .flat_map(|l| l.weights().into_iter().map(|(_, w)| w.to_owned()))
            .collect()
    }

    /// Replaces every weight, given as [`get_weights`](Sequential::get_weights)
    /// returns them.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when the count or a shape differs; the model
    /// is then left unchanged.
    pub fn set_weights(&mut self, weights: &[ArrayD<f32>]) -> Result<()> {
        let counts: Vec<usize> = self.layers.iter().map(|l| l.weights().len()).collect();
        let total: usize = counts.iter().sum();
        if weights.len() != total {
            return Err(Error::ShapeMismatch {
                layer: self.name.clone(),
                expected: format!("{total} weight arrays"),
                got: format!("{} arrays", weights.len()),
            });
        }
        let current = self.get_weights();
        for (w, c) in weights.iter().zip(&current) {
            if w.shape() != c.shape() {
                return Err(Error::shape(
                    &self.name,
                    format!("{:?}", c.shape()),
                    w.shape(),
                ));
            }
        }
        let mut start = 0;
        for (layer, count) in self.layers.iter_mut().zip(counts) {
            layer.set_weights(&weights[start..start + count])?;
            start += count;
        }
        Ok(())
    }

    /// The Keras summary table: each layer's name and type, output shape and
    /// number of weights, and the totals. Print it with `println!("{}", ..)`.
    #[must_use = "the summary is a value: print it with `println!(\"{}\", model.summary())`"]
    pub fn summary(&self) -> Summary {
        let rows = self
            .layers
            .iter()
            .enumerate()
            .map(|(i, layer)| {
                let shape = match self.shapes.get(i) {
                    Some(s) if self.is_built() => format_batch_shape(s),
                    _ => "?".to_string(),
                };
                let name = format!("{} ({})", layer.name(), layer.class_name());
                let frozen = !self.trainable.get(i).copied().unwrap_or(true);
                let trainable = if frozen {
                    0
                } else {
                    layer.trainable_param_count()
                };
                (name, shape, layer.param_count(), trainable)
            })
            .collect();
        Summary {
            name: self.name.clone(),
            rows,
        }
    }
}

/// The table that [`Sequential::summary`] returns; `Display` draws it.
#[derive(Debug, Clone)]
pub struct Summary {
    name: String,
    /// Name and type, output shape, weight count, trainable weight count
    /// (0 for a frozen layer).
    rows: Vec<(String, String, usize, usize)>,
}

impl Summary {
    /// Total number of weights.
    pub fn total_params(&self) -> usize {
        self.rows.iter().map(|r| r.2).sum()
    }

    /// Number of weights the optimizer trains.
    pub fn trainable_params(&self) -> usize {
        self.rows.iter().map(|r| r.3).sum()
    }

    /// Number of weights the optimizer leaves alone: those of frozen layers
    /// (see [`Sequential::set_trainable`]) and those a layer sets itself,
    /// such as [`BatchNormalization`](crate::layers::BatchNormalization)'s
    /// moving statistics.
    pub fn non_trainable_params(&self) -> usize {
        self.total_params() - self.trainable_params()
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Keras' widths, widened to the longest name or shape.
        let widest = |column: fn(&(String, String, usize, usize)) -> &String, least: usize| {
            self.rows
                .iter()
                .map(|row| column(row).chars().count())
                .fold(least, usize::max)
        };
        let (w1, w2, w3) = (widest(|r| &r.0, 29), widest(|r| &r.1, 26), 15);
        let rule = |c: &str| c.repeat(w1 + w2 + w3 + 2);
        writeln!(f, "Model: \"{}\"", self.name)?;
        writeln!(f, "{}", rule("─"))?;
        writeln!(
            f,
            "{:<w1$} {:<w2$} {:>w3$}",
            "Layer (type)", "Output Shape", "Param #"
        )?;
        writeln!(f, "{}", rule("━"))?;
        for (name, shape, params, _) in &self.rows {
            writeln!(f, "{name:<w1$} {shape:<w2$} {:>w3$}", thousands(*params))?;
        }
        writeln!(f, "{}", rule("─"))?;
        let (total, trainable) = (self.total_params(), self.trainable_params());
        let frozen = total - trainable;
        writeln!(f, " Total params: {} ({})", thousands(total), bytes(total))?;
        writeln!(
            f,
            " Trainable params: {} ({})",
            thousands(trainable),
            bytes(trainable)
        )?;
        write!(
            f,
            " Non-trainable params: {} ({})",
            thousands(frozen),
            bytes(frozen)
        )
    }
}

fn thousands(n: usize) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn bytes(params: usize) -> String {
    let bytes = params as f64 * 4.0;
    if bytes >= 1024.0 * 1024.0 {
        format!("{:.2} MB", bytes / (1024.0 * 1024.0))
    } else if bytes >= 1024.0 {
        format!("{:.2} KB", bytes / 1024.0)
    } else {
        format!("{bytes:.2} B")
    }
}

/// `Dense` -> `dense`, `ReLU` -> `re_lu`, as Keras names layers.
fn snake_case(class_name: &str) -> String {
    let mut out = String::new();
    let chars: Vec<char> = class_name.chars().collect();
    for (i, &c) in chars.iter().enumerate() {
        let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
        let prev_lower = i > 0 && chars[i - 1].is_lowercase();
        if c.is_uppercase() && i > 0 && (prev_lower || next_lower) {
            out.push('_');
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_follow_keras() {
        assert_eq!(snake_case("Dense"), "dense");
        assert_eq!(snake_case("ReLU"), "re_lu");
        assert_eq!(snake_case("LeakyReLU"), "leaky_re_lu");
        assert_eq!(thousands(101_770), "101,770");
        assert_eq!(bytes(101_770), "397.54 KB");
    }
}
