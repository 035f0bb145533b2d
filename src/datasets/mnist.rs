//! MNIST, and any data set stored in the same IDX files.
//!
//! MNIST comes as four files: training and test images, training and test
//! labels. Each is an IDX file, a small big-endian header followed by raw
//! bytes, and is usually distributed gzip-compressed:
//!
//! ```text
//! train-images-idx3-ubyte   magic 2051, count, rows, cols, count*rows*cols pixels
//! train-labels-idx1-ubyte   magic 2049, count, count labels
//! t10k-images-idx3-ubyte    the same for the 10,000 test images
//! t10k-labels-idx1-ubyte
//! ```
//!
//! [`load_data`] reads them from the repository's `data/mnist/` folder (or the
//! folder named by the `KERUST_MNIST_DIR` environment variable) and returns
//! the training and test [`Split`]s, as Keras' `mnist.load_data()` does.
//! [`load_data_from`] reads another folder with the same file names, such as
//! Fashion-MNIST. Each file may be plain or gzip-compressed (`name` or
//! `name.gz`); the reader tells them apart by their first bytes.
//!
//! A split keeps its pixels once, as `u8`. [`Split::images_f32`] and
//! [`Split::labels`] give the `f32` arrays a model trains on: pixels scaled
//! to [0, 1] in shape `(N, 28, 28, 1)`, labels as class indices.
//!
//! Every header is checked against the file's real length before anything
//! is allocated, so a truncated, corrupt or hostile file gives an
//! [`Error::Format`] naming the file, never a panic or a huge allocation.
//!
//! # Examples
//!
//! ```no_run
//! # fn main() -> kerust::Result<()> {
//! let (train, test) = kerust::datasets::mnist::load_data()?;
//! assert_eq!(train.len(), 60_000);
//!
//! let x_test = test.images_f32();
//! let y_test = test.labels();
//! assert_eq!(x_test.shape(), &[10_000, 28, 28, 1]);
//! assert_eq!(y_test[0], 7.0);
//! # Ok(())
//! # }
//! ```

use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};

use flate2::bufread::MultiGzDecoder;
use ndarray::{s, Array1, Array3, Array4, Axis};

use crate::{Error, Result};

/// The environment variable that overrides the folder [`load_data`] reads.
pub const DIR_VARIABLE: &str = "KERUST_MNIST_DIR";

/// Magic number of an IDX file of unsigned bytes in 3 dimensions (images).
const IMAGES_MAGIC: u32 = 0x0000_0803;

/// Magic number of an IDX file of unsigned bytes in 1 dimension (labels).
const LABELS_MAGIC: u32 = 0x0000_0801;

/// The largest payload a header may announce: 2 GiB, four times EMNIST's
/// largest file. Anything larger is taken for a corrupt header.
const MAX_PAYLOAD_BYTES: u64 = 1 << 31;

/// The first two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// One part of a data set (training or test): images and their labels.
///
/// The pixels are kept once, as `u8` in shape `(N, rows, cols)`; the `f32`
/// arrays a model needs are made on request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Split {
    images: Array3<u8>,
    labels: Array1<u8>,
}

impl Split {
    /// A split from images `(N, rows, cols)` and their `N` labels.
    ///
    /// # Errors
    ///
    /// [`Error::InvalidArgument`] when the number of labels differs from the
    /// number of images.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::datasets::mnist::Split;
    /// use ndarray::{array, Array3};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let split = Split::new(Array3::zeros((2, 28, 28)), array![3, 8])?;
    /// assert_eq!(split.len(), 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn new(images: Array3<u8>, labels: Array1<u8>) -> Result<Self> {
        if images.len_of(Axis(0)) != labels.len() {
            return Err(Error::invalid(
                "labels",
                format!("{} labels", labels.len()),
                format!(
                    "expected one label per image, {} labels",
                    images.len_of(Axis(0))
                ),
            ));
        }
        Ok(Split { images, labels })
    }

    /// The images as stored, `(N, rows, cols)`, 0 for paper and 255 for ink.
    pub fn images(&self) -> &Array3<u8> {
        &self.images
    }

    /// The labels as stored, one byte per image.
    pub fn labels_u8(&self) -> &Array1<u8> {
        &self.labels
    }

    /// The images as a model takes them: `(N, rows, cols, 1)`, channels last,
    /// each pixel divided by 255 so that it lies in [0, 1].
    ///
    /// # Shapes
    ///
    /// `(N, rows, cols)` `u8` in, `(N, rows, cols, 1)` `f32` out.
    pub fn images_f32(&self) -> Array4<f32> {
        self.images
            .mapv(|pixel| f32::from(pixel) / 255.0)
            .insert_axis(Axis(3))
    }

    /// The labels as `f32` class indices, as sparse categorical
    /// cross-entropy takes them.
    pub fn labels(&self) -> Array1<f32> {
        self.labels.mapv(f32::from)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether the split holds no image.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// The first `n` images and labels, or all of them when there are fewer.
    pub fn take(&self, n: usize) -> Split {
        let n = n.min(self.len());
        Split {
            images: self.images.slice(s![..n, .., ..]).to_owned(),
            labels: self.labels.slice(s![..n]).to_owned(),
        }
    }

    /// How many images carry each label: entry `k` counts label `k`. The
    /// vector runs up to the largest label present (it is empty for an empty
    /// split).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::datasets::mnist::Split;
    /// use ndarray::{array, Array3};
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let split = Split::new(Array3::zeros((4, 2, 2)), array![2, 0, 2, 2])?;
    /// assert_eq!(split.class_counts(), vec![1, 0, 3]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn class_counts(&self) -> Vec<usize> {
        let classes = self
            .labels
            .iter()
            .max()
            .map_or(0, |&top| usize::from(top) + 1);
        let mut counts = vec![0; classes];
        for &label in &self.labels {
            counts[usize::from(label)] += 1;
        }
        counts
    }
}

/// The folder [`load_data`] reads: the value of `KERUST_MNIST_DIR` when it is
/// set and not empty, otherwise `data/mnist` in the crate's source folder.
///
/// The data files are not part of the published package: a program that
/// depends on kerust from a registry sets `KERUST_MNIST_DIR` or calls
/// [`load_data_from`] with the folder it downloaded the files to.
pub fn default_dir() -> PathBuf {
    match std::env::var_os(DIR_VARIABLE) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("data")
            .join("mnist"),
    }
}

/// Reads MNIST from [`default_dir`] and returns `(train, test)`.
///
/// # Errors
///
/// The errors of [`load_data_from`]. When the files are missing, the message
/// names the folder that was searched; download the four files there or set
/// `KERUST_MNIST_DIR`.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> kerust::Result<()> {
/// let (train, test) = kerust::datasets::mnist::load_data()?;
/// assert_eq!((train.len(), test.len()), (60_000, 10_000));
/// # Ok(())
/// # }
/// ```
pub fn load_data() -> Result<(Split, Split)> {
    load_data_from(default_dir())
}

/// Reads the four IDX files of an MNIST-like data set from `dir` and returns
/// `(train, test)`.
///
/// Each file is looked up as `name`, then `name.gz`, for the names
/// `train-images-idx3-ubyte`, `train-labels-idx1-ubyte`,
/// `t10k-images-idx3-ubyte` and `t10k-labels-idx1-ubyte`. Labels may take any
/// byte value; nothing assumes ten classes.
///
/// # Errors
///
/// - [`Error::Io`] naming the missing file and the folder, when neither
///   `name` nor `name.gz` exists, or when a file cannot be read.
/// - [`Error::Format`] naming the file, for a wrong magic number, a file
///   shorter or longer than its header says, a corrupt gzip stream, or image
///   and label files of one split that disagree on the count.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> kerust::Result<()> {
/// use kerust::datasets::mnist;
///
/// let (train, _test) = mnist::load_data_from("/usr/share/datasets/fashion-mnist")?;
/// assert_eq!(train.class_counts(), vec![6_000; 10]);
/// # Ok(())
/// # }
/// ```
pub fn load_data_from(dir: impl AsRef<Path>) -> Result<(Split, Split)> {
    let dir = dir.as_ref();
    let train = read_split(dir, "train-images-idx3-ubyte", "train-labels-idx1-ubyte")?;
    let test = read_split(dir, "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")?;
    log::debug!(
        "read {} training and {} test images from {}",
        train.len(),
        test.len(),
        dir.display()
    );
    Ok((train, test))
}

/// Reads an IDX file of images (magic 2051), plain or gzip-compressed, into
/// an array `(count, rows, cols)`.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be opened or read; [`Error::Format`]
/// naming the file when its magic number is not 2051, when it is shorter or
/// longer than its header announces, or when its gzip stream is corrupt.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> kerust::Result<()> {
/// use kerust::datasets::mnist::read_idx_images;
///
/// let images = read_idx_images("data/mnist/t10k-images-idx3-ubyte.gz")?;
/// assert_eq!(images.shape(), &[10_000, 28, 28]);
/// # Ok(())
/// # }
/// ```
pub fn read_idx_images(path: impl AsRef<Path>) -> Result<Array3<u8>> {
    let path = path.as_ref();
    let (dims, data) = read_idx(path, IMAGES_MAGIC)?;
    let shape = (dims[0], dims[1], dims[2]);
    Array3::from_shape_vec(shape, data).map_err(|e| Error::format(path, e.to_string()))
}

/// Reads an IDX file of labels (magic 2049), plain or gzip-compressed, into
/// an array of `count` bytes.
///
/// # Errors
///
/// As [`read_idx_images`], with 2049 as the expected magic number.
///
/// # Examples
///
/// ```no_run
/// # fn main() -> kerust::Result<()> {
/// use kerust::datasets::mnist::read_idx_labels;
///
/// let labels = read_idx_labels("data/mnist/t10k-labels-idx1-ubyte.gz")?;
/// assert_eq!(labels[0], 7);
/// # Ok(())
/// # }
/// ```
pub fn read_idx_labels(path: impl AsRef<Path>) -> Result<Array1<u8>> {
    let (_, data) = read_idx(path.as_ref(), LABELS_MAGIC)?;
    Ok(Array1::from(data))
}

/// Reads the images and labels of one split and checks that they pair up.
fn read_split(dir: &Path, images_name: &str, labels_name: &str) -> Result<Split> {
    let images_path = find_file(dir, images_name)?;
    let labels_path = find_file(dir, labels_name)?;
    let images = read_idx_images(&images_path)?;
    let labels = read_idx_labels(&labels_path)?;

    let count = images.len_of(Axis(0));
    if count != labels.len() {
        return Err(Error::format(
            &labels_path,
            format!(
                "expected {count} labels, one per image of `{}`, got {}",
                images_path.display(),
                labels.len()
            ),
        ));
    }
    Ok(Split { images, labels })
}

/// `dir/name` when it exists, else `dir/name.gz`, else an [`Error::Io`] that
/// says which file is missing from which folder.
fn find_file(dir: &Path, name: &str) -> Result<PathBuf> {
    let plain = dir.join(name);
    if plain.is_file() {
        return Ok(plain);
    }
    let compressed = dir.join(format!("{name}.gz"));
    if compressed.is_file() {
        return Ok(compressed);
    }

    let why = if dir.is_dir() {
        format!(
            "neither `{name}` nor `{name}.gz` is in folder `{}`",
            dir.display()
        )
    } else {
        format!("folder `{}` does not exist", dir.display())
    };
    let hint = format!(
        "{why} (help: put the four IDX files there, pass another folder to \
         `load_data_from`, or set {DIR_VARIABLE})"
    );
    Err(Error::io(
        plain,
        io::Error::new(io::ErrorKind::NotFound, hint),
    ))
}

/// Reads an IDX file of unsigned bytes with the given magic number and
/// returns its dimensions and its payload, checked to have exactly the
/// announced length.
fn read_idx(path: &Path, magic: u32) -> Result<(Vec<usize>, Vec<u8>)> {
    let (mut source, file_len) = Source::open(path)?;
    let dims = read_header(path, &mut source, magic)?;
    let header_len = 4 + 4 * dims.len() as u64;
    let payload_len = payload_len(path, &dims)?;
    let expected_total = header_len + payload_len;
    if !source.is_gzip() && file_len != expected_total {
        return Err(wrong_length(path, &dims, expected_total, file_len));
    }

    // The payload length is at most MAX_PAYLOAD_BYTES, and for a plain file
    // it is the real size on disk, so reserving it is safe. A gzip stream may
    // lie about its size, so its buffer grows only as bytes arrive.
    let reserve = if source.is_gzip() {
        payload_len.min(1 << 26)
    } else {
        payload_len
    };
    let mut data = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
    source.read_to_end_limited(path, &mut data, payload_len + 1)?;
    let got_total = header_len + data.len() as u64;
    if got_total != expected_total {
        return Err(wrong_length(path, &dims, expected_total, got_total));
    }

    let dims = dims.into_iter().map(|d| d as usize).collect();
    Ok((dims, data))
}

/// Reads the magic number and the dimensions that follow it (as many as
/// the magic number's last byte says).
fn read_header(path: &Path, source: &mut Source, magic: u32) -> Result<Vec<u32>> {
    let rank = (magic & 0xff) as usize;
    let header_len = 4 + 4 * rank;
    let mut header = [0u8; 16];
    let got = source.read_up_to(path, &mut header[..header_len])?;
    if got < 4 {
        return Err(truncated_header(path, source.is_gzip(), header_len, got));
    }
    let found = u32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if found != magic {
        return Err(wrong_magic(path, magic, found));
    }
    if got < header_len {
        return Err(truncated_header(path, source.is_gzip(), header_len, got));
    }

    Ok(header[4..header_len]
        .chunks_exact(4)
        .map(|b| u32::from_be_bytes([b[0], b[1], b[2], b[3]]))
        .collect())
}

/// The payload size the header announces, refused when it overflows or is
/// absurdly large.
fn payload_len(path: &Path, dims: &[u32]) -> Result<u64> {
    let product = dims
        .iter()
        .try_fold(1u64, |acc, &d| acc.checked_mul(u64::from(d)))
        .filter(|&n| n <= MAX_PAYLOAD_BYTES && usize::try_from(n).is_ok());
    product.ok_or_else(|| {
        Error::format(
            path,
            format!(
                "header announces {} bytes of data, expected at most {MAX_PAYLOAD_BYTES}: \
                 the header is corrupt",
                describe_dims(dims)
            ),
        )
    })
}

/// The file, read directly or through a gzip decoder.
enum Source {
    Plain(BufReader<File>),
    Gzip(MultiGzDecoder<BufReader<File>>),
}

impl Source {
    /// Opens `path`, through a gzip decoder when the file starts like a gzip
    /// stream, and returns the source with the file's length on disk.
    fn open(path: &Path) -> Result<(Source, u64)> {
        let file = File::open(path).map_err(|e| Error::io(path, e))?;
        let file_len = file.metadata().map_err(|e| Error::io(path, e))?.len();
        let mut buffered = BufReader::new(file);
        let head = buffered.fill_buf().map_err(|e| Error::io(path, e))?;
        let source = if head.starts_with(&GZIP_MAGIC) {
            Source::Gzip(MultiGzDecoder::new(buffered))
        } else {
            Source::Plain(buffered)
        };
        Ok((source, file_len))
    }

    fn is_gzip(&self) -> bool {
        matches!(self, Source::Gzip(_))
    }

    /// Fills `buffer` as far as the stream goes and returns how many bytes
    /// were read.
    fn read_up_to(&mut self, path: &Path, buffer: &mut [u8]) -> Result<usize> {
        let mut filled = 0;
        while filled < buffer.len() {
            let result = match self {
                Source::Plain(r) => r.read(&mut buffer[filled..]),
                Source::Gzip(r) => r.read(&mut buffer[filled..]),
            };
            match result {
                Ok(0) => break,
                Ok(n) => filled += n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(self.read_error(path, e)),
            }
        }
        Ok(filled)
    }

    /// Appends at most `limit` bytes of the rest of the stream to `data`.
    fn read_to_end_limited(&mut self, path: &Path, data: &mut Vec<u8>, limit: u64) -> Result<()> {
        let result = match self {
            Source::Plain(r) => r.take(limit).read_to_end(data),
            Source::Gzip(r) => r.take(limit).read_to_end(data),
        };
        result.map(|_| ()).map_err(|e| self.read_error(path, e))
    }

    /// A read failure: an I/O error for a plain file, a format error for a
    /// gzip stream (whose decoder reports corrupt data as I/O errors).
    fn read_error(&self, path: &Path, error: io::Error) -> Error {
        match self {
            Source::Plain(_) => Error::io(path, error),
            Source::Gzip(_) => {
                Error::format(path, format!("corrupt or truncated gzip stream: {error}"))
            }
        }
    }
}

fn truncated_header(path: &Path, compressed: bool, expected: usize, got: usize) -> Error {
    let after = if compressed {
        " after decompression"
    } else {
        ""
    };
    Error::format(
        path,
        format!(
            "truncated inside the IDX header: expected {expected} header bytes, \
             got {got}{after}"
        ),
    )
}

fn wrong_magic(path: &Path, expected: u32, found: u32) -> Error {
    let kind = |magic: u32| match magic {
        IMAGES_MAGIC => "images",
        _ => "labels",
    };
    let mut what = format!(
        "expected IDX magic number {expected} (0x{expected:08x}, {}), got {found} (0x{found:08x})",
        kind(expected)
    );
    if found == IMAGES_MAGIC || found == LABELS_MAGIC {
        what.push_str(&format!(
            " (help: this is a file of {}; were two files swapped?)",
            kind(found)
        ));
    }
    Error::format(path, what)
}

fn wrong_length(path: &Path, dims: &[u32], expected: u64, got: u64) -> Error {
    let state = if got < expected {
        "truncated"
    } else {
        "too long"
    };
    let header = 4 + 4 * dims.len();
    Error::format(
        path,
        format!(
            "{state}: the header announces {} items, so expected {expected} bytes \
             ({header}-byte header + data), got {got}",
            describe_dims(dims)
        ),
    )
}

/// `60000 x 28 x 28`.
fn describe_dims(dims: &[u32]) -> String {
    let parts: Vec<String> = dims.iter().map(u32::to_string).collect();
    parts.join(" x ")
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use flate2::write::GzEncoder;
    use flate2::Compression;
    use proptest::prelude::*;

    use super::*;

    fn image_file_bytes(count: u32, rows: u32, cols: u32) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [IMAGES_MAGIC, count, rows, cols] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let pixels = (count * rows * cols) as usize;
        bytes.extend((0..pixels).map(|i| (i * 37 % 256) as u8));
        bytes
    }

    fn label_file_bytes(labels: &[u8]) -> Vec<u8> {
        let mut bytes = Vec::new();
        for word in [LABELS_MAGIC, labels.len() as u32] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        bytes.extend_from_slice(labels);
        bytes
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, bytes).unwrap();
        path
    }

    /// Writes a complete small data set into `dir`, gzip-compressed or not.
    fn write_data_set(dir: &Path, compressed: bool) {
        let files = [
            ("train-images-idx3-ubyte", image_file_bytes(5, 4, 3)),
            (
                "train-labels-idx1-ubyte",
                label_file_bytes(&[4, 0, 200, 1, 0]),
            ),
            ("t10k-images-idx3-ubyte", image_file_bytes(2, 4, 3)),
            ("t10k-labels-idx1-ubyte", label_file_bytes(&[7, 2])),
        ];
        for (name, bytes) in files {
            if compressed {
                write(dir, &format!("{name}.gz"), &gzip(&bytes));
            } else {
                write(dir, name, &bytes);
            }
        }
    }

    fn assert_format_error_names(result: Result<impl std::fmt::Debug>, path: &Path, text: &str) {
        let err = result.unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&path.display().to_string()), "{message}");
        assert!(message.contains(text), "`{text}` not in: {message}");
    }

    #[test]
    fn plain_and_gzip_files_read_the_same() {
        let plain = tempfile::tempdir().unwrap();
        let compressed = tempfile::tempdir().unwrap();
        write_data_set(plain.path(), false);
        write_data_set(compressed.path(), true);

        let from_plain = load_data_from(plain.path()).unwrap();
        let from_gzip = load_data_from(compressed.path()).unwrap();
        assert_eq!(from_plain, from_gzip);

        let (train, test) = from_plain;
        assert_eq!(train.images().shape(), &[5, 4, 3]);
        assert_eq!(train.images()[[1, 0, 0]], (12 * 37 % 256) as u8);
        assert_eq!(train.labels_u8().to_vec(), vec![4, 0, 200, 1, 0]);
        assert_eq!(test.labels().to_vec(), vec![7.0, 2.0]);
    }

    #[test]
    fn a_plain_file_is_preferred_to_its_gzip_twin() {
        let dir = tempfile::tempdir().unwrap();
        write_data_set(dir.path(), true);
        write(
            dir.path(),
            "t10k-labels-idx1-ubyte",
            &label_file_bytes(&[9, 9]),
        );
        let (_, test) = load_data_from(dir.path()).unwrap();
        assert_eq!(test.labels_u8().to_vec(), vec![9, 9]);
    }

    #[test]
    fn images_f32_are_scaled_to_unit_range_with_a_channel_axis() {
        let images = Array3::from_shape_vec((1, 1, 3), vec![0, 51, 255]).unwrap();
        let split = Split::new(images, Array1::from(vec![3])).unwrap();
        let x = split.images_f32();
        assert_eq!(x.shape(), &[1, 1, 3, 1]);
        let expected = [0.0, 0.2, 1.0];
        for (got, want) in x.iter().zip(expected) {
            assert!((got - want).abs() < 1e-7, "{got} vs {want}");
        }
    }

    #[test]
    fn take_keeps_the_first_images_and_saturates() {
        let images = Array3::from_shape_fn((4, 2, 2), |(i, _, _)| i as u8);
        let split = Split::new(images, Array1::from(vec![0, 1, 2, 3])).unwrap();
        let first = split.take(2);
        assert_eq!(first.len(), 2);
        assert_eq!(first.images()[[1, 1, 1]], 1);
        assert_eq!(first.labels_u8().to_vec(), vec![0, 1]);
        assert_eq!(split.take(10), split);
        assert!(split.take(0).is_empty());
        assert_eq!(split.take(0).class_counts(), Vec::<usize>::new());
    }

    #[test]
    fn a_split_needs_one_label_per_image() {
        let err = Split::new(Array3::zeros((3, 2, 2)), Array1::from(vec![1, 2])).unwrap_err();
        assert!(matches!(err, Error::InvalidArgument { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("expected one label per image, 3 labels"),
            "{err}"
        );
    }

    #[test]
    fn a_missing_file_is_an_io_error_naming_file_and_folder() {
        let dir = tempfile::tempdir().unwrap();
        write_data_set(dir.path(), false);
        std::fs::remove_file(dir.path().join("t10k-images-idx3-ubyte")).unwrap();

        let err = load_data_from(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains("t10k-images-idx3-ubyte.gz"), "{message}");
        assert!(
            message.contains(&dir.path().display().to_string()),
            "{message}"
        );
        assert!(message.contains(DIR_VARIABLE), "{message}");
    }

    #[test]
    fn a_missing_folder_is_named() {
        let err = load_data_from("/nonexistent/mnist").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(
            err.to_string()
                .contains("folder `/nonexistent/mnist` does not exist"),
            "{err}"
        );
    }

    #[test]
    fn reading_a_missing_file_directly_is_an_io_error() {
        let err = read_idx_labels("/nonexistent/labels").unwrap_err();
        assert!(matches!(err, Error::Io { .. }), "{err:?}");
        assert!(err.to_string().contains("/nonexistent/labels"), "{err}");
    }

    #[test]
    fn truncated_files_are_format_errors_naming_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let whole = image_file_bytes(3, 5, 5);
        let cases = [
            (0, "expected 16 header bytes, got 0"),
            (2, "expected 16 header bytes, got 2"),
            (9, "expected 16 header bytes, got 9"),
            (
                16,
                "truncated: the header announces 3 x 5 x 5 items, so expected 91 bytes",
            ),
            (40, "got 40"),
            (90, "got 90"),
        ];
        for (cut, text) in cases {
            let plain = write(dir.path(), &format!("cut-{cut}"), &whole[..cut]);
            assert_format_error_names(read_idx_images(&plain), &plain, text);

            let compressed = write(dir.path(), &format!("cut-{cut}.gz"), &gzip(&whole[..cut]));
            assert_format_error_names(read_idx_images(&compressed), &compressed, text);
        }
    }

    #[test]
    fn trailing_bytes_are_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = label_file_bytes(&[1, 2, 3]);
        bytes.push(0);
        let path = write(dir.path(), "labels", &bytes);
        assert_format_error_names(read_idx_labels(&path), &path, "too long");
    }

    #[test]
    fn a_wrong_magic_number_says_what_was_expected_and_what_came() {
        let dir = tempfile::tempdir().unwrap();
        let labels = write(dir.path(), "labels", &label_file_bytes(&[1, 2]));
        assert_format_error_names(
            read_idx_images(&labels),
            &labels,
            "expected IDX magic number 2051 (0x00000803, images), got 2049 (0x00000801)",
        );
        assert_format_error_names(read_idx_images(&labels), &labels, "were two files swapped?");

        let text = write(dir.path(), "text", b"hello, this is not an IDX file");
        assert_format_error_names(
            read_idx_labels(&text),
            &text,
            "expected IDX magic number 2049",
        );
    }

    #[test]
    fn a_cut_gzip_stream_is_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let compressed = gzip(&image_file_bytes(4, 6, 6));
        for cut in [2, 10, compressed.len() / 2, compressed.len() - 4] {
            let path = write(dir.path(), &format!("cut-{cut}.gz"), &compressed[..cut]);
            let err = read_idx_images(&path).unwrap_err();
            assert!(matches!(err, Error::Format { .. }), "cut at {cut}: {err:?}");
            assert!(
                err.to_string().contains(&path.display().to_string()),
                "{err}"
            );
        }
    }

    #[test]
    fn random_bytes_are_a_format_error() {
        let dir = tempfile::tempdir().unwrap();
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        let bytes: Vec<u8> = (0..1000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                (state >> 32) as u8
            })
            .collect();
        let path = write(dir.path(), "noise", &bytes);
        assert_format_error_names(read_idx_images(&path), &path, "expected IDX magic number");
    }

    #[test]
    fn an_absurd_header_is_refused_before_allocating() {
        let dir = tempfile::tempdir().unwrap();
        let mut bytes = Vec::new();
        for word in [IMAGES_MAGIC, u32::MAX, u32::MAX, u32::MAX] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let plain = write(dir.path(), "huge", &bytes);
        assert_format_error_names(read_idx_images(&plain), &plain, "the header is corrupt");

        // Plausible-looking sizes that the file does not hold: refused from
        // the file length, or, for gzip, when the stream ends.
        let mut bytes = Vec::new();
        for word in [IMAGES_MAGIC, 1_000_000, 28, 28] {
            bytes.extend_from_slice(&word.to_be_bytes());
        }
        let plain = write(dir.path(), "big", &bytes);
        assert_format_error_names(read_idx_images(&plain), &plain, "expected 784000016 bytes");
        let compressed = write(dir.path(), "big.gz", &gzip(&bytes));
        assert_format_error_names(read_idx_images(&compressed), &compressed, "got 16");
    }

    #[test]
    fn image_and_label_counts_must_agree() {
        let dir = tempfile::tempdir().unwrap();
        write_data_set(dir.path(), false);
        let labels = write(
            dir.path(),
            "t10k-labels-idx1-ubyte",
            &label_file_bytes(&[1, 2, 3]),
        );
        let err = load_data_from(dir.path()).unwrap_err();
        assert!(matches!(err, Error::Format { .. }), "{err:?}");
        let message = err.to_string();
        assert!(message.contains(&labels.display().to_string()), "{message}");
        assert!(message.contains("expected 2 labels"), "{message}");
        assert!(message.contains("got 3"), "{message}");
    }

    #[test]
    fn an_empty_file_set_of_zero_images_is_valid() {
        let dir = tempfile::tempdir().unwrap();
        let path = write(dir.path(), "empty", &image_file_bytes(0, 28, 28));
        assert_eq!(read_idx_images(&path).unwrap().shape(), &[0, 28, 28]);
    }

    /// A mutation of a valid file: bytes overwritten, then the file cut or
    /// extended.
    fn mutated(
        original: &[u8],
        edits: &[(usize, u8)],
        cut: Option<usize>,
        extra: &[u8],
    ) -> Vec<u8> {
        let mut bytes = original.to_vec();
        for &(position, value) in edits {
            if !bytes.is_empty() {
                let at = position % bytes.len();
                bytes[at] = value;
            }
        }
        if let Some(cut) = cut {
            bytes.truncate(cut % (bytes.len() + 1));
        }
        bytes.extend_from_slice(extra);
        bytes
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(300))]

        #[test]
        fn mutated_files_never_panic_and_errors_name_the_file(
            compress_first in any::<bool>(),
            labels in any::<bool>(),
            edits in proptest::collection::vec((0usize..400, any::<u8>()), 0..6),
            cut in proptest::option::of(0usize..400),
            extra in proptest::collection::vec(any::<u8>(), 0..4),
        ) {
            let original = if labels {
                label_file_bytes(&[3, 1, 4, 1, 5, 9, 2, 6])
            } else {
                image_file_bytes(3, 5, 4)
            };
            // Mutate either the raw file or its compressed form.
            let bytes = if compress_first {
                mutated(&gzip(&original), &edits, cut, &extra)
            } else {
                gzip_or_not(mutated(&original, &edits, cut, &extra), edits.len() % 2 == 0)
            };
            let dir = tempfile::tempdir().unwrap();
            let path = write(dir.path(), "mutated", &bytes);
            let result = if labels {
                read_idx_labels(&path).map(|a| a.len())
            } else {
                read_idx_images(&path).map(|a| a.len())
            };
            if let Err(err) = result {
                prop_assert!(err.to_string().contains(&path.display().to_string()));
            }
        }
    }

    fn gzip_or_not(bytes: Vec<u8>, compress: bool) -> Vec<u8> {
        if compress {
            gzip(&bytes)
        } else {
            bytes
        }
    }
}
