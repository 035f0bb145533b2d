//! The Keras callbacks: traces of made-up monitored series worked out by hand
//! with Keras 3's rules, and real `fit` runs for restoring weights, learning
//! rates in the history, CSV files, missing keys, NaN losses and the order in
//! which events fire.

use std::sync::{Arc, Mutex};

use kerust::callbacks::{
    BackupAndRestore, CsvLogger, EarlyStopping, LambdaCallback, LearningRateScheduler, Mode,
    ReduceLROnPlateau, TerminateOnNaN, TrainParams,
};
use kerust::prelude::*;
use ndarray::{Array1, Array2, ArrayD, Axis};

// ---------------------------------------------------------------------------
// Helpers

/// A model to hand to callbacks driven by hand: one weight and a bias,
/// trained by SGD at rate 0.1.
fn tiny_model() -> Sequential {
    let mut model = Sequential::new().input_shape([1]).add(Dense::new(1));
    model
        .compile(
            Sgd::new().learning_rate(0.1),
            MeanSquaredError::new(),
            Vec::<&str>::new(),
        )
        .unwrap();
    model
}

/// A small separable problem: is the first input above the second?
fn toy(samples: usize) -> (Array2<f32>, Array1<f32>) {
    let x = Array2::from_shape_fn((samples, 2), |(i, j)| {
        (((i * 37 + j * 11) % 23) as f32 - 11.0) / 11.0
    });
    let y = x.map_axis(Axis(1), |r| f32::from(r[0] > r[1]));
    (x, y)
}

fn classifier(learning_rate: f32) -> Sequential {
    let mut model = Sequential::new()
        .input_shape([2])
        .seed(7)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    model
        .compile(
            Sgd::new().learning_rate(learning_rate),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

fn quiet<'a>() -> FitOptions<'a> {
    FitOptions::new().verbose(Verbosity::Silent)
}

fn logs_with(key: &str, value: f64) -> Logs {
    let mut logs = Logs::new();
    logs.insert("loss", 0.5);
    logs.insert(key, value);
    logs
}

/// Feeds `series` to `callback` as the value of `key`, one epoch at a time,
/// as `fit` would, and returns the epoch at whose end it stopped training.
fn run_series(callback: &mut dyn Callback, key: &str, series: &[f64]) -> Option<usize> {
    let mut model = tiny_model();
    callback.on_train_begin(&mut model, &Logs::new()).unwrap();
    for (epoch, &value) in series.iter().enumerate() {
        callback
            .on_epoch_end(epoch, &mut model, &mut logs_with(key, value))
            .unwrap();
        if model.stop_training {
            return Some(epoch);
        }
    }
    None
}

/// Feeds `series` to a `ReduceLROnPlateau` on a model whose rate starts at
/// 0.1, and returns the rate after each epoch end.
fn rates_after(reducer: &mut ReduceLROnPlateau, key: &str, series: &[f64]) -> Vec<f32> {
    let mut model = tiny_model();
    reducer.on_train_begin(&mut model, &Logs::new()).unwrap();
    let mut rates = Vec::new();
    for (epoch, &value) in series.iter().enumerate() {
        reducer
            .on_epoch_end(epoch, &mut model, &mut logs_with(key, value))
            .unwrap();
        rates.push(model.optimizer().unwrap().learning_rate());
    }
    rates
}

/// The epochs (counted from zero) at whose end the rate was cut.
fn cut_epochs(rates: &[f32], initial: f32) -> Vec<usize> {
    let mut previous = initial;
    let mut cuts = Vec::new();
    for (epoch, &rate) in rates.iter().enumerate() {
        if rate != previous {
            cuts.push(epoch);
        }
        previous = rate;
    }
    cuts
}

fn bits(weights: &[ArrayD<f32>]) -> Vec<u32> {
    weights
        .iter()
        .flat_map(|w| w.iter().map(|v| v.to_bits()))
        .collect()
}

// ---------------------------------------------------------------------------
// EarlyStopping traces

#[test]
fn early_stopping_counts_patience_as_keras_does() {
    // Keras 3, patience 2, min_delta 0: at each epoch end wait += 1, then an
    // improvement sets best and wait = 0, otherwise stop once wait >= 2.
    //   epoch 0: 1.00 < inf   -> best 1.00, wait 0
    //   epoch 1: 0.90 < 1.00  -> best 0.90, wait 0
    //   epoch 2: 0.95         -> wait 1
    //   epoch 3: 0.91         -> wait 2 >= 2: stop at epoch 3
    // The 0.89 of epoch 4 is never seen.
    let series = [1.0, 0.9, 0.95, 0.91, 0.89, 0.92, 0.93];
    let mut stopper = EarlyStopping::new().patience(2);
    assert_eq!(run_series(&mut stopper, "val_loss", &series), Some(3));
    assert_eq!(stopper.stopped_epoch(), Some(3));
    assert_eq!(stopper.best_epoch(), Some(1));
    assert_eq!(stopper.best(), Some(0.9));

    // Patience 3: epoch 3 reaches wait 2 only, epoch 4 improves (0.89),
    // epochs 5 and 6 bring wait to 2 again: training runs to the end.
    let mut patient = EarlyStopping::new().patience(3);
    assert_eq!(run_series(&mut patient, "val_loss", &series), None);
    assert_eq!(patient.stopped_epoch(), None);
    assert_eq!(patient.best_epoch(), Some(4));
}

#[test]
fn early_stopping_with_patience_zero_stops_at_the_first_setback_but_never_at_epoch_zero() {
    // Epoch 0: 2.0 improves on inf. Epoch 1: 1.0 improves. Epoch 2: 1.5
    // does not, wait 1 >= 0: stop.
    let mut stopper = EarlyStopping::new();
    assert_eq!(
        run_series(&mut stopper, "val_loss", &[2.0, 1.0, 1.5, 0.5]),
        Some(2)
    );

    // A NaN never improves, but Keras never stops at epoch 0: the stop comes
    // at the end of epoch 1.
    let mut stopper = EarlyStopping::new();
    assert_eq!(
        run_series(&mut stopper, "val_loss", &[f64::NAN, f64::NAN]),
        Some(1)
    );
}

#[test]
fn early_stopping_in_max_mode_watches_for_a_rise() {
    // Auto on `val_accuracy` maximizes, patience 2:
    //   epoch 0: 0.50 -> best; epoch 1: 0.60 -> best; epoch 2: 0.60 is not
    //   better (equal) -> wait 1; epoch 3: 0.55 -> wait 2: stop at epoch 3.
    let series = [0.5, 0.6, 0.6, 0.55, 0.7];
    let mut auto = EarlyStopping::new().monitor("val_accuracy").patience(2);
    assert_eq!(run_series(&mut auto, "val_accuracy", &series), Some(3));
    let mut max = EarlyStopping::new()
        .monitor("val_accuracy")
        .mode(Mode::Max)
        .patience(2);
    assert_eq!(run_series(&mut max, "val_accuracy", &series), Some(3));

    // Forced to minimize, the same rising series never improves after epoch
    // 0: wait reaches 2 at epoch 2.
    let mut min = EarlyStopping::new()
        .monitor("val_accuracy")
        .mode(Mode::Min)
        .patience(2);
    assert_eq!(run_series(&mut min, "val_accuracy", &series), Some(2));
}

#[test]
fn auto_mode_maximizes_accuracy_and_minimizes_loss() {
    let rising = [0.1, 0.2, 0.3, 0.4];
    let falling = [0.4, 0.3, 0.2, 0.1];
    for key in ["accuracy", "val_accuracy"] {
        assert!(Mode::Auto.maximizes(key));
        let mut stopper = EarlyStopping::new().monitor(key);
        assert_eq!(run_series(&mut stopper, key, &rising), None, "{key}");
        let mut stopper = EarlyStopping::new().monitor(key);
        assert_eq!(run_series(&mut stopper, key, &falling), Some(1), "{key}");
    }
    for key in ["loss", "val_loss"] {
        assert!(!Mode::Auto.maximizes(key));
        let mut stopper = EarlyStopping::new().monitor(key);
        assert_eq!(run_series(&mut stopper, key, &falling), None, "{key}");
        let mut stopper = EarlyStopping::new().monitor(key);
        assert_eq!(run_series(&mut stopper, key, &rising), Some(1), "{key}");
    }

    // ReduceLROnPlateau resolves `auto` the same way: patience 1 cuts at
    // each epoch that does not improve.
    let mut reducer = ReduceLROnPlateau::new().monitor("val_accuracy").patience(1);
    assert_eq!(
        cut_epochs(&rates_after(&mut reducer, "val_accuracy", &rising), 0.1),
        Vec::<usize>::new()
    );
    let mut reducer = ReduceLROnPlateau::new().monitor("val_loss").patience(1);
    let cuts = cut_epochs(&rates_after(&mut reducer, "val_loss", &rising), 0.1);
    assert_eq!(cuts, [1, 2, 3]);
}

#[test]
fn early_stopping_baseline_keeps_the_count_running_until_beaten() {
    // Baseline 0.55, patience 3. Keras 3 resets wait only when the value
    // improves on both its best and the baseline:
    //   epoch 0: 0.9 best, not < 0.55 -> wait 1
    //   epoch 1: 0.8 best, not < 0.55 -> wait 2
    //   epoch 2: 0.8 not better       -> wait 3 >= 3: stop at epoch 2
    let series = [0.9, 0.8, 0.8, 0.8, 0.5];
    let mut stopper = EarlyStopping::new().patience(3).baseline(0.55).unwrap();
    assert_eq!(run_series(&mut stopper, "val_loss", &series), Some(2));

    // Without a baseline, epochs 2 and 3 bring wait to 2 and epoch 4
    // improves: no stop.
    let mut plain = EarlyStopping::new().patience(3);
    assert_eq!(run_series(&mut plain, "val_loss", &series), None);

    // A baseline beaten from the first epoch behaves like no baseline.
    let mut beaten = EarlyStopping::new().patience(3).baseline(0.95).unwrap();
    assert_eq!(run_series(&mut beaten, "val_loss", &series), None);

    // An epoch that improves on the best value never stops training, even
    // with the count past the patience: it returns before the check.
    let steady = [0.9, 0.8, 0.7, 0.6, 0.5];
    let mut stopper = EarlyStopping::new().patience(1).baseline(0.1).unwrap();
    assert_eq!(run_series(&mut stopper, "val_loss", &steady), None);
}

#[test]
fn early_stopping_ignores_the_warm_up_epochs() {
    // start_from_epoch 3, patience 1: epochs 0-2 are not watched.
    //   epoch 3: 4.0 best; epoch 4: 3.5 best; epoch 5: 5.0 -> wait 1: stop.
    let series = [1.0, 2.0, 3.0, 4.0, 3.5, 5.0];
    let mut stopper = EarlyStopping::new().patience(1).start_from_epoch(3);
    assert_eq!(run_series(&mut stopper, "val_loss", &series), Some(5));
    assert_eq!(stopper.best_epoch(), Some(4));

    // Watched from epoch 0, the rise at epoch 1 stops training there.
    let mut eager = EarlyStopping::new().patience(1);
    assert_eq!(run_series(&mut eager, "val_loss", &series), Some(1));
}

#[test]
fn early_stopping_needs_more_than_min_delta_to_count_an_improvement() {
    // min_delta 0.25: 0.75 is exactly 0.25 below 1.0, which is not more
    // than min_delta: wait 1 at epoch 1, stop (patience 1).
    let series = [1.0, 0.75, 0.5, 0.375, 0.25];
    let mut strict = EarlyStopping::new().min_delta(0.25).unwrap().patience(1);
    assert_eq!(run_series(&mut strict, "val_loss", &series), Some(1));

    // min_delta 0.2: 0.75 < 0.8 and 0.5 < 0.55 improve; 0.375 is not below
    // 0.3: stop at epoch 3.
    let mut loose = EarlyStopping::new().min_delta(0.2).unwrap().patience(1);
    assert_eq!(run_series(&mut loose, "val_loss", &series), Some(3));

    // min_delta 0: every fall counts.
    let mut any = EarlyStopping::new().patience(1);
    assert_eq!(run_series(&mut any, "val_loss", &series), None);
}

#[test]
fn early_stopping_starts_afresh_at_each_run() {
    let mut stopper = EarlyStopping::new().patience(1);
    assert_eq!(run_series(&mut stopper, "val_loss", &[0.1, 0.2]), Some(1));
    // The best of the first run (0.1) is forgotten: 0.5 then 0.4 improve.
    assert_eq!(run_series(&mut stopper, "val_loss", &[0.5, 0.4]), None);
    assert_eq!(stopper.stopped_epoch(), None);
}

// ---------------------------------------------------------------------------
// ReduceLROnPlateau traces

#[test]
fn reduce_lr_cuts_once_per_plateau() {
    // A flat series, patience 2, factor 0.5 (min_delta 1e-4):
    //   epoch 0: 1.0 improves on inf
    //   epoch 1: wait 1; epoch 2: wait 2 -> cut, wait 0
    //   epoch 3: wait 1; epoch 4: wait 2 -> cut, ...
    // so cuts at epochs 2, 4, 6, not at every epoch after the first cut.
    let flat = [1.0; 8];
    let mut reducer = ReduceLROnPlateau::new()
        .monitor("val_loss")
        .factor(0.5)
        .unwrap()
        .patience(2);
    let rates = rates_after(&mut reducer, "val_loss", &flat);
    assert_eq!(cut_epochs(&rates, 0.1), [2, 4, 6]);
    assert_eq!(rates, [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.0125, 0.0125]);

    // An improvement resets the count:
    //   0: 1.0 best; 1: 0.5 best; 2: wait 1; 3: wait 2 -> cut;
    //   4: 0.25 best; 5: wait 1; 6: wait 2 -> cut.
    let series = [1.0, 0.5, 0.5, 0.5, 0.25, 0.25, 0.25];
    let mut reducer = ReduceLROnPlateau::new().factor(0.5).unwrap().patience(2);
    let cuts = cut_epochs(&rates_after(&mut reducer, "val_loss", &series), 0.1);
    assert_eq!(cuts, [3, 6]);
}

#[test]
fn reduce_lr_cooldown_counts_as_keras_does() {
    // Keras counts the cooldown down before the patience, on the same epoch,
    // so a cooldown of c delays the next count by c - 1 epochs. Flat series,
    // patience 2:
    //   cooldown 1: cut at 2 (cooldown 1); epoch 3: cooldown -> 0, and being
    //   out of cooldown already, wait 1; epoch 4: wait 2 -> cut. Same as 0.
    //   cooldown 2: cut at 2; epoch 3: cooldown 2 -> 1, no count; epoch 4:
    //   cooldown -> 0, wait 1; epoch 5: wait 2 -> cut.
    let flat = [1.0; 8];
    for (cooldown, expected) in [(0, vec![2, 4, 6]), (1, vec![2, 4, 6]), (2, vec![2, 5])] {
        let mut reducer = ReduceLROnPlateau::new()
            .factor(0.5)
            .unwrap()
            .patience(2)
            .cooldown(cooldown);
        let cuts = cut_epochs(&rates_after(&mut reducer, "val_loss", &flat), 0.1);
        assert_eq!(cuts, expected, "cooldown {cooldown}");
    }
}

#[test]
fn reduce_lr_stops_at_min_lr() {
    // 0.1 * 0.1 = 0.01 at epoch 1, then max(0.001, 0.005) = 0.005 at epoch
    // 2, then no cut: the rate is at min_lr.
    let mut reducer = ReduceLROnPlateau::new().patience(1).min_lr(0.005).unwrap();
    let rates = rates_after(&mut reducer, "val_loss", &[1.0; 5]);
    assert_eq!(rates, [0.1, 0.01, 0.005, 0.005, 0.005]);
}

// ---------------------------------------------------------------------------
// Real training runs

/// What a run of [`fit_scored`] leaves.
struct ScoredRun {
    /// The weights at the end of each epoch.
    snapshots: Vec<Vec<ArrayD<f32>>>,
    /// The weights when `fit` returned.
    last: Vec<ArrayD<f32>>,
    /// The number of epochs run.
    epochs: usize,
}

/// Runs `fit` for one epoch per entry of `scores`, logging `scores[epoch]`
/// as a made-up `score` at each epoch end, before `stopper` reads it.
fn fit_scored(scores: &[f64], stopper: EarlyStopping) -> ScoredRun {
    let (x, y) = toy(32);
    let mut model = classifier(0.5);
    let mut snapshots = Vec::new();
    let script = LambdaCallback::new().on_epoch_end(|epoch, model, logs| {
        logs.insert("score", scores[epoch]);
        snapshots.push(model.get_weights());
    });
    let options = quiet()
        .epochs(scores.len())
        .batch_size(8)
        .callback(script)
        .callback(stopper);
    let history = model.fit((&x, &y), options).unwrap();
    ScoredRun {
        snapshots,
        last: model.get_weights(),
        epochs: history.len(),
    }
}

#[test]
fn early_stopping_restores_the_best_weights_when_it_never_stopped() {
    // Minimizing `score`, the best epoch is 1; patience 10 never runs out.
    let scores = [3.0, 1.0, 2.0, 4.0, 5.0];
    let stopper = EarlyStopping::new()
        .monitor("score")
        .patience(10)
        .restore_best_weights(true);
    let ScoredRun {
        snapshots,
        last,
        epochs,
    } = fit_scored(&scores, stopper);
    assert_eq!(epochs, 5);
    assert_eq!(bits(&last), bits(&snapshots[1]));
    // Training did move the weights after epoch 1, so the restore is real.
    assert_ne!(bits(&snapshots[4]), bits(&snapshots[1]));
}

#[test]
fn early_stopping_restores_the_best_weights_when_it_stops() {
    // Patience 2: epoch 2 wait 1, epoch 3 wait 2 -> stop after 4 epochs;
    // the weights of epoch 1 come back.
    let scores = [3.0, 1.0, 2.0, 4.0, 5.0, 0.0];
    let stopper = EarlyStopping::new()
        .monitor("score")
        .patience(2)
        .restore_best_weights(true);
    let ScoredRun {
        snapshots,
        last,
        epochs,
    } = fit_scored(&scores, stopper);
    assert_eq!(epochs, 4);
    assert_eq!(snapshots.len(), 4);
    assert_eq!(bits(&last), bits(&snapshots[1]));
}

#[test]
fn without_restore_best_weights_the_last_weights_stay() {
    let scores = [3.0, 1.0, 2.0, 4.0, 5.0];
    let stopper = EarlyStopping::new().monitor("score").patience(10);
    let run = fit_scored(&scores, stopper);
    assert_eq!(bits(&run.last), bits(&run.snapshots[4]));
}

#[test]
fn the_history_shows_the_rate_each_epoch_used() {
    // A flat made-up `score`, patience 2, factor 0.5, rate 0.1: cuts at the
    // ends of epochs 2 and 4 apply from epochs 3 and 5 on.
    let (x, y) = toy(32);
    let mut model = classifier(0.1);
    let script = LambdaCallback::new().on_epoch_end(|_, _, logs| logs.insert("score", 1.0));
    let reducer = ReduceLROnPlateau::new()
        .monitor("score")
        .factor(0.5)
        .unwrap()
        .patience(2);
    let options = quiet().epochs(7).callback(script).callback(reducer);
    let history = model.fit((&x, &y), options).unwrap();
    let rates: Vec<f32> = history
        .get("learning_rate")
        .unwrap()
        .iter()
        .map(|&r| r as f32)
        .collect();
    assert_eq!(rates, [0.1, 0.1, 0.1, 0.05, 0.05, 0.025, 0.025]);
    // The cut at the end of the last epoch is made, for a later run.
    assert_eq!(model.optimizer().unwrap().learning_rate(), 0.0125);
}

#[test]
fn the_scheduler_sets_each_epochs_rate() {
    let (x, y) = toy(32);
    let mut model = classifier(0.1);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    let scheduler = LearningRateScheduler::new(move |epoch, rate| {
        record.lock().unwrap().push((epoch, rate));
        0.1 / (epoch + 1) as f32
    });
    let options = quiet().epochs(4).initial_epoch(1).callback(scheduler);
    let history = model.fit((&x, &y), options).unwrap();
    let rates: Vec<f32> = history
        .get("learning_rate")
        .unwrap()
        .iter()
        .map(|&r| r as f32)
        .collect();
    assert_eq!(rates, [0.1 / 2.0, 0.1 / 3.0, 0.1 / 4.0]);
    // The schedule sees the epoch from zero and the rate in force.
    assert_eq!(*seen.lock().unwrap(), [(1, 0.1), (2, 0.05), (3, 0.1 / 3.0)]);
}

#[test]
fn a_schedule_returning_a_bad_rate_is_an_error() {
    for bad in [f32::NAN, f32::INFINITY, -0.01] {
        let (x, y) = toy(8);
        let scheduler =
            LearningRateScheduler::new(move |epoch, rate| if epoch < 2 { rate } else { bad });
        let mut model = classifier(0.1);
        let err = model
            .fit((&x, &y), quiet().epochs(5).callback(scheduler))
            .unwrap_err();
        match err {
            Error::InvalidArgument { name, reason, .. } => {
                assert_eq!(name, "schedule");
                assert!(reason.contains("epoch 3"), "{reason}");
            }
            other => panic!("unexpected error {other}"),
        }
    }
}

#[test]
fn a_missing_monitor_key_fails_at_the_first_epoch_end_listing_the_keys() {
    let (x, y) = toy(16);
    let monitored: Vec<(Box<dyn Callback>, &str)> = vec![
        (
            Box::new(EarlyStopping::new().monitor("val_acc")),
            "EarlyStopping",
        ),
        (
            Box::new(ReduceLROnPlateau::new().monitor("val_acc")),
            "ReduceLROnPlateau",
        ),
    ];
    for (callback, name) in monitored {
        let mut epoch_ends = 0;
        let counter = LambdaCallback::new().on_epoch_end(|_, _, _| epoch_ends += 1);
        let options = quiet()
            .epochs(5)
            .validation_data(&x, &y)
            .callbacks(vec![Box::new(counter), callback]);
        let err = classifier(0.1).fit((&x, &y), options).unwrap_err();
        match err {
            Error::MissingMetric {
                callback,
                key,
                available,
            } => {
                assert_eq!(callback, name);
                assert_eq!(key, "val_acc");
                assert_eq!(
                    available,
                    "loss, accuracy, val_loss, val_accuracy, learning_rate"
                );
            }
            other => panic!("unexpected error {other}"),
        }
        assert_eq!(epoch_ends, 1, "{name}");
    }
}

// ---------------------------------------------------------------------------
// CsvLogger

fn rows(path: &std::path::Path) -> Vec<Vec<String>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| line.split(',').map(String::from).collect())
        .collect()
}

#[test]
fn csv_logger_appends_rows_under_one_header() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("history.csv");
    let (x, y) = toy(32);
    let mut model = classifier(0.1);

    let first = quiet()
        .epochs(2)
        .validation_data(&x, &y)
        .callback(CsvLogger::new(&path));
    let history_1 = model.fit((&x, &y), first).unwrap();
    let resumed = quiet()
        .epochs(5)
        .initial_epoch(2)
        .validation_data(&x, &y)
        .callback(CsvLogger::new(&path).append(true));
    let history_2 = model.fit((&x, &y), resumed).unwrap();

    let table = rows(&path);
    let header = [
        "epoch",
        "loss",
        "accuracy",
        "val_loss",
        "val_accuracy",
        "learning_rate",
    ];
    assert_eq!(table[0], header);
    assert_eq!(table.len(), 1 + 5, "one header, five epochs");
    for (i, row) in table[1..].iter().enumerate() {
        assert_eq!(row.len(), header.len());
        assert_eq!(row[0], i.to_string(), "epochs counted from zero");
        let (history, index) = if i < 2 {
            (&history_1, i)
        } else {
            (&history_2, i - 2)
        };
        for (column, key) in header.iter().enumerate().skip(1) {
            let value: f64 = row[column].parse().unwrap();
            let logged = history.get(key).unwrap()[index];
            assert_eq!(value.to_bits(), logged.to_bits(), "epoch {i} {key}");
        }
    }
}

#[test]
fn csv_logger_refuses_to_append_other_keys_and_leaves_the_file_alone() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("history.csv");
    let (x, y) = toy(32);
    let first = quiet().epochs(2).callback(CsvLogger::new(&path));
    classifier(0.1).fit((&x, &y), first).unwrap();
    let before = std::fs::read(&path).unwrap();

    // The same run with validation logs two more keys.
    let resumed = quiet()
        .epochs(4)
        .initial_epoch(2)
        .validation_data(&x, &y)
        .callback(CsvLogger::new(&path).append(true));
    let err = classifier(0.1).fit((&x, &y), resumed).unwrap_err();
    match &err {
        Error::InvalidArgument { value, reason, .. } => {
            assert_eq!(
                value,
                "epoch,loss,accuracy,val_loss,val_accuracy,learning_rate"
            );
            assert!(
                reason.contains("epoch,loss,accuracy,learning_rate"),
                "{reason}"
            );
        }
        other => panic!("unexpected error {other}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before);
}

#[test]
fn csv_logger_without_append_replaces_the_file() {
    let folder = tempfile::tempdir().unwrap();
    let path = folder.path().join("history.csv");
    std::fs::write(&path, "old,header\n1,2\n").unwrap();
    let (x, y) = toy(16);
    let logger = CsvLogger::new(&path).separator(";").unwrap();
    classifier(0.1)
        .fit((&x, &y), quiet().epochs(3).callback(logger))
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert_eq!(lines[0], "epoch;loss;accuracy;learning_rate");
    assert!(lines[3].starts_with("2;"));
    // No temporary file is left beside it.
    assert_eq!(std::fs::read_dir(folder.path()).unwrap().count(), 1);
}

#[test]
fn csv_logger_appends_to_a_missing_or_empty_file_with_a_header() {
    let folder = tempfile::tempdir().unwrap();
    let (x, y) = toy(16);
    let empty = folder.path().join("empty.csv");
    std::fs::write(&empty, "").unwrap();
    for path in [folder.path().join("missing.csv"), empty] {
        let logger = CsvLogger::new(&path).append(true);
        classifier(0.1)
            .fit((&x, &y), quiet().epochs(2).callback(logger))
            .unwrap();
        let table = rows(&path);
        assert_eq!(table.len(), 3);
        assert_eq!(table[0][0], "epoch");
    }
}

// ---------------------------------------------------------------------------
// TerminateOnNaN

/// Eight samples; with batches of two, four steps an epoch.
fn eight_samples() -> (Array2<f32>, Array1<f32>) {
    toy(8)
}

/// Turns the model's weights into NaN before the third step of the first
/// epoch, so that its loss is NaN. (A NaN among the inputs is an error of
/// its own, `Error::NonFiniteInput`, before any callback hears of it.)
fn poison_before_third_step<'a>() -> LambdaCallback<'a> {
    let mut poisoned = false;
    LambdaCallback::new().on_train_batch_begin(move |step, model, _| {
        if step == 2 && !poisoned {
            let weights: Vec<_> = model
                .get_weights()
                .into_iter()
                .map(|w| w.mapv(|_| f32::NAN))
                .collect();
            model.set_weights(&weights).unwrap();
            poisoned = true;
        }
    })
}

/// A softmax regression.
fn linear_classifier() -> Sequential {
    let mut model = Sequential::new()
        .input_shape([2])
        .add(Dense::new(2).activation(Activation::Softmax));
    model
        .compile(
            Sgd::new().learning_rate(0.1),
            SparseCategoricalCrossentropy::new(),
            ["accuracy"],
        )
        .unwrap();
    model
}

#[test]
fn terminate_on_nan_stops_and_returns_the_history() {
    let (x, y) = eight_samples();
    let mut steps = Vec::new();
    let mut train_end = false;
    let watcher = LambdaCallback::new()
        .on_train_batch_end(|step, _, _| steps.push(step))
        .on_train_end(|_, _| train_end = true);
    let options = quiet()
        .epochs(3)
        .batch_size(2)
        .shuffle(false)
        .callback(poison_before_third_step())
        .callback(TerminateOnNaN::new())
        .callback(watcher);
    let history = linear_classifier().fit((&x, &y), options).unwrap();
    assert_eq!(history.len(), 1);
    assert!(history.get("loss").unwrap()[0].is_nan());
    assert_eq!(steps, [0, 1, 2], "the fourth step is not taken");
    assert!(train_end);
}

#[test]
fn without_terminate_on_nan_a_nan_loss_is_an_error() {
    let (x, y) = eight_samples();
    let options = quiet()
        .epochs(3)
        .batch_size(2)
        .shuffle(false)
        .callback(poison_before_third_step());
    let err = linear_classifier().fit((&x, &y), options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteLoss {
                epoch: 1,
                step: 3,
                ..
            }
        ),
        "{err}"
    );

    // With raise_error the callback fails at once, and training does not
    // end normally.
    let mut train_end = false;
    let watcher = LambdaCallback::new().on_train_end(|_, _| train_end = true);
    let options = quiet()
        .epochs(3)
        .batch_size(2)
        .shuffle(false)
        .callback(poison_before_third_step())
        .callback(TerminateOnNaN::new().raise_error(true))
        .callback(watcher);
    let err = linear_classifier().fit((&x, &y), options).unwrap_err();
    assert!(
        matches!(
            err,
            Error::NonFiniteLoss {
                epoch: 1,
                step: 3,
                ..
            }
        ),
        "{err}"
    );
    assert!(!train_end);
}

// ---------------------------------------------------------------------------
// Order of events

/// Writes each event it receives, tagged, into a shared list.
#[derive(Clone)]
struct Recorder {
    tag: &'static str,
    events: Arc<Mutex<Vec<String>>>,
}

impl Recorder {
    fn push(&self, event: String) {
        self.events
            .lock()
            .unwrap()
            .push(format!("{}{event}", self.tag));
    }
}

impl Callback for Recorder {
    fn set_params(&mut self, p: &TrainParams) {
        self.push(format!("set_params epochs={} steps={}", p.epochs, p.steps));
    }
    fn on_train_begin(&mut self, _: &mut Sequential, _: &Logs) -> kerust::Result<()> {
        self.push("train_begin".into());
        Ok(())
    }
    fn on_train_end(&mut self, _: &mut Sequential, _: &Logs) -> kerust::Result<()> {
        self.push("train_end".into());
        Ok(())
    }
    fn on_epoch_begin(&mut self, e: usize, _: &mut Sequential, _: &Logs) -> kerust::Result<()> {
        self.push(format!("epoch_begin {e}"));
        Ok(())
    }
    fn on_epoch_end(
        &mut self,
        e: usize,
        _: &mut Sequential,
        logs: &mut Logs,
    ) -> kerust::Result<()> {
        let keys: Vec<&str> = logs.keys().collect();
        self.push(format!("epoch_end {e} [{}]", keys.join(" ")));
        Ok(())
    }
    fn on_train_batch_begin(
        &mut self,
        s: usize,
        _: &mut Sequential,
        _: &Logs,
    ) -> kerust::Result<()> {
        self.push(format!("batch_begin {s}"));
        Ok(())
    }
    fn on_train_batch_end(&mut self, s: usize, _: &mut Sequential, _: &Logs) -> kerust::Result<()> {
        self.push(format!("batch_end {s}"));
        Ok(())
    }
}

#[test]
fn callbacks_fire_in_the_documented_order() {
    // Six samples in batches of two: three steps per epoch.
    let (x, y) = toy(6);
    let events = Arc::new(Mutex::new(Vec::new()));
    let recorder = Recorder {
        tag: "",
        events: Arc::clone(&events),
    };
    let options = quiet()
        .epochs(2)
        .batch_size(2)
        .validation_data(&x, &y)
        .callback(recorder);
    linear_classifier().fit((&x, &y), options).unwrap();

    let keys = "[loss accuracy val_loss val_accuracy learning_rate]";
    let expected = [
        "set_params epochs=2 steps=3".to_string(),
        "train_begin".into(),
        "epoch_begin 0".into(),
        "batch_begin 0".into(),
        "batch_end 0".into(),
        "batch_begin 1".into(),
        "batch_end 1".into(),
        "batch_begin 2".into(),
        "batch_end 2".into(),
        format!("epoch_end 0 {keys}"),
        "epoch_begin 1".into(),
        "batch_begin 0".into(),
        "batch_end 0".into(),
        "batch_begin 1".into(),
        "batch_end 1".into(),
        "batch_begin 2".into(),
        "batch_end 2".into(),
        format!("epoch_end 1 {keys}"),
        "train_end".into(),
    ];
    assert_eq!(*events.lock().unwrap(), expected);
}

#[test]
fn callbacks_of_one_event_run_in_the_order_given() {
    let (x, y) = toy(4);
    let events = Arc::new(Mutex::new(Vec::new()));
    let first = Recorder {
        tag: "a:",
        events: Arc::clone(&events),
    };
    let second = Recorder {
        tag: "b:",
        events: Arc::clone(&events),
    };
    // A lambda between them adds a key that only the second one sees.
    let adder = LambdaCallback::new().on_epoch_end(|_, _, logs| logs.insert("extra", 1.0));
    let options = quiet()
        .epochs(1)
        .batch_size(4)
        .callback(first)
        .callback(adder)
        .callback(second);
    linear_classifier().fit((&x, &y), options).unwrap();
    let expected = [
        "a:set_params epochs=1 steps=1",
        "b:set_params epochs=1 steps=1",
        "a:train_begin",
        "b:train_begin",
        "a:epoch_begin 0",
        "b:epoch_begin 0",
        "a:batch_begin 0",
        "b:batch_begin 0",
        "a:batch_end 0",
        "b:batch_end 0",
        "a:epoch_end 0 [loss accuracy learning_rate]",
        "b:epoch_end 0 [loss accuracy learning_rate extra]",
        "a:train_end",
        "b:train_end",
    ];
    assert_eq!(*events.lock().unwrap(), expected);
}

// ---------------------------------------------------------------------------
// BackupAndRestore

/// Fails at the end of epoch `.0`, as a run whose machine goes down.
struct Crash(usize);

impl Callback for Crash {
    fn on_epoch_end(
        &mut self,
        epoch: usize,
        _: &mut Sequential,
        _: &mut Logs,
    ) -> kerust::Result<()> {
        if epoch == self.0 {
            return Err(kerust::Error::invalid(
                "run",
                epoch,
                "interrupted on purpose",
            ));
        }
        Ok(())
    }
}

/// Images of a bar, upright (class 0) or lying (class 1), 8x8.
fn bars(samples: usize) -> (ndarray::Array4<f32>, Array1<f32>) {
    let y = Array1::from_shape_fn(samples, |i| (i % 2) as f32);
    let x = ndarray::Array4::from_shape_fn((samples, 8, 8, 1), |(i, r, c, _)| {
        let at = 2 + (i / 2) % 4;
        let on = if i % 2 == 0 { c == at } else { r == at };
        f32::from(on)
    });
    (x, y)
}

/// A model with dropout, trained by Adam: every source of randomness and
/// of optimizer state that a resumed run must get back.
fn bar_model() -> Sequential {
    let mut model = Sequential::new()
        .input_shape([8, 8, 1])
        .seed(11)
        .add(Flatten::new())
        .add(Dense::new(16).activation(Activation::Relu))
        .add(Dropout::new(0.25))
        .add(Dense::new(2).activation(Activation::Softmax));
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
fn a_run_resumed_from_its_backup_ends_with_the_bits_of_an_uninterrupted_one() -> kerust::Result<()>
{
    let (x, y) = bars(40);
    let augmenter = kerust::preprocessing::image::ImageDataGenerator::new()
        .rotation_range(10.0)
        .width_shift_range(0.1);
    let flow = || augmenter.flow(&x, &y, 8).map(|f| f.seed(5));
    let options = || quiet().epochs(5);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let backup_dir = folder.path().join("backup");

    let mut whole = bar_model();
    let uninterrupted = whole.fit(flow()?, options())?;

    let mut first = bar_model();
    let crashed = first.fit(
        flow()?,
        options()
            .callback(BackupAndRestore::new(&backup_dir))
            .callback(Crash(1)),
    );
    assert!(crashed.is_err());
    assert!(backup_dir.join("latest.safetensors").is_file());

    let mut second = bar_model();
    let mut backup = BackupAndRestore::new(&backup_dir);
    let resumed = second.fit(flow()?, options().callback(&mut backup))?;
    assert_eq!(backup.restored_epoch(), Some(2));
    assert_eq!(resumed.epochs(), [2, 3, 4]);
    assert_eq!(second.get_weights(), whole.get_weights());
    assert_eq!(
        second.optimizer().map(|o| o.state()),
        whole.optimizer().map(|o| o.state())
    );
    assert_eq!(
        resumed.get("loss").unwrap(),
        &uninterrupted.get("loss").unwrap()[2..]
    );
    // Training ended normally: the backup and its folder are gone.
    assert!(!backup_dir.exists());
    Ok(())
}

#[test]
fn a_backup_of_another_model_is_refused_and_changes_nothing() -> kerust::Result<()> {
    let (x, y) = toy(16);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let dir = folder.path().join("b");
    let mut trained = classifier(0.1);
    trained.fit(
        (&x, &y),
        quiet()
            .epochs(2)
            .callback(BackupAndRestore::new(&dir).delete_checkpoint(false)),
    )?;
    assert!(dir.join("latest.safetensors").is_file(), "kept when asked");

    // Other layer sizes: a weight of another shape.
    let mut other = Sequential::new()
        .input_shape([2])
        .seed(7)
        .add(Dense::new(4).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    other.compile(
        Sgd::new().learning_rate(0.1),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )?;
    other.build()?;
    let before = other.get_weights();
    let err = other
        .fit(
            (&x, &y),
            quiet().epochs(3).callback(BackupAndRestore::new(&dir)),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        err.contains("latest.safetensors") && err.contains("shape"),
        "{err}"
    );
    assert_eq!(other.get_weights(), before);

    // The same layers with another optimizer kind.
    let mut adam = Sequential::new()
        .input_shape([2])
        .seed(7)
        .add(Dense::new(8).activation(Activation::Relu))
        .add(Dense::new(2).activation(Activation::Softmax));
    adam.compile(
        Adam::new(),
        SparseCategoricalCrossentropy::new(),
        ["accuracy"],
    )?;
    let err = adam
        .fit(
            (&x, &y),
            quiet().epochs(3).callback(BackupAndRestore::new(&dir)),
        )
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(err.contains("sgd") && err.contains("adam"), "{err}");
    Ok(())
}

#[test]
fn a_backup_restores_the_learning_rate_and_a_finished_run_trains_no_more() -> kerust::Result<()> {
    let (x, y) = toy(16);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let dir = folder.path().join("lr");
    let mut model = classifier(0.1);
    let halve = LearningRateScheduler::new(|epoch, lr| if epoch == 1 { lr * 0.5 } else { lr });
    model.fit(
        (&x, &y),
        quiet()
            .epochs(3)
            .callback(halve)
            .callback(BackupAndRestore::new(&dir).delete_checkpoint(false)),
    )?;
    let mut again = classifier(0.1);
    let history = again.fit(
        (&x, &y),
        quiet().epochs(3).callback(BackupAndRestore::new(&dir)),
    )?;
    assert!(history.epochs().is_empty(), "all 3 epochs were done");
    assert_eq!(again.optimizer().map(|o| o.learning_rate()), Some(0.05));
    assert_eq!(again.get_weights(), model.get_weights());
    assert!(!dir.exists());
    Ok(())
}

#[test]
fn a_backup_folder_that_cannot_be_made_is_an_error_naming_it() {
    let (x, y) = toy(8);
    let folder = tempfile::tempdir().expect("a temporary folder");
    let blocker = folder.path().join("file");
    std::fs::write(&blocker, b"not a folder").expect("writable");
    let mut model = classifier(0.1);
    let err = model
        .fit(
            (&x, &y),
            quiet()
                .epochs(1)
                .callback(BackupAndRestore::new(blocker.join("backup"))),
        )
        .err();
    match err {
        Some(kerust::Error::Io { path, .. }) => assert!(path.ends_with("file/backup")),
        other => panic!("expected an I/O error naming the folder, got {other:?}"),
    }
}
