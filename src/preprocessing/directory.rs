//! A folder of pictures as a data set, as Keras'
//! `image_dataset_from_directory`: one subfolder per class, each picture
//! decoded, converted to the colour mode asked for and resized to one size.
//!
//! ```text
//! digits/
//!   0/  a.png  b.jpg ...
//!   1/  c.png ...
//!   ...
//! ```
//!
//! gives the pictures as one `(N, height, width, channels)` array of values
//! in [0, 255], as Keras does (add a rescale, or divide, to train on [0,
//! 1]), the class of each (the index of its folder among the class names,
//! sorted), the class names and the files, in the order of the array.
//!
//! # Differences from Keras
//!
//! - **An array, not a stream of batches.** Keras returns a `tf.data`
//!   dataset of batches; kerust returns the arrays `fit` takes, so the
//!   whole set must fit in memory.
//! - **Shuffling** uses kerust's seeded streams, not numpy's: the same seed
//!   gives the same order on every run, but not Keras' order. A training
//!   and a validation subset made with the same seed never share a file.
//! - **Transparency** is composited over white paper in the `Grayscale` and
//!   `Rgb` modes, so that a drawing with a transparent background keeps its
//!   paper white; Keras drops the alpha channel, which shows whatever colour
//!   the transparent pixels store. 16-bit pictures are scaled to [0, 255].
//! - **Errors.** A file that cannot be decoded, an empty folder or a
//!   `validation_split` that leaves a subset empty is an [`Error`] naming it,
//!   before any picture is returned.

use std::path::{Path, PathBuf};

use image::DynamicImage;
use ndarray::{Array1, Array2, Array4, ArrayD};
use rand::seq::SliceRandom;

use super::digits::{colour_levels, decode, grey_over_white};
use crate::random::{stream, Purpose};
use crate::{Error, Result};

/// The file names (by extension, any case) that are read as pictures, as
/// Keras' allow-list.
const EXTENSIONS: [&str; 5] = ["bmp", "gif", "jpeg", "jpg", "png"];

/// How the pictures' colours are given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ColorMode {
    /// One channel of Rec. 601 grey levels.
    Grayscale,
    /// Red, green and blue (the default, as in Keras).
    #[default]
    Rgb,
    /// Red, green, blue and opacity.
    Rgba,
}

impl ColorMode {
    /// The number of channels of a picture in this mode.
    pub fn channels(self) -> usize {
        match self {
            ColorMode::Grayscale => 1,
            ColorMode::Rgb => 3,
            ColorMode::Rgba => 4,
        }
    }
}

/// How the classes are given back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LabelMode {
    /// The class index of each picture, shape `(N,)` (the default, as in
    /// Keras): for sparse categorical cross-entropy.
    #[default]
    Int,
    /// One-hot rows, shape `(N, classes)`: for categorical cross-entropy.
    Categorical,
    /// 0 or 1, shape `(N, 1)`, for exactly two classes: for a sigmoid.
    Binary,
}

/// Which part of a split data set to load.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subset {
    /// The first `1 - validation_split` of the (shuffled) files.
    Training,
    /// The last `validation_split` of them.
    Validation,
}

/// The options of [`image_dataset_from_directory`], with Keras' names and
/// defaults: classes from the subfolders, `Int` labels, `Rgb`, 256x256,
/// shuffled with seed 0, no split, no crop.
#[derive(Debug, Clone, PartialEq)]
pub struct DirectoryOptions {
    inferred_labels: bool,
    label_mode: LabelMode,
    class_names: Option<Vec<String>>,
    color_mode: ColorMode,
    image_size: (usize, usize),
    shuffle: bool,
    seed: u64,
    validation_split: Option<(f64, Subset)>,
    crop_to_aspect_ratio: bool,
}

impl Default for DirectoryOptions {
    fn default() -> Self {
        Self::new()
    }
}

impl DirectoryOptions {
    /// Keras' defaults.
    pub fn new() -> Self {
        DirectoryOptions {
            inferred_labels: true,
            label_mode: LabelMode::Int,
            class_names: None,
            color_mode: ColorMode::Rgb,
            image_size: (256, 256),
            shuffle: true,
            seed: 0,
            validation_split: None,
            crop_to_aspect_ratio: false,
        }
    }

    /// No labels (Keras' `labels=None`): every picture under the folder, in
    /// any subfolder, and [`ImageDataset::labels`] is `None`.
    pub fn no_labels(mut self) -> Self {
        self.inferred_labels = false;
        self
    }

    /// How labels are given (default [`LabelMode::Int`]).
    pub fn label_mode(mut self, mode: LabelMode) -> Self {
        self.label_mode = mode;
        self
    }

    /// The subfolders to read, in the order of their class indices; by
    /// default every subfolder, sorted by name.
    pub fn class_names<S: Into<String>>(mut self, names: impl IntoIterator<Item = S>) -> Self {
        self.class_names = Some(names.into_iter().map(Into::into).collect());
        self
    }

    /// The colour mode (default [`ColorMode::Rgb`]).
    pub fn color_mode(mut self, mode: ColorMode) -> Self {
        self.color_mode = mode;
        self
    }

    /// The `(height, width)` every picture is resized to (default 256x256),
    /// by bilinear interpolation between pixel centres, as Keras' default
    /// `interpolation="bilinear"`.
    pub fn image_size(mut self, height: usize, width: usize) -> Self {
        self.image_size = (height, width);
        self
    }

    /// Whether the files are shuffled (default true); otherwise they come
    /// class by class, each class's files sorted by path.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// The seed of the shuffle (default 0). Load a training and a
    /// validation subset with the same seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Keeps `subset` of a split that holds out the fraction
    /// `validation_split` of the files (rounded down) for validation, after
    /// the shuffle, as Keras' `validation_split` and `subset`.
    pub fn validation_split(mut self, validation_split: f64, subset: Subset) -> Self {
        self.validation_split = Some((validation_split, subset));
        self
    }

    /// Whether each picture is first cropped, about its centre, to the
    /// largest window of the target's aspect ratio, so that resizing does
    /// not distort it (default false: the picture is stretched).
    pub fn crop_to_aspect_ratio(mut self, crop: bool) -> Self {
        self.crop_to_aspect_ratio = crop;
        self
    }

    fn validate(&self) -> Result<()> {
        let (height, width) = self.image_size;
        if height == 0 || width == 0 {
            return Err(Error::invalid(
                "image_size",
                format!("({height}, {width})"),
                "expected a height and a width of at least 1",
            ));
        }
        if let Some((fraction, _)) = self.validation_split {
            if !(fraction > 0.0 && fraction < 1.0) {
                return Err(Error::invalid(
                    "validation_split",
                    fraction,
                    "expected a fraction strictly between 0 and 1",
                ));
            }
        }
        if !self.inferred_labels && self.class_names.is_some() {
            return Err(Error::invalid(
                "class_names",
                format!("{:?}", self.class_names),
                "names subfolders, which are read only with inferred labels",
            ));
        }
        Ok(())
    }
}

/// What [`image_dataset_from_directory`] loads.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageDataset {
    /// The pictures, shape `(N, height, width, channels)`, values in [0,
    /// 255].
    pub images: Array4<f32>,
    /// The labels in the [`LabelMode`] asked for, `None` with
    /// [`no_labels`](DirectoryOptions::no_labels).
    pub labels: Option<ArrayD<f32>>,
    /// The class names, in the order of their indices (empty without
    /// labels).
    pub class_names: Vec<String>,
    /// The file of each picture, in the order of `images`.
    pub file_paths: Vec<PathBuf>,
}

/// Loads the pictures under `directory` as a data set; see the [module
/// documentation](self).
///
/// # Errors
///
/// - [`Error::Io`] naming a folder that cannot be read.
/// - [`Error::InvalidArgument`] for bad options, `class_names` naming a
///   folder that is not there (with the ones that are),
///   [`LabelMode::Binary`] with other than two classes, or pictures without
///   class subfolders when labels are inferred (the message counts them and
///   points to [`no_labels`](DirectoryOptions::no_labels)).
/// - [`Error::EmptyData`] when there is no class folder or no picture, or
///   the split leaves the asked subset empty.
/// - [`Error::Format`] naming a file that is not a picture it can decode.
///
/// # Examples
///
/// ```
/// use kerust::preprocessing::directory::{
///     image_dataset_from_directory, ColorMode, DirectoryOptions, Subset,
/// };
/// use kerust::preprocessing::digits::save_grey_png;
/// use ndarray::Array2;
///
/// # fn main() -> kerust::Result<()> {
/// # let folder = tempfile::tempdir().map_err(|e| kerust::Error::io("temporary folder", e))?;
/// # let root = folder.path();
/// // Ten pictures in two class folders.
/// for (class, level) in [("dark", 0.1), ("light", 0.9)] {
///     std::fs::create_dir_all(root.join(class)).map_err(|e| kerust::Error::io(root, e))?;
///     for i in 0..5 {
///         save_grey_png(root.join(class).join(format!("{i}.png")), &Array2::from_elem((40, 30), level))?;
///     }
/// }
/// let options = DirectoryOptions::new().color_mode(ColorMode::Grayscale).image_size(28, 28).seed(1);
/// let train = image_dataset_from_directory(root, options.clone().validation_split(0.2, Subset::Training))?;
/// let valid = image_dataset_from_directory(root, options.validation_split(0.2, Subset::Validation))?;
/// assert_eq!(train.images.shape(), &[8, 28, 28, 1]);
/// assert_eq!(valid.images.shape(), &[2, 28, 28, 1]);
/// assert_eq!(train.class_names, ["dark", "light"]);
/// // A picture of the "light" class (label 1) is light grey.
/// let labels = valid.labels.expect("labels");
/// let first = valid.images[[0, 0, 0, 0]];
/// assert_eq!(first > 128.0, labels[0] == 1.0);
/// # Ok(())
/// # }
/// ```
pub fn image_dataset_from_directory(
    directory: impl AsRef<Path>,
    options: DirectoryOptions,
) -> Result<ImageDataset> {
    let directory = directory.as_ref();
    options.validate()?;
    let (class_names, folders) = classes(directory, &options)?;
    let mut files: Vec<(PathBuf, usize)> = Vec::new();
    for (index, folder) in folders.iter().enumerate() {
        let mut found = Vec::new();
        picture_files(folder, &mut found)?;
        found.sort();
        files.extend(found.into_iter().map(|path| (path, index)));
    }
    if files.is_empty() {
        return Err(Error::EmptyData {
            what: format!(
                "pictures ({}) under {}",
                EXTENSIONS.join(", "),
                directory.display()
            ),
        });
    }
    if options.shuffle {
        // Numbered after every epoch `fit` can reach, so that a file order
        // never repeats the draws of a training epoch with the same seed.
        files.shuffle(&mut stream(options.seed, Purpose::Shuffle, u64::MAX, 0));
    }
    let files = keep_subset(files, &options, directory)?;
    if options.inferred_labels && options.label_mode == LabelMode::Binary && class_names.len() != 2
    {
        return Err(Error::invalid(
            "label_mode",
            "Binary",
            format!(
                "needs exactly 2 classes, found {}: {class_names:?}",
                class_names.len()
            ),
        ));
    }

    let (height, width) = options.image_size;
    let channels = options.color_mode.channels();
    let mut images = Array4::zeros((files.len(), height, width, channels));
    for ((path, _), mut out) in files.iter().zip(images.outer_iter_mut()) {
        let picture = decode(path)?;
        let (values, rows, cols) = pixels(picture, options.color_mode);
        if rows == 0 || cols == 0 {
            return Err(Error::format(
                path,
                format!("the picture is {cols}x{rows} pixels, expected at least 1x1"),
            ));
        }
        let window = if options.crop_to_aspect_ratio {
            crop_window(rows, cols, height, width)
        } else {
            (0, 0, rows, cols)
        };
        let resized = resize_bilinear(&values, [rows, cols, channels], window, height, width);
        match out.as_slice_mut() {
            Some(slice) => slice.copy_from_slice(&resized),
            None => unreachable!("a row of a new array is contiguous"),
        }
    }

    let classes: Vec<usize> = files.iter().map(|(_, class)| *class).collect();
    let labels = options
        .inferred_labels
        .then(|| labels_of(&classes, class_names.len(), options.label_mode));
    Ok(ImageDataset {
        images,
        labels,
        class_names: if options.inferred_labels {
            class_names
        } else {
            Vec::new()
        },
        file_paths: files.into_iter().map(|(path, _)| path).collect(),
    })
}

/// The class names and their folders: the subfolders (sorted by name, or
/// as `class_names` gives them), or the folder itself without labels.
fn classes(directory: &Path, options: &DirectoryOptions) -> Result<(Vec<String>, Vec<PathBuf>)> {
    if !options.inferred_labels {
        return Ok((Vec::new(), vec![directory.to_path_buf()]));
    }
    let mut found: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(directory).map_err(|e| Error::io(directory, e))? {
        let entry = entry.map_err(|e| Error::io(directory, e))?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.path().is_dir() && !name.starts_with('.') {
            found.push(name);
        }
    }
    found.sort();
    let names = match &options.class_names {
        None => found,
        Some(asked) => {
            if let Some(missing) = asked.iter().find(|name| !found.contains(name)) {
                return Err(Error::invalid(
                    "class_names",
                    format!("{asked:?}"),
                    format!(
                        "\"{missing}\" is not a subfolder of {}; found {found:?}",
                        directory.display()
                    ),
                ));
            }
            asked.clone()
        }
    };
    if names.is_empty() {
        let loose = pictures_directly_in(directory);
        if loose > 0 {
            return Err(Error::invalid(
                "directory",
                directory.display(),
                format!(
                    "found {loose} pictures in the folder itself but no class subfolders; \
                     labels come from one subfolder per class, holding its pictures: \
                     make them, or read the pictures without labels with \
                     `DirectoryOptions::new().no_labels()`"
                ),
            ));
        }
        return Err(Error::EmptyData {
            what: format!(
                "class subfolders in {} (one per class, holding its pictures)",
                directory.display()
            ),
        });
    }
    let folders = names.iter().map(|name| directory.join(name)).collect();
    Ok((names, folders))
}

/// Every picture file under `folder`, in it and its subfolders. As in
/// Keras (`follow_links=False`), a symbolic link to a picture is a picture,
/// but a link to a folder is not entered (it could lead back up the tree).
fn picture_files(folder: &Path, out: &mut Vec<PathBuf>) -> Result<()> {
    for entry in std::fs::read_dir(folder).map_err(|e| Error::io(folder, e))? {
        let entry = entry.map_err(|e| Error::io(folder, e))?;
        let kind = entry.file_type().map_err(|e| Error::io(entry.path(), e))?;
        let path = entry.path();
        if kind.is_dir() {
            picture_files(&path, out)?;
        } else if is_picture(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// How many picture files lie directly in `folder`; 0 when it cannot be read.
fn pictures_directly_in(folder: &Path) -> usize {
    std::fs::read_dir(folder).map_or(0, |entries| {
        entries
            .filter_map(|entry| entry.ok())
            .filter(|entry| is_picture(&entry.path()))
            .count()
    })
}

/// Whether `path` is a file, or a link to one, with a picture's extension.
fn is_picture(path: &Path) -> bool {
    is_picture_name(path) && path.is_file()
}

fn is_picture_name(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| EXTENSIONS.contains(&e.to_ascii_lowercase().as_str()))
}

/// The files of the subset asked for: the last `validation_split` of them
/// (rounded down) for validation, the others for training.
fn keep_subset(
    mut files: Vec<(PathBuf, usize)>,
    options: &DirectoryOptions,
    directory: &Path,
) -> Result<Vec<(PathBuf, usize)>> {
    let Some((fraction, subset)) = options.validation_split else {
        return Ok(files);
    };
    let n = files.len();
    let held_out = (fraction * n as f64) as usize;
    let kept = match subset {
        Subset::Training => n - held_out,
        Subset::Validation => held_out,
    };
    if kept == 0 {
        return Err(Error::EmptyData {
            what: format!(
                "{subset:?} pictures: validation_split {fraction} of the {n} under {} leaves none",
                directory.display()
            ),
        });
    }
    Ok(match subset {
        Subset::Training => {
            files.truncate(n - held_out);
            files
        }
        Subset::Validation => files.split_off(n - held_out),
    })
}

/// A picture's values in [0, 255], row by row, in `mode`, with its height
/// and width.
fn pixels(picture: DynamicImage, mode: ColorMode) -> (Vec<f32>, usize, usize) {
    let (rows, cols) = (picture.height() as usize, picture.width() as usize);
    // Grey levels of 8-bit pictures are whole numbers, as Pillow's.
    let (colours, whole) = colour_levels(picture);
    let mut values = Vec::with_capacity(colours.len() * mode.channels());
    for ([r, g, b], alpha) in colours {
        let over_white = |c: f32| c * alpha + 255.0 * (1.0 - alpha);
        match mode {
            ColorMode::Grayscale => {
                let grey = grey_over_white([r, g, b], alpha);
                values.push(if whole { grey.round() } else { grey });
            }
            ColorMode::Rgb => values.extend([over_white(r), over_white(g), over_white(b)]),
            ColorMode::Rgba => {
                let opacity = alpha * 255.0;
                values.extend([r, g, b, if whole { opacity.round() } else { opacity }]);
            }
        }
    }
    (values, rows, cols)
}

/// The largest window of the target's aspect ratio centred in a picture
/// of `rows x cols`: `(top, left, height, width)`, as Keras crops.
fn crop_window(
    rows: usize,
    cols: usize,
    height: usize,
    width: usize,
) -> (usize, usize, usize, usize) {
    let crop_rows = ((cols * height) as f64 / width as f64) as usize;
    let crop_rows = crop_rows.clamp(1, rows);
    let crop_cols = ((rows * width) as f64 / height as f64) as usize;
    let crop_cols = crop_cols.clamp(1, cols);
    let top = (rows - crop_rows) / 2;
    let left = (cols - crop_cols) / 2;
    (top, left, crop_rows, crop_cols)
}

/// Resizes the `window` `(top, left, height, width)` of an image of
/// `shape` `[rows, cols, channels]` (row-major values) to `height x width`
/// by bilinear interpolation with pixel centres aligned (an output pixel's
/// centre maps to `(i + 0.5) * scale - 0.5`, clamped to the window), as
/// Keras' `bilinear` resize without antialiasing.
fn resize_bilinear(
    values: &[f32],
    shape: [usize; 3],
    window: (usize, usize, usize, usize),
    height: usize,
    width: usize,
) -> Vec<f32> {
    let [_, cols, channels] = shape;
    let (top, left, rows_in, cols_in) = window;
    let rows_at = axis_samples(rows_in, height);
    let cols_at = axis_samples(cols_in, width);
    let mut out = Vec::with_capacity(height * width * channels);
    let at = |r: usize, c: usize, ch: usize| values[((top + r) * cols + left + c) * channels + ch];
    for &(r0, r1, fr) in &rows_at {
        for &(c0, c1, fc) in &cols_at {
            for ch in 0..channels {
                let upper = at(r0, c0, ch) + (at(r0, c1, ch) - at(r0, c0, ch)) * fc;
                let lower = at(r1, c0, ch) + (at(r1, c1, ch) - at(r1, c0, ch)) * fc;
                out.push(upper + (lower - upper) * fr);
            }
        }
    }
    out
}

/// For each output index along an axis of `to` pixels, the two input
/// indices around its sample point on an axis of `from` pixels and the
/// weight of the second.
fn axis_samples(from: usize, to: usize) -> Vec<(usize, usize, f32)> {
    let scale = from as f32 / to as f32;
    (0..to)
        .map(|i| {
            let point = ((i as f32 + 0.5) * scale - 0.5).max(0.0);
            let low = (point.floor() as usize).min(from - 1);
            let high = (low + 1).min(from - 1);
            (low, high, point - low as f32)
        })
        .collect()
}

/// The labels of `classes` in `mode`.
fn labels_of(classes: &[usize], count: usize, mode: LabelMode) -> ArrayD<f32> {
    match mode {
        LabelMode::Int => Array1::from_iter(classes.iter().map(|&c| c as f32)).into_dyn(),
        LabelMode::Binary => {
            Array2::from_shape_fn((classes.len(), 1), |(i, _)| classes[i] as f32).into_dyn()
        }
        LabelMode::Categorical => {
            Array2::from_shape_fn((classes.len(), count), |(i, j)| f32::from(classes[i] == j))
                .into_dyn()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resizing_to_the_same_size_changes_nothing() {
        let values: Vec<f32> = (0..12).map(|v| v as f32).collect();
        let out = resize_bilinear(&values, [3, 4, 1], (0, 0, 3, 4), 3, 4);
        assert_eq!(out, values);
    }

    #[test]
    fn halving_averages_pixel_pairs_between_centres() {
        // A row 0 2 4 6 halved: centres at 0.5 and 2.5 read 1 and 5.
        let out = resize_bilinear(&[0.0, 2.0, 4.0, 6.0], [1, 4, 1], (0, 0, 1, 4), 1, 2);
        assert_eq!(out, [1.0, 5.0]);
    }

    #[test]
    fn crops_keep_the_target_aspect_about_the_centre() {
        assert_eq!(crop_window(100, 200, 50, 50), (0, 50, 100, 100));
        assert_eq!(crop_window(300, 100, 28, 28), (100, 0, 100, 100));
        assert_eq!(crop_window(10, 10, 10, 20), (2, 0, 5, 10));
    }
}
