//! Adagrad: steps scaled by the sum of all squared gradients so far.

use serde_json::json;

use super::base::{base_options, BaseOptions};
use super::{positive, slot_mut_from, Optimizer, OptimizerState};
use crate::{Error, Result};

/// The name of Adagrad's per-weight array in a saved state.
const ACCUMULATOR: &str = "accumulator";

/// Adagrad (Duchi, Hazan and Singer), as Keras 3's `Adagrad` computes it in
/// float32.
///
/// For each weight `w` with gradient `g`, and an accumulator `a` that starts
/// at `initial_accumulator_value`:
///
/// ```text
/// a = a + g * g
/// w = w - learning_rate * g / sqrt(a + epsilon)
/// ```
///
/// `epsilon` is added under the square root, as Keras does. It also takes
/// the options every optimizer shares with Keras:
/// [`weight_decay`](Adagrad::weight_decay), [`clipnorm`](Adagrad::clipnorm),
/// [`clipvalue`](Adagrad::clipvalue) and
/// [`global_clipnorm`](Adagrad::global_clipnorm).
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{Adagrad, Optimizer};
///
/// let mut adagrad = Adagrad::new().learning_rate(0.1).initial_accumulator_value(0.0);
/// let mut w = [1.0_f32];
/// adagrad.begin_step();
/// adagrad.update(0, &mut w, &[2.0]);
/// // a = 4, so the first step is 0.1 * 2 / sqrt(4): about the learning rate.
/// assert!((w[0] - 0.9).abs() < 1e-6);
/// ```
///
/// # References
///
/// J. Duchi, E. Hazan, Y. Singer, "Adaptive Subgradient Methods for Online
/// Learning and Stochastic Optimization", JMLR 12, 2011,
/// <https://jmlr.org/papers/v12/duchi11a.html>.
#[derive(Debug, Clone)]
pub struct Adagrad {
    learning_rate: f32,
    initial_accumulator_value: f64,
    epsilon: f32,
    base: BaseOptions,
    iterations: u64,
    accumulators: Vec<Vec<f32>>,
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad::new()
    }
}

impl Adagrad {
    /// Adagrad with Keras' defaults: learning rate 0.001, initial
    /// accumulator value 0.1, epsilon 1e-7, no weight decay or clipping.
    pub fn new() -> Self {
        Adagrad {
            learning_rate: 0.001,
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            base: BaseOptions::default(),
            iterations: 0,
            accumulators: Vec::new(),
        }
    }

    /// The learning rate (default 0.001).
    pub fn learning_rate(mut self, learning_rate: f32) -> Self {
        self.learning_rate = learning_rate;
        self
    }

    /// The value each accumulator starts at, zero or more (default 0.1).
    pub fn initial_accumulator_value(mut self, initial_accumulator_value: f64) -> Self {
        self.initial_accumulator_value = initial_accumulator_value;
        self
    }

    /// The small constant added under the square root (default 1e-7).
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Checks the hyperparameters; `compile` calls this.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a learning rate that is negative or not
    /// finite (0 is allowed, as in Keras), an epsilon that is not positive and
    /// finite, a negative or infinite initial accumulator
    /// value, a negative weight decay, a clipping bound that is not
    /// positive, or two kinds of clipping at once.
    pub fn validate(&self) -> Result<()> {
        super::learning_rate(self.learning_rate)?;
        positive("epsilon", self.epsilon)?;
        let initial = self.initial_accumulator_value;
        if !(initial.is_finite() && initial >= 0.0) {
            return Err(Error::invalid(
                "initial_accumulator_value",
                initial,
                "expected a non-negative, finite number",
            ));
        }
        self.base.validate()
    }
}

base_options!(Adagrad, "none");

impl Optimizer for Adagrad {
    fn name(&self) -> &str {
        "adagrad"
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
        let n = value.len().min(gradient.len());
        let value = &mut value[..n];
        let lr = self.learning_rate;
        let gradient = self.base.apply(value, &gradient[..n], lr);
        let epsilon = self.epsilon;
        let initial = self.initial_accumulator_value as f32;
        let accumulator = slot_mut_from(&mut self.accumulators, slot, n, initial);
        for ((w, a), &g) in value.iter_mut().zip(accumulator.iter_mut()).zip(gradient) {
            *a += g * g;
            *w -= lr * g / (*a + epsilon).sqrt();
        }
    }

    fn iterations(&self) -> u64 {
        self.iterations
    }

    fn state(&self) -> OptimizerState {
        let slots = self
            .accumulators
            .iter()
            .enumerate()
            .map(|(i, a)| (ACCUMULATOR.to_string(), i, a.clone()))
            .collect();
        OptimizerState {
            iterations: self.iterations,
            slots,
        }
    }

    fn load_state(&mut self, state: &OptimizerState) -> Result<()> {
        let mut accumulators = Vec::new();
        for (name, slot, values) in &state.slots {
            if name != ACCUMULATOR {
                return Err(Error::invalid(
                    "optimizer state",
                    name,
                    "Adagrad keeps only `accumulator` slots",
                ));
            }
            *slot_mut_from(&mut accumulators, *slot, values.len(), 0.0) = values.clone();
        }
        self.accumulators = accumulators;
        self.iterations = state.iterations;
        Ok(())
    }

    fn validate(&self) -> Result<()> {
        Adagrad::validate(self)
    }

    fn config(&self) -> serde_json::Value {
        let mut config = json!({
            "name": "adagrad",
            "learning_rate": self.learning_rate,
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        });
        self.base.write_config(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulators_start_at_the_initial_value() {
        let mut adagrad = Adagrad::new().initial_accumulator_value(0.5);
        let mut w = [0.0_f32; 3];
        adagrad.begin_step();
        adagrad.update(0, &mut w, &[0.0, 1.0, -2.0]);
        assert_eq!(adagrad.state().slots[0].2, vec![0.5, 1.5, 4.5]);
    }

    #[test]
    fn bad_hyperparameters_are_refused_by_name() {
        for (adagrad, name) in [
            (Adagrad::new().learning_rate(-1.0), "learning_rate"),
            (Adagrad::new().epsilon(0.0), "epsilon"),
            (
                Adagrad::new().initial_accumulator_value(-0.1),
                "initial_accumulator_value",
            ),
            (
                Adagrad::new().clipnorm(1.0).global_clipnorm(1.0),
                "global_clipnorm",
            ),
        ] {
            let err = adagrad.validate().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { name: n, .. } if n == name),
                "{err}"
            );
        }
        assert!(Adagrad::new().validate().is_ok());
    }
}
