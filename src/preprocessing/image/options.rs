//! Keras option names and values for [`ImageDataGenerator`], so that a
//! configuration written for Keras can be read as it is.

use std::fmt;

use super::generator::ImageDataGenerator;
use super::warp::FillMode;
use crate::{Error, Result};

/// A value for [`ImageDataGenerator::set`], in one of the forms Keras takes.
#[derive(Debug, Clone, PartialEq)]
pub enum OptionValue {
    /// A number: a range, a factor, or 0/1 for a flag.
    Number(f64),
    /// A flag.
    Bool(bool),
    /// Two numbers, e.g. a zoom range `[lower, upper]`.
    Pair(f64, f64),
    /// A list of numbers, e.g. shift values in pixels.
    List(Vec<f64>),
    /// A name, e.g. a fill mode.
    Text(String),
}

impl fmt::Display for OptionValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OptionValue::Number(v) => write!(f, "{v}"),
            OptionValue::Bool(v) => write!(f, "{v}"),
            OptionValue::Pair(a, b) => write!(f, "({a}, {b})"),
            OptionValue::List(v) => write!(f, "{v:?}"),
            OptionValue::Text(v) => write!(f, "{v:?}"),
        }
    }
}

impl From<f64> for OptionValue {
    fn from(value: f64) -> Self {
        OptionValue::Number(value)
    }
}

impl From<f32> for OptionValue {
    fn from(value: f32) -> Self {
        OptionValue::Number(f64::from(value))
    }
}

impl From<i32> for OptionValue {
    fn from(value: i32) -> Self {
        OptionValue::Number(f64::from(value))
    }
}

impl From<bool> for OptionValue {
    fn from(value: bool) -> Self {
        OptionValue::Bool(value)
    }
}

impl From<(f64, f64)> for OptionValue {
    fn from((a, b): (f64, f64)) -> Self {
        OptionValue::Pair(a, b)
    }
}

impl From<Vec<f64>> for OptionValue {
    fn from(value: Vec<f64>) -> Self {
        OptionValue::List(value)
    }
}

impl From<&str> for OptionValue {
    fn from(value: &str) -> Self {
        OptionValue::Text(value.to_string())
    }
}

/// The Keras options that kerust implements, for [`ImageDataGenerator::set`].
const SUPPORTED: &[&str] = &[
    "rotation_range",
    "width_shift_range",
    "height_shift_range",
    "shear_range",
    "zoom_range",
    "horizontal_flip",
    "vertical_flip",
    "fill_mode",
    "cval",
    "channel_shift_range",
    "brightness_range",
    "rescale",
    "samplewise_center",
    "samplewise_std_normalization",
    "featurewise_center",
    "featurewise_std_normalization",
    "interpolation_order",
    "data_format",
];

/// Keras options that kerust does not implement.
const UNSUPPORTED: &[&str] = &["zca_whitening", "zca_epsilon", "validation_split", "dtype"];

impl ImageDataGenerator {
    /// A generator from Keras option names and values, e.g.
    /// `&[("rotation_range", 15.0), ("zoom_range", 0.1)]`.
    ///
    /// # Errors
    ///
    /// As [`set`](Self::set) for each option, then as
    /// [`validate`](Self::validate).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::preprocessing::image::{ImageDataGenerator, OptionValue};
    /// use kerust::Error;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let augmenter = ImageDataGenerator::from_options(&[
    ///     ("rotation_range", 15.0),
    ///     ("width_shift_range", 0.1),
    /// ])?;
    /// let built = ImageDataGenerator::new().rotation_range(15.0).width_shift_range(0.1);
    /// assert_eq!(augmenter, built);
    ///
    /// // Values of several forms: wrap them in `OptionValue`.
    /// let mixed = ImageDataGenerator::from_options(&[
    ///     ("zoom_range", OptionValue::Pair(0.9, 1.2)),
    ///     ("fill_mode", OptionValue::from("reflect")),
    /// ]);
    /// assert!(mixed.is_ok());
    ///
    /// let refused = ImageDataGenerator::from_options(&[("zca_whitening", 1.0)]);
    /// assert!(matches!(
    ///     refused,
    ///     Err(Error::InvalidArgument { name, .. }) if name == "zca_whitening"
    /// ));
    /// # Ok(())
    /// # }
    /// ```
    pub fn from_options<V>(options: &[(&str, V)]) -> Result<Self>
    where
        V: Into<OptionValue> + Clone,
    {
        let mut generator = ImageDataGenerator::new();
        for (name, value) in options {
            generator = generator.set(name, value.clone())?;
        }
        generator.validate()?;
        Ok(generator)
    }

    /// Sets the option Keras calls `name`: `rotation_range`,
    /// `width_shift_range` and `height_shift_range` (a number, or a list of
    /// pixel values), `shear_range`, `zoom_range` (a number or a pair),
    /// `horizontal_flip` and `vertical_flip` (a flag, or 0/1), `fill_mode`
    /// (`"nearest"`, `"constant"`, `"reflect"` or `"wrap"`), `cval`,
    /// `channel_shift_range`, `brightness_range` (a pair), `rescale`, the
    /// flags `samplewise_center`, `samplewise_std_normalization`,
    /// `featurewise_center` and `featurewise_std_normalization`;
    /// `interpolation_order` only as 1 and `data_format` only as
    /// `"channels_last"`, which is what kerust does.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] naming the option when it is unknown, is a
    /// Keras option kerust does not implement (`zca_whitening`,
    /// `validation_split`, ...), or `preprocessing_function`, which takes a
    /// function (see
    /// [`preprocessing_function`](ImageDataGenerator::preprocessing_function)),
    /// has a value of the wrong form, or fails
    /// [`validate`](Self::validate).
    pub fn set(mut self, name: &str, value: impl Into<OptionValue>) -> Result<Self> {
        let value = value.into();
        let wrong = |expected: &str| Error::invalid(name, &value, format!("expected {expected}"));
        match (name, &value) {
            ("rotation_range", OptionValue::Number(v)) => self = self.rotation_range(*v),
            ("shear_range", OptionValue::Number(v)) => self = self.shear_range(*v),
            ("width_shift_range", OptionValue::Number(v)) => self = self.width_shift_range(*v),
            ("width_shift_range", OptionValue::List(v)) => {
                self = self.width_shift_values(v.clone())
            }
            ("height_shift_range", OptionValue::Number(v)) => self = self.height_shift_range(*v),
            ("height_shift_range", OptionValue::List(v)) => {
                self = self.height_shift_values(v.clone())
            }
            ("width_shift_range" | "height_shift_range", _) => {
                return Err(wrong("a number or a list of pixel values"))
            }
            ("zoom_range", OptionValue::Number(v)) => self = self.zoom_range(*v),
            ("zoom_range", OptionValue::Pair(lo, hi)) => self = self.zoom_range_pair(*lo, *hi),
            ("zoom_range", OptionValue::List(v)) if v.len() == 2 => {
                self = self.zoom_range_pair(v[0], v[1])
            }
            ("zoom_range", _) => return Err(wrong("a number or a pair of numbers")),
            ("horizontal_flip", v) => {
                self = self.horizontal_flip(flag(v).ok_or_else(|| wrong("a flag"))?)
            }
            ("vertical_flip", v) => {
                self = self.vertical_flip(flag(v).ok_or_else(|| wrong("a flag"))?)
            }
            ("fill_mode", OptionValue::Text(text)) => {
                let mode = fill_mode_named(text)
                    .ok_or_else(|| wrong("\"nearest\", \"constant\", \"reflect\" or \"wrap\""))?;
                self = self.fill_mode(mode)
            }
            ("cval", OptionValue::Number(v)) => self = self.cval(*v as f32),
            ("rescale", OptionValue::Number(v)) => self = self.rescale(*v as f32),
            ("channel_shift_range", OptionValue::Number(v)) => self = self.channel_shift_range(*v),
            ("brightness_range", OptionValue::Pair(lo, hi)) => {
                self = self.brightness_range(*lo, *hi)
            }
            ("brightness_range", OptionValue::List(v)) if v.len() == 2 => {
                self = self.brightness_range(v[0], v[1])
            }
            ("brightness_range", _) => return Err(wrong("a pair of factors, e.g. (0.8, 1.2)")),
            ("samplewise_center", v) => {
                self = self.samplewise_center(flag(v).ok_or_else(|| wrong("a flag"))?)
            }
            ("samplewise_std_normalization", v) => {
                self = self.samplewise_std_normalization(flag(v).ok_or_else(|| wrong("a flag"))?)
            }
            ("featurewise_center", v) => {
                self = self.featurewise_center(flag(v).ok_or_else(|| wrong("a flag"))?)
            }
            ("featurewise_std_normalization", v) => {
                self = self.featurewise_std_normalization(flag(v).ok_or_else(|| wrong("a flag"))?)
            }
            ("interpolation_order", OptionValue::Number(v)) if *v == 1.0 => {}
            ("interpolation_order", _) => {
                return Err(wrong("1: kerust interpolates bilinearly only"))
            }
            ("data_format", OptionValue::Text(text)) if text == "channels_last" => {}
            ("data_format", _) => {
                return Err(wrong(
                    "\"channels_last\": images are (height, width, channels)",
                ))
            }
            (
                "rotation_range"
                | "shear_range"
                | "fill_mode"
                | "cval"
                | "rescale"
                | "channel_shift_range",
                _,
            ) => return Err(wrong("a number (a name for `fill_mode`)")),
            ("preprocessing_function", _) => {
                return Err(Error::invalid(
                    name,
                    &value,
                    "takes a function: use `ImageDataGenerator::preprocessing_function`",
                ))
            }
            _ if UNSUPPORTED.contains(&name) => {
                return Err(Error::invalid(
                    name,
                    &value,
                    "is a Keras `ImageDataGenerator` option that kerust does not support",
                ))
            }
            _ => {
                return Err(Error::invalid(
                    name,
                    &value,
                    format!("unknown option; expected one of {}", SUPPORTED.join(", ")),
                ))
            }
        }
        self.validate()?;
        Ok(self)
    }
}

fn flag(value: &OptionValue) -> Option<bool> {
    match value {
        OptionValue::Bool(b) => Some(*b),
        OptionValue::Number(v) if *v == 0.0 => Some(false),
        OptionValue::Number(v) if *v == 1.0 => Some(true),
        _ => None,
    }
}

fn fill_mode_named(name: &str) -> Option<FillMode> {
    [
        FillMode::Nearest,
        FillMode::Constant,
        FillMode::Reflect,
        FillMode::Wrap,
    ]
    .into_iter()
    .find(|mode| mode.keras_name() == name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid_name<T: std::fmt::Debug>(result: Result<T>) -> String {
        match result {
            Err(Error::InvalidArgument { name, .. }) => name,
            other => panic!("expected an invalid argument, got {other:?}"),
        }
    }

    #[test]
    fn keras_names_set_the_matching_options() -> Result<()> {
        let from_names = ImageDataGenerator::new()
            .set("rotation_range", 15)?
            .set("width_shift_range", vec![1.0, 2.0])?
            .set("height_shift_range", 0.1)?
            .set("zoom_range", (0.8, 1.2))?
            .set("horizontal_flip", true)?
            .set("fill_mode", "reflect")?
            .set("interpolation_order", 1)?
            .set("rescale", 1.0 / 255.0)?;
        let built = ImageDataGenerator::new()
            .rotation_range(15.0)
            .width_shift_values(vec![1.0, 2.0])
            .height_shift_range(0.1)
            .zoom_range_pair(0.8, 1.2)
            .horizontal_flip(true)
            .fill_mode(FillMode::Reflect)
            .rescale((1.0f64 / 255.0) as f32);
        assert_eq!(from_names, built);

        let intensities = ImageDataGenerator::from_options(&[
            ("channel_shift_range", OptionValue::from(20.0)),
            ("brightness_range", OptionValue::from(vec![0.5, 1.5])),
            ("samplewise_center", OptionValue::Bool(true)),
            ("samplewise_std_normalization", OptionValue::from(1.0)),
            ("featurewise_center", OptionValue::Bool(true)),
            ("featurewise_std_normalization", OptionValue::Bool(false)),
        ])?;
        let built = ImageDataGenerator::new()
            .channel_shift_range(20.0)
            .brightness_range(0.5, 1.5)
            .samplewise_center(true)
            .samplewise_std_normalization(true)
            .featurewise_center(true);
        assert_eq!(intensities, built);
        Ok(())
    }

    #[test]
    fn unknown_and_unsupported_names_are_refused_by_name() {
        let generator = ImageDataGenerator::new;
        for name in ["zca_whitening", "validation_split", "rotaton"] {
            assert_eq!(invalid_name(generator().set(name, 1.0)), name);
        }
        assert_eq!(
            invalid_name(generator().set("brightness_range", 1.2)),
            "brightness_range"
        );
        assert_eq!(
            invalid_name(generator().set("brightness_range", (1.2, 0.8))),
            "brightness_range"
        );
        assert_eq!(
            invalid_name(generator().set("channel_shift_range", -1.0)),
            "channel_shift_range"
        );
        assert_eq!(
            invalid_name(generator().set("interpolation_order", 3)),
            "interpolation_order"
        );
        assert_eq!(
            invalid_name(generator().set("fill_mode", "mirror")),
            "fill_mode"
        );
        assert_eq!(
            invalid_name(generator().set("rotation_range", "15")),
            "rotation_range"
        );
    }
}
