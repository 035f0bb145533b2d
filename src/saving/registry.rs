//! [`LayerRegistry`]: which function makes a layer of each class name.

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::layers::{
    ActivationLayer, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, Flatten,
    GlobalAveragePooling2D, GlobalMaxPooling2D, Layer, LayerNormalization, LeakyReLU, MaxPooling2D,
    ReLU, Reshape, Softmax,
};
use crate::{Error, Result};

/// A function that makes a layer from its [`config`](Layer::config).
pub type LayerMaker = Box<dyn Fn(&Value) -> Result<Box<dyn Layer>> + Send + Sync>;

/// Makes layers from the class names and configs a model file holds.
///
/// [`with_builtins`](LayerRegistry::with_builtins) (also the `Default`)
/// knows kerust's layers: `Activation` ([`ActivationLayer`]),
/// `AveragePooling2D`, `BatchNormalization`, `Conv2D`, `Dense`, `Dropout`,
/// `Flatten`, `GlobalAveragePooling2D`, `GlobalMaxPooling2D`,
/// `LayerNormalization`, `LeakyReLU`, `MaxPooling2D`, `ReLU`, `Reshape` and
/// `Softmax`. A program that defines its own layer registers it under the
/// class name its [`class_name`](Layer::class_name) returns, then loads
/// with [`load_model_with`](super::load_model_with).
///
/// # Examples
///
/// ```
/// use kerust::layers::{Layer, ReLU};
/// use kerust::saving::LayerRegistry;
///
/// # fn main() -> kerust::Result<()> {
/// // A program's own layer would be registered the same way.
/// let registry = LayerRegistry::new()
///     .register("ReLU", |config| Ok(Box::new(ReLU::from_config(config)?)));
/// let layer = registry.make("ReLU", &serde_json::json!({ "name": "act" }))?;
/// assert_eq!(layer.name(), "act");
/// assert!(!registry.contains("Dense"));
/// assert!(kerust::saving::LayerRegistry::with_builtins().contains("Dense"));
/// # Ok(())
/// # }
/// ```
pub struct LayerRegistry {
    makers: BTreeMap<String, LayerMaker>,
}

impl LayerRegistry {
    /// A registry that knows no layer.
    pub fn new() -> Self {
        LayerRegistry {
            makers: BTreeMap::new(),
        }
    }

    /// A registry that knows kerust's layers, by their class names:
    /// `Activation` ([`ActivationLayer`]), `AveragePooling2D`,
    /// `BatchNormalization`, `Conv2D`, `Dense`, `Dropout`, `Flatten`,
    /// `GlobalAveragePooling2D`, `GlobalMaxPooling2D`, `LayerNormalization`,
    /// `LeakyReLU`, `MaxPooling2D`, `ReLU`, `Reshape`, `Softmax`.
    pub fn with_builtins() -> Self {
        LayerRegistry::new()
            .register("Activation", |c| {
                Ok(Box::new(ActivationLayer::from_config(c)?))
            })
            .register("AveragePooling2D", |c| {
                Ok(Box::new(AveragePooling2D::from_config(c)?))
            })
            .register("BatchNormalization", |c| {
                Ok(Box::new(BatchNormalization::from_config(c)?))
            })
            .register("Conv2D", |c| Ok(Box::new(Conv2D::from_config(c)?)))
            .register("Dense", |c| Ok(Box::new(Dense::from_config(c)?)))
            .register("Dropout", |c| Ok(Box::new(Dropout::from_config(c)?)))
            .register("Flatten", |c| Ok(Box::new(Flatten::from_config(c)?)))
            .register("GlobalAveragePooling2D", |c| {
                Ok(Box::new(GlobalAveragePooling2D::from_config(c)?))
            })
            .register("GlobalMaxPooling2D", |c| {
                Ok(Box::new(GlobalMaxPooling2D::from_config(c)?))
            })
            .register("LayerNormalization", |c| {
                Ok(Box::new(LayerNormalization::from_config(c)?))
            })
            .register("LeakyReLU", |c| Ok(Box::new(LeakyReLU::from_config(c)?)))
            .register("MaxPooling2D", |c| {
                Ok(Box::new(MaxPooling2D::from_config(c)?))
            })
            .register("ReLU", |c| Ok(Box::new(ReLU::from_config(c)?)))
            .register("Reshape", |c| Ok(Box::new(Reshape::from_config(c)?)))
            .register("Softmax", |c| Ok(Box::new(Softmax::from_config(c)?)))
    }

    /// Makes layers of class `class_name` with `make`, replacing any function
    /// registered before under that name.
    pub fn register<F>(mut self, class_name: impl Into<String>, make: F) -> Self
    where
        F: Fn(&Value) -> Result<Box<dyn Layer>> + Send + Sync + 'static,
    {
        self.makers.insert(class_name.into(), Box::new(make));
        self
    }

    /// Whether a layer of class `class_name` can be made.
    pub fn contains(&self, class_name: &str) -> bool {
        self.makers.contains_key(class_name)
    }

    /// The class names known, in alphabetical order.
    pub fn class_names(&self) -> impl Iterator<Item = &str> {
        self.makers.keys().map(String::as_str)
    }

    /// Makes a layer of class `class_name` from `config`.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] for a class name not registered, with how
    /// to register it, and whatever the registered function returns for the
    /// config.
    pub fn make(&self, class_name: &str, config: &Value) -> Result<Box<dyn Layer>> {
        match self.makers.get(class_name) {
            Some(make) => make(config),
            None => Err(Error::invalid(
                "class_name",
                format!("\"{class_name}\""),
                self.unknown_class_hint(class_name),
            )),
        }
    }

    /// Says which classes are known and how to register `class_name`.
    pub(crate) fn unknown_class_hint(&self, class_name: &str) -> String {
        let known: Vec<&str> = self.class_names().collect();
        format!(
            "no layer class of that name is registered (known: {}); register it with \
             `LayerRegistry::with_builtins().register(\"{class_name}\", |config| \
             Ok(Box::new({class_name}::from_config(config)?)))` and load with \
             `kerust::saving::load_model_with(path, &registry)`",
            known.join(", ")
        )
    }
}

impl Default for LayerRegistry {
    /// The same as [`LayerRegistry::with_builtins`].
    fn default() -> Self {
        LayerRegistry::with_builtins()
    }
}

impl fmt::Debug for LayerRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LayerRegistry")
            .field("class_names", &self.makers.keys().collect::<Vec<_>>())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn builtins_make_each_layer_with_its_name() {
        let registry = LayerRegistry::with_builtins();
        for (class, config) in [
            ("Dense", json!({ "name": "d", "units": 3 })),
            ("Dropout", json!({ "name": "o", "rate": 0.25, "seed": 3 })),
            ("Flatten", json!({ "name": "f" })),
            (
                "Conv2D",
                json!({
                    "name": "c", "filters": 4, "kernel_size": [3, 2], "strides": [2, 1],
                    "padding": "same", "activation": "relu", "use_bias": false,
                    "kernel_initializer": "he_normal", "bias_initializer": "ones",
                }),
            ),
            (
                "MaxPooling2D",
                json!({ "name": "p", "pool_size": [3, 3], "strides": [2, 2], "padding": "same" }),
            ),
            ("ReLU", json!({ "name": "r" })),
            ("Softmax", json!({ "name": "s" })),
            (
                "AveragePooling2D",
                json!({ "name": "a", "pool_size": [2, 3], "strides": [1, 2], "padding": "same" }),
            ),
            (
                "BatchNormalization",
                json!({
                    "name": "b", "axis": 3, "momentum": 0.9, "epsilon": 0.01,
                    "center": false, "scale": true, "gamma_initializer": "zeros",
                    "beta_initializer": "ones", "moving_mean_initializer": "ones",
                    "moving_variance_initializer": "zeros",
                }),
            ),
            (
                "GlobalAveragePooling2D",
                json!({ "name": "g", "keepdims": true }),
            ),
            ("GlobalMaxPooling2D", json!({ "name": "m" })),
            (
                "LayerNormalization",
                json!({
                    "name": "l", "axis": [2], "epsilon": 0.01, "center": false,
                    "scale": true, "gamma_initializer": "zeros", "beta_initializer": "ones",
                }),
            ),
            ("LeakyReLU", json!({ "name": "k", "negative_slope": 0.05 })),
            ("Activation", json!({ "name": "t", "activation": "tanh" })),
            (
                "Reshape",
                json!({ "name": "h", "target_shape": [2, -1, 3] }),
            ),
        ] {
            let layer = registry.make(class, &config).unwrap();
            assert_eq!(layer.class_name(), class);
            assert_eq!(Some(layer.name()), config["name"].as_str());
            let again = registry.make(class, &layer.config()).unwrap();
            assert_eq!(again.config(), layer.config());
        }
    }

    #[test]
    fn an_unknown_class_names_itself_and_how_to_register_it() {
        let Err(err) = LayerRegistry::with_builtins().make("ELU", &json!({})) else {
            panic!("an unknown class was made");
        };
        let err = err.to_string();
        assert!(err.contains("\"ELU\""), "{err}");
        assert!(err.contains(".register(\"ELU\""), "{err}");
        assert!(
            err.contains(
                "known: Activation, AveragePooling2D, BatchNormalization, Conv2D, Dense, Dropout, \
                 Flatten, GlobalAveragePooling2D, GlobalMaxPooling2D, LayerNormalization, \
                 LeakyReLU, MaxPooling2D, ReLU, Reshape, Softmax"
            ),
            "{err}"
        );
    }

    #[test]
    fn a_registered_function_replaces_the_builtin() {
        let registry = LayerRegistry::with_builtins()
            .register("Dense", |_| Err(Error::invalid("units", 0, "refused")));
        assert!(registry.make("Dense", &json!({ "units": 2 })).is_err());
    }
}
