//! Optimizers and losses made again from their configs, and the compile
//! config a model file keeps.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::losses::{
    BinaryCrossentropy, CategoricalCrossentropy, Loss, MeanSquaredError,
    SparseCategoricalCrossentropy,
};
use crate::metrics::{
    Auc, Average, F1Score, FBetaScore, IntoMetric, Metric, Precision, Recall,
    SparseTopKCategoricalAccuracy, TopKCategoricalAccuracy,
};
use crate::model::Sequential;
use crate::optimizers::base::BASE_FIELDS;
use crate::optimizers::{Adagrad, Adam, AdamW, Nadam, Optimizer, RmsProp, Sgd};
use crate::{Error, Result};

/// What `compile` was given, as a model file keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct CompileConfig {
    pub(crate) optimizer: Value,
    pub(crate) loss: Value,
    /// Each a name `compile` knows or a metric's `{"class_name", "config"}`.
    pub(crate) metrics: Vec<Value>,
}

impl CompileConfig {
    /// The compile config of `model`, if it is compiled.
    pub(crate) fn of(model: &Sequential) -> Option<Self> {
        Some(CompileConfig {
            optimizer: model.optimizer()?.config(),
            loss: model.loss()?.config(),
            metrics: model.metrics().iter().map(|m| m.config()).collect(),
        })
    }
}

/// Makes a built-in optimizer from its [`config`](Optimizer::config), such
/// as `{"name": "adam", "learning_rate": 0.001}`. Fields left out take their
/// defaults. The state (step count, moments) is not part of the config.
///
/// Known names and their fields:
///
/// ```text
/// "adam"      learning_rate, beta_1, beta_2, epsilon, amsgrad
/// "adamw"     learning_rate, beta_1, beta_2, epsilon, amsgrad
///             (weight_decay defaults to 0.004)
/// "nadam"     learning_rate, beta_1, beta_2, epsilon
/// "adagrad"   learning_rate, initial_accumulator_value, epsilon
/// "rmsprop"   learning_rate, rho, momentum, epsilon, centered
/// "sgd"       learning_rate, momentum, nesterov
/// ```
///
/// Every one also takes Keras' `weight_decay`, `clipnorm`, `clipvalue` and
/// `global_clipnorm`, a number or `null` (unset).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a config that is not an object with a
/// `name`, an unknown name, a field the optimizer does not have (Keras
/// options kerust lacks, such as `use_ema`, are refused rather than
/// ignored), a field of the wrong type, or a value out of range.
///
/// # Examples
///
/// ```
/// use kerust::optimizers::{AdamW, Optimizer};
/// use kerust::saving::optimizer_from_config;
///
/// # fn main() -> kerust::Result<()> {
/// let adamw = AdamW::new().learning_rate(0.01).global_clipnorm(1.0);
/// let again = optimizer_from_config(&adamw.config())?;
/// assert_eq!(again.config(), adamw.config());
/// # Ok(())
/// # }
/// ```
pub fn optimizer_from_config(config: &Value) -> Result<Box<dyn Optimizer>> {
    let (name, fields) = named_object("optimizer", config)?;
    match name.to_ascii_lowercase().as_str() {
        "adam" => {
            only_optimizer_fields("adam", fields, &ADAM_FIELDS)?;
            let mut adam = read_adam(Adam::new(), fields)?;
            adam.base_mut().read_config(fields)?;
            adam.validate()?;
            Ok(Box::new(adam))
        }
        "adamw" => {
            only_optimizer_fields("adamw", fields, &ADAM_FIELDS)?;
            let adam = read_adam(Adam::new().weight_decay(0.004), fields)?;
            let mut adamw = AdamW::from_adam(adam);
            if fields.get("weight_decay") == Some(&Value::Null) {
                return Err(Error::invalid(
                    "weight_decay",
                    "null",
                    "AdamW needs a weight decay (Keras' default is 0.004)",
                ));
            }
            adamw.base_mut().read_config(fields)?;
            adamw.validate()?;
            Ok(Box::new(adamw))
        }
        "nadam" => {
            only_optimizer_fields(
                "nadam",
                fields,
                &["learning_rate", "beta_1", "beta_2", "epsilon"],
            )?;
            let mut nadam = Nadam::new();
            if let Some(v) = number(fields, "learning_rate")? {
                nadam = nadam.learning_rate(v as f32);
            }
            if let Some(v) = number(fields, "beta_1")? {
                nadam = nadam.beta_1(v);
            }
            if let Some(v) = number(fields, "beta_2")? {
                nadam = nadam.beta_2(v);
            }
            if let Some(v) = number(fields, "epsilon")? {
                nadam = nadam.epsilon(v as f32);
            }
            nadam.base_mut().read_config(fields)?;
            nadam.validate()?;
            Ok(Box::new(nadam))
        }
        "adagrad" => {
            only_optimizer_fields(
                "adagrad",
                fields,
                &["learning_rate", "initial_accumulator_value", "epsilon"],
            )?;
            let mut adagrad = Adagrad::new();
            if let Some(v) = number(fields, "learning_rate")? {
                adagrad = adagrad.learning_rate(v as f32);
            }
            if let Some(v) = number(fields, "initial_accumulator_value")? {
                adagrad = adagrad.initial_accumulator_value(v);
            }
            if let Some(v) = number(fields, "epsilon")? {
                adagrad = adagrad.epsilon(v as f32);
            }
            adagrad.base_mut().read_config(fields)?;
            adagrad.validate()?;
            Ok(Box::new(adagrad))
        }
        "rmsprop" => {
            only_optimizer_fields(
                "rmsprop",
                fields,
                &["learning_rate", "rho", "momentum", "epsilon", "centered"],
            )?;
            let mut rmsprop = RmsProp::new();
            if let Some(v) = number(fields, "learning_rate")? {
                rmsprop = rmsprop.learning_rate(v as f32);
            }
            if let Some(v) = number(fields, "rho")? {
                rmsprop = rmsprop.rho(v);
            }
            if let Some(v) = number(fields, "momentum")? {
                rmsprop = rmsprop.momentum(v);
            }
            if let Some(v) = number(fields, "epsilon")? {
                rmsprop = rmsprop.epsilon(v as f32);
            }
            if let Some(v) = boolean(fields, "centered")? {
                rmsprop = rmsprop.centered(v);
            }
            rmsprop.base_mut().read_config(fields)?;
            rmsprop.validate()?;
            Ok(Box::new(rmsprop))
        }
        "sgd" => {
            only_optimizer_fields("sgd", fields, &["learning_rate", "momentum", "nesterov"])?;
            let mut sgd = Sgd::new();
            if let Some(v) = number(fields, "learning_rate")? {
                sgd = sgd.learning_rate(v as f32);
            }
            if let Some(v) = number(fields, "momentum")? {
                sgd = sgd.momentum(v as f32);
            }
            if let Some(v) = boolean(fields, "nesterov")? {
                sgd = sgd.nesterov(v);
            }
            sgd.base_mut().read_config(fields)?;
            sgd.validate()?;
            Ok(Box::new(sgd))
        }
        _ => Err(Error::invalid(
            "optimizer",
            format!("\"{name}\""),
            "known optimizers: \"adagrad\", \"adam\", \"adamw\", \"nadam\", \"rmsprop\", \"sgd\"",
        )),
    }
}

/// The fields of Adam's and AdamW's configs, besides the shared options.
const ADAM_FIELDS: [&str; 5] = ["learning_rate", "beta_1", "beta_2", "epsilon", "amsgrad"];

/// `adam` with the Adam fields that `fields` holds.
fn read_adam(mut adam: Adam, fields: &Map<String, Value>) -> Result<Adam> {
    if let Some(v) = number(fields, "learning_rate")? {
        adam = adam.learning_rate(v as f32);
    }
    if let Some(v) = number(fields, "beta_1")? {
        adam = adam.beta_1(v);
    }
    if let Some(v) = number(fields, "beta_2")? {
        adam = adam.beta_2(v);
    }
    if let Some(v) = number(fields, "epsilon")? {
        adam = adam.epsilon(v as f32);
    }
    if let Some(v) = boolean(fields, "amsgrad")? {
        adam = adam.amsgrad(v);
    }
    Ok(adam)
}

/// Makes a built-in loss from its [`config`](Loss::config), such as
/// `{"name": "sparse_categorical_crossentropy", "from_logits": false}`.
///
/// Known names: `"sparse_categorical_crossentropy"`,
/// `"categorical_crossentropy"` and `"binary_crossentropy"` (field
/// `from_logits`, default false), and `"mean_squared_error"` (also `"mse"`,
/// no fields).
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a config that is not an object with a
/// `name`, an unknown name, a field the loss does not have, or a field of
/// the wrong type.
///
/// # Examples
///
/// ```
/// use kerust::losses::{Loss, SparseCategoricalCrossentropy};
/// use kerust::saving::loss_from_config;
///
/// # fn main() -> kerust::Result<()> {
/// let loss = SparseCategoricalCrossentropy::new().from_logits(true);
/// let again = loss_from_config(&loss.config())?;
/// assert_eq!(again.config(), loss.config());
/// # Ok(())
/// # }
/// ```
pub fn loss_from_config(config: &Value) -> Result<Box<dyn Loss>> {
    let (name, fields) = named_object("loss", config)?;
    match name {
        "sparse_categorical_crossentropy" => {
            only_fields(name, fields, &["from_logits"])?;
            let from_logits = boolean(fields, "from_logits")?.unwrap_or(false);
            Ok(Box::new(
                SparseCategoricalCrossentropy::new().from_logits(from_logits),
            ))
        }
        "categorical_crossentropy" => {
            only_fields(name, fields, &["from_logits"])?;
            let from_logits = boolean(fields, "from_logits")?.unwrap_or(false);
            Ok(Box::new(
                CategoricalCrossentropy::new().from_logits(from_logits),
            ))
        }
        "binary_crossentropy" => {
            only_fields(name, fields, &["from_logits"])?;
            let from_logits = boolean(fields, "from_logits")?.unwrap_or(false);
            Ok(Box::new(BinaryCrossentropy::new().from_logits(from_logits)))
        }
        "mean_squared_error" | "mse" => {
            only_fields(name, fields, &[])?;
            Ok(Box::new(MeanSquaredError::new()))
        }
        _ => Err(Error::invalid(
            "loss",
            format!("\"{name}\""),
            "known losses: \"sparse_categorical_crossentropy\", \
             \"categorical_crossentropy\", \"binary_crossentropy\", \"mean_squared_error\"",
        )),
    }
}

/// Makes a built-in metric from its [`config`](Metric::config): a name
/// that `compile` knows, such as `"accuracy"` or `"auc"`, or an object
/// `{"class_name": ..., "config": {...}}` as Keras writes a metric with its
/// options, such as `{"class_name": "AUC", "config": {"name": "pr_auc",
/// "curve": "PR"}}`. Fields left out take their defaults.
///
/// Known classes and their config fields (each also takes `name`, the name
/// it logs under):
///
/// ```text
/// "AUC"                              num_thresholds, curve, summation_method,
///                                    from_logits
/// "F1Score"                          average (required), threshold
/// "FBetaScore"                       average (required), beta, threshold
/// "TopKCategoricalAccuracy"          k
/// "SparseTopKCategoricalAccuracy"    k
/// "Precision", "Recall"              thresholds (one number)
/// ```
///
/// # Errors
///
/// [`Error::InvalidArgument`] for a name `compile` does not know, a config
/// that is neither a string nor such an object, an unknown class, a field
/// the metric does not have (Keras options kerust lacks, such as
/// `multi_label`, are refused rather than ignored), a field of the wrong
/// type, or a value out of range, such as an `average` other than
/// `"macro"`, `"micro"` and `"weighted"`.
///
/// # Examples
///
/// ```
/// use kerust::metrics::{Auc, Curve, Metric};
/// use kerust::saving::metric_from_config;
///
/// # fn main() -> kerust::Result<()> {
/// let pr = Auc::new().curve(Curve::Pr).named("pr_auc");
/// let again = metric_from_config(&pr.config())?;
/// assert_eq!(again.config(), pr.config());
/// assert_eq!(metric_from_config(&"auc".into())?.name(), "auc");
/// # Ok(())
/// # }
/// ```
pub fn metric_from_config(config: &Value) -> Result<Box<dyn Metric>> {
    if let Some(name) = config.as_str() {
        return name.into_metric();
    }
    let class_name = config.get("class_name").and_then(Value::as_str);
    let fields = config.get("config").and_then(Value::as_object);
    let two_keys = config.as_object().is_some_and(|o| o.len() == 2);
    let (Some(class_name), Some(fields), true) = (class_name, fields, two_keys) else {
        return Err(Error::invalid(
            "metric",
            config,
            "expected a metric name, such as \"accuracy\", or an object \
             {\"class_name\": \"...\", \"config\": {...}}",
        ));
    };
    let name = text(fields, "name")?;
    let metric: Box<dyn Metric> = match class_name {
        "AUC" => {
            only_fields(
                class_name,
                fields,
                &["num_thresholds", "curve", "summation_method", "from_logits"],
            )?;
            let mut auc = Auc::new();
            if let Some(v) = count(fields, "num_thresholds")? {
                auc = auc.num_thresholds(v);
            }
            if let Some(v) = text(fields, "curve")? {
                auc = auc.curve(v.parse()?);
            }
            if let Some(v) = text(fields, "summation_method")? {
                auc = auc.summation_method(v.parse()?);
            }
            if let Some(v) = boolean(fields, "from_logits")? {
                auc = auc.from_logits(v);
            }
            Box::new(with_name(auc, name, Auc::named))
        }
        "F1Score" => {
            only_fields(class_name, fields, &["average", "threshold"])?;
            let f1 = F1Score::new(average(fields)?).threshold(threshold(fields)?);
            Box::new(with_name(f1, name, F1Score::named))
        }
        "FBetaScore" => {
            only_fields(class_name, fields, &["average", "beta", "threshold"])?;
            let mut fbeta = FBetaScore::new(average(fields)?).threshold(threshold(fields)?);
            if let Some(v) = number(fields, "beta")? {
                fbeta = fbeta.beta(v);
            }
            Box::new(with_name(fbeta, name, FBetaScore::named))
        }
        "TopKCategoricalAccuracy" => {
            only_fields(class_name, fields, &["k"])?;
            let mut top_k = TopKCategoricalAccuracy::new();
            if let Some(v) = count(fields, "k")? {
                top_k = top_k.k(v);
            }
            Box::new(with_name(top_k, name, TopKCategoricalAccuracy::named))
        }
        "SparseTopKCategoricalAccuracy" => {
            only_fields(class_name, fields, &["k"])?;
            let mut top_k = SparseTopKCategoricalAccuracy::new();
            if let Some(v) = count(fields, "k")? {
                top_k = top_k.k(v);
            }
            Box::new(with_name(top_k, name, SparseTopKCategoricalAccuracy::named))
        }
        "Precision" => {
            only_fields(class_name, fields, &["thresholds"])?;
            let mut precision = Precision::new();
            if let Some(v) = number(fields, "thresholds")? {
                precision = precision.threshold(v as f32);
            }
            Box::new(with_name(precision, name, Precision::named))
        }
        "Recall" => {
            only_fields(class_name, fields, &["thresholds"])?;
            let mut recall = Recall::new();
            if let Some(v) = number(fields, "thresholds")? {
                recall = recall.threshold(v as f32);
            }
            Box::new(with_name(recall, name, Recall::named))
        }
        _ => {
            return Err(Error::invalid(
                "class_name",
                format!("\"{class_name}\""),
                "known metric classes: \"AUC\", \"F1Score\", \"FBetaScore\", \
                 \"TopKCategoricalAccuracy\", \"SparseTopKCategoricalAccuracy\", \
                 \"Precision\", \"Recall\" (and, by name alone, those `compile` knows)",
            ))
        }
    };
    metric.validate()?;
    Ok(metric)
}

/// `metric` renamed when its config gives a name.
fn with_name<M>(metric: M, name: Option<&str>, named: fn(M, String) -> M) -> M {
    match name {
        Some(name) => named(metric, name.to_string()),
        None => metric,
    }
}

/// The `average` of an F-score config, which kerust needs.
fn average(fields: &Map<String, Value>) -> Result<Average> {
    match fields.get("average") {
        Some(Value::String(v)) => v.parse(),
        Some(v) => Err(Error::invalid(
            "average",
            v,
            "expected \"macro\", \"micro\" or \"weighted\" (Keras' null, one score per \
             class, does not fit in kerust's logs, which hold one number per metric)",
        )),
        None => Err(Error::invalid(
            "average",
            "missing",
            "expected \"macro\", \"micro\" or \"weighted\"",
        )),
    }
}

/// The `threshold` of an F-score config: a number, or `null` (or left
/// out) for the arg-max of each row.
fn threshold(fields: &Map<String, Value>) -> Result<Option<f32>> {
    match fields.get("threshold") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|t| Some(t as f32))
            .ok_or_else(|| Error::invalid("threshold", v, "expected a number or null")),
    }
}

/// The `name` and the fields of a config object.
fn named_object<'a>(what: &str, config: &'a Value) -> Result<(&'a str, &'a Map<String, Value>)> {
    let fields = config.as_object();
    let name = fields.and_then(|f| f.get("name")).and_then(Value::as_str);
    match (name, fields) {
        (Some(name), Some(fields)) => Ok((name, fields)),
        _ => Err(Error::invalid(
            what,
            config,
            "expected a JSON object with a `name`, such as {\"name\": \"...\"}",
        )),
    }
}

/// Refuses fields other than `name`, `allowed` and the options every
/// optimizer shares.
fn only_optimizer_fields(owner: &str, fields: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    let all: Vec<&str> = allowed.iter().copied().chain(BASE_FIELDS).collect();
    only_fields(owner, fields, &all)
}

/// Refuses fields other than `name` and `allowed`.
fn only_fields(owner: &str, fields: &Map<String, Value>, allowed: &[&str]) -> Result<()> {
    for key in fields.keys() {
        if key != "name" && !allowed.contains(&key.as_str()) {
            let known = if allowed.is_empty() {
                "none".to_string()
            } else {
                allowed.join(", ")
            };
            return Err(Error::invalid(
                key,
                &fields[key],
                format!("`{owner}` has no such option in kerust (its options: {known})"),
            ));
        }
    }
    Ok(())
}

fn number(fields: &Map<String, Value>, key: &str) -> Result<Option<f64>> {
    match fields.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(Some)
            .ok_or_else(|| Error::invalid(key, v, "expected a number")),
    }
}

fn count(fields: &Map<String, Value>, key: &str) -> Result<Option<usize>> {
    match fields.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| Error::invalid(key, v, "expected a whole number, 0 or more")),
    }
}

fn text<'a>(fields: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>> {
    match fields.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_str()
            .map(Some)
            .ok_or_else(|| Error::invalid(key, v, "expected a string")),
    }
}

fn boolean(fields: &Map<String, Value>, key: &str) -> Result<Option<bool>> {
    match fields.get(key) {
        None => Ok(None),
        Some(v) => v
            .as_bool()
            .map(Some)
            .ok_or_else(|| Error::invalid(key, v, "expected true or false")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn every_builtin_optimizer_and_loss_survives_its_config() {
        let optimizers: Vec<Box<dyn Optimizer>> = vec![
            Box::new(Adam::new()),
            Box::new(
                Adam::new()
                    .learning_rate(0.0123)
                    .beta_1(0.8)
                    .beta_2(0.99)
                    .epsilon(1e-5),
            ),
            Box::new(Sgd::new()),
            Box::new(Sgd::new().learning_rate(0.5).momentum(0.9).nesterov(true)),
            Box::new(RmsProp::new()),
            Box::new(
                RmsProp::new()
                    .learning_rate(0.01)
                    .rho(0.8)
                    .momentum(0.5)
                    .epsilon(1e-4)
                    .centered(true),
            ),
        ];
        for optimizer in optimizers {
            let again = optimizer_from_config(&optimizer.config()).unwrap();
            assert_eq!(again.config(), optimizer.config());
            assert_eq!(
                again.learning_rate().to_bits(),
                optimizer.learning_rate().to_bits()
            );
        }
        let losses: Vec<Box<dyn Loss>> = vec![
            Box::new(SparseCategoricalCrossentropy::new()),
            Box::new(SparseCategoricalCrossentropy::new().from_logits(true)),
            Box::new(CategoricalCrossentropy::new().from_logits(true)),
            Box::new(MeanSquaredError::new()),
            Box::new(BinaryCrossentropy::new()),
            Box::new(BinaryCrossentropy::new().from_logits(true)),
        ];
        for loss in losses {
            assert_eq!(
                loss_from_config(&loss.config()).unwrap().config(),
                loss.config()
            );
        }
    }

    /// The message of an error that `result` must be.
    fn message<T>(result: Result<T>) -> String {
        match result {
            Ok(_) => panic!("expected an error"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn every_new_optimizer_and_shared_option_survives_its_config() {
        let optimizers: Vec<Box<dyn Optimizer>> = vec![
            Box::new(Adam::new().amsgrad(true).clipnorm(0.5)),
            Box::new(AdamW::new()),
            Box::new(
                AdamW::new()
                    .learning_rate(0.02)
                    .weight_decay(0.1)
                    .beta_1(0.8)
                    .beta_2(0.99)
                    .epsilon(1e-6)
                    .amsgrad(true)
                    .global_clipnorm(2.0),
            ),
            Box::new(Adagrad::new()),
            Box::new(
                Adagrad::new()
                    .learning_rate(0.1)
                    .initial_accumulator_value(0.0)
                    .epsilon(1e-5)
                    .clipvalue(0.25),
            ),
            Box::new(Nadam::new()),
            Box::new(Nadam::new().beta_1(0.95).weight_decay(0.01).clipnorm(1.5)),
            Box::new(
                Sgd::new()
                    .momentum(0.9)
                    .weight_decay(1e-4)
                    .global_clipnorm(1.0),
            ),
            Box::new(RmsProp::new().centered(true).clipvalue(3.0)),
        ];
        for optimizer in optimizers {
            let again = optimizer_from_config(&optimizer.config()).unwrap();
            assert_eq!(again.name(), optimizer.name());
            assert_eq!(again.config(), optimizer.config());
            assert_eq!(again.needs_all_gradients(), optimizer.needs_all_gradients());
        }
        // Keras writes every shared option, `null` when unset.
        let keras = json!({
            "name": "adam", "learning_rate": 0.01, "weight_decay": null, "clipnorm": null,
            "clipvalue": 0.5, "global_clipnorm": null, "amsgrad": false,
        });
        let adam = optimizer_from_config(&keras).unwrap();
        assert_eq!(adam.config()["clipvalue"], 0.5);
        assert!(adam.config().get("clipnorm").is_none());
        assert_eq!(
            optimizer_from_config(&json!({ "name": "AdamW" }))
                .unwrap()
                .config()["weight_decay"],
            0.004
        );
    }

    #[test]
    fn unknown_names_and_options_are_refused_by_name() {
        let err = message(optimizer_from_config(&json!({ "name": "ftrl" })));
        assert!(
            err.contains("\"ftrl\"") && err.contains("\"adagrad\"") && err.contains("\"nadam\""),
            "{err}"
        );
        let err = message(optimizer_from_config(
            &json!({ "name": "rmsprop", "use_ema": true }),
        ));
        assert!(err.contains("`use_ema`"), "{err}");
        let err = message(optimizer_from_config(
            &json!({ "name": "nadam", "amsgrad": true }),
        ));
        assert!(err.contains("`amsgrad`"), "{err}");
        let err = message(optimizer_from_config(
            &json!({ "name": "adam", "beta_1": 1.5 }),
        ));
        assert!(err.contains("beta_1"), "{err}");
        let err = message(optimizer_from_config(
            &json!({ "name": "sgd", "clipnorm": 1.0, "clipvalue": 1.0 }),
        ));
        assert!(
            err.contains("clipvalue") && err.contains("only one of"),
            "{err}"
        );
        let err = message(optimizer_from_config(
            &json!({ "name": "adamw", "weight_decay": null }),
        ));
        assert!(err.contains("weight_decay"), "{err}");
        let err = message(optimizer_from_config(
            &json!({ "name": "adagrad", "clipnorm": "big" }),
        ));
        assert!(err.contains("clipnorm"), "{err}");
        let err = message(loss_from_config(&json!({ "name": "hinge" })));
        assert!(err.contains("\"hinge\""), "{err}");
        let err = message(loss_from_config(&json!("mse")));
        assert!(err.contains("`name`"), "{err}");
        let err = message(loss_from_config(
            &json!({ "name": "mse", "from_logits": true }),
        ));
        assert!(err.contains("from_logits"), "{err}");
    }
}
