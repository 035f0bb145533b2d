//! Strict reading of a built-in layer's config: a field the layer does not
//! know, or a value of the wrong kind, is an error that names it.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::{Error, Result};

/// The fields of one layer config, checked against the names the layer
/// knows.
pub(super) struct Fields<'a> {
    class_name: &'a str,
    map: &'a Map<String, Value>,
}

impl<'a> Fields<'a> {
    /// The fields of `config`, a JSON object whose keys are all in `known`.
    pub fn new(class_name: &'a str, config: &'a Value, known: &[&str]) -> Result<Self> {
        let Some(map) = config.as_object() else {
            return Err(Error::invalid(
                "config",
                config,
                format!("a {class_name} config is a JSON object"),
            ));
        };
        if let Some((key, value)) = map.iter().find(|(k, _)| !known.contains(&k.as_str())) {
            return Err(Error::invalid(
                key.as_str(),
                value,
                format!(
                    "not a field of a {class_name} config, whose fields are: {}",
                    known.join(", ")
                ),
            ));
        }
        Ok(Fields { class_name, map })
    }

    /// The `name`, empty when absent.
    pub fn name(&self) -> Result<String> {
        Ok(self.optional::<String>("name")?.unwrap_or_default())
    }

    /// The field `key` as a `T`, `None` when absent.
    pub fn optional<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>> {
        let Some(value) = self.map.get(key) else {
            return Ok(None);
        };
        serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|e| Error::invalid(key, value, e.to_string()))
    }

    /// The field `key` as a `T`.
    pub fn required<T: DeserializeOwned>(&self, key: &str) -> Result<T> {
        self.optional(key)?.ok_or_else(|| {
            Error::invalid(
                "config",
                Value::Object(self.map.clone()),
                format!("a {} config needs a `{key}`", self.class_name),
            )
        })
    }

    /// A pair of sizes, written `[rows, columns]` or, as Keras accepts, one
    /// number for both; `None` when absent or null.
    pub fn pair(&self, key: &str) -> Result<Option<(usize, usize)>> {
        let Some(value) = self.map.get(key).filter(|v| !v.is_null()) else {
            return Ok(None);
        };
        let bad = || {
            Error::invalid(
                key,
                value,
                "expected a whole number or two, [rows, columns]",
            )
        };
        let size = |v: &Value| {
            v.as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(bad)
        };
        match value {
            Value::Array(items) if items.len() == 2 => {
                Ok(Some((size(&items[0])?, size(&items[1])?)))
            }
            Value::Number(_) => {
                let n = size(value)?;
                Ok(Some((n, n)))
            }
            _ => Err(bad()),
        }
    }

    /// Accepts a Keras field kerust does not support only at the value that
    /// means "not used", one of `defaults`; `reason` says what is missing.
    pub fn only_default(&self, key: &str, defaults: &[Value], reason: &str) -> Result<()> {
        match self.map.get(key) {
            Some(value) if !defaults.contains(value) => Err(Error::invalid(key, value, reason)),
            _ => Ok(()),
        }
    }
}
