//! Stochastic gradient descent, with momentum and Nesterov momentum.

use serde_json::json;

use super::base::{base_options, BaseOptions};
use super::{fraction, slot_mut, Optimizer, OptimizerState};
use crate::{Error, Result};

/// SGD with optional momentum, as Keras 3 computes it:
///
/// ```text
/// plain:     w = w - learning_rate * g
/// momentum:  velocity = momentum * velocity - learning_rate * g
///            w = w + velocity
/// nesterov:  w = w + momentum * velocity - learning_rate * g
///            (with the velocity just updated)
/// ```
///
/// It also takes the options every optimizer shares with Keras:
/// [`weight_decay`](Sgd::weight_decay), [`clipnorm`](Sgd::clipnorm),
/// [`clipvalue`](Sgd::clipvalue) and
/// [`global_clipnorm`](Sgd::global_clipnorm).
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{Optimizer, Sgd};
///
/// let mut sgd = Sgd::new().learning_rate(0.1);
/// let mut w = [1.0_f32];
/// sgd.begin_step();
/// sgd.update(0, &mut w, &[2.0]);
/// assert!((w[0] - 0.8).abs() < 1e-7);
/// ```
#[derive(Debug, Clone)]
pub struct Sgd {
    learning_rate: f32,
    momentum: f32,
    nesterov: bool,
    base: BaseOptions,
    iterations: u64,
    velocity: Vec<Vec<f32>>,
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new()
    }
}

impl Sgd {
    /// SGD with Keras' defaults: learning rate 0.01, no momentum, no weight
    /// decay or clipping.
    pub fn new() -> Self {
        Sgd {
            learning_rate: 0.01,
            momentum: 0.0,
            nesterov: false,
            base: BaseOptions::default(),
            iterations: 0,
            velocity: Vec::new(),
        }
    }

    /// The learning rate (default 0.01).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// The momentum, in `[0, 1)` (default 0, none).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Whether to use Nesterov momentum (default false).
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }

    /// Checks the hyperparameters; `compile` calls this.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a learning rate that is negative or not
    /// finite (0 is allowed, as in Keras), a momentum outside `[0, 1)`, a negative weight decay, a
    /// clipping bound that is not positive, or two kinds of clipping at
    /// once.
    pub fn validate(&self) -> Result<()> {
        super::learning_rate(self.learning_rate)?;
        fraction("momentum", self.momentum)?;
        self.base.validate()
    }
}

base_options!(Sgd, "none");

impl Optimizer for Sgd {
    fn name(&self) -> &str {
        "sgd"
    }

    fn learning_rate(&self) -> f32 {
        self.learning_rate
    }

    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.learning_rate = learning_rate;
    }

    fn begin_step(&mut self) {
        self.base.begin_step();
        self.iterations += 1;
    }

    fn needs_all_gradients(&self) -> bool {
        self.base.needs_all_gradients()
    }

    fn observe_gradient(&mut self, _slot: usize, gradient: &[f32]) {
        self.base.observe(gradient);
    }

    fn update(&mut self, slot: usize, value: &mut [f32], gradient: &[f32]) {
        let lr = self.learning_rate;
        let gradient = self.base.apply(value, gradient, lr);
        if self.momentum == 0.0 {
            for (w, &g) in value.iter_mut().zip(gradient) {
                *w -= lr * g;
            }
            return;
        }
        let velocity = slot_mut(&mut self.velocity, slot, value.len());
        let momentum = self.momentum;
        for ((w, &g), u) in value.iter_mut().zip(gradient).zip(velocity) {
            *u = momentum * *u - lr * g;
            if self.nesterov {
                *w += momentum * *u - lr * g;
            } else {
                *w += *u;
            }
        }
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn state(&self) -> OptimizerState {
        OptimizerState {
            iterations: self.iterations,
            slots: self
                .velocity
                .iter()
                .enumerate()
                .map(|(i, u)| ("momentum".to_string(), i, u.clone()))
                .collect(),
        }
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut velocity: Vec<Vec<f32>> = Vec::new();
        for (name, slot, values) in &state.slots {
            if name != "momentum" {
                return Err(Error::invalid(
                    "optimizer state",
                    name,
                    "SGD keeps only `momentum` slots",
                ));
            }
            *slot_mut(&mut velocity, *slot, values.len()) = values.clone();
        }
        self.velocity = velocity;
        self.iterations = state.iterations;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        Sgd::validate(self)
    }

    fn config(&self) -> serde_json::Value {
        let mut config = json!({
            "name": "sgd",
            "learning_rate": self.learning_rate,
            "momentum": self.momentum,
            "nesterov": self.nesterov,
        });
        self.base.write_config(&mut config);
        config
    }
}
