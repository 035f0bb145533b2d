//! The safetensors container: tensors and metadata to bytes and back.
//!
//! Reading goes through the `safetensors` crate, which checks the header
//! against the file (offsets contiguous and inside the file, each tensor's
//! byte length equal to its shape times its type's size). Writing lays the
//! header out here, with sorted keys, because the crate takes the metadata as
//! a `HashMap` and would write its keys in a different order at every save.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use safetensors::tensor::SafeTensorError;
use safetensors::{Dtype, SafeTensors};
use serde_json::{json, Value};

use super::{FORMAT, FORMAT_VERSION, SUPPORTED_FORMAT_VERSIONS};
use crate::{Error, Result};

/// Metadata key of the format name.
pub(crate) const KEY_FORMAT: &str = "format";
/// Metadata key of the format version.
pub(crate) const KEY_VERSION: &str = "format_version";
/// Metadata key of the model's JSON config.
pub(crate) const KEY_MODEL: &str = "model_config";
/// Metadata key of the compile config.
pub(crate) const KEY_COMPILE: &str = "compile_config";
/// Metadata key of the optimizer's step count.
pub(crate) const KEY_ITERATIONS: &str = "optimizer_iterations";
/// Metadata key of the epochs completed, in checkpoints.
pub(crate) const KEY_EPOCH: &str = "epoch";
/// Prefix of the names of the optimizer's state tensors.
pub(crate) const OPTIMIZER_PREFIX: &str = "optimizer/";

/// The safetensors reader refuses headers longer than this.
const MAX_HEADER_BYTES: usize = 100_000_000;

/// A float32 tensor: its shape and its values in row-major order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Tensor {
    pub(crate) shape: Vec<usize>,
    pub(crate) values: Vec<f32>,
}

/// Tensors by name, in the order they are laid out in a file.
pub(crate) type Tensors = BTreeMap<String, Tensor>;

/// The contents of a file that was read.
#[derive(Debug)]
pub(crate) struct SavedFile {
    pub(crate) path: PathBuf,
    /// `None` when the header has no `__metadata__`.
    pub(crate) metadata: Option<HashMap<String, String>>,
    pub(crate) tensors: Tensors,
}

impl SavedFile {
    /// Reads and checks the file at `path`.
    pub(crate) fn read(path: &Path) -> Result<Self> {
        let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::parse(path, &bytes)
    }

    /// Checks `bytes` as a safetensors file holding float32 tensors.
    pub(crate) fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let fail = |what: String| Error::format(path, what);
        check_header_length(bytes).map_err(fail)?;
        let contents = SafeTensors::deserialize(bytes).map_err(|e| fail(describe(e)))?;
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(|e| fail(describe(e)))?;
        let mut tensors = Tensors::new();
        for (name, view) in contents.iter() {
            if view.dtype() != Dtype::F32 {
                return Err(fail(format!(
                    "tensor `{name}` has dtype {}, expected F32: kerust keeps its weights \
                     as float32",
                    view.dtype()
                )));
            }
            let values = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect();
            let tensor = Tensor {
                shape: view.shape().to_vec(),
                values,
            };
            tensors.insert(name.to_string(), tensor);
        }
        Ok(SavedFile {
            path: path.to_path_buf(),
            metadata: header.metadata().clone(),
            tensors,
        })
    }

    /// An [`Error::Format`] about this file.
    pub(crate) fn error(&self, what: impl Into<String>) -> Error {
        Error::format(&self.path, what)
    }

    /// The metadata value of `key`, if the file has it.
    pub(crate) fn optional(&self, key: &str) -> Option<&str> {
        self.metadata.as_ref()?.get(key).map(String::as_str)
    }

    /// The metadata value of `key`.
    pub(crate) fn require(&self, key: &str) -> Result<&str> {
        self.optional(key).ok_or_else(|| {
            let present = match &self.metadata {
                None => "the file has no `__metadata__`".to_string(),
                Some(m) => {
                    let mut keys: Vec<&str> = m.keys().map(String::as_str).collect();
                    keys.sort_unstable();
                    format!("its metadata holds [{}]", keys.join(", "))
                }
            };
            self.error(format!("the metadata has no `{key}`: {present}"))
        })
    }

    /// Checks that this is a kerust file of a version this build reads.
    pub(crate) fn check_format(&self) -> Result<()> {
        let Some(format) = self.optional(KEY_FORMAT) else {
            let found = match self.metadata {
                None => "the file has no `__metadata__`".to_string(),
                Some(_) => format!("the metadata has no `{KEY_FORMAT}`"),
            };
            return Err(self.error(format!(
                "{found}: a safetensors file, but not one kerust wrote (expected \
                 `{KEY_FORMAT}` = \"{FORMAT}\")"
            )));
        };
        if format != FORMAT {
            return Err(self.error(format!(
                "`{KEY_FORMAT}` is \"{format}\", expected \"{FORMAT}\""
            )));
        }
        let version = self.require(KEY_VERSION)?;
        if !SUPPORTED_FORMAT_VERSIONS.contains(&version) {
            return Err(self.error(format!(
                "format version \"{version}\" is not supported: this build of kerust reads \
                 version {}",
                SUPPORTED_FORMAT_VERSIONS.join(", ")
            )));
        }
        Ok(())
    }
}

/// The metadata every kerust file starts from: its format and version.
pub(crate) fn base_metadata() -> BTreeMap<String, String> {
    BTreeMap::from([
        (KEY_FORMAT.to_string(), FORMAT.to_string()),
        (KEY_VERSION.to_string(), FORMAT_VERSION.to_string()),
    ])
}

/// Lays out a safetensors file: header length, header, then each tensor's
/// little-endian bytes in name order.
///
/// # Errors
///
/// [`Error::InvalidArgument`] when the header would be too long for a reader
/// to accept.
pub(crate) fn encode(metadata: &BTreeMap<String, String>, tensors: &Tensors) -> Result<Vec<u8>> {
    let mut header = BTreeMap::new();
    header.insert("__metadata__".to_string(), json!(metadata));
    let mut offset = 0;
    for (name, tensor) in tensors {
        let end = offset + 4 * tensor.values.len();
        let info = json!({ "dtype": "F32", "shape": tensor.shape, "data_offsets": [offset, end] });
        header.insert(name.clone(), info);
        offset = end;
    }
    let mut text = Value::from_iter(header).to_string().into_bytes();
    // Padding with spaces to a multiple of 8 keeps the data aligned, as the
    // safetensors writers do.
    text.resize(text.len().next_multiple_of(8), b' ');
    if text.len() > MAX_HEADER_BYTES {
        return Err(Error::invalid(
            "model",
            format!("a {} byte header", text.len()),
            format!("safetensors readers accept headers of at most {MAX_HEADER_BYTES} bytes"),
        ));
    }

    let mut bytes = Vec::with_capacity(8 + text.len() + offset);
    bytes.extend_from_slice(&(text.len() as u64).to_le_bytes());
    bytes.extend_from_slice(&text);
    for tensor in tensors.values() {
        bytes.extend(tensor.values.iter().flat_map(|v| v.to_le_bytes()));
    }
    Ok(bytes)
}

/// Checks the 8-byte header length against the file's size, which gives a
/// clearer message for a truncated file than the reader does.
fn check_header_length(bytes: &[u8]) -> std::result::Result<(), String> {
    let Some(prefix) = bytes.first_chunk::<8>() else {
        return Err(if bytes.is_empty() {
            "the file is empty: expected a safetensors file".to_string()
        } else {
            format!(
                "the file is {} bytes long: a safetensors file starts with an 8-byte header \
                 length",
                bytes.len()
            )
        });
    };
    let header = u64::from_le_bytes(*prefix);
    let after = (bytes.len() - 8) as u64;
    if header > after {
        // Only a file refused anyway is named after a picture signature: a
        // model's header length can begin with the bytes of "BM".
        if let Some(kind) = picture_kind(bytes) {
            return Err(format!(
                "the file is a {kind} picture, not a safetensors model file (a model is \
                 saved with `model.save`; a picture to classify goes to `predict`)"
            ));
        }
        return Err(format!(
            "the header length field says {header} bytes, but only {after} bytes follow it: \
             the file is truncated or is not a safetensors file"
        ));
    }
    Ok(())
}

/// The picture format whose signature `bytes` start with, for a picture
/// given where a model file was expected.
fn picture_kind(bytes: &[u8]) -> Option<&'static str> {
    const SIGNATURES: [(&[u8], &str); 5] = [
        (b"\x89PNG\r\n\x1a\n", "PNG"),
        (b"\xff\xd8\xff", "JPEG"),
        (b"GIF87a", "GIF"),
        (b"GIF89a", "GIF"),
        (b"BM", "BMP"),
    ];
    SIGNATURES
        .iter()
        .find(|(signature, _)| bytes.starts_with(signature))
        .map(|&(_, kind)| kind)
}

/// A sentence for a reader error.
fn describe(error: SafeTensorError) -> String {
    match error {
        SafeTensorError::MetadataIncompleteBuffer => "the tensors' data_offsets do not end \
             where the file does: the file is truncated or padded, or its header is wrong"
            .to_string(),
        SafeTensorError::InvalidOffset(name) => format!(
            "tensor `{name}` has data_offsets that do not start where the previous tensor \
             ends, or end before they start"
        ),
        SafeTensorError::TensorInvalidInfo => "a tensor's data_offsets do not span its shape \
             times the size of its dtype"
            .to_string(),
        SafeTensorError::ValidationOverflow => {
            "a tensor's shape is too large to address".to_string()
        }
        SafeTensorError::InvalidHeader(e) => format!("the header is not UTF-8: {e}"),
        SafeTensorError::InvalidHeaderDeserialization(e) => {
            format!("the header is not a valid safetensors JSON header: {e}")
        }
        other => format!("not a valid safetensors file: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensors() -> Tensors {
        Tensors::from([
            (
                "b/kernel".to_string(),
                Tensor {
                    shape: vec![2, 2],
                    values: vec![1.0, -2.0, 3.5, f32::MIN_POSITIVE],
                },
            ),
            (
                "a/bias".to_string(),
                Tensor {
                    shape: vec![3],
                    values: vec![0.0, -0.0, 7.25],
                },
            ),
        ])
    }

    #[test]
    fn encoded_files_read_back_bit_for_bit() {
        let mut metadata = base_metadata();
        metadata.insert("epoch".into(), "3".into());
        let bytes = encode(&metadata, &tensors()).unwrap();
        let file = SavedFile::parse(Path::new("x"), &bytes).unwrap();
        assert_eq!(file.tensors, tensors());
        assert_eq!(file.optional("epoch"), Some("3"));
        file.check_format().unwrap();
        let bits = |t: &Tensors| -> Vec<u32> {
            t.values()
                .flat_map(|t| t.values.iter().map(|v| v.to_bits()))
                .collect()
        };
        assert_eq!(bits(&file.tensors), bits(&tensors()));
    }

    #[test]
    fn one_content_gives_the_same_bytes_and_an_aligned_header() {
        let first = encode(&base_metadata(), &tensors()).unwrap();
        let second = encode(&base_metadata(), &tensors()).unwrap();
        assert_eq!(first, second);
        let header = u64::from_le_bytes(first[..8].try_into().unwrap());
        assert_eq!(header % 8, 0);
    }

    #[test]
    fn short_files_say_how_long_they_are() {
        let err = SavedFile::parse(Path::new("m"), &[]).unwrap_err();
        assert!(err.to_string().contains("empty"), "{err}");
        let err = SavedFile::parse(Path::new("m"), &[1, 2, 3]).unwrap_err();
        assert!(err.to_string().contains("3 bytes long"), "{err}");
        let err = SavedFile::parse(Path::new("m"), &[200, 0, 0, 0, 0, 0, 0, 0, b'{']).unwrap_err();
        assert!(err.to_string().contains("says 200 bytes"), "{err}");
    }

    #[test]
    fn an_unknown_version_names_the_one_found_and_the_ones_read() {
        let mut metadata = base_metadata();
        metadata.insert(KEY_VERSION.into(), "9".into());
        let bytes = encode(&metadata, &tensors()).unwrap();
        let err = SavedFile::parse(Path::new("m"), &bytes)
            .unwrap()
            .check_format()
            .unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("\"9\"") && text.contains("reads version 1"),
            "{text}"
        );
    }
}
