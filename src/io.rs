//! File helpers shared by everything that writes: atomic writes.

use std::fs;
use std::io::Write;
use std::path::Path;

use crate::{Error, Result};

/// Writes `bytes` to `path` atomically: into a temporary file in the same
/// folder, flushed to disk, then renamed over `path`. A crash or a full disk
/// during the write leaves any previous file at `path` whole.
///
/// # Errors
///
/// [`Error::Io`] naming the path when the folder cannot be written.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let name = path
        .file_name()
        .ok_or_else(|| Error::invalid("path", path.display(), "expected a file name"))?;
    let temporary = folder.join(format!(
        ".{}.tmp-{}",
        name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
        fs::rename(&temporary, path)
    })();
    if let Err(source) = result {
        let _ = fs::remove_file(&temporary);
        if source.kind() == std::io::ErrorKind::NotFound && !folder.is_dir() {
            let missing = std::io::Error::new(
                source.kind(),
                format!(
                    "the folder `{}` does not exist; create it first ({source})",
                    folder.display()
                ),
            );
            return Err(Error::io(path, missing));
        }
        return Err(Error::io(path, source));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_file_and_leaves_no_temporary() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out.txt");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second").unwrap();
        assert_eq!(fs::read(&path).unwrap(), b"second");
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn a_missing_folder_is_an_io_error_naming_the_path() {
        let err = write_atomic("/nonexistent-folder/x.txt", b"x").unwrap_err();
        assert!(
            err.to_string().contains("/nonexistent-folder/x.txt")
                && err
                    .to_string()
                    .contains("the folder `/nonexistent-folder` does not exist"),
            "{err}"
        );
    }
}
