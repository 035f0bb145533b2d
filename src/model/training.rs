//! The training loop, evaluation and prediction of [`Sequential`].

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Axis, Data, Dimension, IxDyn, Slice};
use rayon::prelude::*;

use super::options::{FitData, FitOptions, IntoFitData};
use super::sequential::Sequential;
use super::source::{check_pair, ArraySource, BatchSource};
use super::History;
use crate::callbacks::{Callback, Logs, ProgbarLogger, TrainParams};
use crate::error::{format_batch_shape, format_shape};
use crate::layers::Layer;
use crate::losses::{argmax, Loss};
use crate::{Error, Result};

/// Rows per piece when prediction is split across threads. Fixed, so that
/// the pieces, and so the results, do not depend on the number of threads.
const PREDICT_CHUNK: usize = 512;

type Callbacks<'a> = Vec<Box<dyn Callback + 'a>>;
/// The validation arrays and where they stand in the data the user gave,
/// so that an error can name the user's data and index.
struct Validation<'a> {
    x: ArrayViewD<'a, f32>,
    y: ArrayViewD<'a, f32>,
    /// Names of the inputs and labels: `validation_data` for both, or `x`
    /// and `y` for the part `validation_split` holds out.
    names: (&'static str, &'static str),
    /// Index of the first validation sample in those: 0, or the split point.
    offset: usize,
}

impl Sequential {
    /// Trains the model for `options.epochs` epochs on arrays `(&x, &y)` or
    /// on a [`BatchSource`] such as the augmenter's flow, and returns the
    /// figures of each epoch.
    ///
    /// The training figures of an epoch are the running means over its
    /// batches, as Keras shows them; validation figures come from scoring the
    /// validation data after the epoch.
    ///
    /// # Errors
    ///
    /// [`Error::NotCompiled`] before `compile`; [`Error::EmptyData`],
    /// [`Error::ShapeMismatch`] and [`Error::LabelOutOfRange`] for data that
    /// does not fit the model (the targets of arrays, of a flow and of the
    /// validation data are checked with
    /// [`Loss::check_targets`](crate::losses::Loss::check_targets) before
    /// the first step); [`Error::InvalidArgument`] for bad options;
    /// [`Error::NonFiniteInput`] when an input is NaN or infinite (arrays
    /// are looked at before training starts, a generator's batches when the
    /// loss stops being finite); [`Error::NonFiniteLoss`] when the loss
    /// becomes NaN or infinite otherwise and no callback stops training; and
    /// any error a callback returns.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    /// use ndarray::array;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// // Learn to tell the sign of a number.
    /// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0]];
    /// let y = array![0.0_f32, 0.0, 1.0, 1.0];
    /// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
    /// model.compile(Adam::new().learning_rate(0.1), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
    /// let options = FitOptions::new().epochs(30).batch_size(4).verbose(Verbosity::Silent);
    /// let history = model.fit((&x, &y), options)?;
    /// assert_eq!(history.get("accuracy").unwrap().last(), Some(&1.0));
    /// # Ok(())
    /// # }
    /// ```
    pub fn fit<'a>(
        &mut self,
        data: impl IntoFitData<'a>,
        mut options: FitOptions<'a>,
    ) -> Result<History> {
        self.compiled("fit")?;
        check_options(&options)?;
        let (mut source, validation) = split_data(data.into_fit_data(), &options)?;
        self.build_for(&source.sample_shape(), Some(source.len()))?;
        self.check_head(&options)?;
        if let Some(v) = &validation {
            // Checked now, not after the first epoch has trained.
            let built = self.input_shape.as_deref().unwrap_or_default();
            if &v.x.shape()[1..] != built {
                return Err(Error::ShapeMismatch {
                    layer: v.names.0.into(),
                    expected: format_batch_shape(built),
                    got: format_shape(v.x.shape()),
                });
            }
        }
        if let Some(y) = source.targets() {
            self.check_targets(y)?;
        }
        if let Some(v) = &validation {
            let ((inputs, labels), offset) = (v.names, v.offset);
            self.check_targets(v.y.view())
                .map_err(|e| e.relocated(inputs, labels, |i| i + offset))?;
        }
        let mut callbacks = std::mem::take(&mut options.callbacks);
        callbacks.push(Box::new(ProgbarLogger::new(options.verbose)));
        let params = TrainParams {
            epochs: options.epochs,
            initial_epoch: options.initial_epoch,
            steps: source.steps_per_epoch(),
            samples: source.len(),
        };
        callbacks.iter_mut().for_each(|c| c.set_params(&params));
        self.run_epochs(source.as_mut(), validation, &options, &mut callbacks)
    }

    /// Refuses what cannot train as asked: a softmax over a single output,
    /// always 1, and class weights for classes the model does not predict
    /// (one per output unit, or 0 and 1 for a single unit).
    fn check_head(&self, options: &FitOptions<'_>) -> Result<()> {
        let units = self.shapes.last().and_then(|s| s.last()).copied();
        let units = units.unwrap_or(0);
        if units == 1 && self.layers.last().is_some_and(|l| l.ends_in_softmax()) {
            return Err(Error::invalid(
                "activation",
                "softmax over 1 unit",
                "a softmax of one value is always 1, and nothing trains through it: give \
                 one output `Activation::Sigmoid` (with `BinaryCrossentropy`), or the \
                 softmax one unit per class",
            ));
        }
        let classes = if units == 1 { 2 } else { units };
        if let Some(&(class, _)) = options.class_weight.iter().find(|&&(c, _)| c >= classes) {
            return Err(Error::invalid(
                "class_weight",
                class,
                format!(
                    "not a class of this model, which predicts {classes}: 0 to {}",
                    classes.saturating_sub(1)
                ),
            ));
        }
        Ok(())
    }

    /// Checks targets `y` against the compiled loss, for the outputs the
    /// built model gives as many samples.
    fn check_targets(&self, y: ArrayViewD<'_, f32>) -> Result<()> {
        let output = match self.shapes.last() {
            Some(output) if self.is_built() => output,
            _ => return self.output_shape().map(|_| ()),
        };
        // `IxDyn` keeps up to four axes inline: `train_on_batch` allocates
        // nothing here.
        let mut predictions = IxDyn::zeros(output.len() + 1);
        predictions[0] = y.shape().first().copied().unwrap_or(0);
        predictions.slice_mut()[1..].copy_from_slice(output);
        self.compiled("fit")?
            .loss
            .check_targets(y, predictions.slice())
    }

    fn run_epochs(
        &mut self,
        source: &mut dyn BatchSource,
        validation: Option<Validation<'_>>,
        options: &FitOptions<'_>,
        callbacks: &mut Callbacks<'_>,
    ) -> Result<History> {
        self.stop_training = false;
        let class_weight = class_weight_table(&options.class_weight);
        let mut history = History::new();
        let mut logs = Logs::new();
        for c in callbacks.iter_mut() {
            c.on_train_begin(self, &logs)?;
        }
        let first = callbacks
            .iter()
            .filter_map(|c| c.resume_epoch())
            .fold(options.initial_epoch, usize::max);
        for epoch in first..options.epochs {
            for c in callbacks.iter_mut() {
                c.on_epoch_begin(epoch, self, &logs)?;
            }
            logs = self.train_epoch(epoch, source, callbacks, &class_weight)?;
            if let Some(v) = &validation {
                let ((inputs, labels), offset) = (v.names, v.offset);
                let scores = self
                    .evaluate_views(v.x.view(), v.y.view())
                    .map_err(|e| e.relocated(inputs, labels, |i| i + offset))?;
                for (key, value) in scores.iter() {
                    logs.insert(&format!("val_{key}"), value);
                }
            }
            let learning_rate = self.compiled("fit")?.optimizer.learning_rate();
            logs.insert("learning_rate", f64::from(learning_rate));
            for c in callbacks.iter_mut() {
                c.on_epoch_end(epoch, self, &mut logs)?;
            }
            history.push_epoch(epoch, logs.iter())?;
            if self.stop_training {
                break;
            }
        }
        for c in callbacks.iter_mut() {
            c.on_train_end(self, &logs)?;
        }
        Ok(history)
    }

    /// One pass over the source; returns the epoch's running means.
    fn train_epoch(
        &mut self,
        epoch: usize,
        source: &mut dyn BatchSource,
        callbacks: &mut Callbacks<'_>,
        class_weight: &[f32],
    ) -> Result<Logs> {
        source.start_epoch(epoch)?;
        let compiled = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::NotCompiled { call: "fit".into() })?;
        compiled.metrics.iter_mut().for_each(|m| m.reset());
        let mut logs = Logs::new();
        let (mut loss_sum, mut samples) = (0.0_f64, 0_usize);
        let mut step = 0;
        while let Some(batch) = source.next_batch()? {
            for c in callbacks.iter_mut() {
                c.on_train_batch_begin(step, self, &logs)?;
            }
            for layer in self.layers.iter_mut() {
                layer.start_step(epoch, step);
            }
            let place = |e: Error| {
                e.relocated("x", "y", |i| {
                    source.sample_index(samples + i).unwrap_or(samples + i)
                })
            };
            let loss = self
                .train_step(batch.x.view(), batch.y.view(), class_weight)
                .map_err(place)?;
            if !loss.is_finite() {
                // A NaN or infinity among the inputs is the likeliest cause,
                // and the one a user can fix: name it rather than the loss.
                check_finite_view("x", &batch.x.view()).map_err(place)?;
            }
            let n = batch.x.shape()[0];
            source.recycle(batch);
            loss_sum += f64::from(loss) * n as f64;
            samples += n;
            self.write_logs(&mut logs, loss_sum / samples as f64);
            for c in callbacks.iter_mut() {
                c.on_train_batch_end(step, self, &logs)?;
            }
            if !loss.is_finite() && !self.stop_training {
                return Err(Error::NonFiniteLoss {
                    epoch: epoch + 1,
                    step: step + 1,
                    loss: f64::from(loss),
                });
            }
            if self.stop_training {
                break;
            }
            step += 1;
        }
        Ok(logs)
    }

    fn write_logs(&self, logs: &mut Logs, loss: f64) {
        logs.insert("loss", loss);
        if let Some(compiled) = &self.compiled {
            for metric in &compiled.metrics {
                logs.insert(metric.name(), metric.result());
            }
        }
    }

    /// Runs one optimizer step on one batch and returns its loss (with the
    /// weights before the step). The compiled metrics accumulate the batch.
    ///
    /// # Errors
    ///
    /// As [`fit`](Sequential::fit).
    pub fn train_on_batch<S, D, T, E>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<T, E>,
    ) -> Result<f32>
    where
        S: Data<Elem = f32>,
        D: Dimension,
        T: Data<Elem = f32>,
        E: Dimension,
    {
        let step = self.compiled("train_on_batch")?.optimizer.iterations();
        let step = usize::try_from(step).unwrap_or(usize::MAX);
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        check_pair(&x, &y)?;
        self.build_for(&x.shape()[1..], Some(x.shape()[0]))?;
        self.check_targets(y.view())?;
        let x = x.as_standard_layout();
        check_finite_view("x", &x.view())?;
        for layer in self.layers.iter_mut() {
            layer.start_step(usize::MAX, step);
        }
        self.train_step(x.view(), y, &[])
    }

    /// Forward pass, loss, backward pass and optimizer update for one batch.
    /// `class_weight` holds the weight of each class, by index (a class
    /// past its end weighs 1), or nothing, for no weighting.
    pub(crate) fn train_step(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
        class_weight: &[f32],
    ) -> Result<f32> {
        let compiled = self
            .compiled
            .as_mut()
            .ok_or_else(|| Error::NotCompiled { call: "fit".into() })?;
        let layers = &mut self.layers;
        let trainable = &self.trainable;
        let buffers = &mut self.buffers;
        let count = layers.len();
        buffers
            .outputs
            .resize_with(count, || ArrayD::zeros(ndarray::IxDyn(&[0])));
        // Layers below the first one with weights to train need no gradient,
        // and that one needs none for its input.
        let first_trainable = layers
            .iter()
            .zip(trainable)
            .position(|(l, &t)| t && l.param_count() > 0)
            .unwrap_or(count - 1);
        // Layers in front of it that only reshape (Flatten) view the batch
        // in their output shape rather than copy it; the pass starts after
        // them.
        let (mut x, mut start) = (x, 0);
        while start < first_trainable && x.is_standard_layout() {
            let Some(shape) = layers[start].reshaped(&x)? else {
                break;
            };
            let Ok(reshaped) = x.clone().into_shape_with_order(shape) else {
                let name = layers[start].name();
                return Err(Error::shape(name, "a shape of its input's size", x.shape()));
            };
            x = reshaped;
            start += 1;
        }
        for i in start..count {
            let (done, rest) = buffers.outputs.split_at_mut(i);
            let input = if i == start {
                x.view()
            } else {
                done[i - 1].view()
            };
            layers[i].forward(input.view(), &mut rest[0], true)?;
            layers[i].update_state(input, rest[0].view())?;
        }

        // With a softmax at the top and a cross-entropy over probabilities,
        // the gradient goes straight to the logits: exact for any logits.
        let output = buffers.outputs[count - 1].view();
        let fused = if layers[count - 1].ends_in_softmax() {
            match compiled
                .loss
                .softmax_logits_gradient(y.view(), output.view(), &mut buffers.grad)
            {
                Some(result) => {
                    result?;
                    true
                }
                None => false,
            }
        } else {
            false
        };
        let gradient = if fused { None } else { Some(&mut buffers.grad) };
        let mut loss = compiled.loss.compute(y.view(), output.view(), gradient)?;
        if !class_weight.is_empty() {
            // Keras' weighted `sum_over_batch_size`: each sample's loss and
            // gradient times its weight, over the number of samples. Every
            // row of the gradient comes from its own sample alone.
            let weights = &mut buffers.sample_weights;
            fill_sample_weights(weights, class_weight, &y);
            loss = weighted_loss(compiled.loss.as_ref(), &y, &output, weights)?;
            for (mut row, &w) in buffers.grad.axis_iter_mut(Axis(0)).zip(weights.iter()) {
                row.mapv_inplace(|g| g * w);
            }
        }
        // As Keras' `metrics` (not its `weighted_metrics`), the metrics
        // count every sample alike.
        for metric in compiled.metrics.iter_mut() {
            metric.update(y.view(), buffers.outputs[count - 1].view())?;
        }

        for i in (first_trainable..count).rev() {
            let input = if i == start {
                x.view()
            } else {
                buffers.outputs[i - 1].view()
            };
            let grad_input = if i == first_trainable {
                None
            } else {
                Some(&mut buffers.grad_input)
            };
            if i == count - 1 && fused {
                layers[i].backward_from_logits(input, buffers.grad.view(), grad_input)?;
            } else {
                let output = buffers.outputs[i].view();
                layers[i].backward(input, output, buffers.grad.view(), grad_input)?;
            }
            std::mem::swap(&mut buffers.grad, &mut buffers.grad_input);
        }

        let optimizer = &mut compiled.optimizer;
        optimizer.begin_step();
        // Slots count every layer's weights, frozen or not, so that the
        // optimizer's state stays with its weights when a layer is frozen or
        // unfrozen between steps. Frozen layers below `first_trainable`
        // computed no gradient this step, and none is read.
        if optimizer.needs_all_gradients() {
            // `global_clipnorm` scales every gradient by one factor, which
            // needs the norm of all of them before the first update.
            let mut slot = 0;
            for (layer, &train) in layers.iter_mut().zip(trainable) {
                layer.visit_parameters(&mut |_, gradient| {
                    if train {
                        optimizer.observe_gradient(slot, gradient);
                    }
                    slot += 1;
                });
            }
        }
        let mut slot = 0;
        for (layer, &train) in layers.iter_mut().zip(trainable) {
            layer.visit_parameters(&mut |value, gradient| {
                if train {
                    optimizer.update(slot, value, gradient);
                }
                slot += 1;
            });
        }
        Ok(loss)
    }

    /// Scores the model on `x` and `y`: the mean loss over all samples and
    /// each compiled metric, keyed `loss`, `accuracy`, ...
    ///
    /// # Errors
    ///
    /// [`Error::NotCompiled`] before `compile`, and errors for data that does
    /// not fit the model, as [`fit`](Sequential::fit).
    pub fn evaluate<S, D, T, E>(&mut self, x: &ArrayBase<S, D>, y: &ArrayBase<T, E>) -> Result<Logs>
    where
        S: Data<Elem = f32>,
        D: Dimension,
        T: Data<Elem = f32>,
        E: Dimension,
    {
        self.evaluate_views(x.view().into_dyn(), y.view().into_dyn())
    }

    pub(crate) fn evaluate_views(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
    ) -> Result<Logs> {
        self.compiled("evaluate")?;
        check_pair(&x, &y)?;
        let predictions = self.predict_view(x)?;
        let compiled = self.compiled("evaluate")?;
        let mut logs = Logs::new();
        let loss = compiled.loss.compute(y.view(), predictions.view(), None)?;
        logs.insert("loss", f64::from(loss));
        for metric in &compiled.metrics {
            let mut fresh = metric.boxed_clone();
            fresh.update(y.view(), predictions.view())?;
            logs.insert(metric.name(), fresh.result());
        }
        Ok(logs)
    }

    /// The model's outputs for `x`, computed in pieces of 512 samples spread
    /// over the threads of rayon's pool. The pieces do not depend on the
    /// number of threads, and neither do the results, to the bit.
    ///
    /// # Errors
    ///
    /// [`Error::EmptyData`] for no samples, [`Error::NotBuilt`] when the
    /// model has no input shape yet and cannot take one from `x`,
    /// [`Error::ShapeMismatch`] for samples of the wrong shape, and
    /// [`Error::NonFiniteInput`] when an output is not finite because an
    /// input is NaN or infinite.
    pub fn predict<S, D>(&mut self, x: &ArrayBase<S, D>) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        self.predict_view(x.view().into_dyn())
    }

    fn predict_view(&mut self, x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
        if x.ndim() == 0 || x.shape()[0] == 0 {
            return Err(Error::EmptyData { what: "x".into() });
        }
        self.build_for(&x.shape()[1..], Some(x.shape()[0]))?;
        let x = x.as_standard_layout();
        let layers: &[Box<dyn Layer>] = &self.layers;
        let pieces: Vec<ArrayViewD<'_, f32>> = x.axis_chunks_iter(Axis(0), PREDICT_CHUNK).collect();
        let outputs = pieces
            .into_par_iter()
            .enumerate()
            .map(|(i, piece)| {
                let output = forward_chain(layers, piece.view())?;
                // Inputs are looked at only when an output is not finite,
                // so that a NaN pixel is named rather than passed on.
                if output.iter().any(|v| !v.is_finite()) {
                    check_finite_view("x", &piece)
                        .map_err(|e| e.relocated("x", "y", |row| i * PREDICT_CHUNK + row))?;
                }
                Ok(output)
            })
            .collect::<Result<Vec<_>>>()?;
        let views: Vec<ArrayViewD<'_, f32>> = outputs.iter().map(|o| o.view()).collect();
        Ok(ndarray::concatenate(Axis(0), &views).expect("pieces share their trailing shape"))
    }
}

/// [`Error::check_finite`] on a view of samples, batch axis first.
fn check_finite_view(data: &str, x: &ArrayViewD<'_, f32>) -> Result<()> {
    let sample_shape = x.shape().get(1..).unwrap_or(&[]);
    match x.as_slice() {
        Some(values) => Error::check_finite(data, values, sample_shape),
        None => {
            let values: Vec<f32> = x.iter().copied().collect();
            Error::check_finite(data, &values, sample_shape)
        }
    }
}

/// Inference through every layer, with buffers of its own.
fn forward_chain(layers: &[Box<dyn Layer>], x: ArrayViewD<'_, f32>) -> Result<ArrayD<f32>> {
    let mut current = ArrayD::zeros(ndarray::IxDyn(&[0]));
    let mut next = ArrayD::zeros(ndarray::IxDyn(&[0]));
    for (i, layer) in layers.iter().enumerate() {
        if i == 0 {
            layer.forward(x.view(), &mut next, false)?;
        } else {
            layer.forward(current.view(), &mut next, false)?;
        }
        std::mem::swap(&mut current, &mut next);
    }
    // The buffers keep the memory of the largest array they held (a
    // piece's flattened input, say); the output is kept until the pieces
    // are joined, so it gets memory of its own size.
    Ok(current.to_owned())
}

fn check_options(options: &FitOptions<'_>) -> Result<()> {
    if options.batch_size == 0 {
        return Err(Error::invalid("batch_size", 0, "expected at least 1"));
    }
    if options.initial_epoch > options.epochs {
        return Err(Error::invalid(
            "initial_epoch",
            options.initial_epoch,
            format!("expected at most `epochs` ({})", options.epochs),
        ));
    }
    let mut classes = std::collections::BTreeSet::new();
    for &(class, weight) in &options.class_weight {
        if !(weight.is_finite() && weight >= 0.0) {
            return Err(Error::invalid(
                "class_weight",
                format!("{class}: {weight}"),
                "expected a finite weight, 0 or more",
            ));
        }
        if !classes.insert(class) {
            return Err(Error::invalid(
                "class_weight",
                class,
                "each class is given one weight, and this one came twice",
            ));
        }
    }
    let split = options.validation_split;
    if !(0.0..1.0).contains(&split) {
        return Err(Error::invalid(
            "validation_split",
            split,
            "expected a fraction in [0, 1)",
        ));
    }
    if split > 0.0 && options.validation_data.is_some() {
        return Err(Error::invalid(
            "validation_split",
            split,
            "give either `validation_split` or `validation_data`, not both",
        ));
    }
    Ok(())
}

/// The weight of each class, by index, from `(class, weight)` pairs: 1 for
/// a class not given; empty when none is given.
fn class_weight_table(pairs: &[(usize, f32)]) -> Vec<f32> {
    let Some(last) = pairs.iter().map(|&(class, _)| class).max() else {
        return Vec::new();
    };
    let mut table = vec![1.0; last + 1];
    for &(class, weight) in pairs {
        table[class] = weight;
    }
    table
}

/// Each sample's weight: that of its class, which is its label, or the
/// largest entry of a one-hot row. A label that is not a class index
/// weighs 1; the loss reports it.
fn fill_sample_weights(weights: &mut Vec<f32>, table: &[f32], y: &ArrayViewD<'_, f32>) {
    let batch = y.shape().first().copied().unwrap_or(0);
    let width = y.len().checked_div(batch).unwrap_or(0);
    weights.clear();
    weights.extend(y.outer_iter().map(|row| {
        let class = if width > 1 {
            Some(argmax(row.iter().copied()))
        } else {
            row.iter()
                .next()
                .filter(|v| v.is_finite() && **v >= 0.0)
                .map(|v| v.round() as usize)
        };
        class.and_then(|c| table.get(c)).copied().unwrap_or(1.0)
    }));
}

/// The sum of each sample's loss times its weight, over the number of
/// samples.
fn weighted_loss(
    loss: &dyn Loss,
    y: &ArrayViewD<'_, f32>,
    output: &ArrayViewD<'_, f32>,
    weights: &[f32],
) -> Result<f32> {
    let mut sum = 0.0_f64;
    for (i, &w) in weights.iter().enumerate() {
        let one = Slice::from(i..i + 1);
        let value = loss.compute(
            y.slice_axis(Axis(0), one),
            output.slice_axis(Axis(0), one),
            None,
        )?;
        sum += f64::from(w) * f64::from(value);
    }
    Ok((sum / weights.len().max(1) as f64) as f32)
}

/// The training source and the validation arrays, with `validation_split`
/// taken from the end of the arrays before any shuffling.
fn split_data<'a>(
    data: FitData<'a>,
    options: &FitOptions<'a>,
) -> Result<(Box<dyn BatchSource + 'a>, Option<Validation<'a>>)> {
    let mut validation = options.validation_data.clone().map(|(x, y)| Validation {
        x,
        y,
        names: ("validation_data", "validation_data"),
        offset: 0,
    });
    if let Some(v) = &validation {
        check_pair(&v.x, &v.y).map_err(|e| match e {
            Error::EmptyData { .. } => Error::EmptyData {
                what: "validation_data".into(),
            },
            Error::ShapeMismatch { got, .. } => Error::ShapeMismatch {
                layer: "validation_data".into(),
                expected: format!("({}, ...) targets, one per input", v.x.shape()[0]),
                got,
            },
            other => other,
        })?;
        check_finite_view("validation_data", &v.x)?;
    }
    let source: Box<dyn BatchSource + 'a> = match data {
        FitData::Source(source) => {
            if options.validation_split > 0.0 {
                return Err(Error::invalid(
                    "validation_split",
                    options.validation_split,
                    "only arrays can be split; give `validation_data` with a generator",
                ));
            }
            if options.array_options_set {
                return Err(Error::invalid(
                    "batch_size, shuffle or seed",
                    "set in FitOptions",
                    "a generator brings its own batch size, order and seed: set them on \
                     the generator (e.g. `flow(&x, &y, 32)?.seed(42)`), not in FitOptions",
                ));
            }
            if source.is_empty() {
                return Err(Error::EmptyData { what: "x".into() });
            }
            source
        }
        FitData::Arrays(x, y) => {
            check_pair(&x, &y)?;
            check_finite_view("x", &x)?;
            let n = x.shape()[0];
            let split = options.validation_split;
            let (x, y) = if split > 0.0 {
                let keep = (n as f64 * (1.0 - split)).floor() as usize;
                if keep == 0 || keep == n {
                    return Err(Error::invalid(
                        "validation_split",
                        split,
                        format!(
                            "{n} samples leave {keep} for training and {} for validation",
                            n - keep
                        ),
                    ));
                }
                let (tx, vx) = x.split_at(Axis(0), keep);
                let (ty, vy) = y.split_at(Axis(0), keep);
                validation = Some(Validation {
                    x: vx,
                    y: vy,
                    names: ("x", "y"),
                    offset: keep,
                });
                (tx, ty)
            } else {
                (x, y)
            };
            Box::new(
                ArraySource::new(x, y, options.batch_size)?
                    .shuffle(options.shuffle)
                    .seed(options.seed),
            )
        }
    };
    Ok((source, validation))
}
