//! [`BackupAndRestore`]: resume an interrupted `fit` where it stopped.

use std::path::{Path, PathBuf};

use super::{Callback, Logs};
use crate::model::Sequential;
use crate::saving::{restore_checkpoint, save_checkpoint};
use crate::{Error, Result};

/// The file a backup folder holds.
const BACKUP_FILE: &str = "latest.safetensors";

/// Backs training up at the end of every epoch and, when `fit` starts
/// again after an interruption, restores the backup and resumes with the
/// next epoch, as Keras' `BackupAndRestore`.
///
/// The backup is a checkpoint (weights, optimizer state, learning rate and
/// the number of epochs done) written atomically to
/// `backup_dir/latest.safetensors`, so an interruption while it is written
/// leaves the previous one whole. At the start of `fit`, a backup found
/// there is restored into the model, which must have the same layers and
/// optimizer kind, and training continues from the epoch after it. When
/// `fit` ends normally, also by an early stop, the backup is deleted
/// (unless [`delete_checkpoint`](Self::delete_checkpoint) says otherwise);
/// when it ends with an error, the backup stays for the next run.
///
/// Since kerust draws each epoch's shuffling, augmentation and dropout
/// from the seed and the epoch number, a resumed run with the same seed
/// and data ends with the same weights, to the bit, as one that was never
/// interrupted. The history and the state of other callbacks (an
/// `EarlyStopping`'s patience, say) start afresh, as in Keras.
///
/// # Errors
///
/// `on_train_begin` returns what
/// [`restore_checkpoint`](crate::saving::restore_checkpoint) returns for a
/// backup that does not fit the model; `on_epoch_end` returns
/// [`Error::Io`] naming the folder when it cannot be made or written.
///
/// # Examples
///
/// ```
/// use kerust::callbacks::BackupAndRestore;
/// use kerust::prelude::*;
/// use ndarray::array;
///
/// /// Fails at the end of one epoch, as a machine that goes down would.
/// struct Crash(usize);
/// impl Callback for Crash {
///     fn on_epoch_end(&mut self, epoch: usize, _: &mut Sequential, _: &mut Logs) -> kerust::Result<()> {
///         if epoch == self.0 {
///             return Err(kerust::Error::invalid("run", epoch, "interrupted"));
///         }
///         Ok(())
///     }
/// }
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-1.0_f32], [-0.5], [0.5], [1.0]];
/// let y = array![0.0_f32, 0.0, 1.0, 1.0];
/// let model = || -> kerust::Result<Sequential> {
///     let mut model = Sequential::new().seed(1).add(Dense::new(2).activation(Activation::Softmax));
///     model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
///     Ok(model)
/// };
/// let options = || FitOptions::new().epochs(5).batch_size(2).seed(7).verbose(Verbosity::Silent);
/// let folder = std::env::temp_dir().join(format!("kerust-backup-{}", std::process::id()));
///
/// // A run that fails after its third epoch (epoch 2)...
/// let mut first = model()?;
/// let backup = BackupAndRestore::new(&folder);
/// assert!(first.fit((&x, &y), options().callback(backup).callback(Crash(2))).is_err());
///
/// // ...and a new one that picks up at the fourth (epoch 3).
/// let mut second = model()?;
/// let history = second.fit((&x, &y), options().callback(BackupAndRestore::new(&folder)))?;
/// assert_eq!(history.epochs(), [3, 4]);
///
/// let mut whole = model()?;
/// whole.fit((&x, &y), options())?;
/// assert_eq!(second.get_weights(), whole.get_weights());
/// assert!(!folder.join("latest.safetensors").exists());
/// # std::fs::remove_dir_all(&folder).ok();
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct BackupAndRestore {
    backup_dir: PathBuf,
    delete_checkpoint: bool,
    resume: Option<usize>,
}

impl BackupAndRestore {
    /// Backs up into the folder `backup_dir`, made when first needed.
    pub fn new(backup_dir: impl AsRef<Path>) -> Self {
        BackupAndRestore {
            backup_dir: backup_dir.as_ref().to_path_buf(),
            delete_checkpoint: true,
            resume: None,
        }
    }

    /// Whether the backup is deleted when training ends normally (default
    /// true, as in Keras).
    pub fn delete_checkpoint(mut self, delete: bool) -> Self {
        self.delete_checkpoint = delete;
        self
    }

    /// The backup file: `latest.safetensors` in the backup folder.
    pub fn backup_path(&self) -> PathBuf {
        self.backup_dir.join(BACKUP_FILE)
    }

    /// The number of epochs the backup restored at the start of the last
    /// `fit` had completed, if one was found.
    pub fn restored_epoch(&self) -> Option<usize> {
        self.resume
    }
}

impl Callback for BackupAndRestore {
    fn on_train_begin(&mut self, model: &mut Sequential, _logs: &Logs) -> Result<()> {
        self.resume = None;
        let path = self.backup_path();
        if path.is_file() {
            let epoch = restore_checkpoint(model, &path)?;
            log::info!(
                "restored the backup {} after epoch {epoch}; resuming",
                path.display()
            );
            self.resume = Some(epoch);
        }
        Ok(())
    }

    fn resume_epoch(&self) -> Option<usize> {
        self.resume
    }

    fn on_epoch_end(
        &mut self,
        epoch: usize,
        model: &mut Sequential,
        _logs: &mut Logs,
    ) -> Result<()> {
        std::fs::create_dir_all(&self.backup_dir).map_err(|e| Error::io(&self.backup_dir, e))?;
        save_checkpoint(model, self.backup_path(), epoch + 1)
    }

    fn on_train_end(&mut self, _model: &mut Sequential, _logs: &Logs) -> Result<()> {
        if !self.delete_checkpoint {
            return Ok(());
        }
        let path = self.backup_path();
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        // The folder goes too when nothing else is in it.
        std::fs::remove_dir(&self.backup_dir).ok();
        Ok(())
    }
}
