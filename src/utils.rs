//! Small helpers for preparing data, after `keras.utils`.

use ndarray::{Array2, ArrayBase, Data, Ix1};

use crate::losses::label_at;
use crate::{Error, Result};

/// One-hot rows for class labels, as Keras' `to_categorical`: label `k`
/// becomes a row of `num_classes` values, `1.0` at column `k` and `0.0`
/// elsewhere. This is what [`CategoricalCrossentropy`] takes as targets;
/// [`SparseCategoricalCrossentropy`] takes the labels as they are.
///
/// Unlike Keras, `num_classes` is always given: Keras' default (the largest
/// label plus one) silently gives a narrower matrix for data that happens
/// to lack the last class.
///
/// # Errors
///
/// [`Error::InvalidArgument`] for `num_classes` 0, and
/// [`Error::LabelOutOfRange`] naming the first label that is not an integer
/// in `[0, num_classes)`.
///
/// # Examples
///
/// ```
/// use kerust::utils::to_categorical;
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let one_hot = to_categorical(&array![2.0_f32, 0.0, 1.0], 3)?;
/// assert_eq!(one_hot, array![[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]);
///
/// let err = to_categorical(&array![0.0_f32, 3.0], 3).unwrap_err();
/// assert!(err.to_string().starts_with("label 3 at index 1"));
/// # Ok(())
/// # }
/// ```
///
/// [`CategoricalCrossentropy`]: crate::losses::CategoricalCrossentropy
/// [`SparseCategoricalCrossentropy`]: crate::losses::SparseCategoricalCrossentropy
pub fn to_categorical<S>(labels: &ArrayBase<S, Ix1>, num_classes: usize) -> Result<Array2<f32>>
where
    S: Data<Elem = f32>,
{
    if num_classes == 0 {
        return Err(Error::invalid(
            "num_classes",
            0,
            "expected at least one class",
        ));
    }
    let mut one_hot = Array2::zeros((labels.len(), num_classes));
    for (i, (&label, mut row)) in labels.iter().zip(one_hot.rows_mut()).enumerate() {
        let class = label_at(i, label, num_classes).map_err(|err| match err {
            Error::LabelOutOfRange {
                index,
                label,
                classes,
                ..
            } => Error::LabelOutOfRange {
                data: "labels".into(),
                index,
                label,
                classes,
            },
            other => other,
        })?;
        row[class] = 1.0;
    }
    Ok(one_hot)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::array;

    #[test]
    fn each_row_has_a_single_one_at_its_label() {
        let labels = array![3.0_f32, 0.0, 9.0, 3.0];
        let one_hot = to_categorical(&labels, 10).unwrap();
        assert_eq!(one_hot.shape(), &[4, 10]);
        for (row, &label) in one_hot.rows().into_iter().zip(&labels) {
            assert_eq!(row.sum(), 1.0);
            assert_eq!(row[label as usize], 1.0);
        }
    }

    #[test]
    fn bad_labels_and_no_classes_are_errors() {
        for bad in [f32::NAN, -1.0, 1.5, 10.0] {
            let err = to_categorical(&array![0.0_f32, bad], 10).unwrap_err();
            assert!(
                matches!(&err, Error::LabelOutOfRange { index: 1, data, .. } if data == "labels"),
                "{bad}: {err}"
            );
        }
        let err = to_categorical(&array![0.0_f32], 0).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err}");
        assert_eq!(
            to_categorical(&ndarray::Array1::<f32>::zeros(0), 3)
                .unwrap()
                .shape(),
            &[0, 3]
        );
    }
}
