//! The training loop, evaluation and prediction of [`Sequential`].

use ndarray::{ArrayBase, ArrayD, ArrayViewD, Axis, Data, Dimension, IxDyn, Slice};
use rayon::prelude::*;

use super::options::{
    EvaluateOptions, FitData, FitOptions, IntoFitData, PredictOptions, Verbosity,
};
use super::sequential::Sequential;
use super::source::{check_pair, ArraySource, BatchSource};
use super::History;
use crate::callbacks::{Callback, Logs, ProgbarLogger, TrainParams};
use crate::error::{format_batch_shape, format_shape};
use crate::layers::Layer;
use crate::losses::{argmax, Loss};
use crate::metrics::Metric;
use crate::{Error, Result};

/// Rows per piece of [`Sequential::predict`], which has no options.
const PREDICT_CHUNK: usize = 512;

/// Rows that inference computes at least between two looks at its
/// progress: batches are spread over rayon's threads this many rows at a
/// time (and at least four batches per thread).
const WAVE_ROWS: usize = 4096;

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
    /// The weight of each validation sample, checked.
    sample_weight: Option<Vec<f32>>,
}

impl Sequential {
    /// Trains the model for `options.epochs` epochs on arrays `(&x, &y)` or
    /// on a [`BatchSource`] such as the augmenter's flow, and returns the
    /// figures of each epoch.
    ///
    /// The training figures of an epoch are the running means over its
    /// batches, as Keras shows them; validation figures come from scoring the
    /// validation data after the epoch, in batches of `batch_size`.
    ///
    /// # Errors
    ///
    /// [`Error::NotCompiled`] before `compile`; [`Error::EmptyData`],
    /// [`Error::ShapeMismatch`] and [`Error::LabelOutOfRange`] for data that
    /// does not fit the model (the targets of arrays, of a flow and of the
    /// validation data are checked with
    /// [`Loss::check_targets`](crate::losses::Loss::check_targets) before
    /// the first step); [`Error::ShapeMismatch`] for sample weights that
    /// are not one per sample; [`Error::InvalidArgument`] for bad options,
    /// negative or non-finite sample weights among them;
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
        let Split {
            mut source,
            validation,
            sample_weight,
        } = split_data(data.into_fit_data(), &options)?;
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
        let weights = Weights {
            class: class_weight_table(&options.class_weight),
            samples: sample_weight,
        };
        self.run_epochs(
            source.as_mut(),
            validation,
            &weights,
            &options,
            &mut callbacks,
        )
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
        weights: &Weights,
        options: &FitOptions<'_>,
        callbacks: &mut Callbacks<'_>,
    ) -> Result<History> {
        self.stop_training = false;
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
            logs = self.train_epoch(epoch, source, callbacks, weights)?;
            if let Some(v) = &validation {
                // Scored in batches of `batch_size`, silently, as Keras
                // validates.
                let ((inputs, labels), offset) = (v.names, v.offset);
                let scores = self
                    .evaluate_views(
                        v.x.view(),
                        v.y.view(),
                        v.sample_weight.as_deref(),
                        options.batch_size,
                        None,
                    )
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
        weights: &Weights,
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
        // The weights of the batch's samples, found by their indices in the
        // data: they move with their samples when these are shuffled.
        let mut batch_weights = Vec::new();
        while let Some(batch) = source.next_batch()? {
            let n = batch.x.shape()[0];
            let sample_weight = match &weights.samples {
                Some(all) => {
                    batch_weights.clear();
                    batch_weights.extend((0..n).map(|i| {
                        let position = samples + i;
                        all[source.sample_index(position).unwrap_or(position)]
                    }));
                    Some(batch_weights.as_slice())
                }
                None => None,
            };
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
                .train_step(
                    batch.x.view(),
                    batch.y.view(),
                    &weights.class,
                    sample_weight,
                )
                .map_err(place)?;
            if !loss.is_finite() {
                // A NaN or infinity among the inputs is the likeliest cause,
                // and the one a user can fix: name it rather than the loss.
                check_finite_view("x", &batch.x.view()).map_err(place)?;
            }
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
        self.train_step(x.view(), y, &[], None)
    }

    /// Forward pass, loss, backward pass and optimizer update for one batch.
    /// `class_weight` holds the weight of each class, by index (a class
    /// past its end weighs 1), or nothing; `sample_weight` the weight of
    /// each sample of the batch, or nothing. A sample weighs the product.
    pub(crate) fn train_step(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
        class_weight: &[f32],
        sample_weight: Option<&[f32]>,
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
        if !class_weight.is_empty() || sample_weight.is_some() {
            // Keras' weighted `sum_over_batch_size`: each sample's loss and
            // gradient times its weight, over the number of samples. Every
            // row of the gradient comes from its own sample alone.
            let weights = &mut buffers.sample_weights;
            fill_sample_weights(weights, class_weight, sample_weight, &y);
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
    /// each compiled metric, keyed `loss`, `accuracy`, ..., silently, in
    /// batches of 32. The same as [`evaluate_with`](Self::evaluate_with)
    /// with [`EvaluateOptions::new`] made silent.
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
        let options = EvaluateOptions::new().verbose(Verbosity::Silent);
        self.evaluate_with(x, y, &options)
    }

    /// Scores the model on `x` and `y` with Keras' options of `evaluate`:
    /// `batch_size`, `verbose` and `sample_weight` (see
    /// [`EvaluateOptions`]). Returns the loss and each compiled metric,
    /// keyed `loss`, `accuracy`, ...
    ///
    /// As in Keras, the loss is the mean of the batches' losses weighted by
    /// their sizes (each batch's loss is the sum of its samples' losses,
    /// times their weights when given, over its number of samples), which
    /// is the mean over all samples up to rounding; the metrics count
    /// every sample alike. The batches are spread over rayon's threads,
    /// and the figures do not depend on the number of threads.
    ///
    /// # Errors
    ///
    /// [`Error::NotCompiled`] before `compile`; errors for data that does
    /// not fit the model, as [`fit`](Sequential::fit);
    /// [`Error::InvalidArgument`] for a `batch_size` of 0 and for a
    /// negative or non-finite sample weight, and [`Error::ShapeMismatch`]
    /// for sample weights that are not one per sample (both naming
    /// `sample_weight`).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    /// use ndarray::array;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let x = array![[-2.0_f32], [-1.0], [1.0], [2.0], [3.0]];
    /// let y = array![0.0_f32, 0.0, 1.0, 1.0, 1.0];
    /// let mut model = Sequential::new().seed(1).add(Dense::new(2).activation(Activation::Softmax));
    /// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
    ///
    /// // Batches of 2, 2 and 1; the first sample does not count.
    /// let weights = array![0.0_f32, 1.0, 1.0, 1.0, 1.0];
    /// let options = EvaluateOptions::new()
    ///     .batch_size(2)
    ///     .sample_weight(&weights)
    ///     .verbose(Verbosity::Silent);
    /// let weighted = model.evaluate_with(&x, &y, &options)?;
    ///
    /// // The sum of the four losses over five samples.
    /// let rest = model.evaluate(&x.slice(ndarray::s![1.., ..]), &y.slice(ndarray::s![1..]))?;
    /// let expected = rest.get("loss").unwrap() * 4.0 / 5.0;
    /// assert!((weighted.get("loss").unwrap() - expected).abs() < 1e-6);
    /// # Ok(())
    /// # }
    /// ```
    pub fn evaluate_with<S, D, T, E>(
        &mut self,
        x: &ArrayBase<S, D>,
        y: &ArrayBase<T, E>,
        options: &EvaluateOptions<'_>,
    ) -> Result<Logs>
    where
        S: Data<Elem = f32>,
        D: Dimension,
        T: Data<Elem = f32>,
        E: Dimension,
    {
        let (x, y) = (x.view().into_dyn(), y.view().into_dyn());
        self.compiled("evaluate")?;
        check_batch_size(options.batch_size)?;
        check_pair(&x, &y)?;
        let weights = match &options.sample_weight {
            Some(w) => Some(checked_sample_weight(
                "sample_weight",
                "x",
                w,
                x.shape()[0],
            )?),
            None => None,
        };
        let mut progress = ProgbarLogger::new(options.verbose);
        self.evaluate_views(
            x,
            y,
            weights.as_deref(),
            options.batch_size,
            Some(&mut progress),
        )
    }

    /// Scores `x` and `y` in batches of `batch_size` with the checked
    /// weights of their samples, showing the batches on `progress`.
    pub(crate) fn evaluate_views(
        &mut self,
        x: ArrayViewD<'_, f32>,
        y: ArrayViewD<'_, f32>,
        sample_weight: Option<&[f32]>,
        batch_size: usize,
        mut progress: Option<&mut ProgbarLogger>,
    ) -> Result<Logs> {
        self.compiled("evaluate")?;
        check_pair(&x, &y)?;
        self.build_for(&x.shape()[1..], Some(x.shape()[0]))?;
        // A bad label is named by its index in `y` before any batch runs.
        self.check_targets(y.view())?;
        let x = x.as_standard_layout();
        let compiled = self.compiled("evaluate")?;
        let loss = compiled.loss.as_ref();
        let mut metrics: Vec<Box<dyn Metric>> =
            compiled.metrics.iter().map(|m| m.boxed_clone()).collect();
        let steps = x.shape()[0].div_ceil(batch_size);
        if let Some(p) = progress.as_deref_mut() {
            p.begin_pass(steps);
        }
        let (mut loss_sum, mut seen) = (0.0_f64, 0_usize);
        let mut logs = Logs::new();
        infer_batches(&self.layers, x.view(), batch_size, |step, start, output| {
            let rows = output.shape()[0];
            let y = y.slice_axis(Axis(0), Slice::from(start..start + rows));
            let value = match sample_weight {
                Some(w) => weighted_loss(loss, &y, &output.view(), &w[start..start + rows]),
                None => loss.compute(y.view(), output.view(), None),
            }
            .map_err(|e| e.relocated("x", "y", |i| start + i))?;
            // Keras' `loss` tracker: each batch's loss weighted by its size.
            loss_sum += f64::from(value) * rows as f64;
            seen += rows;
            logs.insert("loss", loss_sum / seen as f64);
            for metric in metrics.iter_mut() {
                metric
                    .update(y.view(), output.view())
                    .map_err(|e| e.relocated("x", "y", |i| start + i))?;
                logs.insert(metric.name(), metric.result());
            }
            if let Some(p) = progress.as_deref_mut() {
                p.batch_end(step, &logs);
            }
            Ok(())
        })?;
        if let Some(p) = progress {
            p.end_pass(steps, &logs);
        }
        Ok(logs)
    }

    /// The model's outputs for `x`, computed silently in pieces of 512
    /// samples spread over the threads of rayon's pool: the same as
    /// [`predict_with`](Self::predict_with) with a batch size of 512, made
    /// silent. The results do not depend on the pieces, nor on the number
    /// of threads, to the bit.
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
        let options = PredictOptions::new()
            .batch_size(PREDICT_CHUNK)
            .verbose(Verbosity::Silent);
        self.predict_with(x, &options)
    }

    /// The model's outputs for `x` with Keras' options of `predict`:
    /// `batch_size` and `verbose` (see [`PredictOptions`]). The batches
    /// are spread over the threads of rayon's pool. Every built-in layer
    /// computes a sample's output from that sample alone at inference, so
    /// the results are the same to the bit for every batch size and number
    /// of threads.
    ///
    /// # Errors
    ///
    /// As [`predict`](Self::predict), and [`Error::InvalidArgument`] for a
    /// `batch_size` of 0.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    /// use ndarray::Array2;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let x = Array2::from_shape_fn((100, 3), |(i, j)| (i * 3 + j) as f32 / 50.0 - 3.0);
    /// let mut model = Sequential::new().seed(7).add(Dense::new(4).activation(Activation::Softmax));
    /// let options = PredictOptions::new().batch_size(16).verbose(Verbosity::Silent);
    /// let probs = model.predict_with(&x, &options)?;
    /// assert_eq!(probs.shape(), &[100, 4]);
    /// assert_eq!(probs, model.predict(&x)?);
    /// # Ok(())
    /// # }
    /// ```
    pub fn predict_with<S, D>(
        &mut self,
        x: &ArrayBase<S, D>,
        options: &PredictOptions,
    ) -> Result<ArrayD<f32>>
    where
        S: Data<Elem = f32>,
        D: Dimension,
    {
        check_batch_size(options.batch_size)?;
        let mut progress = ProgbarLogger::new(options.verbose);
        self.predict_views(x.view().into_dyn(), options.batch_size, &mut progress)
    }

    /// The outputs for `x` in batches of `batch_size`, showing the batches
    /// on `progress`.
    fn predict_views(
        &mut self,
        x: ArrayViewD<'_, f32>,
        batch_size: usize,
        progress: &mut ProgbarLogger,
    ) -> Result<ArrayD<f32>> {
        if x.ndim() == 0 || x.shape()[0] == 0 {
            return Err(Error::EmptyData { what: "x".into() });
        }
        self.build_for(&x.shape()[1..], Some(x.shape()[0]))?;
        let x = x.as_standard_layout();
        let steps = x.shape()[0].div_ceil(batch_size);
        progress.begin_pass(steps);
        let nothing = Logs::new();
        let mut outputs = Vec::with_capacity(steps);
        infer_batches(&self.layers, x.view(), batch_size, |step, _, output| {
            outputs.push(output);
            progress.batch_end(step, &nothing);
            Ok(())
        })?;
        progress.end_pass(steps, &nothing);
        let views: Vec<ArrayViewD<'_, f32>> = outputs.iter().map(|o| o.view()).collect();
        Ok(ndarray::concatenate(Axis(0), &views).expect("pieces share their trailing shape"))
    }
}

/// Inference on `x` (in standard layout) in batches of `batch_size`,
/// spread over rayon's threads: `each` receives every batch's outputs in
/// order, on the calling thread, with the batch's index and its first
/// sample's. The batches are fixed by `x` and `batch_size`, and each is
/// computed the same way wherever it runs.
fn infer_batches(
    layers: &[Box<dyn Layer>],
    x: ArrayViewD<'_, f32>,
    batch_size: usize,
    mut each: impl FnMut(usize, usize, ArrayD<f32>) -> Result<()>,
) -> Result<()> {
    let pieces: Vec<ArrayViewD<'_, f32>> = x.axis_chunks_iter(Axis(0), batch_size).collect();
    let per_wave = WAVE_ROWS
        .div_ceil(batch_size)
        .max(4 * rayon::current_num_threads());
    for (w, wave) in pieces.chunks(per_wave).enumerate() {
        let first = w * per_wave;
        let outputs: Vec<Result<ArrayD<f32>>> = wave
            .par_iter()
            .enumerate()
            .map(|(j, piece)| {
                let output = forward_chain(layers, piece.view())?;
                // Inputs are looked at only when an output is not finite,
                // so that a NaN pixel is named rather than passed on.
                if output.iter().any(|v| !v.is_finite()) {
                    let start = (first + j) * batch_size;
                    check_finite_view("x", piece)
                        .map_err(|e| e.relocated("x", "y", |row| start + row))?;
                }
                Ok(output)
            })
            .collect();
        // In order, so that the first failing batch is the one reported.
        for (j, output) in outputs.into_iter().enumerate() {
            let step = first + j;
            each(step, step * batch_size, output?)?;
        }
    }
    Ok(())
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

/// How `fit` weighs its training samples.
struct Weights {
    /// The weight of each class, by index; empty for none.
    class: Vec<f32>,
    /// The weight of each training sample, by its index in the data.
    samples: Option<Vec<f32>>,
}

fn check_batch_size(batch_size: usize) -> Result<()> {
    if batch_size == 0 {
        return Err(Error::invalid("batch_size", 0, "expected at least 1"));
    }
    Ok(())
}

/// The weights of the `n` samples of `data`, one each, shaped `(n,)` or
/// `(n, 1)`, finite and not negative; `name` is the option that gave them.
fn checked_sample_weight(
    name: &str,
    data: &str,
    w: &ArrayViewD<'_, f32>,
    n: usize,
) -> Result<Vec<f32>> {
    let shape = w.shape();
    let one_each = match shape {
        [len] => *len == n,
        [len, 1] => *len == n,
        _ => false,
    };
    if !one_each {
        return Err(Error::ShapeMismatch {
            layer: name.into(),
            expected: format!("({n},), one weight per sample of {data}"),
            got: format_shape(shape),
        });
    }
    let weights: Vec<f32> = w.iter().copied().collect();
    if let Some((index, weight)) = weights
        .iter()
        .enumerate()
        .find(|(_, w)| !(w.is_finite() && **w >= 0.0))
    {
        return Err(Error::invalid(
            name,
            format!("{weight} at sample {index}"),
            "expected a finite weight, 0 or more",
        ));
    }
    Ok(weights)
}

fn check_options(options: &FitOptions<'_>) -> Result<()> {
    check_batch_size(options.batch_size)?;
    if options.validation_sample_weight.is_some() && options.validation_data.is_none() {
        return Err(Error::invalid(
            "validation_sample_weight",
            "given without validation_data",
            "it weighs the samples of `validation_data`: give those too (with \
             `validation_split`, the held-out samples keep their `sample_weight`)",
        ));
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

/// Each sample's weight: its own weight in `samples` (1 when there are
/// none) times that of its class in `table`, which is its label, or the
/// largest entry of a one-hot row. A label that is not a class index
/// weighs 1 there; the loss reports it.
fn fill_sample_weights(
    weights: &mut Vec<f32>,
    table: &[f32],
    samples: Option<&[f32]>,
    y: &ArrayViewD<'_, f32>,
) {
    weights.clear();
    if let Some(samples) = samples {
        weights.extend_from_slice(samples);
    }
    if table.is_empty() {
        return;
    }
    let batch = y.shape().first().copied().unwrap_or(0);
    let width = y.len().checked_div(batch).unwrap_or(0);
    let classes = y.outer_iter().map(|row| {
        let class = if width > 1 {
            Some(argmax(row.iter().copied()))
        } else {
            row.iter()
                .next()
                .filter(|v| v.is_finite() && **v >= 0.0)
                .map(|v| v.round() as usize)
        };
        class.and_then(|c| table.get(c)).copied().unwrap_or(1.0)
    });
    if samples.is_some() {
        for (w, class) in weights.iter_mut().zip(classes) {
            *w *= class;
        }
    } else {
        weights.extend(classes);
    }
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
        let value = loss
            .compute(
                y.slice_axis(Axis(0), one),
                output.slice_axis(Axis(0), one),
                None,
            )
            .map_err(|e| e.relocated("x", "y", |_| i))?;
        sum += f64::from(w) * f64::from(value);
    }
    Ok((sum / weights.len().max(1) as f64) as f32)
}

/// What `fit` trains on and validates with.
struct Split<'a> {
    source: Box<dyn BatchSource + 'a>,
    validation: Option<Validation<'a>>,
    /// The weight of each training sample, by its index in the source.
    sample_weight: Option<Vec<f32>>,
}

/// The training source, the validation arrays and the training samples'
/// weights, with `validation_split` taken from the end of the arrays (and
/// of the weights) before any shuffling.
fn split_data<'a>(data: FitData<'a>, options: &FitOptions<'a>) -> Result<Split<'a>> {
    let mut validation = options.validation_data.clone().map(|(x, y)| Validation {
        x,
        y,
        names: ("validation_data", "validation_data"),
        offset: 0,
        sample_weight: None,
    });
    if let Some(v) = &mut validation {
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
        if let Some(w) = &options.validation_sample_weight {
            let n = v.x.shape()[0];
            v.sample_weight = Some(checked_sample_weight(
                "validation_sample_weight",
                "validation_data",
                w,
                n,
            )?);
        }
    }
    let mut sample_weight = None;
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
            if options.sample_weight.is_some() {
                return Err(Error::invalid(
                    "sample_weight",
                    "set with a generator",
                    "only arrays can be weighted sample by sample: give `fit` the \
                     arrays `(&x, &y)`, or weigh classes with `class_weight`",
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
            let mut weights = match &options.sample_weight {
                Some(w) => Some(checked_sample_weight("sample_weight", "x", w, n)?),
                None => None,
            };
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
                    sample_weight: weights.as_mut().map(|w| w.split_off(keep)),
                });
                (tx, ty)
            } else {
                (x, y)
            };
            sample_weight = weights;
            Box::new(
                ArraySource::new(x, y, options.batch_size)?
                    .shuffle(options.shuffle)
                    .seed(options.seed),
            )
        }
    };
    Ok(Split {
        source,
        validation,
        sample_weight,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::prelude::*;

    /// A writer whose bytes the test reads afterwards.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Shared {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn take(&self) -> String {
            String::from_utf8(std::mem::take(&mut *self.0.lock().unwrap())).unwrap()
        }
    }

    #[test]
    fn evaluate_and_predict_show_one_line_for_their_batches() {
        let x = ndarray::Array2::from_shape_fn((10, 2), |(i, j)| (i + 3 * j) as f32 / 10.0);
        let y = ndarray::Array1::from_shape_fn(10, |i| (i % 2) as f32);
        let mut model = Sequential::new()
            .input_shape([2])
            .add(Dense::new(2).activation(Activation::Softmax));
        model
            .compile(
                Sgd::new(),
                SparseCategoricalCrossentropy::new(),
                ["accuracy"],
            )
            .unwrap();
        let (x, y) = (x.into_dyn(), y.into_dyn());
        let out = Shared::default();
        let logger = |verbose| ProgbarLogger::with_writer(verbose, Box::new(out.clone()), false);

        // Batches of 4, 4 and 2: three steps, then the figures, and no
        // `Epoch` line. Keras' "auto" off a terminal shows the same line.
        for verbose in [Verbosity::EpochLines, Verbosity::Auto] {
            let mut progress = logger(verbose);
            let logs = model
                .evaluate_views(x.view(), y.view(), None, 4, Some(&mut progress))
                .unwrap();
            let text = out.take();
            assert_eq!(text.lines().count(), 1, "{text}");
            assert!(text.starts_with("3/3 - "), "{text}");
            assert!(text.ends_with(&format!("/step - {logs}\n")), "{text}");
            assert!(logs.get("loss").is_some() && logs.get("accuracy").is_some());

            let mut progress = logger(verbose);
            model.predict_views(x.view(), 3, &mut progress).unwrap();
            let text = out.take();
            assert!(text.starts_with("4/4 - "), "{text}");
            assert!(text.ends_with("/step\n"), "{text}");
        }

        let mut progress = logger(Verbosity::Silent);
        model
            .evaluate_views(x.view(), y.view(), None, 4, Some(&mut progress))
            .unwrap();
        model.predict_views(x.view(), 3, &mut progress).unwrap();
        assert_eq!(out.take(), "");
    }
}
