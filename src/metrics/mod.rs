//! Metrics and reports on predictions.

pub mod report;

pub use report::{classification_report, confusion_matrix, ClassReport, ClassificationReport};
