//! The classification report and the confusion matrix of a set of
//! predictions, computed as scikit-learn computes them.
//!
//! For each class `c`, with `tp` the samples of class `c` predicted as `c`,
//! `support` the samples of class `c` and `predicted` the samples predicted
//! as `c`:
//!
//! ```text
//! precision = tp / predicted              (0 when predicted = 0)
//! recall    = tp / support                (0 when support = 0)
//! f1-score  = 2 tp / (support + predicted) (0 when both are 0)
//! accuracy  = sum of tp over all classes / number of samples
//! macro avg    = mean over the classes
//! weighted avg = mean over the classes, weighted by support
//! ```
//!
//! The zeros for undefined ratios are scikit-learn's `zero_division=0`; each
//! is logged as a warning naming the class, and no figure is ever NaN.
//!
//! # Examples
//!
//! ```
//! use kerust::metrics::{classification_report, confusion_matrix};
//!
//! # fn main() -> kerust::Result<()> {
//! let y_true = [0, 0, 1, 1, 2];
//! let y_pred = [0, 1, 1, 1, 2];
//!
//! let matrix = confusion_matrix(&y_true, &y_pred, 3)?;
//! assert_eq!(matrix.row(0).to_vec(), [1, 1, 0]); // one 0 taken for a 1
//!
//! let report = classification_report(&y_true, &y_pred, 3, None)?;
//! assert_eq!(report.accuracy, 0.8);
//! assert_eq!(report.classes[1].precision, 2.0 / 3.0);
//! println!("{report}"); // the scikit-learn table, 4 decimals
//! # Ok(())
//! # }
//! ```

use std::fmt;
use std::path::Path;

use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::io::write_atomic;
use crate::{Error, Result};

/// The name of the first column of the confusion matrix CSV.
const CSV_CORNER: &str = "true/predicted";

/// The figures of one class, or of an average over the classes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassReport {
    /// The class name, or `macro avg` and `weighted avg` for the averages.
    pub name: String,
    /// Share of the samples predicted as the class that belong to it.
    pub precision: f64,
    /// Share of the samples of the class that were predicted as it.
    pub recall: f64,
    /// Harmonic mean of precision and recall.
    pub f1_score: f64,
    /// Number of samples of the class; the total for the averages.
    pub support: u64,
}

/// Precision, recall, F1 and support per class, with accuracy and averages,
/// as scikit-learn's `classification_report` gives them.
///
/// `Display` prints scikit-learn's table with 4 decimals; a precision in the
/// format string (`{report:.2}`) sets another number of decimals.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassificationReport {
    /// One entry per class, in class order.
    pub classes: Vec<ClassReport>,
    /// Share of all samples predicted correctly.
    pub accuracy: f64,
    /// Unweighted mean of the per-class figures.
    pub macro_avg: ClassReport,
    /// Mean of the per-class figures weighted by their support.
    pub weighted_avg: ClassReport,
}

/// The confusion matrix of class labels: entry `(t, p)` counts the samples
/// of true class `t` predicted as class `p` (rows true, columns predicted).
///
/// # Errors
///
/// [`Error::InvalidArgument`] when `num_classes` is 0;
/// [`Error::ShapeMismatch`] when the two slices differ in length;
/// [`Error::EmptyData`] when they are empty; [`Error::LabelOutOfRange`] with
/// the index and value of the first label not below `num_classes`, in
/// `y_true` then in `y_pred`.
pub fn confusion_matrix(
    y_true: &[usize],
    y_pred: &[usize],
    num_classes: usize,
) -> Result<Array2<u64>> {
    if num_classes == 0 {
        return Err(Error::invalid(
            "num_classes",
            0,
            "expected at least one class",
        ));
    }
    if y_pred.len() != y_true.len() {
        return Err(Error::shape(
            "confusion_matrix",
            format!("`y_pred` of length {} like `y_true`", y_true.len()),
            &[y_pred.len()],
        ));
    }
    if y_true.is_empty() {
        return Err(Error::EmptyData {
            what: "y_true".to_string(),
        });
    }
    check_labels("y_true", y_true, num_classes)?;
    check_labels("y_pred", y_pred, num_classes)?;

    let mut matrix = Array2::<u64>::zeros((num_classes, num_classes));
    for (&truth, &prediction) in y_true.iter().zip(y_pred) {
        matrix[[truth, prediction]] += 1;
    }
    Ok(matrix)
}

/// The classification report of class labels; the classes are named by
/// `target_names`, or by their numbers when it is `None`.
///
/// # Errors
///
/// Those of [`confusion_matrix`], and [`Error::InvalidArgument`] when
/// `target_names` does not hold `num_classes` names.
pub fn classification_report(
    y_true: &[usize],
    y_pred: &[usize],
    num_classes: usize,
    target_names: Option<&[String]>,
) -> Result<ClassificationReport> {
    let names = class_names(num_classes, target_names)?;
    let matrix = confusion_matrix(y_true, y_pred, num_classes)?;
    Ok(ClassificationReport::from_counts(&matrix, names))
}

/// The confusion matrix as CSV: a header `true/predicted` followed by the
/// labels, then one row per true class, starting with its label. Labels
/// holding a comma, a quote or a line break are quoted.
///
/// # Errors
///
/// [`Error::ShapeMismatch`] when `matrix` is not square;
/// [`Error::EmptyData`] when it has no class; [`Error::InvalidArgument`]
/// when `labels` does not hold one name per class.
pub fn confusion_matrix_csv(matrix: &Array2<u64>, labels: &[String]) -> Result<String> {
    let classes = check_square(matrix)?;
    check_label_count("labels", labels.len(), classes)?;

    let mut header = vec![CSV_CORNER.to_string()];
    header.extend(labels.iter().map(|label| quote_csv(label)));
    let mut csv = header.join(",") + "\n";
    for (label, row) in labels.iter().zip(matrix.rows()) {
        let mut fields = vec![quote_csv(label)];
        fields.extend(row.iter().map(u64::to_string));
        csv.push_str(&fields.join(","));
        csv.push('\n');
    }
    Ok(csv)
}

/// Writes [`confusion_matrix_csv`] to `path`, atomically.
///
/// # Errors
///
/// Those of [`confusion_matrix_csv`], and [`Error::Io`] naming the path when
/// the file cannot be written.
pub fn save_confusion_matrix_csv(
    matrix: &Array2<u64>,
    labels: &[String],
    path: impl AsRef<Path>,
) -> Result<()> {
    write_atomic(path, confusion_matrix_csv(matrix, labels)?.as_bytes())
}

impl ClassificationReport {
    /// The report of a confusion matrix with rows true and columns predicted,
    /// as [`confusion_matrix`] returns it; the classes are named by
    /// `target_names`, or by their numbers when it is `None`.
    ///
    /// # Errors
    ///
    /// [`Error::ShapeMismatch`] when `matrix` is not square;
    /// [`Error::EmptyData`] when it has no class or counts no sample;
    /// [`Error::InvalidArgument`] when `target_names` does not hold one name
    /// per class.
    pub fn from_confusion_matrix(
        matrix: &Array2<u64>,
        target_names: Option<&[String]>,
    ) -> Result<ClassificationReport> {
        let classes = check_square(matrix)?;
        if matrix.sum() == 0 {
            return Err(Error::EmptyData {
                what: "confusion matrix".to_string(),
            });
        }
        let names = class_names(classes, target_names)?;
        Ok(Self::from_counts(matrix, names))
    }

    /// The class names, in class order.
    pub fn names(&self) -> Vec<String> {
        self.classes
            .iter()
            .map(|class| class.name.clone())
            .collect()
    }

    /// The report as pretty-printed JSON.
    pub fn to_json(&self) -> String {
        // Finite numbers and strings always serialize.
        serde_json::to_string_pretty(self).unwrap_or_default()
    }

    /// Writes the table that `Display` prints (4 decimals) to `path`,
    /// atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the path when the file cannot be written.
    pub fn save_text(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, self.to_string().as_bytes())
    }

    /// Writes [`to_json`](ClassificationReport::to_json) to `path`,
    /// atomically.
    ///
    /// # Errors
    ///
    /// [`Error::Io`] naming the path when the file cannot be written.
    pub fn save_json(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path, self.to_json().as_bytes())
    }

    /// The report of a square matrix counting at least one sample, with one
    /// name per class.
    fn from_counts(matrix: &Array2<u64>, names: Vec<String>) -> ClassificationReport {
        let total = matrix.sum();
        let correct: u64 = matrix.diag().sum();
        let classes: Vec<ClassReport> = names
            .into_iter()
            .enumerate()
            .map(|(class, name)| class_report(matrix, class, name))
            .collect();
        ClassificationReport {
            accuracy: correct as f64 / total as f64,
            macro_avg: average(&classes, "macro avg", |_| 1.0),
            weighted_avg: average(&classes, "weighted avg", |class| class.support as f64),
            classes,
        }
    }
}

impl fmt::Display for ClassificationReport {
    /// scikit-learn's table: a header, one row per class, a blank line, then
    /// accuracy, macro avg and weighted avg. Ends with a line break.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digits = f.precision().unwrap_or(4);
        let width = self
            .classes
            .iter()
            .map(|class| class.name.chars().count())
            .chain([self.weighted_avg.name.chars().count(), digits])
            .max()
            .unwrap_or(0);

        let headers = ["precision", "recall", "f1-score", "support"];
        write!(f, "{:>width$} ", "")?;
        for header in headers {
            write!(f, " {header:>9}")?;
        }
        writeln!(f, "\n")?;
        for class in &self.classes {
            write_row(f, class, width, digits)?;
        }
        writeln!(f)?;

        let total = self.weighted_avg.support;
        write!(f, "{:>width$}  {:>9} {:>9}", "accuracy", "", "")?;
        writeln!(f, " {:>9.digits$} {total:>9}", self.accuracy)?;
        write_row(f, &self.macro_avg, width, digits)?;
        write_row(f, &self.weighted_avg, width, digits)
    }
}

fn write_row(
    f: &mut fmt::Formatter<'_>,
    row: &ClassReport,
    width: usize,
    digits: usize,
) -> fmt::Result {
    write!(f, "{:>width$} ", row.name)?;
    for value in [row.precision, row.recall, row.f1_score] {
        write!(f, " {value:>9.digits$}")?;
    }
    writeln!(f, " {:>9}", row.support)
}

fn class_report(matrix: &Array2<u64>, class: usize, name: String) -> ClassReport {
    let tp = matrix[[class, class]];
    let support: u64 = matrix.row(class).sum();
    let predicted: u64 = matrix.column(class).sum();
    if predicted == 0 {
        log::warn!("precision of class `{name}` is ill-defined: it was never predicted; set to 0");
    }
    if support == 0 {
        log::warn!("recall of class `{name}` is ill-defined: it has no true sample; set to 0");
    }
    ClassReport {
        precision: ratio(tp, predicted),
        recall: ratio(tp, support),
        f1_score: ratio(2 * tp, support + predicted),
        support,
        name,
    }
}

/// `numerator / denominator`, or 0 when the denominator is 0.
fn ratio(numerator: u64, denominator: u64) -> f64 {
    if denominator == 0 {
        0.0
    } else {
        numerator as f64 / denominator as f64
    }
}

/// The weighted mean of each figure over the classes; support is the total.
fn average(
    classes: &[ClassReport],
    name: &str,
    weight: impl Fn(&ClassReport) -> f64,
) -> ClassReport {
    let total_weight: f64 = classes.iter().map(&weight).sum();
    let mean = |figure: fn(&ClassReport) -> f64| {
        let sum: f64 = classes.iter().map(|c| figure(c) * weight(c)).sum();
        if total_weight == 0.0 {
            0.0
        } else {
            sum / total_weight
        }
    };
    ClassReport {
        name: name.to_string(),
        precision: mean(|c| c.precision),
        recall: mean(|c| c.recall),
        f1_score: mean(|c| c.f1_score),
        support: classes.iter().map(|c| c.support).sum(),
    }
}

fn check_labels(data: &str, labels: &[usize], num_classes: usize) -> Result<()> {
    match labels.iter().position(|&label| label >= num_classes) {
        Some(index) => Err(Error::LabelOutOfRange {
            data: data.into(),
            index,
            label: labels[index] as f64,
            classes: num_classes,
        }),
        None => Ok(()),
    }
}

/// The number of classes of a square, non-empty matrix.
pub(crate) fn check_square(matrix: &Array2<u64>) -> Result<usize> {
    let (rows, columns) = matrix.dim();
    if rows != columns {
        return Err(Error::shape(
            "confusion matrix",
            "a square matrix (classes, classes)",
            &[rows, columns],
        ));
    }
    if rows == 0 {
        return Err(Error::EmptyData {
            what: "confusion matrix".to_string(),
        });
    }
    Ok(rows)
}

pub(crate) fn check_label_count(name: &str, count: usize, classes: usize) -> Result<()> {
    if count != classes {
        return Err(Error::invalid(
            name,
            format!("{count} names"),
            format!("expected {classes}, one per class"),
        ));
    }
    Ok(())
}

/// The given names, checked, or the class numbers as names.
fn class_names(classes: usize, target_names: Option<&[String]>) -> Result<Vec<String>> {
    match target_names {
        Some(names) => {
            check_label_count("target_names", names.len(), classes)?;
            Ok(names.to_vec())
        }
        None => Ok((0..classes).map(|class| class.to_string()).collect()),
    }
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
fn quote_csv(field: &str) -> String {
    if field.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", field.replace('"', "\"\""))
    } else {
        field.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    fn names(list: &[&str]) -> Vec<String> {
        list.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn counts_rows_true_and_columns_predicted() {
        // Two 0s taken for 1s, no 1 taken for a 0.
        let matrix = confusion_matrix(&[0, 0, 0, 1], &[1, 1, 0, 1], 2).unwrap();
        assert_eq!(matrix, array![[1, 2], [0, 1]]);
    }

    #[test]
    fn confusion_matrix_refuses_bad_input() {
        let mismatch = confusion_matrix(&[0, 1], &[0], 2).unwrap_err();
        assert!(
            matches!(mismatch, Error::ShapeMismatch { .. }),
            "{mismatch}"
        );
        let empty = confusion_matrix(&[], &[], 2).unwrap_err();
        assert!(matches!(empty, Error::EmptyData { .. }), "{empty}");
        let no_class = confusion_matrix(&[0], &[0], 0).unwrap_err();
        assert!(
            matches!(no_class, Error::InvalidArgument { .. }),
            "{no_class}"
        );
    }

    #[test]
    fn an_out_of_range_label_names_its_index_and_value() {
        let error = confusion_matrix(&[0, 1, 2], &[0, 1, 1], 2).unwrap_err();
        assert!(
            matches!(&error, Error::LabelOutOfRange { index: 2, classes: 2, label, data } if *label == 2.0 && data == "y_true"),
            "{error}"
        );
        let error = confusion_matrix(&[0, 1], &[7, 1], 2).unwrap_err();
        assert!(
            matches!(&error, Error::LabelOutOfRange { index: 0, data, .. } if data == "y_pred"),
            "{error}"
        );
    }

    #[test]
    fn target_names_must_match_the_classes() {
        let error = classification_report(&[0], &[0], 2, Some(&names(&["a"]))).unwrap_err();
        assert!(error.to_string().contains("target_names"), "{error}");
    }

    #[test]
    fn a_class_absent_from_truth_and_predictions_scores_zero() {
        let report = classification_report(&[0, 1], &[0, 1], 3, None).unwrap();
        let absent = &report.classes[2];
        assert_eq!(
            (absent.precision, absent.recall, absent.f1_score),
            (0.0, 0.0, 0.0)
        );
        assert_eq!(absent.support, 0);
        // scikit-learn counts the absent class in the macro average.
        assert!((report.macro_avg.recall - 2.0 / 3.0).abs() < 1e-12);
        assert_eq!(report.weighted_avg.recall, 1.0);
    }

    #[test]
    fn from_confusion_matrix_matches_the_labels_route() {
        let (y_true, y_pred) = ([0, 1, 2, 2, 1], [0, 2, 2, 2, 1]);
        let matrix = confusion_matrix(&y_true, &y_pred, 3).unwrap();
        let direct = classification_report(&y_true, &y_pred, 3, None).unwrap();
        let from_matrix = ClassificationReport::from_confusion_matrix(&matrix, None).unwrap();
        assert_eq!(direct, from_matrix);
        let zeros = Array2::<u64>::zeros((2, 2));
        assert!(ClassificationReport::from_confusion_matrix(&zeros, None).is_err());
        let wide = Array2::<u64>::ones((2, 3));
        assert!(ClassificationReport::from_confusion_matrix(&wide, None).is_err());
    }

    #[test]
    fn display_widens_for_long_names_and_honours_precision() {
        let labels = names(&["cat", "a rather long name"]);
        let report = classification_report(&[0, 1], &[0, 0], 2, Some(&labels)).unwrap();
        let text = format!("{report:.2}");
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(
            lines[0],
            "                    precision    recall  f1-score   support"
        );
        assert_eq!(
            lines[3],
            "a rather long name       0.00      0.00      0.00         1"
        );
        assert_eq!(
            lines[5],
            "          accuracy                           0.50         2"
        );
    }

    #[test]
    fn csv_quotes_awkward_labels() {
        let matrix = array![[3, 1], [0, 4]];
        let csv = confusion_matrix_csv(&matrix, &names(&["a,b", "say \"hi\""])).unwrap();
        assert_eq!(
            csv,
            "true/predicted,\"a,b\",\"say \"\"hi\"\"\"\n\"a,b\",3,1\n\"say \"\"hi\"\"\",0,4\n"
        );
        assert!(confusion_matrix_csv(&matrix, &names(&["a"])).is_err());
    }
}
