//! Reports through the public API: history files, the classification report
//! and confusion matrix, and the plots.

use std::sync::{Mutex, Once};

use kerust::metrics::report::{confusion_matrix_csv, save_confusion_matrix_csv};
use kerust::metrics::{classification_report, confusion_matrix, ClassificationReport};
use kerust::model::History;
use kerust::Error;
use ndarray::array;

/// Ten samples of three classes, worked by hand.
///
/// ```text
/// y_true  0 0 0 0 1 1 1 2 2 2
/// y_pred  0 0 1 2 1 1 0 2 2 1
///
///            predicted
///             0  1  2   support
/// true  0     2  1  1      4
///       1     1  2  0      3
///       2     0  1  2      3
/// predicted   3  4  3     10
///
/// class 0: precision 2/3, recall 2/4, f1 2*2/(4+3) = 4/7
/// class 1: precision 2/4, recall 2/3, f1 2*2/(3+4) = 4/7
/// class 2: precision 2/3, recall 2/3, f1 2*2/(3+3) = 2/3
/// accuracy     (2+2+2)/10 = 0.6
/// macro avg    precision (2/3+1/2+2/3)/3 = 11/18, recall 11/18,
///              f1 (4/7+4/7+2/3)/3 = 38/63
/// weighted avg precision (4*2/3 + 3*1/2 + 3*2/3)/10 = 37/60,
///              recall 6/10, f1 (4*4/7 + 3*4/7 + 3*2/3)/10 = 6/10
/// ```
const Y_TRUE: [usize; 10] = [0, 0, 0, 0, 1, 1, 1, 2, 2, 2];
const Y_PRED: [usize; 10] = [0, 0, 1, 2, 1, 1, 0, 2, 2, 1];

/// The same report from scikit-learn 1.9.1:
///
/// ```text
/// from sklearn.metrics import classification_report
/// classification_report([0,0,0,0,1,1,1,2,2,2], [0,0,1,2,1,1,0,2,2,1], digits=4)
/// ```
const SKLEARN_TABLE: &str = "              precision    recall  f1-score   support

           0     0.6667    0.5000    0.5714         4
           1     0.5000    0.6667    0.5714         3
           2     0.6667    0.6667    0.6667         3

    accuracy                         0.6000        10
   macro avg     0.6111    0.6111    0.6032        10
weighted avg     0.6167    0.6000    0.6000        10
";

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-12, "{actual} != {expected}");
}

fn names(list: &[&str]) -> Vec<String> {
    list.iter().map(|name| name.to_string()).collect()
}

/// Keeps every warning logged by the crate, for the tests that check them.
struct WarningLog;

static WARNINGS: Mutex<Vec<String>> = Mutex::new(Vec::new());

impl log::Log for WarningLog {
    fn enabled(&self, metadata: &log::Metadata) -> bool {
        metadata.level() <= log::Level::Warn
    }

    fn log(&self, record: &log::Record) {
        if self.enabled(record.metadata()) {
            WARNINGS.lock().unwrap().push(record.args().to_string());
        }
    }

    fn flush(&self) {}
}

fn capture_warnings() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        log::set_logger(&WarningLog).unwrap();
        log::set_max_level(log::LevelFilter::Warn);
    });
}

#[test]
fn hand_worked_report_matches_the_arithmetic() {
    let report = classification_report(&Y_TRUE, &Y_PRED, 3, None).unwrap();
    let expected = [
        (2.0 / 3.0, 2.0 / 4.0, 4.0 / 7.0, 4),
        (2.0 / 4.0, 2.0 / 3.0, 4.0 / 7.0, 3),
        (2.0 / 3.0, 2.0 / 3.0, 2.0 / 3.0, 3),
    ];
    for (class, (precision, recall, f1, support)) in report.classes.iter().zip(expected) {
        assert_close(class.precision, precision);
        assert_close(class.recall, recall);
        assert_close(class.f1_score, f1);
        assert_eq!(class.support, support);
    }
    assert_close(report.accuracy, 0.6);
    assert_close(report.macro_avg.precision, 11.0 / 18.0);
    assert_close(report.macro_avg.recall, 11.0 / 18.0);
    assert_close(report.macro_avg.f1_score, 38.0 / 63.0);
    assert_close(report.weighted_avg.precision, 37.0 / 60.0);
    assert_close(report.weighted_avg.recall, 0.6);
    assert_close(report.weighted_avg.f1_score, 0.6);
    assert_eq!(report.macro_avg.support, 10);
    assert_eq!(report.weighted_avg.support, 10);
}

#[test]
fn report_table_matches_scikit_learn() {
    let report = classification_report(&Y_TRUE, &Y_PRED, 3, None).unwrap();
    assert_eq!(report.to_string(), SKLEARN_TABLE);
}

#[test]
fn confusion_matrix_has_rows_true_and_columns_predicted() {
    let matrix = confusion_matrix(&Y_TRUE, &Y_PRED, 3).unwrap();
    assert_eq!(matrix, array![[2, 1, 1], [1, 2, 0], [0, 1, 2]]);
    // One 0 was taken for a 2, no 2 for a 0: the matrix is not symmetric.
    assert_eq!(matrix[[0, 2]], 1);
    assert_eq!(matrix[[2, 0]], 0);
}

#[test]
fn a_never_predicted_class_has_precision_zero_and_a_warning() {
    capture_warnings();
    let labels = names(&["alpha", "beta", "never-predicted-gamma"]);
    let report = classification_report(&[0, 1, 2, 2], &[0, 1, 1, 1], 3, Some(&labels)).unwrap();

    let gamma = &report.classes[2];
    assert_eq!(
        (gamma.precision, gamma.recall, gamma.f1_score),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(gamma.support, 2);
    for class in report
        .classes
        .iter()
        .chain([&report.macro_avg, &report.weighted_avg])
    {
        let figures = [class.precision, class.recall, class.f1_score];
        assert!(figures.iter().all(|x| x.is_finite()), "{class:?}");
    }
    assert_close(report.classes[1].precision, 1.0 / 3.0);

    let warnings = WARNINGS.lock().unwrap();
    let named = warnings
        .iter()
        .filter(|w| w.contains("never-predicted-gamma"));
    assert!(
        named.clone().any(|w| w.contains("precision")),
        "{warnings:?}"
    );
}

#[test]
fn a_class_without_samples_has_recall_zero() {
    let report = classification_report(&[0, 0, 1], &[0, 2, 1], 3, None).unwrap();
    let empty = &report.classes[2];
    assert_eq!(
        (empty.precision, empty.recall, empty.f1_score),
        (0.0, 0.0, 0.0)
    );
    assert_eq!(empty.support, 0);
}

#[test]
fn bad_labels_are_errors_naming_index_and_value() {
    let error = classification_report(&[0, 1, 5], &[0, 1, 1], 3, None).unwrap_err();
    assert!(matches!(
        error,
        Error::LabelOutOfRange {
            index: 2,
            classes: 3,
            ..
        }
    ));
    let message = error.to_string();
    assert!(
        message.contains("label 5") && message.contains("index 2"),
        "{message}"
    );
    assert!(matches!(
        confusion_matrix(&[], &[], 3),
        Err(Error::EmptyData { .. })
    ));
    assert!(matches!(
        confusion_matrix(&[0], &[0, 1], 3),
        Err(Error::ShapeMismatch { .. })
    ));
}

#[test]
fn report_round_trips_through_json_and_files() {
    let dir = tempfile::tempdir().unwrap();
    let labels = names(&["zero", "one", "two"]);
    let report = classification_report(&Y_TRUE, &Y_PRED, 3, Some(&labels)).unwrap();

    let read: ClassificationReport = serde_json::from_str(&report.to_json()).unwrap();
    assert_eq!(read, report);
    assert_eq!(read.names(), labels);

    report.save_text(dir.path().join("report.txt")).unwrap();
    report.save_json(dir.path().join("report.json")).unwrap();
    let text = std::fs::read_to_string(dir.path().join("report.txt")).unwrap();
    assert_eq!(text, report.to_string());
    let json = std::fs::read_to_string(dir.path().join("report.json")).unwrap();
    assert_eq!(json, report.to_json());
}

#[test]
fn confusion_matrix_csv_lists_true_rows_under_predicted_columns() {
    let matrix = confusion_matrix(&Y_TRUE, &Y_PRED, 3).unwrap();
    let labels = names(&["a", "b", "c"]);
    let csv = confusion_matrix_csv(&matrix, &labels).unwrap();
    assert_eq!(csv, "true/predicted,a,b,c\na,2,1,1\nb,1,2,0\nc,0,1,2\n");

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("matrix.csv");
    save_confusion_matrix_csv(&matrix, &labels, &path).unwrap();
    assert_eq!(std::fs::read_to_string(&path).unwrap(), csv);
}

/// A history with the keys `fit` logs, values that do not print briefly.
fn fifteen_epochs() -> History {
    let mut history = History::new();
    for epoch in 0..15 {
        let t = epoch as f64;
        let logs = [
            ("loss", 0.16 + 0.35 * (-t / 3.0).exp()),
            ("accuracy", 0.95 - 0.09 * (-t / 3.0).exp()),
            ("val_loss", 0.08 + 0.12 * (-t / 2.5).exp()),
            ("val_accuracy", 0.975 - 0.03 * (-t / 2.5).exp()),
            ("learning_rate", 0.001),
        ];
        history.push_epoch(epoch, logs).unwrap();
    }
    history
}

#[test]
fn history_files_read_back_bit_for_bit() {
    let dir = tempfile::tempdir().unwrap();
    let history = fifteen_epochs();
    let csv_path = dir.path().join("history.csv");
    let json_path = dir.path().join("history.json");
    history.save_csv(&csv_path).unwrap();
    history.save_json(&json_path).unwrap();

    let from_csv = History::load_csv(&csv_path).unwrap();
    let from_json = History::load_json(&json_path).unwrap();
    assert_eq!(from_csv, history);
    assert_eq!(from_json, history);
    for (key, values) in history.iter() {
        let bits = |values: &[f64]| values.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(from_csv.get(key).unwrap()), bits(values), "{key}");
        assert_eq!(bits(from_json.get(key).unwrap()), bits(values), "{key}");
    }

    from_csv.save_csv(&csv_path).unwrap();
    let written_again = std::fs::read_to_string(&csv_path).unwrap();
    assert_eq!(written_again, history.to_csv(',').unwrap());
}

#[cfg(feature = "plots")]
mod plots {
    use super::*;
    use kerust::plots::{plot_confusion_matrix, plot_history};

    const PNG_SIGNATURE: &[u8] = b"\x89PNG\r\n\x1a\n";

    fn files_in(dir: &std::path::Path) -> Vec<String> {
        let mut files: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        files.sort();
        files
    }

    #[test]
    fn history_plots_are_written_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let history = fifteen_epochs();
        plot_history(&history, "accuracy", dir.path().join("accuracy.png")).unwrap();
        plot_history(&history, "loss", dir.path().join("loss.svg")).unwrap();

        let png = std::fs::read(dir.path().join("accuracy.png")).unwrap();
        assert!(png.starts_with(PNG_SIGNATURE));
        let decoded = image::load_from_memory(&png).unwrap();
        assert!(decoded.width() > 0 && decoded.height() > 0);

        let svg = std::fs::read_to_string(dir.path().join("loss.svg")).unwrap();
        for text in ["Epoch", ">\nloss\n<", "Training", "Validation"] {
            assert!(svg.contains(text), "the SVG lacks {text:?}");
        }
        assert_eq!(files_in(dir.path()), ["accuracy.png", "loss.svg"]);
    }

    #[test]
    fn confusion_matrix_plots_are_written_as_png_and_svg() {
        let dir = tempfile::tempdir().unwrap();
        let matrix = confusion_matrix(&Y_TRUE, &Y_PRED, 3).unwrap();
        let labels = names(&["cat", "dog", "bird"]);
        plot_confusion_matrix(&matrix, &labels, dir.path().join("matrix.png")).unwrap();
        plot_confusion_matrix(&matrix, &labels, dir.path().join("matrix.svg")).unwrap();

        let png = std::fs::read(dir.path().join("matrix.png")).unwrap();
        assert!(png.starts_with(PNG_SIGNATURE));
        let svg = std::fs::read_to_string(dir.path().join("matrix.svg")).unwrap();
        for text in ["Predicted", "True", "bird"] {
            assert!(svg.contains(text), "the SVG lacks {text:?}");
        }
        assert_eq!(files_in(dir.path()), ["matrix.png", "matrix.svg"]);
    }

    #[test]
    fn an_unknown_extension_is_an_error_and_writes_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let history = fifteen_epochs();
        let matrix = confusion_matrix(&Y_TRUE, &Y_PRED, 3).unwrap();
        let labels = names(&["a", "b", "c"]);
        for name in ["plot.jpg", "plot", "plot.pdf"] {
            let error = plot_history(&history, "loss", dir.path().join(name)).unwrap_err();
            assert!(
                matches!(error, Error::InvalidArgument { .. }),
                "{name}: {error}"
            );
            let error = plot_confusion_matrix(&matrix, &labels, dir.path().join(name));
            assert!(
                matches!(error, Err(Error::InvalidArgument { .. })),
                "{name}"
            );
        }
        assert!(files_in(dir.path()).is_empty());
    }

    #[test]
    fn an_empty_history_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let error = plot_history(&History::new(), "loss", dir.path().join("loss.png"));
        assert!(matches!(error, Err(Error::EmptyData { .. })), "{error:?}");
    }

    #[test]
    fn a_metric_missing_from_the_history_is_an_error_listing_the_keys() {
        let dir = tempfile::tempdir().unwrap();
        let error = plot_history(&fifteen_epochs(), "precision", dir.path().join("p.svg"))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("precision") && error.contains("val_accuracy"),
            "{error}"
        );
    }

    #[test]
    fn labels_must_match_the_matrix() {
        let dir = tempfile::tempdir().unwrap();
        let matrix = confusion_matrix(&Y_TRUE, &Y_PRED, 3).unwrap();
        let error = plot_confusion_matrix(&matrix, &names(&["a", "b"]), dir.path().join("m.png"));
        assert!(
            matches!(error, Err(Error::InvalidArgument { .. })),
            "{error:?}"
        );
        let wide = ndarray::Array2::<u64>::zeros((2, 3));
        let error = plot_confusion_matrix(&wide, &names(&["a", "b"]), dir.path().join("m.png"));
        assert!(
            matches!(error, Err(Error::ShapeMismatch { .. })),
            "{error:?}"
        );
    }
}
