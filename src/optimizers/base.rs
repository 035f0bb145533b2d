//! The options every optimizer shares with Keras 3's base optimizer:
//! gradient clipping and decoupled weight decay.
//!
//! Each built-in optimizer holds one [`BaseOptions`] and gets the builder
//! methods `weight_decay`, `clipnorm`, `clipvalue` and `global_clipnorm`
//! from the [`base_options!`] macro, so that the options, their checks,
//! their config fields and the arithmetic live here once.
//!
//! Keras applies them in this order in one step: every gradient is clipped,
//! then every weight decays, then the optimizer's own rule moves every
//! weight. Each of these is elementwise within one weight, and only
//! `global_clipnorm` looks across weights (through a norm known before the
//! first update), so applying the three to one weight after another gives
//! the values Keras gives.

use serde_json::{Map, Value};

use crate::{Error, Result};

/// The config fields of the shared options, in Keras' spelling.
pub(crate) const BASE_FIELDS: [&str; 4] =
    ["weight_decay", "clipnorm", "clipvalue", "global_clipnorm"];

/// Gradient clipping and weight decay, as Keras 3's base optimizer has them,
/// with the working memory they need during a step.
#[derive(Debug, Clone, Default)]
pub(crate) struct BaseOptions {
    pub(crate) weight_decay: Option<f64>,
    pub(crate) clipnorm: Option<f64>,
    pub(crate) clipvalue: Option<f64>,
    pub(crate) global_clipnorm: Option<f64>,
    /// The sum of the squared gradients seen so far in this step.
    squared_norm: f32,
    /// Whether any gradient was seen in this step.
    observed: bool,
    /// The factor of every gradient this step, from `global_clipnorm`.
    global_scale: f32,
    /// The clipped gradient of the weight being updated.
    clipped: Vec<f32>,
}

impl BaseOptions {
    /// Refuses values Keras cannot use and the combinations it refuses.
    pub(crate) fn validate(&self) -> Result<()> {
        if let Some(decay) = self.weight_decay {
            if !(decay.is_finite() && decay >= 0.0) {
                return Err(Error::invalid(
                    "weight_decay",
                    decay,
                    "expected a non-negative, finite number",
                ));
            }
        }
        let clips = [
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ];
        for (name, value) in clips {
            if let Some(value) = value {
                if !(value.is_finite() && value > 0.0) {
                    return Err(Error::invalid(
                        name,
                        value,
                        "expected a positive, finite number",
                    ));
                }
            }
        }
        let set: Vec<(&str, f64)> = clips
            .iter()
            .filter_map(|(name, value)| value.map(|v| (*name, v)))
            .collect();
        if let [_, (second, value), ..] = set[..] {
            let shown = |value: Option<f64>| value.map_or("none".to_string(), |v| v.to_string());
            return Err(Error::invalid(
                second,
                value,
                format!(
                    "only one of `clipnorm`, `clipvalue` and `global_clipnorm` can be set \
                     (received clipnorm={}, clipvalue={}, global_clipnorm={})",
                    shown(self.clipnorm),
                    shown(self.clipvalue),
                    shown(self.global_clipnorm)
                ),
            ));
        }
        Ok(())
    }

    /// Whether a step needs every gradient before its first update.
    pub(crate) fn needs_all_gradients(&self) -> bool {
        self.global_clipnorm.is_some()
    }

    /// Starts a step: forgets the gradients of the last one.
    pub(crate) fn begin_step(&mut self) {
        self.squared_norm = 0.0;
        self.observed = false;
        self.global_scale = 1.0;
    }

    /// Adds one weight's gradient to the global norm of the step.
    pub(crate) fn observe(&mut self, gradient: &[f32]) {
        let Some(clip) = self.global_clipnorm else {
            return;
        };
        self.squared_norm += squared_sum(gradient);
        self.observed = true;
        let norm = self.squared_norm.sqrt();
        // `1 / clip` is taken in double precision and then rounded, as
        // Keras' Python arithmetic does; the rest is float32. An infinite
        // or NaN norm makes the factor NaN, as in Keras.
        let inverse_clip = (1.0 / clip) as f32;
        let scale = clip as f32 * (1.0 / norm).min(inverse_clip);
        self.global_scale = if norm.is_finite() { scale } else { f32::NAN };
    }

    /// Clips `gradient` and decays `value` by the weight decay, for a step
    /// at `learning_rate`; returns the gradient the optimizer's rule uses.
    pub(crate) fn apply<'a>(
        &'a mut self,
        value: &mut [f32],
        gradient: &'a [f32],
        learning_rate: f32,
    ) -> &'a [f32] {
        if let Some(decay) = self.weight_decay {
            let decay = decay as f32;
            for w in value.iter_mut() {
                *w -= *w * decay * learning_rate;
            }
        }
        if let Some(clip) = self.clipnorm {
            let clip = clip as f32;
            let sum = squared_sum(gradient);
            let norm = if sum > 0.0 { sum.sqrt() } else { sum };
            // XLA divides an array by a scalar as a product with the
            // scalar's reciprocal, and Keras' results on JAX are those.
            let reciprocal = 1.0 / nan_max(norm, clip);
            self.clipped.clear();
            self.clipped
                .extend(gradient.iter().map(|&g| g * clip * reciprocal));
            return &self.clipped;
        }
        if let Some(clip) = self.clipvalue {
            let clip = clip as f32;
            self.clipped.clear();
            self.clipped
                .extend(gradient.iter().map(|&g| clip_value(g, clip)));
            return &self.clipped;
        }
        if self.global_clipnorm.is_some() {
            if !self.observed {
                log::warn!(
                    "`global_clipnorm` is set but no gradient was observed this step: the \
                     update is not clipped; call `observe_gradient` for every weight first"
                );
            }
            let scale = self.global_scale;
            self.clipped.clear();
            self.clipped.extend(gradient.iter().map(|&g| g * scale));
            return &self.clipped;
        }
        gradient
    }

    /// Adds the options that are set to `config`.
    pub(crate) fn write_config(&self, config: &mut Value) {
        let Some(fields) = config.as_object_mut() else {
            return;
        };
        let options = [
            ("weight_decay", self.weight_decay),
            ("clipnorm", self.clipnorm),
            ("clipvalue", self.clipvalue),
            ("global_clipnorm", self.global_clipnorm),
        ];
        for (name, value) in options {
            if let Some(value) = value {
                fields.insert(name.to_string(), Value::from(value));
            }
        }
    }

    /// Reads the options from config `fields`; a field left out or `null`
    /// leaves an option unset.
    pub(crate) fn read_config(&mut self, fields: &Map<String, Value>) -> Result<()> {
        for name in BASE_FIELDS {
            let value = match fields.get(name) {
                None | Some(Value::Null) => continue,
                Some(v) => v
                    .as_f64()
                    .ok_or_else(|| Error::invalid(name, v, "expected a number or null"))?,
            };
            let option = match name {
                "weight_decay" => &mut self.weight_decay,
                "clipnorm" => &mut self.clipnorm,
                "clipvalue" => &mut self.clipvalue,
                _ => &mut self.global_clipnorm,
            };
            *option = Some(value);
        }
        Ok(())
    }
}

/// The sum of the squares of `values`, added in order in float32.
///
/// For a weight of up to about 16 numbers this is the sum Keras computes on
/// the JAX backend, to the bit. XLA adds the squares of a longer array in
/// another order, so for such a weight the norm of `clipnorm` and
/// `global_clipnorm` can differ from Keras' in its last bit or two.
fn squared_sum(values: &[f32]) -> f32 {
    let mut sum = 0.0_f32;
    for &x in values {
        sum += x * x;
    }
    sum
}

/// `g` bounded to `[-clip, clip]`; NaN stays NaN, as in XLA.
fn clip_value(g: f32, clip: f32) -> f32 {
    if g.is_nan() {
        g
    } else {
        g.clamp(-clip, clip)
    }
}

/// The larger of `a` and `b`, NaN when either is (as XLA's maximum; Rust's
/// `max` would drop the NaN).
fn nan_max(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// The builder methods of the shared options, for an optimizer whose
/// [`BaseOptions`] is the field `base` (or the path given), with the default
/// weight decay as the documentation should state it.
macro_rules! base_options {
    ($optimizer:ident, $decay_default:literal) => {
        crate::optimizers::base::base_options!($optimizer, $decay_default, base);
    };
    ($optimizer:ident, $decay_default:literal, $($field:ident).+) => {
        impl $optimizer {
            #[doc = concat!(
                "Decoupled weight decay (default ", $decay_default, "): before each\n",
                "update, every weight `w` becomes `w - w * weight_decay * learning_rate`,\n",
                "as Keras 3 applies it, after the gradients are clipped and before the\n",
                "optimizer's own step."
            )]
            ///
            /// # Examples
            ///
            /// ```
            /// use kerust::optimizers::Optimizer;
            #[doc = concat!("use kerust::optimizers::", stringify!($optimizer), ";")]
            ///
            /// # fn main() -> kerust::Result<()> {
            #[doc = concat!(
                "let optimizer = ", stringify!($optimizer), "::new().weight_decay(0.01);"
            )]
            /// optimizer.validate()?;
            /// assert_eq!(optimizer.config()["weight_decay"], 0.01);
            /// # Ok(())
            /// # }
            /// ```
            pub fn weight_decay(mut self, weight_decay: f64) -> Self {
                self.$($field).+.weight_decay = Some(weight_decay);
                self
            }

            /// Clips each weight's gradient to an L2 norm of at most
            /// `clipnorm` (default none): `g * clipnorm * (1 / max(norm,
            /// clipnorm))`. At most one of `clipnorm`, `clipvalue` and
            /// `global_clipnorm` may be set.
            ///
            /// The norm adds the squares in order, in float32. Keras on JAX
            /// adds those of a weight of more than about 16 numbers in
            /// another order, so for such a weight the clipped gradient can
            /// differ from Keras' in its last bit or two.
            ///
            /// # Examples
            ///
            /// ```
            /// use kerust::optimizers::Optimizer;
            #[doc = concat!("use kerust::optimizers::", stringify!($optimizer), ";")]
            ///
            #[doc = concat!("let optimizer = ", stringify!($optimizer), "::new().clipnorm(1.0);")]
            /// assert!(optimizer.validate().is_ok());
            /// // Keras refuses two kinds of clipping at once, and so does kerust.
            /// assert!(optimizer.clipvalue(0.5).validate().is_err());
            /// ```
            pub fn clipnorm(mut self, clipnorm: f64) -> Self {
                self.$($field).+.clipnorm = Some(clipnorm);
                self
            }

            /// Clips each element of every gradient to `[-clipvalue,
            /// clipvalue]` (default none). At most one of `clipnorm`,
            /// `clipvalue` and `global_clipnorm` may be set.
            pub fn clipvalue(mut self, clipvalue: f64) -> Self {
                self.$($field).+.clipvalue = Some(clipvalue);
                self
            }

            /// Scales all the gradients of a step together so that their
            /// global L2 norm (over every weight) is at most
            /// `global_clipnorm` (default none). The model shows the
            /// optimizer every gradient of a step before the first update
            /// (see [`Optimizer::observe_gradient`]). At most one of
            /// `clipnorm`, `clipvalue` and `global_clipnorm` may be set. The
            /// norm is summed as [`clipnorm`](Self::clipnorm)'s is.
            ///
            /// [`Optimizer::observe_gradient`]: crate::optimizers::Optimizer::observe_gradient
            pub fn global_clipnorm(mut self, global_clipnorm: f64) -> Self {
                self.$($field).+.global_clipnorm = Some(global_clipnorm);
                self
            }

            /// The shared options, for `optimizer_from_config`.
            pub(crate) fn base_mut(&mut self) -> &mut crate::optimizers::base::BaseOptions {
                &mut self.$($field).+
            }
        }
    };
}

pub(crate) use base_options;

#[cfg(test)]
mod tests {
    use super::*;

    fn options() -> BaseOptions {
        let mut base = BaseOptions::default();
        base.begin_step();
        base
    }

    #[test]
    fn clipnorm_scales_a_long_gradient_to_the_norm_and_keeps_a_short_one() {
        let mut base = BaseOptions {
            clipnorm: Some(1.0),
            ..options()
        };
        let clipped = base.apply(&mut [0.0; 2], &[3.0, 4.0], 0.1).to_vec();
        assert_eq!(clipped, vec![0.6, 0.8]);
        let clipped = base.apply(&mut [0.0; 2], &[0.3, -0.4], 0.1).to_vec();
        assert_eq!(clipped, vec![0.3, -0.4]);
        // A zero gradient stays zero rather than becoming NaN.
        let clipped = base.apply(&mut [0.0; 2], &[0.0, 0.0], 0.1).to_vec();
        assert_eq!(clipped, vec![0.0, 0.0]);
    }

    #[test]
    fn clipvalue_bounds_each_element() {
        let mut base = BaseOptions {
            clipvalue: Some(0.5),
            ..options()
        };
        let clipped = base.apply(&mut [0.0; 3], &[-2.0, 0.25, 7.0], 0.1).to_vec();
        assert_eq!(clipped, vec![-0.5, 0.25, 0.5]);
    }

    #[test]
    fn global_clipnorm_scales_every_gradient_by_one_factor() {
        let mut base = BaseOptions {
            global_clipnorm: Some(2.5),
            ..options()
        };
        // Norm of (3, 4) with (0, 0) beside it: 5, so a factor of 1/2.
        base.observe(&[3.0, 0.0]);
        base.observe(&[4.0]);
        assert_eq!(base.apply(&mut [0.0; 2], &[3.0, 0.0], 0.1), &[1.5, 0.0]);
        assert_eq!(base.apply(&mut [0.0], &[4.0], 0.1), &[2.0]);
        base.begin_step();
        base.observe(&[f32::INFINITY]);
        assert!(base.apply(&mut [0.0], &[1.0], 0.1)[0].is_nan());
    }

    #[test]
    fn weight_decay_shrinks_the_weight_before_the_step() {
        let mut base = BaseOptions {
            weight_decay: Some(0.5),
            ..options()
        };
        let mut w = [2.0_f32, -4.0];
        let g = base.apply(&mut w, &[1.0, 1.0], 0.1).to_vec();
        assert_eq!(w, [1.9, -3.8]);
        assert_eq!(g, vec![1.0, 1.0]);
    }

    #[test]
    fn two_kinds_of_clipping_or_bad_values_are_refused_by_name() {
        for (base, name) in [
            (
                BaseOptions {
                    clipnorm: Some(1.0),
                    global_clipnorm: Some(1.0),
                    ..options()
                },
                "global_clipnorm",
            ),
            (
                BaseOptions {
                    clipnorm: Some(1.0),
                    clipvalue: Some(1.0),
                    ..options()
                },
                "clipvalue",
            ),
            (
                BaseOptions {
                    clipnorm: Some(0.0),
                    ..options()
                },
                "clipnorm",
            ),
            (
                BaseOptions {
                    clipvalue: Some(f64::NAN),
                    ..options()
                },
                "clipvalue",
            ),
            (
                BaseOptions {
                    weight_decay: Some(-0.1),
                    ..options()
                },
                "weight_decay",
            ),
        ] {
            let err = base.validate().unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { name: n, .. } if n == name),
                "{err}"
            );
        }
        assert!(options().validate().is_ok());
    }

    #[test]
    fn only_the_options_set_are_written_and_null_reads_as_unset() {
        let base = BaseOptions {
            clipvalue: Some(0.5),
            ..options()
        };
        let mut config = serde_json::json!({ "name": "sgd" });
        base.write_config(&mut config);
        assert_eq!(
            config,
            serde_json::json!({ "name": "sgd", "clipvalue": 0.5 })
        );
        let mut read = BaseOptions::default();
        let fields = serde_json::json!({ "clipvalue": 0.5, "clipnorm": null });
        read.read_config(fields.as_object().unwrap()).unwrap();
        assert_eq!((read.clipvalue, read.clipnorm), (Some(0.5), None));
    }
}
