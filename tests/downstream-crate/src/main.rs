//! kerust used from another crate, with its default features off: a layer
//! and a callback defined here implement kerust's traits, a model that uses
//! them trains on a small synthetic problem, the layer's gradient is checked,
//! and the model is saved and loaded again through a `LayerRegistry`.
//!
//! `cargo test --test downstream` in the kerust repository builds and runs
//! this program; it prints `downstream ok: ...` as its last line and exits
//! with status 0, or prints what went wrong and exits with status 1.

use std::error::Error as StdError;
use std::path::PathBuf;

use kerust::error::format_batch_shape;
use kerust::gradcheck::check_layer;
use kerust::layers::{resize, Layer};
use kerust::prelude::*;
use kerust::random::{stream, Purpose};
use kerust::saving::{load_model, load_model_with, LayerRegistry};
use ndarray::{Array1, Array2, ArrayD, ArrayViewD, Zip};
use rand::RngCore;
use serde_json::{json, Value};

type Outcome<T> = std::result::Result<T, Box<dyn StdError>>;

/// Exponential linear unit, Keras' `ELU`: `x` where `x > 0`,
/// `alpha * (exp(x) - 1)` elsewhere.
#[derive(Debug, Clone)]
struct Elu {
    name: String,
    alpha: f32,
    input_shape: Option<Vec<usize>>,
}

impl Elu {
    fn new(alpha: f32) -> Self {
        Elu {
            name: String::new(),
            alpha,
            input_shape: None,
        }
    }

    /// The inverse of `config`: what the registry calls when loading.
    fn from_config(config: &Value) -> kerust::Result<Self> {
        let alpha = config["alpha"]
            .as_f64()
            .ok_or_else(|| Error::invalid("alpha", &config["alpha"], "expected a number"))?;
        let mut layer = Elu::new(alpha as f32);
        layer.name = config["name"].as_str().unwrap_or_default().to_string();
        Ok(layer)
    }

    fn check(&self, input: &ArrayViewD<'_, f32>) -> kerust::Result<()> {
        let Some(expected) = &self.input_shape else {
            return Err(Error::NotBuilt {
                layer: self.name.clone(),
            });
        };
        if input.ndim() == 0 || &input.shape()[1..] != expected.as_slice() {
            return Err(Error::shape(
                &self.name,
                format_batch_shape(expected),
                input.shape(),
            ));
        }
        Ok(())
    }
}

impl Layer for Elu {
    fn class_name(&self) -> &str {
        "ELU"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn build(
        &mut self,
        input_shape: &[usize],
        _rng: &mut dyn RngCore,
    ) -> kerust::Result<Vec<usize>> {
        if !(self.alpha.is_finite() && self.alpha >= 0.0) {
            return Err(Error::invalid(
                "alpha",
                self.alpha,
                "expected a finite number >= 0",
            ));
        }
        self.input_shape = Some(input_shape.to_vec());
        Ok(input_shape.to_vec())
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _training: bool,
    ) -> kerust::Result<()> {
        self.check(&input)?;
        resize(output, input.shape());
        let alpha = self.alpha;
        Zip::from(output)
            .and(&input)
            .for_each(|y, &x| *y = if x > 0.0 { x } else { alpha * x.exp_m1() });
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _output: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> kerust::Result<()> {
        self.check(&input)?;
        if grad_output.shape() != input.shape() {
            return Err(Error::shape(
                &self.name,
                format!("{:?}", input.shape()),
                grad_output.shape(),
            ));
        }
        if let Some(grad_input) = grad_input {
            resize(grad_input, input.shape());
            let alpha = self.alpha;
            Zip::from(grad_input)
                .and(&input)
                .and(&grad_output)
                .for_each(|dx, &x, &dy| *dx = if x > 0.0 { dy } else { alpha * x.exp() * dy });
        }
        Ok(())
    }

    fn config(&self) -> Value {
        json!({ "name": self.name, "alpha": self.alpha })
    }
}

/// Keeps the loss of every epoch, and counts the training steps.
#[derive(Debug, Default)]
struct LossRecorder {
    losses: Vec<f64>,
    steps: usize,
}

impl Callback for LossRecorder {
    fn on_train_batch_end(
        &mut self,
        _step: usize,
        _model: &mut Sequential,
        _logs: &Logs,
    ) -> kerust::Result<()> {
        self.steps += 1;
        Ok(())
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        _model: &mut Sequential,
        logs: &mut Logs,
    ) -> kerust::Result<()> {
        let loss = logs.get("loss").ok_or_else(|| Error::MissingMetric {
            callback: "LossRecorder".to_string(),
            key: "loss".to_string(),
            available: logs.keys().collect::<Vec<_>>().join(", "),
        })?;
        self.losses.push(loss);
        logs.insert("epoch_from_one", (epoch + 1) as f64);
        Ok(())
    }
}

/// Points of the square [-2, 2]², labelled by whether they lie inside the
/// circle of radius sqrt(2): a problem no linear model solves.
fn circle(samples: usize) -> (Array2<f32>, Array1<f32>) {
    let x = Array2::from_shape_fn((samples, 2), |(i, j)| {
        ((i * (7 + 4 * j) + 3 * j) % 41) as f32 / 10.0 - 2.0
    });
    let y = Array1::from_shape_fn(samples, |i| {
        f32::from(x[[i, 0]].powi(2) + x[[i, 1]].powi(2) < 2.0)
    });
    (x, y)
}

fn ensure(condition: bool, what: impl FnOnce() -> String) -> Outcome<()> {
    if condition {
        Ok(())
    } else {
        Err(what().into())
    }
}

fn main() -> Outcome<()> {
    // The layer's backward pass against central differences of its forward.
    let mut probe = Elu::new(0.5);
    probe.build(&[5], &mut stream(0, Purpose::Init, 0, 0))?;
    let inputs = Array2::from_shape_fn((3, 5), |(i, j)| (i * 5 + j) as f32 * 0.4 - 2.9);
    let gradient = check_layer(&mut probe, inputs.into_dyn().view(), 1e-2)?;
    ensure(gradient.max_error() < 1e-3, || {
        format!("ELU gradient check failed: {gradient:?}")
    })?;
    println!("gradient check: largest error {:.2e}", gradient.max_error());

    // Training with the layer and the callback.
    let (x, y) = circle(200);
    let mut model = Sequential::new()
        .input_shape([2])
        .seed(3)
        .add(Dense::new(32))
        .add(Elu::new(1.0))
        .add(Dense::new(2).activation(Activation::Softmax));
    model.compile(
        Adam::new().learning_rate(0.02),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )?;
    let mut recorder = LossRecorder::default();
    let epochs = 30;
    let options = FitOptions::new()
        .epochs(epochs)
        .batch_size(32)
        .seed(3)
        .verbose(Verbosity::Silent)
        .callback(&mut recorder);
    let history = model.fit((&x, &y), options)?;
    let accuracy = history.last("accuracy").unwrap_or(0.0);
    ensure(recorder.losses.len() == epochs, || {
        format!(
            "the callback saw {} epochs of {epochs}",
            recorder.losses.len()
        )
    })?;
    ensure(recorder.steps == epochs * 7, || {
        format!(
            "the callback saw {} steps, not {}",
            recorder.steps,
            epochs * 7
        )
    })?;
    ensure(
        history.get("epoch_from_one").and_then(|v| v.last()) == Some(&30.0),
        || "the callback's entry is missing from the history".to_string(),
    )?;
    ensure(
        recorder.losses[epochs - 1] < recorder.losses[0] / 2.0,
        || format!("the loss did not halve: {:?}", recorder.losses),
    )?;
    ensure(accuracy > 0.9, || format!("training accuracy {accuracy}"))?;
    println!(
        "trained: loss {:.4} -> {:.4}, accuracy {accuracy:.4}",
        recorder.losses[0],
        recorder.losses[epochs - 1]
    );

    // Saving, and loading with and without the layer registered.
    let path: PathBuf = std::env::temp_dir().join(format!(
        "kerust-downstream-{}.safetensors",
        std::process::id()
    ));
    model.save(&path)?;
    let refused = load_model(&path);
    let registry = LayerRegistry::with_builtins()
        .register("ELU", |config| Ok(Box::new(Elu::from_config(config)?)));
    let loaded = load_model_with(&path, &registry);
    std::fs::remove_file(&path).ok();

    let message = match refused {
        Ok(_) => return Err("a model with an unregistered layer was loaded".into()),
        Err(error) => error.to_string(),
    };
    ensure(message.contains("\"ELU\""), || {
        format!("the error does not name the layer: {message}")
    })?;
    let mut loaded = loaded?;
    ensure(
        loaded.layers()[1].config() == model.layers()[1].config(),
        || "the reloaded layer has another config".to_string(),
    )?;
    let (expected, reloaded) = (model.predict(&x)?, loaded.predict(&x)?);
    let identical = expected
        .iter()
        .zip(reloaded.iter())
        .all(|(a, b)| a.to_bits() == b.to_bits());
    ensure(identical && expected.shape() == reloaded.shape(), || {
        "the reloaded model predicts otherwise".to_string()
    })?;
    println!(
        "reloaded: {} predictions identical to the bit",
        expected.len()
    );

    println!("downstream ok: ELU and LossRecorder defined outside kerust");
    Ok(())
}
