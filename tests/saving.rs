//! Model files: save and load, checkpoints and resumed training, weights
//! alone, the `ModelCheckpoint` callback, Python's reading of the files, and
//! damaged files (hand-made and fuzzed), through the public API only.

use std::cell::RefCell;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use kerust::callbacks::ModelCheckpoint;
use kerust::model::ArraySource;
use kerust::prelude::*;
use kerust::random::{stream, Purpose};
use kerust::saving::{
    load_checkpoint, load_model, load_model_with, save_checkpoint, LayerRegistry,
};
use ndarray::{Array1, Array3, ArrayD, ArrayViewD};
use proptest::prelude::*;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use rand::RngCore;
use serde_json::{json, Value};

// ---------------------------------------------------------------------------
// A small problem and model

/// Samples of shape (2, 2) in three classes: which of three sums is largest.
fn toy(samples: usize) -> (Array3<f32>, Array1<f32>) {
    let x = Array3::from_shape_fn((samples, 2, 2), |(i, j, k)| {
        (((i * 29 + j * 13 + k * 7) % 17) as f32 - 8.0) / 8.0
    });
    let y: Array1<f32> = x
        .outer_iter()
        .map(|s| {
            let scores = [
                s[[0, 0]] + s[[0, 1]],
                s[[1, 0]] + s[[1, 1]],
                s[[0, 0]] - s[[1, 1]],
            ];
            let best = (0..3).fold(0, |b, c| if scores[c] > scores[b] { c } else { b });
            best as f32
        })
        .collect();
    (x, y)
}

/// Flatten -> Dense(6) -> ReLU -> Dense(3) -> Softmax: every built-in layer.
fn architecture(seed: u64) -> Sequential {
    Sequential::new()
        .input_shape([2, 2])
        .seed(seed)
        .name("toy")
        .add(Flatten::new())
        .add(Dense::new(6))
        .add(ReLU::new())
        .add(Dense::new(3))
        .add(Softmax::new())
}

fn adam_model(seed: u64) -> Sequential {
    let mut model = architecture(seed);
    model
        .compile(
            Adam::new().learning_rate(0.01),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

fn sgd_model(seed: u64) -> Sequential {
    let mut model = architecture(seed);
    model
        .compile(
            Sgd::new().learning_rate(0.05).momentum(0.9),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

/// RMSprop with every part of its state in use: velocity, momentum and the
/// centred mean of the gradients.
fn rmsprop_model(seed: u64) -> Sequential {
    let mut model = architecture(seed);
    model
        .compile(
            RmsProp::new()
                .learning_rate(0.01)
                .momentum(0.5)
                .centered(true),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

/// AdamW with AMSGrad and `global_clipnorm`: Adam's three state arrays,
/// and the model's pass over every gradient before the updates.
fn adamw_model(seed: u64) -> Sequential {
    let mut model = architecture(seed);
    model
        .compile(
            AdamW::new()
                .learning_rate(0.01)
                .weight_decay(0.05)
                .amsgrad(true)
                .global_clipnorm(0.5),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

/// Adagrad, its accumulators starting away from zero, with `clipnorm`.
fn adagrad_model(seed: u64) -> Sequential {
    let mut model = architecture(seed);
    model
        .compile(
            Adagrad::new()
                .learning_rate(0.05)
                .initial_accumulator_value(0.2)
                .clipnorm(0.5),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

/// Nadam with weight decay and `clipvalue`: its momentum product is not
/// saved, but made again from the step count.
fn nadam_model(seed: u64) -> Sequential {
    let mut model = architecture(seed);
    model
        .compile(
            Nadam::new()
                .learning_rate(0.01)
                .weight_decay(0.01)
                .clipvalue(0.25),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::new().verbose(Verbosity::Silent)
}

/// Shuffled batches of 8 drawn with seed 7, a new order every epoch.
fn source<'a>(x: &'a Array3<f32>, y: &'a Array1<f32>) -> ArraySource<'a> {
    ArraySource::new(x.view().into_dyn(), y.view().into_dyn(), 8)
        .unwrap()
        .seed(7)
}

fn message<T>(result: kerust::Result<T>) -> String {
    match result {
        Ok(_) => panic!("expected an error"),
        Err(e) => e.to_string(),
    }
}

/// The message of an `Error::Format`; any other outcome fails the test.
#[track_caller]
fn format_error<T>(result: kerust::Result<T>) -> String {
    match result {
        Err(e @ Error::Format { .. }) => e.to_string(),
        Err(other) => panic!("expected Error::Format, got {other:?}"),
        Ok(_) => panic!("expected Error::Format, the file loaded"),
    }
}

fn bits(arrays: &[ArrayD<f32>]) -> Vec<Vec<u32>> {
    arrays
        .iter()
        .map(|a| a.iter().map(|v| v.to_bits()).collect())
        .collect()
}

// ---------------------------------------------------------------------------
// Save and load

#[test]
fn a_loaded_model_predicts_bit_for_bit_as_the_saved_one() {
    let (x, y) = toy(48);
    let mut model = adam_model(3);
    model.fit(source(&x, &y), quiet().epochs(2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();

    let mut loaded = load_model(&path).unwrap();
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
    assert_eq!(bits(&loaded.get_weights()), bits(&model.get_weights()));
    assert_eq!(loaded.model_name(), "toy");
    assert_eq!(loaded.get_input_shape(), Some(&[2, 2][..]));
    let names = |m: &Sequential| -> Vec<(String, String)> {
        m.layers()
            .iter()
            .map(|l| (l.name().to_string(), l.class_name().to_string()))
            .collect()
    };
    assert_eq!(names(&loaded), names(&model));
    assert_eq!(loaded.summary().to_string(), model.summary().to_string());

    // Compiled as saved, the optimizer where training left it.
    let (saved, restored) = (model.optimizer().unwrap(), loaded.optimizer().unwrap());
    assert_eq!(restored.config(), saved.config());
    assert_eq!(restored.state(), saved.state());
    assert_eq!(restored.iterations(), 12);
    assert_eq!(
        loaded.loss().unwrap().config(),
        model.loss().unwrap().config()
    );
    assert_eq!(loaded.metric_names(), vec!["accuracy".to_string()]);
    assert_eq!(
        loaded.evaluate(&x, &y).unwrap(),
        model.evaluate(&x, &y).unwrap()
    );
}

#[test]
fn an_uncompiled_model_comes_back_uncompiled() {
    let mut model = architecture(5);
    model.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("plain.safetensors");
    model.save(&path).unwrap();
    let mut loaded = load_model(&path).unwrap();
    assert!(!loaded.is_compiled());
    let (x, _) = toy(5);
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
}

/// The compile config a model file holds, as JSON.
fn compile_config(path: &Path) -> Value {
    let mut file = RawFile::parse(&std::fs::read(path).unwrap());
    serde_json::from_str(file.metadata()["compile_config"].as_str().unwrap()).unwrap()
}

#[test]
fn metrics_with_options_come_back_compiled_as_saved() {
    use kerust::metrics::{
        Auc, Average, Curve, F1Score, FBetaScore, IntoMetric, SparseTopKCategoricalAccuracy,
        SummationMethod, TopKCategoricalAccuracy,
    };

    let (x, labels) = toy(40);
    let one_hot = ndarray::Array2::from_shape_fn((labels.len(), 3), |(i, c)| {
        f32::from(u8::from(labels[i] as usize == c))
    });
    let mut model = architecture(8);
    let metrics: Vec<Box<dyn Metric>> = vec![
        "accuracy".into_metric().unwrap(),
        "auc".into_metric().unwrap(),
        Box::new(
            Auc::new()
                .curve(Curve::Pr)
                .summation_method(SummationMethod::Minoring)
                .num_thresholds(50)
                .named("pr_auc"),
        ),
        Box::new(F1Score::new(Average::Weighted).threshold(0.4).named("f1")),
        Box::new(FBetaScore::new(Average::Micro).beta(0.5)),
        "top_k_categorical_accuracy".into_metric().unwrap(),
        Box::new(TopKCategoricalAccuracy::new().k(2).named("top_2")),
        Box::new(Precision::new().threshold(0.3).named("precision_at_0_3")),
        "recall".into_metric().unwrap(),
    ];
    model
        .compile(
            Adam::new().learning_rate(0.01),
            CategoricalCrossentropy::new(),
            metrics,
        )
        .unwrap();
    model
        .fit((&x, &one_hot), quiet().epochs(2).batch_size(8))
        .unwrap();

    let mut sparse = architecture(9);
    let metrics: Vec<Box<dyn Metric>> = vec![
        "sparse_top_k_categorical_accuracy".into_metric().unwrap(),
        Box::new(SparseTopKCategoricalAccuracy::new().k(1).named("top_1")),
    ];
    sparse
        .compile(Sgd::new(), SparseCategoricalCrossentropy::new(), metrics)
        .unwrap();
    sparse.build().unwrap();

    let dir = tempfile::tempdir().unwrap();
    for (model, y, file) in [
        (
            &mut model,
            one_hot.clone().into_dyn(),
            "metrics.safetensors",
        ),
        (&mut sparse, labels.clone().into_dyn(), "sparse.safetensors"),
    ] {
        let path = dir.path().join(file);
        model.save(&path).unwrap();
        let mut loaded = load_model(&path).unwrap();
        assert_eq!(loaded.metric_names(), model.metric_names());
        let configs = |m: &Sequential| m.metrics().iter().map(|m| m.config()).collect::<Vec<_>>();
        assert_eq!(configs(&loaded), configs(model));
        // Every metric counts as the saved one does, to the bit.
        let (saved, restored) = (
            model.evaluate(&x, &y).unwrap(),
            loaded.evaluate(&x, &y).unwrap(),
        );
        assert_eq!(restored, saved);
        assert_eq!(
            compile_config(&path)["metrics"],
            Value::Array(configs(model))
        );
    }

    // Names stay names in the file; options are kept as Keras writes them.
    let metrics = &compile_config(&dir.path().join("metrics.safetensors"))["metrics"];
    assert_eq!(metrics[0], json!("accuracy"));
    assert_eq!(
        metrics[2],
        json!({"class_name": "AUC", "config": {
            "name": "pr_auc", "num_thresholds": 50, "curve": "PR",
            "summation_method": "minoring", "from_logits": false,
        }})
    );
    assert_eq!(
        metrics[3],
        json!({"class_name": "F1Score", "config": {
            "name": "f1", "average": "weighted", "threshold": 0.4_f32,
        }})
    );
    assert_eq!(
        metrics[7],
        json!({"class_name": "Precision", "config": {
            "name": "precision_at_0_3", "thresholds": 0.3_f32,
        }})
    );
}

#[test]
fn metric_names_of_earlier_files_load_and_bad_metric_configs_are_format_errors() {
    let (x, y) = toy(16);
    let mut model = adam_model(10);
    model.fit((&x, &y), quiet()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    let good = std::fs::read(&path).unwrap();
    let with_metrics = |metrics: Value| {
        let mut file = RawFile::parse(&good);
        let mut compile: Value =
            serde_json::from_str(file.metadata()["compile_config"].as_str().unwrap()).unwrap();
        compile["metrics"] = metrics;
        file.metadata()
            .insert("compile_config".into(), json!(compile.to_string()));
        load_bytes(&file.bytes())
    };

    // Files that keep metrics by name alone, as kerust wrote every metric
    // before metrics had options in the file.
    let loaded = with_metrics(json!([
        "accuracy",
        "precision",
        "sparse_top_k_categorical_accuracy"
    ]))
    .unwrap();
    assert_eq!(
        loaded.metric_names(),
        ["accuracy", "precision", "sparse_top_k_categorical_accuracy"]
    );

    let bad = [
        (
            json!([{"class_name": "F1Score", "config": {"average": "samples"}}]),
            "a saved metric cannot be made: invalid `average` = \"samples\": expected \
             \"macro\", \"micro\" or \"weighted\"",
        ),
        (
            json!([{"class_name": "F1Score", "config": {"average": null}}]),
            "invalid `average` = null: expected \"macro\", \"micro\" or \"weighted\" (Keras' null",
        ),
        (
            json!([{"class_name": "AUC", "config": {"num_thresholds": 1}}]),
            "invalid `num_thresholds` = 1: AUC needs at least 2 thresholds",
        ),
        (
            json!([{"class_name": "AUC", "config": {"multi_label": true}}]),
            "invalid `multi_label` = true: `AUC` has no such option in kerust",
        ),
        (
            json!([{"class_name": "AUC", "config": {"curve": "PRGAIN"}}]),
            "invalid `curve` = \"PRGAIN\": expected \"ROC\" or \"PR\"",
        ),
        (
            json!([{"class_name": "TopKCategoricalAccuracy", "config": {"k": 0}}]),
            "invalid `k` = 0: expected at least 1",
        ),
        (
            json!([{"class_name": "SparseTopKCategoricalAccuracy", "config": {"k": -2}}]),
            "invalid `k` = -2: expected a whole number",
        ),
        (
            json!([{"class_name": "MeanIoU", "config": {}}]),
            "invalid `class_name` = \"MeanIoU\": known metric classes",
        ),
        (json!(["f1_score"]), "pass `F1Score::new(Average::Macro)`"),
        (
            json!([{"name": "auc"}]),
            "expected a metric name, such as \"accuracy\", or an object",
        ),
        (
            json!(["auc", {"class_name": "AUC", "config": {}}]),
            "invalid `metrics` = auc: each metric name must be unique",
        ),
    ];
    for (metrics, needle) in bad {
        let err = format_error(with_metrics(metrics.clone()));
        assert!(err.contains(needle), "{metrics}: {err}");
    }
}

#[test]
fn one_model_gives_the_same_bytes_at_every_save() {
    let mut model = adam_model(1);
    let (x, y) = toy(16);
    model.fit((&x, &y), quiet()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    model.save(&a).unwrap();
    load_model(&a).unwrap().save(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn an_unbuilt_model_or_one_with_repeated_names_is_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    let unbuilt = Sequential::new().add(Dense::new(2));
    assert!(matches!(unbuilt.save(&path), Err(Error::NotBuilt { .. })));

    // `build` refuses twins; a name changed after it, `save` does.
    let mut twins = Sequential::new()
        .input_shape([2])
        .add(Dense::new(2).name("same"))
        .add(Dense::new(2).name("other"));
    twins.build().unwrap();
    twins.layers_mut()[1].set_name("same".to_string());
    let err = message(twins.save(&path));
    assert!(err.contains("\"same\"") && err.contains("unique"), "{err}");
    assert!(!path.exists());
}

#[test]
fn a_file_named_for_keras_formats_is_refused_and_not_written() {
    let dir = tempfile::tempdir().unwrap();
    let mut model = architecture(1);
    model.build().unwrap();
    for name in ["model.keras", "model.h5", "best.weights.h5", "MODEL.HDF5"] {
        let path = dir.path().join(name);
        for result in [model.save(&path), model.save_weights(&path)] {
            let err = result.unwrap_err();
            assert!(
                matches!(&err, Error::InvalidArgument { name, .. } if name == "path"),
                "{err}"
            );
            assert!(err.to_string().contains("`.safetensors`"), "{err}");
        }
        assert!(!path.exists());
    }
    // Any other name, or none, is the user's choice.
    for name in ["model.safetensors", "model", "model.bin"] {
        model.save(dir.path().join(name)).unwrap();
    }
}

#[test]
fn a_failed_save_leaves_the_previous_file_byte_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    let mut model = architecture(1);
    model.build().unwrap();
    model.save(&path).unwrap();
    let before = std::fs::read(&path).unwrap();

    // The new content fails to serialise: nothing is written.
    let mut twins = Sequential::new()
        .input_shape([2])
        .add(Dense::new(2).name("same"))
        .add(Dense::new(2).name("other"));
    twins.build().unwrap();
    twins.layers_mut()[1].set_name("same".to_string());
    assert!(twins.save(&path).is_err());
    assert_eq!(std::fs::read(&path).unwrap(), before);

    // The rename fails (the target is a folder): the folder is untouched
    // and no temporary file is left beside it.
    let occupied = dir.path().join("occupied");
    std::fs::create_dir(&occupied).unwrap();
    std::fs::write(occupied.join("inside"), b"keep").unwrap();
    match model.save(&occupied) {
        Err(Error::Io { path, .. }) => assert_eq!(path, occupied),
        other => panic!("expected Error::Io, got {:?}", other.err()),
    }
    assert_eq!(std::fs::read(occupied.join("inside")).unwrap(), b"keep");
    let mut entries: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    entries.sort();
    assert_eq!(entries, ["model.safetensors", "occupied"]);
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

// ---------------------------------------------------------------------------
// Checkpoints and resumed training

/// Trains `make(seed)` for 4 epochs in one go, and for 2 epochs, saved and
/// loaded, then 2 more; both runs must agree to the bit.
fn check_resume(make: fn(u64) -> Sequential) {
    let (x, y) = toy(48);
    let (vx, vy) = toy(12);
    let options = || quiet().validation_data(&vx, &vy);

    let mut straight = make(11);
    let full = straight.fit(source(&x, &y), options().epochs(4)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ckpt.safetensors");
    let mut first = make(11);
    let early = first.fit(source(&x, &y), options().epochs(2)).unwrap();
    save_checkpoint(&first, &path, 2).unwrap();
    drop(first);

    let (mut resumed, epoch) = load_checkpoint(&path).unwrap();
    assert_eq!(epoch, 2);
    let late = resumed
        .fit(source(&x, &y), options().epochs(4).initial_epoch(epoch))
        .unwrap();

    assert_eq!(bits(&resumed.get_weights()), bits(&straight.get_weights()));
    assert_eq!(late.epochs(), [2, 3]);
    let keys: Vec<&str> = full.keys().collect();
    assert_eq!(late.keys().collect::<Vec<_>>(), keys);
    for key in keys {
        let whole = full.get(key).unwrap();
        assert_eq!(early.get(key).unwrap(), &whole[..2], "{key}, epochs 0-1");
        assert_eq!(late.get(key).unwrap(), &whole[2..], "{key}, epochs 2-3");
    }
    assert_eq!(
        resumed.optimizer().unwrap().state(),
        straight.optimizer().unwrap().state()
    );
}

#[test]
fn resuming_a_checkpoint_reproduces_an_uninterrupted_adam_run_to_the_bit() {
    check_resume(adam_model);
}

#[test]
fn resuming_a_checkpoint_reproduces_an_uninterrupted_sgd_momentum_run_to_the_bit() {
    check_resume(sgd_model);
}

#[test]
fn resuming_a_checkpoint_reproduces_an_uninterrupted_rmsprop_run_to_the_bit() {
    check_resume(rmsprop_model);
}

#[test]
fn resuming_a_checkpoint_reproduces_an_uninterrupted_adamw_run_to_the_bit() {
    check_resume(adamw_model);
}

#[test]
fn resuming_a_checkpoint_reproduces_an_uninterrupted_adagrad_run_to_the_bit() {
    check_resume(adagrad_model);
}

#[test]
fn resuming_a_checkpoint_reproduces_an_uninterrupted_nadam_run_to_the_bit() {
    check_resume(nadam_model);
}

/// A warm-up schedule that starts from a rate of 0: the file saved after
/// that epoch holds a rate of 0, and both a checkpoint and a model file of it
/// load, and the resumed run is the uninterrupted one to the bit.
#[test]
fn a_rate_of_zero_from_a_warm_up_schedule_is_saved_and_resumed() {
    let (x, y) = toy(48);
    let warm_up = || {
        kerust::callbacks::LearningRateScheduler::new(|epoch, _| 0.01 * epoch.min(2) as f32 / 2.0)
    };
    let options = || quiet().callback(warm_up());

    let mut straight = adam_model(5);
    straight.fit(source(&x, &y), options().epochs(3)).unwrap();

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("warm.safetensors");
    let mut first = adam_model(5);
    first.fit(source(&x, &y), options().epochs(1)).unwrap();
    assert_eq!(first.optimizer().unwrap().learning_rate(), 0.0);
    // A rate of 0 trains nothing: the weights are the initial ones.
    let mut initial = adam_model(5);
    initial.build().unwrap();
    assert_eq!(bits(&first.get_weights()), bits(&initial.get_weights()));
    save_checkpoint(&first, &path, 1).unwrap();

    let loaded = load_model(&path).unwrap();
    assert_eq!(loaded.optimizer().unwrap().learning_rate(), 0.0);
    let (mut resumed, epoch) = load_checkpoint(&path).unwrap();
    resumed
        .fit(source(&x, &y), options().epochs(3).initial_epoch(epoch))
        .unwrap();
    assert_eq!(bits(&resumed.get_weights()), bits(&straight.get_weights()));

    // Keras accepts a rate of 0 when the optimizer is made, too.
    let mut frozen = architecture(5);
    frozen
        .compile(
            Adam::new().learning_rate(0.0),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
}

/// The saved file names each optimizer's state arrays, and the loaded model
/// has the optimizer and options it was compiled with.
#[test]
fn new_optimizers_come_back_from_a_file_with_their_options_and_state() {
    let (x, y) = toy(24);
    let dir = tempfile::tempdir().unwrap();
    // How to make the model, the optimizer's name, its slot names.
    type Case = (fn(u64) -> Sequential, &'static str, &'static [&'static str]);
    let cases: [Case; 3] = [
        (adamw_model, "adamw", &["m", "v", "v_hat"]),
        (adagrad_model, "adagrad", &["accumulator"]),
        (nadam_model, "nadam", &["m", "v"]),
    ];
    for (make, name, slots) in cases {
        let mut model = make(3);
        model.fit(source(&x, &y), quiet().epochs(1)).unwrap();
        let path = dir.path().join(format!("{name}.safetensors"));
        model.save(&path).unwrap();
        let loaded = load_model(&path).unwrap();
        let (saved, again) = (model.optimizer().unwrap(), loaded.optimizer().unwrap());
        assert_eq!(again.name(), name);
        assert_eq!(again.config(), saved.config());
        assert_eq!(again.state(), saved.state());
        let state = again.state();
        let mut names: Vec<&str> = state.slots.iter().map(|s| s.0.as_str()).collect();
        names.dedup();
        assert_eq!(names, slots, "{name}");
        // Four weights (two kernels, two biases), one array each per slot.
        assert_eq!(again.state().slots.len(), 4 * slots.len(), "{name}");
    }
}

/// The toy model with a Dropout after its hidden layer, its seed drawn
/// from the model's.
fn dropout_model(seed: u64) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([2, 2])
        .seed(seed)
        .add(Flatten::new())
        .add(Dense::new(6).activation(Activation::Relu))
        .add(Dropout::new(0.3))
        .add(Dense::new(3).activation(Activation::Softmax));
    model
        .compile(
            Adam::new().learning_rate(0.01),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

#[test]
fn resuming_a_checkpoint_with_dropout_drops_the_same_units_as_the_uninterrupted_run() {
    check_resume(dropout_model);
}

#[test]
fn a_model_file_is_not_taken_for_a_checkpoint() {
    let mut model = architecture(0);
    model.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("m.safetensors");
    model.save(&path).unwrap();
    let err = format_error(load_checkpoint(&path));
    assert!(
        err.contains("no `epoch`") && err.contains("load_model"),
        "{err}"
    );
}

// ---------------------------------------------------------------------------
// The ModelCheckpoint callback

#[test]
fn model_checkpoint_writes_the_checkpoint_save_checkpoint_writes() {
    let (x, y) = toy(48);
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("run/ckpt-{epoch:02d}.safetensors");
    let mut model = adam_model(2);
    let options = quiet().epochs(3).callback(ModelCheckpoint::new(&template));
    model.fit(source(&x, &y), options).unwrap();
    for epoch in ["01", "02", "03"] {
        assert!(dir
            .path()
            .join(format!("run/ckpt-{epoch}.safetensors"))
            .exists());
    }

    // The file of epoch 2 is, byte for byte, a checkpoint of a 2-epoch run.
    let mut two = adam_model(2);
    two.fit(source(&x, &y), quiet().epochs(2)).unwrap();
    let reference = dir.path().join("reference.safetensors");
    save_checkpoint(&two, &reference, 2).unwrap();
    let written = std::fs::read(dir.path().join("run/ckpt-02.safetensors")).unwrap();
    assert_eq!(written, std::fs::read(&reference).unwrap());
}

#[test]
fn save_best_only_saves_the_epochs_that_improve_the_monitored_value() {
    let (x, y) = toy(48);
    let (vx, vy) = toy(12);
    for (monitor, mode, larger_is_better) in [
        ("val_loss", Mode::Auto, false),
        ("val_accuracy", Mode::Auto, true),
        ("loss", Mode::Max, true),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let checkpoint = ModelCheckpoint::new(dir.path().join("e{epoch}-{val_loss:.4f}"))
            .monitor(monitor)
            .mode(mode)
            .save_best_only(true);
        let mut model = sgd_model(4);
        let options = quiet()
            .epochs(6)
            .validation_data(&vx, &vy)
            .callback(checkpoint);
        let history = model.fit(source(&x, &y), options).unwrap();

        let mut expected = Vec::new();
        let mut best: Option<f64> = None;
        let values = history.get(monitor).unwrap();
        for (epoch, &value) in values.iter().enumerate() {
            let better = match best {
                None => true,
                Some(b) if larger_is_better => value > b,
                Some(b) => value < b,
            };
            if better {
                best = Some(value);
                let val_loss = history.get("val_loss").unwrap()[epoch];
                expected.push(format!("e{}-{val_loss:.4}", epoch + 1));
            }
        }
        let mut written: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        written.sort();
        expected.sort();
        assert_eq!(written, expected, "{monitor} ({mode})");
    }
}

#[test]
fn a_checkpoint_named_for_keras_is_refused_before_the_first_step() {
    let (x, y) = toy(16);
    let dir = tempfile::tempdir().unwrap();
    for name in ["best.keras", "{epoch:02d}.weights.h5"] {
        let mut model = adam_model(0);
        let before = model.get_weights();
        let checkpoint = ModelCheckpoint::new(dir.path().join(name));
        let err = model
            .fit((&x, &y), quiet().callback(checkpoint))
            .unwrap_err();
        assert!(
            matches!(&err, Error::InvalidArgument { name, .. } if name == "path"),
            "{err}"
        );
        assert_eq!(model.get_weights(), before, "{name}: no step was taken");
    }
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
}

#[test]
fn a_placeholder_for_a_key_not_logged_is_named_as_the_file_path_s() {
    let (x, y) = toy(16);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = ModelCheckpoint::new(dir.path().join("m-{val_accuracy:.3f}.safetensors"));
    let err = adam_model(0)
        .fit((&x, &y), quiet().callback(checkpoint))
        .unwrap_err();
    match &err {
        Error::InvalidArgument {
            name,
            value,
            reason,
        } => {
            assert_eq!(name, "filepath");
            assert_eq!(value, "{val_accuracy}");
            assert!(reason.contains("placeholder"), "{err}");
            assert!(
                reason.ends_with("available: epoch, loss, accuracy, learning_rate"),
                "{err}"
            );
        }
        other => panic!("expected InvalidArgument, got {other:?}"),
    }
}

#[test]
fn save_best_only_without_the_monitored_key_is_a_missing_metric_error() {
    let (x, y) = toy(16);
    let dir = tempfile::tempdir().unwrap();
    let checkpoint = ModelCheckpoint::new(dir.path().join("best")).save_best_only(true);
    let mut model = adam_model(0);
    match model.fit((&x, &y), quiet().callback(checkpoint)) {
        Err(Error::MissingMetric {
            callback,
            key,
            available,
        }) => {
            assert_eq!(callback, "ModelCheckpoint");
            assert_eq!(key, "val_loss");
            assert_eq!(available, "loss, accuracy, learning_rate");
        }
        other => panic!("expected MissingMetric, got {:?}", other.err()),
    }
}

#[test]
fn a_bad_template_stops_fit_before_the_first_epoch() {
    let (x, y) = toy(16);
    let dir = tempfile::tempdir().unwrap();
    for (checkpoint, needle) in [
        (
            ModelCheckpoint::new(dir.path().join("m-{epoch")),
            "not closed",
        ),
        (
            ModelCheckpoint::new(dir.path().join("m-{loss:x}")),
            "not supported",
        ),
    ] {
        let mut model = adam_model(0);
        let err = message(model.fit((&x, &y), quiet().callback(checkpoint)));
        assert!(err.contains(needle), "{err}");
        assert_eq!(model.optimizer().unwrap().iterations(), 0);
    }
}

#[test]
fn weights_only_checkpoints_load_into_a_model_but_not_as_one() {
    let (x, y) = toy(32);
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("weights.safetensors");
    let checkpoint = ModelCheckpoint::new(&path).save_weights_only(true);
    let mut model = adam_model(6);
    model
        .fit((&x, &y), quiet().epochs(2).callback(checkpoint))
        .unwrap();

    let err = format_error(load_model(&path));
    assert!(
        err.contains("no `model_config`") && err.contains("load_weights"),
        "{err}"
    );
    let mut other = architecture(99);
    other.load_weights(&path).unwrap();
    assert_eq!(other.predict(&x).unwrap(), model.predict(&x).unwrap());
}

// ---------------------------------------------------------------------------
// Weights alone

#[test]
fn weights_move_between_models_of_one_architecture() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let mut trained = adam_model(8);
    let (x, y) = toy(32);
    trained.fit((&x, &y), quiet()).unwrap();
    trained.save_weights(&path).unwrap();

    // An unbuilt model with an input shape is built first.
    let mut fresh = architecture(9);
    fresh.load_weights(&path).unwrap();
    assert_eq!(bits(&fresh.get_weights()), bits(&trained.get_weights()));

    // A full model file gives its weights too.
    let full = dir.path().join("full.safetensors");
    trained.save(&full).unwrap();
    let mut again = architecture(10);
    again.load_weights(&full).unwrap();
    assert_eq!(bits(&again.get_weights()), bits(&trained.get_weights()));
}

#[test]
fn weights_of_another_architecture_are_refused_and_the_model_kept() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    let mut model = architecture(1);
    model.build().unwrap();
    model.save_weights(&path).unwrap();

    let mut wider = Sequential::new()
        .input_shape([2, 2])
        .add(Flatten::new())
        .add(Dense::new(7))
        .add(ReLU::new())
        .add(Dense::new(3))
        .add(Softmax::new());
    wider.build().unwrap();
    let before = wider.get_weights();
    let err = format_error(wider.load_weights(&path));
    assert!(
        err.contains("`dense/kernel` has shape [4, 6] in the file, but the model's is [4, 7]"),
        "{err}"
    );
    assert_eq!(wider.get_weights(), before);

    let mut renamed = Sequential::new()
        .input_shape([2, 2])
        .add(Flatten::new())
        .add(Dense::new(6).name("hidden"))
        .add(ReLU::new())
        .add(Dense::new(3))
        .add(Softmax::new());
    let err = format_error(renamed.load_weights(&path));
    assert!(
        err.contains("`hidden/kernel` [4, 6] is not in the file"),
        "{err}"
    );

    let mut shorter = Sequential::new()
        .input_shape([2, 2])
        .add(Flatten::new())
        .add(Dense::new(6));
    let err = format_error(shorter.load_weights(&path));
    assert!(
        err.contains("`dense_1/bias` is no weight of the model"),
        "{err}"
    );

    let mut shapeless = Sequential::new().add(Dense::new(6));
    assert!(matches!(
        shapeless.load_weights(&path),
        Err(Error::NotBuilt { .. })
    ));
}

#[test]
fn weights_written_by_another_program_load_by_name() {
    // A plain safetensors file, without kerust's metadata.
    let mut model = architecture(3);
    model.build().unwrap();
    let weights = model.get_weights();
    let names = [
        "dense/kernel",
        "dense/bias",
        "dense_1/kernel",
        "dense_1/bias",
    ];
    let bytes: Vec<Vec<u8>> = weights
        .iter()
        .map(|w| w.iter().flat_map(|v| v.to_le_bytes()).collect())
        .collect();
    let views: Vec<(&str, safetensors::tensor::TensorView<'_>)> = names
        .iter()
        .zip(&weights)
        .zip(&bytes)
        .map(|((name, w), b)| {
            let view = safetensors::tensor::TensorView::new(
                safetensors::Dtype::F32,
                w.shape().to_vec(),
                b,
            )
            .unwrap();
            (*name, view)
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("exported.safetensors");
    std::fs::write(&path, safetensors::serialize(views, None).unwrap()).unwrap();

    let mut fresh = architecture(4);
    fresh.load_weights(&path).unwrap();
    assert_eq!(fresh.get_weights(), weights);
    let err = format_error(load_model(&path));
    assert!(err.contains("no `__metadata__`"), "{err}");
}

// ---------------------------------------------------------------------------
// Python's safetensors reads the weights

#[test]
fn python_safetensors_reads_the_weights_as_they_are() {
    const SCRIPT: &str = r#"
import json, sys
try:
    import numpy
    from safetensors import safe_open
    from safetensors.numpy import load_file
except ImportError as error:
    print("missing:", error)
    sys.exit(3)
tensors = load_file(sys.argv[1])
with safe_open(sys.argv[1], framework="np") as f:
    metadata = f.metadata()
print(json.dumps({
    "metadata": metadata,
    "tensors": {
        name: {"dtype": str(t.dtype), "shape": list(t.shape), "values": t.ravel().tolist()}
        for name, t in tensors.items()
    },
}))
"#;
    let mut model = adam_model(12);
    let (x, y) = toy(32);
    model.fit((&x, &y), quiet()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("model.safetensors");
    model.save(&path).unwrap();

    let output = match Command::new("python3")
        .arg("-c")
        .arg(SCRIPT)
        .arg(&path)
        .output()
    {
        Ok(output) => output,
        Err(e) => {
            println!("SKIPPED python_safetensors_reads_the_weights_as_they_are: python3: {e}");
            return;
        }
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    if output.status.code() == Some(3) {
        println!(
            "SKIPPED python_safetensors_reads_the_weights_as_they_are: {} \
             (pip install safetensors numpy)",
            stdout.trim()
        );
        return;
    }
    assert!(
        output.status.success(),
        "python failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let seen: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(seen["metadata"]["format"], "kerust");
    assert_eq!(seen["metadata"]["format_version"], "1");

    let tensors = seen["tensors"].as_object().unwrap();
    let mut count = 0;
    for layer in model.layers() {
        for (weight, values) in layer.weights() {
            let name = format!("{}/{weight}", layer.name());
            let tensor = &tensors[&name];
            assert_eq!(tensor["dtype"], "float32", "{name}");
            assert_eq!(tensor["shape"], json!(values.shape()), "{name}");
            // Python prints each float32 exactly, as a float64.
            let read: Vec<u32> = tensor["values"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| (v.as_f64().unwrap() as f32).to_bits())
                .collect();
            let written: Vec<u32> = values.iter().map(|v| v.to_bits()).collect();
            assert_eq!(read, written, "{name}");
            count += 1;
        }
    }
    assert_eq!(count, 4);
    // Adam's moments, one per weight and moment.
    let slots = tensors
        .keys()
        .filter(|k| k.starts_with("optimizer/"))
        .count();
    assert_eq!(slots, 8);
}

// ---------------------------------------------------------------------------
// A layer of the program's own

/// Keras' `ELU`, `x` where `x > 0` and `alpha * (exp(x) - 1)` elsewhere, a
/// layer kerust does not ship.
#[derive(Debug, Clone)]
struct Elu {
    name: String,
    alpha: f32,
}

impl Elu {
    fn from_config(config: &Value) -> kerust::Result<Self> {
        let alpha = config["alpha"]
            .as_f64()
            .ok_or_else(|| Error::invalid("alpha", &config["alpha"], "expected a number"))?;
        Ok(Elu {
            name: config["name"].as_str().unwrap_or("").to_string(),
            alpha: alpha as f32,
        })
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

    fn build(&mut self, input_shape: &[usize], _: &mut dyn RngCore) -> kerust::Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }

    fn forward(
        &self,
        input: ArrayViewD<'_, f32>,
        output: &mut ArrayD<f32>,
        _: bool,
    ) -> kerust::Result<()> {
        *output = input.mapv(|v| if v > 0.0 { v } else { self.alpha * v.exp_m1() });
        Ok(())
    }

    fn backward(
        &mut self,
        input: ArrayViewD<'_, f32>,
        _: ArrayViewD<'_, f32>,
        grad_output: ArrayViewD<'_, f32>,
        grad_input: Option<&mut ArrayD<f32>>,
    ) -> kerust::Result<()> {
        if let Some(grad_input) = grad_input {
            let slope = input.mapv(|v| if v > 0.0 { 1.0 } else { self.alpha * v.exp() });
            *grad_input = &slope * &grad_output;
        }
        Ok(())
    }

    fn config(&self) -> Value {
        json!({ "name": self.name, "alpha": self.alpha })
    }
}

#[test]
fn an_unknown_layer_names_its_class_and_how_to_register_it() {
    let mut model = Sequential::new()
        .input_shape([3])
        .add(Dense::new(4))
        .add(Elu {
            name: String::new(),
            alpha: 0.5,
        })
        .add(Dense::new(2));
    model.build().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("elu.safetensors");
    model.save(&path).unwrap();

    let err = format_error(load_model(&path));
    assert!(err.contains("\"ELU\""), "{err}");
    assert!(err.contains("layer 1 (`elu`)"), "{err}");
    assert!(
        err.contains(".register(\"ELU\", |config| Ok(Box::new(ELU::from_config"),
        "{err}"
    );
    assert!(err.contains("load_model_with"), "{err}");

    let registry = LayerRegistry::with_builtins()
        .register("ELU", |config| Ok(Box::new(Elu::from_config(config)?)));
    let mut loaded = load_model_with(&path, &registry).unwrap();
    let x = ndarray::array![[1.0_f32, -2.0, 0.5], [-1.0, 0.0, 3.0]];
    assert_eq!(loaded.predict(&x).unwrap(), model.predict(&x).unwrap());
    assert_eq!(
        loaded.layers()[1].config(),
        json!({ "name": "elu", "alpha": 0.5 })
    );
}

/// Reshape -> Dense(8) -> LayerNormalization -> LeakyReLU -> Dense(3) ->
/// Activation("softmax"): the layers of `layers2.json`, each with options
/// away from their defaults.
fn layers2_architecture(seed: u64) -> Sequential {
    Sequential::new()
        .input_shape([2, 2])
        .seed(seed)
        .add(Reshape::new([-1]))
        .add(Dense::new(8))
        .add(LayerNormalization::new().epsilon(1e-5))
        .add(LeakyReLU::new().negative_slope(0.05))
        .add(Dense::new(3))
        .add(ActivationLayer::new(Activation::Softmax))
}

fn layers2_model(seed: u64) -> Sequential {
    let mut model = layers2_architecture(seed);
    model
        .compile(
            Adam::new().learning_rate(0.01),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

/// A trained model of every layer of `layers2.json` comes back with its
/// configs, weights and summary, predicts to the bit, gives the same bytes
/// when saved again, and resumes from a checkpoint to the bit.
#[test]
fn reshape_layer_normalization_leaky_relu_and_activation_survive_a_file() {
    let (x, y) = toy(48);
    let mut model = layers2_model(4);
    model.fit(source(&x, &y), quiet().epochs(2)).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (dir.path().join("a"), dir.path().join("b"));
    model.save(&a).unwrap();

    let mut loaded = load_model(&a).unwrap();
    let predictions = |m: &mut Sequential| vec![m.predict(&x).unwrap().into_dyn()];
    assert_eq!(
        bits(&predictions(&mut loaded)),
        bits(&predictions(&mut model))
    );
    assert_eq!(bits(&loaded.get_weights()), bits(&model.get_weights()));
    let configs = |m: &Sequential| -> Vec<(String, Value)> {
        m.layers()
            .iter()
            .map(|l| (l.class_name().to_string(), l.config()))
            .collect()
    };
    assert_eq!(configs(&loaded), configs(&model));
    assert_eq!(
        configs(&model)[2..4],
        [
            (
                "LayerNormalization".to_string(),
                json!({
                    "name": "layer_normalization", "axis": -1, "epsilon": 1e-5,
                    "center": true, "scale": true, "beta_initializer": "zeros",
                    "gamma_initializer": "ones",
                })
            ),
            (
                "LeakyReLU".to_string(),
                json!({ "name": "leaky_re_lu", "negative_slope": 0.05 })
            ),
        ]
    );
    assert_eq!(
        configs(&model)[0].1,
        json!({ "name": "reshape", "target_shape": [-1] })
    );
    assert_eq!(
        configs(&model)[5].1,
        json!({ "name": "activation", "activation": "softmax" })
    );
    assert_eq!(loaded.summary().to_string(), model.summary().to_string());
    assert_eq!(
        loaded.evaluate(&x, &y).unwrap(),
        model.evaluate(&x, &y).unwrap()
    );
    loaded.save(&b).unwrap();
    assert_eq!(std::fs::read(&a).unwrap(), std::fs::read(&b).unwrap());
}

#[test]
fn resuming_a_checkpoint_with_layer_normalization_reproduces_the_uninterrupted_run() {
    check_resume(layers2_model);
}

// ---------------------------------------------------------------------------
// Damaged files

/// A safetensors file taken apart: its JSON header and its data bytes, put
/// together again by `bytes` with any edit to the header.
struct RawFile {
    header: serde_json::Map<String, Value>,
    data: Vec<u8>,
}

impl RawFile {
    fn parse(bytes: &[u8]) -> Self {
        let n = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
        RawFile {
            header: serde_json::from_slice(&bytes[8..8 + n]).unwrap(),
            data: bytes[8 + n..].to_vec(),
        }
    }

    /// The parts of `bytes`, if its header is a JSON object.
    fn try_parse(bytes: &[u8]) -> Option<Self> {
        let n = usize::try_from(u64::from_le_bytes(*bytes.first_chunk::<8>()?)).ok()?;
        let header = bytes.get(8..8_usize.checked_add(n)?)?;
        Some(RawFile {
            header: serde_json::from_slice(header).ok()?,
            data: bytes[8 + n..].to_vec(),
        })
    }

    fn bytes(&self) -> Vec<u8> {
        let mut text = serde_json::to_vec(&self.header).unwrap();
        text.resize(text.len().div_ceil(8) * 8, b' ');
        let mut bytes = (text.len() as u64).to_le_bytes().to_vec();
        bytes.extend(text);
        bytes.extend(&self.data);
        bytes
    }

    fn metadata(&mut self) -> &mut serde_json::Map<String, Value> {
        self.header["__metadata__"].as_object_mut().unwrap()
    }

    /// Removes a tensor and its bytes, moving the later tensors' offsets.
    fn remove(&mut self, name: &str) {
        let info = self.header.remove(name).unwrap();
        let (start, end) = offsets(&info);
        self.data.drain(start..end);
        for (key, other) in self.header.iter_mut() {
            if key == "__metadata__" {
                continue;
            }
            let (s, e) = offsets(other);
            if s >= end {
                other["data_offsets"] = json!([s - (end - start), e - (end - start)]);
            }
        }
    }
}

fn offsets(info: &Value) -> (usize, usize) {
    let o = &info["data_offsets"];
    (
        o[0].as_u64().unwrap() as usize,
        o[1].as_u64().unwrap() as usize,
    )
}

/// A trained, compiled model's checkpoint, as bytes.
fn checkpoint_bytes() -> Vec<u8> {
    let (x, y) = toy(24);
    let mut model = adam_model(21);
    model.fit((&x, &y), quiet()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.safetensors");
    save_checkpoint(&model, &path, 1).unwrap();
    std::fs::read(path).unwrap()
}

/// Writes `bytes` to a file and loads it as a model.
fn load_bytes(bytes: &[u8]) -> kerust::Result<Sequential> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("damaged.safetensors");
    std::fs::write(&path, bytes).unwrap();
    load_model(&path)
}

#[test]
fn empty_truncated_and_random_files_are_format_errors() {
    let good = checkpoint_bytes();
    assert!(load_bytes(&good).is_ok());

    let err = format_error(load_bytes(&[]));
    assert!(err.contains("the file is empty"), "{err}");

    let header = u64::from_le_bytes(good[..8].try_into().unwrap()) as usize;
    let mut truncations = 0;
    for end in (1..good.len()).step_by(7) {
        let err = format_error(load_bytes(&good[..end]));
        let expected = if end < 8 {
            "bytes long"
        } else if end < 8 + header {
            "header length field says"
        } else {
            "data_offsets do not end where the file does"
        };
        assert!(err.contains(expected), "cut at {end}: {err}");
        truncations += 1;
    }
    assert!(truncations > 100, "{truncations} truncations");

    let mut rng = stream(5, Purpose::User(1), 0, 0);
    for length in [1, 8, 9, 64, 1000, good.len()] {
        let mut random = vec![0u8; length];
        rng.fill_bytes(&mut random);
        format_error(load_bytes(&random));
        if length >= 8 {
            // A plausible header length before random bytes.
            random[..8].copy_from_slice(&((length - 8) as u64).to_le_bytes());
            format_error(load_bytes(&random));
        }
    }
}

#[test]
fn a_picture_given_as_a_model_is_named_for_what_it_is() {
    let digits = std::path::Path::new("tests/fixtures/drawn-digits");
    let mut seen = std::collections::BTreeSet::new();
    for entry in std::fs::read_dir(digits).unwrap() {
        let path = entry.unwrap().path();
        let Some(extension) = path.extension().and_then(|e| e.to_str()) else {
            continue;
        };
        let kind = match extension {
            "png" => "PNG",
            "jpg" => "JPEG",
            _ => continue,
        };
        if !seen.insert(kind) {
            continue;
        }
        let err = format_error(load_model(&path));
        assert!(
            err.contains(&format!("a {kind} picture, not a safetensors model file")),
            "{}: {err}",
            path.display()
        );
    }
    assert_eq!(seen.len(), 2);
    // A GIF and a BMP header before a few bytes: refused the same way.
    for (bytes, kind) in [
        (&b"GIF89a\x1c\x00\x1c\x00\xf0\x00\x00"[..], "GIF"),
        (&b"BM\x36\x0c\x00\x00\x00\x00\x00\x00\x36\x00"[..], "BMP"),
    ] {
        let err = format_error(load_bytes(bytes));
        assert!(err.contains(&format!("a {kind} picture")), "{err}");
    }
}

/// A change to a file's header, for the hand-made damage cases.
type Edit = Box<dyn Fn(&mut RawFile)>;

#[test]
fn a_header_that_lies_about_offsets_shapes_or_dtypes_is_a_format_error() {
    let good = checkpoint_bytes();
    let edits: Vec<(&str, Edit, &str)> = vec![
        (
            "offsets beyond the file",
            Box::new(|f| {
                let (s, e) = offsets(&f.header["dense_1/kernel"]);
                f.header["dense_1/kernel"]["data_offsets"] = json!([s, e + 4000]);
            }),
            "data_offsets",
        ),
        (
            "a shape whose product does not match the bytes",
            Box::new(|f| f.header["dense/bias"]["shape"] = json!([7])),
            "data_offsets do not span its shape",
        ),
        (
            "an F16 weight",
            Box::new(|f| {
                f.header["dense/bias"]["dtype"] = json!("F16");
                f.header["dense/bias"]["shape"] = json!([12]);
            }),
            "tensor `dense/bias` has dtype F16, expected F32",
        ),
        (
            "an I32 weight",
            Box::new(|f| f.header["dense_1/kernel"]["dtype"] = json!("I32")),
            "tensor `dense_1/kernel` has dtype I32, expected F32",
        ),
        (
            "an unknown dtype",
            Box::new(|f| f.header["dense/bias"]["dtype"] = json!("F31")),
            "not a valid safetensors JSON header",
        ),
        (
            "an unknown format version",
            Box::new(|f| {
                f.metadata().insert("format_version".into(), json!("2"));
            }),
            "format version \"2\" is not supported: this build of kerust reads version 1",
        ),
        (
            "another format",
            Box::new(|f| {
                f.metadata().insert("format".into(), json!("pt"));
            }),
            "`format` is \"pt\", expected \"kerust\"",
        ),
        (
            "no metadata",
            Box::new(|f| {
                f.header.remove("__metadata__");
            }),
            "no `__metadata__`",
        ),
        (
            "no format version",
            Box::new(|f| {
                f.metadata().remove("format_version");
            }),
            "the metadata has no `format_version`",
        ),
        (
            "no model config",
            Box::new(|f| {
                f.metadata().remove("model_config");
            }),
            "no `model_config`",
        ),
        (
            "a model config that is not JSON",
            Box::new(|f| {
                f.metadata()
                    .insert("model_config".into(), json!("{\"name\": "));
            }),
            "`model_config` is not a model config",
        ),
        (
            "a weight missing",
            Box::new(|f| f.remove("dense_1/bias")),
            "weight `dense_1/bias` [3] is not in the file",
        ),
        (
            "a weight of another shape than the config makes",
            Box::new(|f| f.header["dense/bias"]["shape"] = json!([2, 3])),
            "weight `dense/bias` has shape [2, 3] in the file, but the model's is [6]",
        ),
        (
            "units that do not match the kernel",
            Box::new(|f| {
                let config = f.metadata()["model_config"].as_str().unwrap().to_string();
                let edited = config.replacen("\"units\":6", "\"units\":600000000", 1);
                assert_ne!(config, edited);
                f.metadata().insert("model_config".into(), json!(edited));
            }),
            "`dense/kernel` has shape [4, 6] in the file, but the model config makes it \
             [4, 600000000]",
        ),
        (
            "an input shape that does not match the kernel",
            Box::new(|f| {
                let config = f.metadata()["model_config"].as_str().unwrap().to_string();
                let edited = config.replacen("\"input_shape\":[2,2]", "\"input_shape\":[9,9]", 1);
                assert_ne!(config, edited);
                f.metadata().insert("model_config".into(), json!(edited));
            }),
            "but the model config makes it [81, 6]",
        ),
        (
            "an optimizer moment missing",
            Box::new(|f| f.remove("optimizer/v/2")),
            "tensor `optimizer/v/2` is missing",
        ),
        (
            "an optimizer moment of the wrong length",
            Box::new(|f| {
                let (s, e) = offsets(&f.header["optimizer/m/1"]);
                f.header["optimizer/m/1"]["shape"] = json!([2, (e - s) / 8]);
            }),
            "tensor `optimizer/m/1` has shape [2, 3], expected [6]",
        ),
        (
            "an optimizer moment of a weight that does not exist",
            Box::new(|f| {
                let info = f.header.remove("optimizer/m/3").unwrap();
                f.header.insert("optimizer/m/9".into(), info);
            }),
            "optimizer state of weight 9, but the model has 4 trainable weights",
        ),
        (
            "an unknown optimizer",
            Box::new(|f| {
                let compile = f.metadata()["compile_config"].as_str().unwrap().to_string();
                let edited = compile.replacen("\"adam\"", "\"ftrl\"", 1);
                f.metadata().insert("compile_config".into(), json!(edited));
            }),
            "the saved optimizer cannot be made: invalid `optimizer` = \"ftrl\"",
        ),
        (
            "an iteration count that is not a number",
            Box::new(|f| {
                f.metadata()
                    .insert("optimizer_iterations".into(), json!("many"));
            }),
            "`optimizer_iterations` is \"many\", expected a whole number",
        ),
        (
            "an iteration count beyond Keras' int64",
            Box::new(|f| {
                f.metadata()
                    .insert("optimizer_iterations".into(), json!(u64::MAX.to_string()));
            }),
            "expected a whole number up to 9223372036854775807",
        ),
        (
            "a layer whose config does not make it",
            Box::new(|f| {
                let config = f.metadata()["model_config"].as_str().unwrap().to_string();
                let edited =
                    config.replacen("\"activation\":\"linear\"", "\"activation\":\"swish\"", 1);
                assert_ne!(config, edited);
                f.metadata().insert("model_config".into(), json!(edited));
            }),
            "layer 1 (`dense`, Dense) cannot be made from its config",
        ),
    ];
    for (what, edit, needle) in edits {
        let mut file = RawFile::parse(&good);
        edit(&mut file);
        let err = format_error(load_bytes(&file.bytes()));
        assert!(err.contains(needle), "{what}: {err}");
        assert!(err.contains("damaged.safetensors"), "{what}: {err}");
    }
}

// ---------------------------------------------------------------------------
// Fuzzing the loader from a small corpus

fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/saving")
}

const CORPUS: [&str; 3] = [
    "model.safetensors",
    "checkpoint.safetensors",
    "weights.safetensors",
];

/// The inputs the regression test predicts on.
fn fixture_inputs() -> Array3<f32> {
    toy(6).0
}

/// Writes the corpus. Run on purpose, after a change of format version:
/// `cargo test --test saving -- --ignored write_fixtures`.
#[test]
#[ignore = "rewrites tests/fixtures/saving"]
fn write_fixtures() {
    let dir = fixtures();
    std::fs::create_dir_all(&dir).unwrap();
    let (x, y) = toy(24);
    let mut model = adam_model(42);
    model.fit(source(&x, &y), quiet().epochs(2)).unwrap();
    model.save(dir.join(CORPUS[0])).unwrap();
    save_checkpoint(&model, dir.join(CORPUS[1]), 2).unwrap();
    model.save_weights(dir.join(CORPUS[2])).unwrap();
    let weight_bits = bits(&model.get_weights());
    let predictions: Vec<f32> = model
        .predict(&fixture_inputs())
        .unwrap()
        .iter()
        .copied()
        .collect();
    let expected = json!({
        "about": "the weights (float32 bits, in get_weights order) of the model in \
                  model.safetensors, and its predictions on toy(6) of tests/saving.rs",
        "weight_bits": weight_bits,
        "predictions": predictions,
    });
    std::fs::write(dir.join("expected.json"), expected.to_string()).unwrap();
}

#[test]
fn files_of_format_version_1_keep_loading_with_their_weights() {
    let expected: Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("expected.json")).unwrap()).unwrap();
    let weight_bits: Vec<Vec<u32>> =
        serde_json::from_value(expected["weight_bits"].clone()).unwrap();
    let predictions: Vec<f32> = serde_json::from_value(expected["predictions"].clone()).unwrap();
    let check = |model: &mut Sequential, what: &str| {
        assert_eq!(bits(&model.get_weights()), weight_bits, "{what}");
        let probs = model.predict(&fixture_inputs()).unwrap();
        for (i, (p, e)) in probs.iter().zip(&predictions).enumerate() {
            assert!(
                (p - e).abs() <= 1e-6,
                "{what}: prediction {i} is {p}, expected {e}"
            );
        }
    };

    let mut model = load_model(fixtures().join(CORPUS[0])).unwrap();
    check(&mut model, "model");
    assert_eq!(model.optimizer().unwrap().iterations(), 6);
    let (mut resumed, epoch) = load_checkpoint(fixtures().join(CORPUS[1])).unwrap();
    assert_eq!(epoch, 2);
    check(&mut resumed, "checkpoint");
    let mut fresh = architecture(0);
    fresh.load_weights(fixtures().join(CORPUS[2])).unwrap();
    check(&mut fresh, "weights");
}

/// One change to a file's bytes.
#[derive(Debug, Clone)]
enum Mutation {
    Flip {
        at: usize,
        mask: u8,
    },
    Truncate {
        at: usize,
    },
    Insert {
        at: usize,
        bytes: Vec<u8>,
    },
    Remove {
        at: usize,
        len: usize,
    },
    Overwrite {
        at: usize,
        bytes: Vec<u8>,
    },
    /// Gives a tensor of the header (picked by position) another shape.
    Shape {
        pick: usize,
        shape: Vec<usize>,
    },
    /// Gives a tensor other data offsets.
    Offsets {
        pick: usize,
        start: usize,
        end: usize,
    },
    /// Gives a tensor another dtype.
    Dtype {
        pick: usize,
        dtype: &'static str,
    },
    /// Replaces a number inside a metadata value (configs, counts).
    MetadataNumber {
        pick: usize,
        nth: usize,
        value: u64,
    },
}

impl Mutation {
    /// Applies the change; positions are taken modulo the file's length.
    fn apply(&self, bytes: &mut Vec<u8>) {
        let n = bytes.len().max(1);
        match self {
            Mutation::Flip { at, mask } => {
                if let Some(b) = bytes.get_mut(at % n) {
                    *b ^= mask;
                }
            }
            Mutation::Truncate { at } => bytes.truncate(at % n),
            Mutation::Insert { at, bytes: new } => {
                let at = (at % n).min(bytes.len());
                bytes.splice(at..at, new.iter().copied());
            }
            Mutation::Remove { at, len } => {
                let at = (at % n).min(bytes.len());
                let end = (at + len).min(bytes.len());
                bytes.drain(at..end);
            }
            Mutation::Overwrite { at, bytes: new } => {
                for (i, &b) in new.iter().enumerate() {
                    if let Some(slot) = bytes.get_mut((at + i) % n) {
                        *slot = b;
                    }
                }
            }
            structural => {
                // Edits of the header need a header that still parses.
                if let Some(mut file) = RawFile::try_parse(bytes) {
                    structural.edit_header(&mut file);
                    *bytes = file.bytes();
                }
            }
        }
    }

    fn edit_header(&self, file: &mut RawFile) {
        let names: Vec<String> = file
            .header
            .keys()
            .filter(|k| *k != "__metadata__")
            .cloned()
            .collect();
        let tensor = |pick: &usize| names.get(pick % names.len().max(1)).cloned();
        match self {
            Mutation::Shape { pick, shape } => {
                if let Some(name) = tensor(pick) {
                    file.header[&name]["shape"] = json!(shape);
                }
            }
            Mutation::Offsets { pick, start, end } => {
                if let Some(name) = tensor(pick) {
                    file.header[&name]["data_offsets"] = json!([start, end]);
                }
            }
            Mutation::Dtype { pick, dtype } => {
                if let Some(name) = tensor(pick) {
                    file.header[&name]["dtype"] = json!(dtype);
                }
            }
            Mutation::MetadataNumber { pick, nth, value } => {
                let Some(metadata) = file.header.get_mut("__metadata__") else {
                    return;
                };
                let Some(metadata) = metadata.as_object_mut() else {
                    return;
                };
                let keys: Vec<String> = metadata.keys().cloned().collect();
                let Some(key) = keys.get(pick % keys.len().max(1)) else {
                    return;
                };
                if let Some(text) = metadata[key].as_str() {
                    let edited = replace_number(text, *nth, *value);
                    metadata.insert(key.clone(), json!(edited));
                }
            }
            _ => {}
        }
    }
}

/// `text` with its `nth` run of digits (modulo their count) replaced by
/// `value`.
fn replace_number(text: &str, nth: usize, value: u64) -> String {
    let mut runs = Vec::new();
    let mut start = None;
    for (i, c) in text.char_indices().chain([(text.len(), ' ')]) {
        match (c.is_ascii_digit(), start) {
            (true, None) => start = Some(i),
            (false, Some(s)) => {
                runs.push((s, i));
                start = None;
            }
            _ => {}
        }
    }
    match runs.get(nth % runs.len().max(1)) {
        Some(&(s, e)) => format!("{}{value}{}", &text[..s], &text[e..]),
        None => text.to_string(),
    }
}

fn mutation() -> impl Strategy<Value = Mutation> {
    // Header bytes are where most of the structure is: aim half the changes
    // at the first 2 KiB.
    let position = prop_oneof![0usize..2048, any::<usize>()];
    let some_bytes = proptest::collection::vec(any::<u8>(), 1..16);
    prop_oneof![
        4 => (position.clone(), 1u8..=255).prop_map(|(at, mask)| Mutation::Flip { at, mask }),
        1 => position.clone().prop_map(|at| Mutation::Truncate { at }),
        2 => (position.clone(), some_bytes.clone())
            .prop_map(|(at, bytes)| Mutation::Insert { at, bytes }),
        1 => (position.clone(), 1usize..64).prop_map(|(at, len)| Mutation::Remove { at, len }),
        2 => (position, some_bytes).prop_map(|(at, bytes)| Mutation::Overwrite { at, bytes }),
        1 => (any::<usize>(), proptest::collection::vec(dimension(), 0..4))
            .prop_map(|(pick, shape)| Mutation::Shape { pick, shape }),
        1 => (any::<usize>(), dimension(), dimension())
            .prop_map(|(pick, start, end)| Mutation::Offsets { pick, start, end }),
        1 => (any::<usize>(), proptest::sample::select(DTYPES.to_vec()))
            .prop_map(|(pick, dtype)| Mutation::Dtype { pick, dtype }),
        2 => (any::<usize>(), any::<usize>(), number())
            .prop_map(|(pick, nth, value)| Mutation::MetadataNumber { pick, nth, value }),
    ]
}

/// The dtypes safetensors names, and one it does not.
const DTYPES: [&str; 10] = [
    "F32", "F16", "BF16", "F64", "I32", "I64", "U8", "BOOL", "F4", "F31",
];

/// A length or offset: small, near a real one, or huge.
fn dimension() -> impl Strategy<Value = usize> {
    prop_oneof![0usize..8, 0usize..4096, any::<usize>(), Just(usize::MAX)]
}

/// A number written into a config: small, large, or the largest.
fn number() -> impl Strategy<Value = u64> {
    prop_oneof![0u64..10, 0u64..100_000, any::<u64>(), Just(u64::MAX)]
}

/// Fuzz cases: 2000, or `KERUST_FUZZ_CASES`.
fn fuzz_cases() -> u32 {
    std::env::var("KERUST_FUZZ_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000)
}

/// The fuzzer's seed: 0, or `KERUST_FUZZ_SEED`, so that a run can be
/// repeated.
fn fuzz_rng() -> TestRng {
    let seed: u64 = std::env::var("KERUST_FUZZ_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    let mut bytes = [0u8; 32];
    stream(seed, Purpose::User(3), 0, 0).fill_bytes(&mut bytes);
    TestRng::from_seed(RngAlgorithm::ChaCha, &bytes)
}

/// Every mutated file (byte flips, truncations, insertions, removals and
/// overwrites of the corpus; shapes, offsets, dtypes and config numbers of
/// its header set to small, large or extreme values) loads or is refused with `Error::Format`, by
/// `load_model`, `load_checkpoint` and `load_weights`; none panics (the
/// runner catches a panic and fails). A model that loads is used once.
/// Prints how many inputs ran and how they ended (see them with
/// `--nocapture`).
#[test]
fn mutated_files_load_or_fail_but_never_panic() {
    let corpus: Vec<Vec<u8>> = CORPUS
        .iter()
        .map(|name| std::fs::read(fixtures().join(name)).unwrap())
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fuzzed.safetensors");
    let x = fixture_inputs();
    let tally = RefCell::new(BTreeMap::<&str, u64>::new());
    let count = |outcome: &'static str| *tally.borrow_mut().entry(outcome).or_default() += 1;

    let config = ProptestConfig {
        cases: fuzz_cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    };
    let mut runner = TestRunner::new_with_rng(config, fuzz_rng());
    let strategy = (0..CORPUS.len(), proptest::collection::vec(mutation(), 1..6));
    let result = runner.run(&strategy, |(which, mutations)| {
        let mut bytes = corpus[which].clone();
        for m in &mutations {
            m.apply(&mut bytes);
        }
        std::fs::write(&path, &bytes).unwrap();
        count("inputs");
        match load_model(&path) {
            Ok(mut model) => {
                count("load_model ok");
                let _ = model.predict(&x);
            }
            Err(Error::Format { .. }) => count("load_model refused"),
            Err(e) => prop_assert!(false, "load_model gave a non-format error: {e:?}"),
        }
        match load_checkpoint(&path) {
            Ok(_) => count("load_checkpoint ok"),
            Err(Error::Format { .. }) => count("load_checkpoint refused"),
            Err(e) => prop_assert!(false, "load_checkpoint gave a non-format error: {e:?}"),
        }
        let mut fresh = architecture(0);
        match fresh.load_weights(&path) {
            Ok(()) => {
                count("load_weights ok");
                let _ = fresh.predict(&x);
            }
            Err(Error::Format { .. }) => count("load_weights refused"),
            Err(e) => prop_assert!(false, "load_weights gave a non-format error: {e:?}"),
        }
        Ok(())
    });
    println!("fuzz: {:?}", tally.borrow());
    if let Err(failure) = result {
        panic!("{failure}");
    }
    assert_eq!(tally.borrow()["inputs"], u64::from(fuzz_cases()));
}

#[test]
fn the_fuzz_corpus_stays_small() {
    let total: u64 = CORPUS
        .iter()
        .map(|name| std::fs::metadata(fixtures().join(name)).unwrap().len())
        .sum();
    assert!(total < 50_000, "{total} bytes");
}

#[test]
fn every_builtin_layer_refuses_a_field_it_does_not_have() {
    let registry = kerust::saving::LayerRegistry::with_builtins();
    for (class, config) in [
        (
            "Dense",
            json!({ "name": "d", "units": 3, "kernel_regularizer": null }),
        ),
        (
            "Dropout",
            json!({ "name": "o", "rate": 0.5, "noise_shape": null }),
        ),
        (
            "Flatten",
            json!({ "name": "f", "data_format": "channels_last" }),
        ),
        ("ReLU", json!({ "name": "r", "max_value": 6.0 })),
        ("Softmax", json!({ "name": "s", "axis": -1 })),
    ] {
        let err = registry.make(class, &config).err().map(|e| e.to_string());
        let field = config
            .as_object()
            .unwrap()
            .keys()
            .find(|k| !["name", "units", "rate"].contains(&k.as_str()))
            .unwrap()
            .clone();
        assert!(
            err.as_deref()
                .is_some_and(|e| e.contains(&format!("`{field}`")) && e.contains(class)),
            "{class}: {err:?}"
        );
    }
}
