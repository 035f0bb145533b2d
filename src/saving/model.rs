//! Whole models, checkpoints and weights, to files and back.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

use ndarray::{ArrayD, IxDyn};
use serde::Deserialize;
use serde_json::{json, Value};

use super::compile::{loss_from_config, metric_from_config, optimizer_from_config, CompileConfig};
use super::file::{
    base_metadata, encode, SavedFile, Tensor, Tensors, KEY_COMPILE, KEY_EPOCH, KEY_FORMAT,
    KEY_ITERATIONS, KEY_MODEL, OPTIMIZER_PREFIX,
};
use super::registry::LayerRegistry;
use super::FORMAT;
use crate::io::write_atomic;
use crate::layers::{Conv2D, GlobalAveragePooling2D, Layer, MaxPooling2D, Reshape};
use crate::model::Sequential;
use crate::optimizers::OptimizerState;
use crate::{Error, Result};

/// The layer name kept for the optimizer's state tensors.
const RESERVED_NAME: &str = "optimizer";

/// Names shown at most when a message lists a file's tensors.
const LISTED_NAMES: usize = 12;

/// The model's architecture, as the `model_config` metadata holds it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ModelConfig {
    name: String,
    input_shape: Vec<usize>,
    layers: Vec<LayerEntry>,
}

/// One layer of [`ModelConfig`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerEntry {
    class_name: String,
    config: Value,
    /// Whether the layer's weights are trained; files written before
    /// layers could be frozen leave it out.
    #[serde(default = "trained")]
    trainable: bool,
}

fn trained() -> bool {
    true
}

impl Sequential {
    /// Saves the model to one safetensors file at `path`: its architecture
    /// and weights and, when it is compiled, the optimizer, loss and metrics
    /// with the optimizer's state, as Keras' `model.save` does. The file
    /// layout is in [`saving`](crate::saving). The write is atomic: a
    /// failure leaves any previous file at `path` whole.
    ///
    /// # Errors
    ///
    /// [`Error::NotBuilt`] before the model's weights exist;
    /// [`Error::InvalidArgument`] when two layers share a name, a layer has
    /// no name or is called `optimizer` (a name the file keeps for the
    /// optimizer's state), or when the file name ends in `.keras`, `.h5` or
    /// `.hdf5`, Keras' formats, which this file is not; [`Error::Io`] when
    /// the file cannot be written.
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let mut model = Sequential::new().input_shape([4]).add(Dense::new(2));
    /// model.build()?;
    /// let name = format!("kerust-save-{}.safetensors", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// model.save(&path)?;
    /// let loaded = kerust::saving::load_model(&path)?;
    /// assert_eq!(loaded.get_weights(), model.get_weights());
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        write_model(self, path.as_ref(), None)
    }

    /// Saves the weights alone to a safetensors file at `path`, one tensor
    /// `{layer}/{weight}` per weight, atomically.
    ///
    /// # Errors
    ///
    /// As [`save`](Sequential::save).
    ///
    /// # Examples
    ///
    /// ```
    /// use kerust::prelude::*;
    ///
    /// # fn main() -> kerust::Result<()> {
    /// let make = |seed| Sequential::new().input_shape([3]).seed(seed).add(Dense::new(2));
    /// let (mut trained, mut fresh) = (make(1), make(2));
    /// trained.build()?;
    /// let name = format!("kerust-weights-{}.safetensors", std::process::id());
    /// let path = std::env::temp_dir().join(name);
    /// trained.save_weights(&path)?;
    /// fresh.load_weights(&path)?;
    /// assert_eq!(fresh.get_weights(), trained.get_weights());
    /// # std::fs::remove_file(&path).ok();
    /// # Ok(())
    /// # }
    /// ```
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        check_savable(self)?;
        check_file_name(path.as_ref())?;
        let bytes = encode(&base_metadata(), &weight_tensors(self)?)?;
        write_atomic(path, &bytes)
    }

    /// Replaces the weights with those of the file at `path`, matched by
    /// name (`{layer}/{weight}`), building the model first if it has an
    /// input shape and is not built yet.
    ///
    /// Any kerust model file works (from [`save`](Sequential::save),
    /// [`save_checkpoint`] or [`save_weights`](Sequential::save_weights));
    /// its optimizer state is left aside. A safetensors file that kerust did
    /// not write (its metadata has no `format` of `"kerust"`) is read by
    /// tensor names alone, so weights exported from elsewhere load when they
    /// are named and shaped as the model's.
    ///
    /// # Errors
    ///
    /// [`Error::NotBuilt`] when the model has no input shape yet;
    /// [`Error::Io`] when the file cannot be read; [`Error::Format`] for a
    /// damaged file, a kerust file of a version this build does not read, a
    /// weight of the model the file lacks, a tensor of another shape or type
    /// than the weight, or a tensor that is no weight of the model. The
    /// weights are unchanged after an error.
    ///
    /// # Examples
    ///
    /// See [`save_weights`](Sequential::save_weights).
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let file = SavedFile::read(path.as_ref())?;
        if file.optional(KEY_FORMAT) == Some(FORMAT) {
            file.check_format()?;
        }
        if !self.is_built() {
            self.build()?;
        }
        let weights = matching_weights(&file, self)?;
        self.set_weights(&weights)
            .map_err(|e| file.error(format!("the weights do not fit the model: {e}")))
    }
}

/// Saves a checkpoint of `model` to `path`: what [`Sequential::save`] writes
/// and the number of epochs completed, `epoch`, which [`load_checkpoint`]
/// gives back for [`FitOptions::initial_epoch`] to resume training.
///
/// [`FitOptions::initial_epoch`]: crate::model::FitOptions::initial_epoch
///
/// # Errors
///
/// As [`Sequential::save`].
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use kerust::saving::{load_checkpoint, save_checkpoint};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-1.0_f32], [1.0]];
/// let y = array![0.0_f32, 1.0];
/// let mut model = Sequential::new().add(Dense::new(2).activation(Activation::Softmax));
/// model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
/// let quiet = || FitOptions::new().verbose(Verbosity::Silent);
/// model.fit((&x, &y), quiet().epochs(2))?;
///
/// let path = std::env::temp_dir().join(format!("kerust-ckpt-{}.safetensors", std::process::id()));
/// save_checkpoint(&model, &path, 2)?;
/// let (mut resumed, epoch) = load_checkpoint(&path)?;
/// let history = resumed.fit((&x, &y), quiet().epochs(4).initial_epoch(epoch))?;
/// assert_eq!(history.epochs(), [2, 3]);
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub fn save_checkpoint(model: &Sequential, path: impl AsRef<Path>, epoch: usize) -> Result<()> {
    write_model(model, path.as_ref(), Some(epoch))
}

/// Loads a model saved by [`Sequential::save`] or [`save_checkpoint`], with
/// kerust's layers ([`LayerRegistry::with_builtins`]). The model comes back
/// built, with its weights, and compiled as it was saved, its optimizer's
/// state restored.
///
/// # Errors
///
/// [`Error::Io`] when the file cannot be read, and [`Error::Format`] naming
/// the file and what is wrong: not a safetensors file or a damaged one
/// (empty, truncated, offsets, shapes or dtypes that do not add up), not a
/// kerust file, a format version this build does not read, a layer class
/// the registry does not know (with how to register it), a config that does
/// not make or build its layers, a weight missing or of the wrong shape, or
/// an optimizer, loss or metric that cannot be made again.
///
/// # Examples
///
/// See [`Sequential::save`].
pub fn load_model(path: impl AsRef<Path>) -> Result<Sequential> {
    load_model_with(path, &LayerRegistry::with_builtins())
}

/// Loads a model as [`load_model`] does, making its layers with `registry`,
/// which knows the program's own layers as well.
///
/// # Errors
///
/// As [`load_model`].
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use kerust::saving::{load_model_with, LayerRegistry};
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new().input_shape([3]).add(Dense::new(2)).add(ReLU::new());
/// model.build()?;
/// let path = std::env::temp_dir().join(format!("kerust-with-{}.safetensors", std::process::id()));
/// model.save(&path)?;
///
/// // A registry that knows Dense only cannot make the ReLU layer.
/// let dense_only = LayerRegistry::new()
///     .register("Dense", |config| Ok(Box::new(Dense::from_config(config)?)));
/// let message = load_model_with(&path, &dense_only).err().map(|e| e.to_string());
/// assert!(message.is_some_and(|m| m.contains("register(\"ReLU\"")));
/// assert!(load_model_with(&path, &LayerRegistry::with_builtins()).is_ok());
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub fn load_model_with(path: impl AsRef<Path>, registry: &LayerRegistry) -> Result<Sequential> {
    read_model(path.as_ref(), registry).map(|(model, _)| model)
}

/// Loads a checkpoint written by [`save_checkpoint`] (or the
/// [`ModelCheckpoint`](crate::callbacks::ModelCheckpoint) callback) with
/// kerust's layers, and returns the model with the number of epochs it had
/// completed: pass that to
/// [`FitOptions::initial_epoch`](crate::model::FitOptions::initial_epoch).
///
/// # Errors
///
/// As [`load_model`], and [`Error::Format`] for a file without an `epoch`
/// (one written by [`Sequential::save`]).
///
/// # Examples
///
/// See [`save_checkpoint`].
pub fn load_checkpoint(path: impl AsRef<Path>) -> Result<(Sequential, usize)> {
    load_checkpoint_with(path, &LayerRegistry::with_builtins())
}

/// Loads a checkpoint as [`load_checkpoint`] does, making its layers with
/// `registry`.
///
/// # Errors
///
/// As [`load_checkpoint`].
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use kerust::saving::{load_checkpoint_with, save_checkpoint, LayerRegistry};
///
/// # fn main() -> kerust::Result<()> {
/// let mut model = Sequential::new().input_shape([3]).add(Dense::new(2));
/// model.build()?;
/// let path = std::env::temp_dir().join(format!("kerust-ckw-{}.safetensors", std::process::id()));
/// save_checkpoint(&model, &path, 7)?;
/// let (_, epoch) = load_checkpoint_with(&path, &LayerRegistry::with_builtins())?;
/// assert_eq!(epoch, 7);
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub fn load_checkpoint_with(
    path: impl AsRef<Path>,
    registry: &LayerRegistry,
) -> Result<(Sequential, usize)> {
    let (model, file) = read_model(path.as_ref(), registry)?;
    let text = file.optional(KEY_EPOCH).ok_or_else(|| {
        file.error(format!(
            "the metadata has no `{KEY_EPOCH}`: a model file, not a checkpoint; load it with \
             `load_model`"
        ))
    })?;
    let epoch = text.parse().map_err(|_| {
        file.error(format!(
            "`{KEY_EPOCH}` is \"{text}\", expected a whole number"
        ))
    })?;
    Ok((model, epoch))
}

/// Restores a checkpoint written by [`save_checkpoint`] into `model`, which
/// must have the checkpoint's layers (by name and weight shape) and be
/// compiled with an optimizer of the same kind: its weights, its
/// optimizer's state and learning rate become the checkpoint's, and the
/// number of epochs the checkpoint had completed is returned. Unlike
/// [`load_checkpoint`], no model is made, so layers of any crate work
/// without a registry;
/// [`BackupAndRestore`](crate::callbacks::BackupAndRestore) resumes with it.
///
/// # Errors
///
/// [`Error::NotCompiled`] for a model not compiled yet,
/// [`Error::NotBuilt`] for one that cannot be built (no input shape),
/// [`Error::Io`] when
/// the file cannot be read, and [`Error::Format`] naming the file for a
/// damaged file, one without an `epoch` or without optimizer state, a
/// weight the file lacks or holds in another shape, or an optimizer of
/// another kind. The model is unchanged after an error.
///
/// # Examples
///
/// ```
/// use kerust::prelude::*;
/// use kerust::saving::{restore_checkpoint, save_checkpoint};
/// use ndarray::array;
///
/// # fn main() -> kerust::Result<()> {
/// let x = array![[-1.0_f32], [1.0]];
/// let y = array![0.0_f32, 1.0];
/// let model = || -> kerust::Result<Sequential> {
///     let mut model = Sequential::new()
///         .input_shape([1])
///         .seed(3)
///         .add(Dense::new(2).activation(Activation::Softmax));
///     model.compile(Adam::new(), SparseCategoricalCrossentropy::new(), ["accuracy"])?;
///     Ok(model)
/// };
/// let quiet = || FitOptions::new().verbose(Verbosity::Silent);
/// let mut trained = model()?;
/// trained.fit((&x, &y), quiet().epochs(2))?;
/// let path = std::env::temp_dir().join(format!("kerust-restore-{}.safetensors", std::process::id()));
/// save_checkpoint(&trained, &path, 2)?;
///
/// let mut fresh = model()?;
/// assert_eq!(restore_checkpoint(&mut fresh, &path)?, 2);
/// assert_eq!(fresh.get_weights(), trained.get_weights());
/// # std::fs::remove_file(&path).ok();
/// # Ok(())
/// # }
/// ```
pub fn restore_checkpoint(model: &mut Sequential, path: impl AsRef<Path>) -> Result<usize> {
    let file = SavedFile::read(path.as_ref())?;
    file.check_format()?;
    let Some(current) = model.optimizer().map(|o| o.name().to_string()) else {
        return Err(Error::NotCompiled {
            call: "restore_checkpoint".into(),
        });
    };
    let epoch_text = file.optional(KEY_EPOCH).ok_or_else(|| {
        file.error(format!(
            "the metadata has no `{KEY_EPOCH}`: a model file, not a checkpoint"
        ))
    })?;
    let epoch: usize = epoch_text.parse().map_err(|_| {
        file.error(format!(
            "`{KEY_EPOCH}` is \"{epoch_text}\", expected a whole number"
        ))
    })?;
    let compile: CompileConfig = serde_json::from_str(file.require(KEY_COMPILE)?)
        .map_err(|e| file.error(format!("`{KEY_COMPILE}` is not a compile config: {e}")))?;
    let saved = optimizer_from_config(&compile.optimizer)
        .map_err(|e| file.error(format!("the saved optimizer cannot be made: {e}")))?;
    if saved.name() != current {
        return Err(file.error(format!(
            "it holds the state of a `{}` optimizer, the model is compiled with `{current}`",
            saved.name()
        )));
    }
    if !model.is_built() {
        model.build()?;
    }
    let weights = matching_weights(&file, model)?;
    let state = optimizer_state(&file, model)?;
    if let Some(optimizer) = model.optimizer_mut() {
        optimizer
            .load_state(&state)
            .map_err(|e| file.error(format!("the optimizer state does not fit: {e}")))?;
        optimizer.set_learning_rate(saved.learning_rate());
    }
    model
        .set_weights(&weights)
        .map_err(|e| file.error(format!("the weights do not fit the model: {e}")))?;
    log::debug!(
        "restored `{}` from {} after epoch {epoch}",
        model.model_name(),
        path.as_ref().display()
    );
    Ok(epoch)
}

/// Writes `model`, with `epoch` for a checkpoint.
fn write_model(model: &Sequential, path: &Path, epoch: Option<usize>) -> Result<()> {
    check_savable(model)?;
    check_file_name(path)?;
    let mut metadata = base_metadata();
    metadata.insert(KEY_MODEL.to_string(), model_config(model).to_string());
    let mut tensors = weight_tensors(model)?;
    if let (Some(compile), Some(optimizer)) = (CompileConfig::of(model), model.optimizer()) {
        let compile = json!({
            "optimizer": compile.optimizer,
            "loss": compile.loss,
            "metrics": compile.metrics,
        });
        metadata.insert(KEY_COMPILE.to_string(), compile.to_string());
        let state = optimizer.state();
        metadata.insert(KEY_ITERATIONS.to_string(), state.iterations.to_string());
        for (slot, index, values) in complete_slots(model, state.slots) {
            let name = format!("{OPTIMIZER_PREFIX}{slot}/{index}");
            let tensor = Tensor {
                shape: vec![values.len()],
                values,
            };
            if tensors.insert(name.clone(), tensor).is_some() {
                return Err(Error::invalid(
                    "optimizer state",
                    name,
                    "the optimizer gives two arrays of this slot and index",
                ));
            }
        }
    }
    if let Some(epoch) = epoch {
        metadata.insert(KEY_EPOCH.to_string(), epoch.to_string());
    }
    let bytes = encode(&metadata, &tensors)?;
    write_atomic(path, &bytes)?;
    log::debug!("saved model `{}` to {}", model.model_name(), path.display());
    Ok(())
}

/// Checks that `model` is built and its layers have distinct names that a
/// file can keep.
fn check_savable(model: &Sequential) -> Result<()> {
    if !model.is_built() {
        return Err(Error::NotBuilt {
            layer: model.model_name().to_string(),
        });
    }
    let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
    check_layer_names(&names).map_err(|(name, reason)| Error::invalid("layer name", name, reason))
}

/// Refuses a file name that claims one of Keras' formats, `.keras` or
/// HDF5, for a file that kerust writes as safetensors.
pub(crate) fn check_file_name(path: &Path) -> Result<()> {
    let extension = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match extension.as_deref() {
        Some(format @ ("keras" | "h5" | "hdf5")) => Err(Error::invalid(
            "path",
            path.display(),
            format!(
                "kerust writes safetensors files, which Keras cannot read as `.{format}`; \
                 name the file `.safetensors`"
            ),
        )),
        _ => Ok(()),
    }
}

/// Refuses empty, repeated and reserved layer names; gives the name and why.
fn check_layer_names(names: &[&str]) -> std::result::Result<(), (String, String)> {
    let mut seen = BTreeSet::new();
    for &name in names {
        if name.is_empty() {
            return Err((
                "\"\"".to_string(),
                "every layer of a saved model needs a name".to_string(),
            ));
        }
        if name == RESERVED_NAME {
            return Err((
                format!("\"{name}\""),
                "model files keep this name for the optimizer's state; rename the layer"
                    .to_string(),
            ));
        }
        if !seen.insert(name) {
            return Err((
                format!("\"{name}\""),
                "two layers have this name; layer names must be unique".to_string(),
            ));
        }
    }
    Ok(())
}

/// The optimizer's slot arrays with one array per weight in every slot: a
/// weight the optimizer has not updated yet (a frozen layer's) has no array
/// or an empty one, and gets zeros of its length, the state it starts from.
/// Arrays of weights the model does not have are kept, for the loader to
/// refuse.
fn complete_slots(
    model: &Sequential,
    slots: Vec<(String, usize, Vec<f32>)>,
) -> Vec<(String, usize, Vec<f32>)> {
    let sizes: Vec<usize> = model
        .layers()
        .iter()
        .flat_map(|layer| layer.trainable_weights().into_iter().map(|(_, w)| w.len()))
        .collect();
    let mut names: Vec<String> = Vec::new();
    for (name, _, _) in &slots {
        if !names.contains(name) {
            names.push(name.clone());
        }
    }
    let mut complete = Vec::with_capacity(slots.len());
    let mut given = slots;
    for name in &names {
        for (index, &size) in sizes.iter().enumerate() {
            let found = given
                .iter()
                .position(|(n, i, v)| n == name && *i == index && !v.is_empty());
            let values = match found {
                Some(at) => given.swap_remove(at).2,
                None => vec![0.0; size],
            };
            complete.push((name.clone(), index, values));
        }
    }
    // Empty arrays said "nothing yet"; anything else left over is passed on.
    complete.extend(given.into_iter().filter(|(_, _, v)| !v.is_empty()));
    complete
}

/// The `model_config` of `model`.
fn model_config(model: &Sequential) -> Value {
    let layers: Vec<Value> = model
        .layers()
        .iter()
        .zip(&model.trainable)
        .map(|(layer, &trainable)| {
            let mut entry = json!({ "class_name": layer.class_name(), "config": layer.config() });
            // Written only for a frozen layer, so that the files of models
            // without one keep their bytes.
            if !trainable {
                entry["trainable"] = Value::Bool(false);
            }
            entry
        })
        .collect();
    json!({
        "name": model.model_name(),
        "input_shape": model.get_input_shape(),
        "layers": layers,
    })
}

/// The weights of `model` as tensors named `{layer}/{weight}`.
fn weight_tensors(model: &Sequential) -> Result<Tensors> {
    let mut tensors = Tensors::new();
    for layer in model.layers() {
        for (weight, view) in layer.weights() {
            let name = format!("{}/{weight}", layer.name());
            let tensor = Tensor {
                shape: view.shape().to_vec(),
                values: view.iter().copied().collect(),
            };
            if tensors.insert(name.clone(), tensor).is_some() {
                return Err(Error::invalid(
                    "layer name",
                    layer.name(),
                    format!("two weights would both be saved as `{name}`; rename a layer"),
                ));
            }
        }
    }
    Ok(tensors)
}

/// Makes the model a file describes, with its weights, compiled as saved.
fn read_model(path: &Path, registry: &LayerRegistry) -> Result<(Sequential, SavedFile)> {
    let file = SavedFile::read(path)?;
    file.check_format()?;
    let text = file.optional(KEY_MODEL).ok_or_else(|| {
        file.error(format!(
            "the metadata has no `{KEY_MODEL}`: the file holds weights only (as \
             `save_weights` writes them); load them into a model with `load_weights`"
        ))
    })?;
    let config: ModelConfig = serde_json::from_str(text)
        .map_err(|e| file.error(format!("`{KEY_MODEL}` is not a model config: {e}")))?;
    let names: Vec<&str> = config
        .layers
        .iter()
        .map(|entry| {
            entry
                .config
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or("")
        })
        .collect();
    check_layer_names(&names)
        .map_err(|(name, reason)| file.error(format!("layer name {name}: {reason}")))?;
    check_kernels(&file, &config)?;

    let mut model = Sequential::new()
        .name(config.name.as_str())
        .input_shape(config.input_shape.clone());
    for (index, entry) in config.layers.iter().enumerate() {
        model.push(make_layer(&file, registry, index, entry)?);
        if let (Some(trainable), Some(layer)) =
            (model.trainable.last_mut(), model.layers.last_mut())
        {
            *trainable = entry.trainable;
            layer.on_trainable_changed(entry.trainable);
        }
    }
    model
        .build()
        .map_err(|e| file.error(format!("the model config does not build: {e}")))?;
    let weights = matching_weights(&file, &model)?;
    model
        .set_weights(&weights)
        .map_err(|e| file.error(format!("the weights do not fit the model: {e}")))?;
    restore_compile(&file, &mut model)?;
    log::debug!(
        "loaded model `{}` from {}",
        model.model_name(),
        path.display()
    );
    Ok((model, file))
}

/// Makes layer number `index` with the registry.
fn make_layer(
    file: &SavedFile,
    registry: &LayerRegistry,
    index: usize,
    entry: &LayerEntry,
) -> Result<Box<dyn Layer>> {
    let class = &entry.class_name;
    let name = entry
        .config
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !registry.contains(class) {
        return Err(file.error(format!(
            "layer {index} (`{name}`) is of class \"{class}\", which the layer registry does \
             not know: {}",
            registry.unknown_class_hint(class)
        )));
    }
    let layer = registry.make(class, &entry.config).map_err(|e| {
        file.error(format!(
            "layer {index} (`{name}`, {class}) cannot be made from its config: {e}"
        ))
    })?;
    if layer.name() != name {
        return Err(file.error(format!(
            "layer {index} ({class}) is named `{}` once made, but its config says `{name}`: \
             a layer's `from_config` must keep the config's `name`",
            layer.name()
        )));
    }
    Ok(layer)
}

/// Checks each built-in `Dense` and `Conv2D` layer's kernel shape, as its
/// config and the layers before it make it (`[input_dim, units]`,
/// `[kernel_height, kernel_width, in_channels, filters]`), against the file
/// before the model is built: a config that lies about its sizes then fails
/// with a message instead of first allocating what it asks for. Follows the
/// shapes through `Flatten`, `Reshape`, the pooling layers and the layers
/// that keep their input's shape (`Activation`, `BatchNormalization`,
/// `Dropout`, `LayerNormalization`, `LeakyReLU`, `ReLU`, `Softmax`); stops
/// at the first layer of a class it does not know the shapes of, or whose
/// config does not give them (the layer's own checks report such a
/// config). The two windowed poolings share their config's
/// fields, as do the two global ones, and one reader serves each pair.
fn check_kernels(file: &SavedFile, config: &ModelConfig) -> Result<()> {
    let mut shape = config.input_shape.clone();
    for entry in &config.layers {
        let name = entry.config.get("name").and_then(Value::as_str);
        match entry.class_name.as_str() {
            // Their outputs have their inputs' shape.
            "ReLU" | "Softmax" | "Dropout" | "BatchNormalization" | "LayerNormalization"
            | "LeakyReLU" | "Activation" => {}
            "Flatten" => {
                let Some(size) = shape.iter().try_fold(1_usize, |a, &d| a.checked_mul(d)) else {
                    return Err(file.error(format!(
                        "`input_shape` {:?} has more elements than can be addressed",
                        config.input_shape
                    )));
                };
                shape = vec![size];
            }
            "Reshape" => {
                let output = Reshape::from_config(&entry.config)
                    .and_then(|layer| layer.compute_output_shape(&shape));
                let Ok(output) = output else {
                    return Ok(());
                };
                shape = output;
            }
            "Dense" => {
                let units = entry.config.get("units").and_then(Value::as_u64);
                let (Some(name), Some(units), Some(&input_dim)) = (name, units, shape.last())
                else {
                    return Ok(());
                };
                let units = usize::try_from(units).unwrap_or(usize::MAX);
                check_kernel(file, name, &[input_dim, units])?;
                if let Some(last) = shape.last_mut() {
                    *last = units;
                }
            }
            "Conv2D" => {
                let Ok(layer) = Conv2D::from_config(&entry.config) else {
                    return Ok(());
                };
                let (Some(name), Ok(output)) = (name, layer.compute_output_shape(&shape)) else {
                    return Ok(());
                };
                check_kernel(file, name, &layer.kernel_shape(shape[2]))?;
                shape = output;
            }
            "MaxPooling2D" | "AveragePooling2D" => {
                let output = MaxPooling2D::from_config(&entry.config)
                    .and_then(|layer| layer.compute_output_shape(&shape));
                let Ok(output) = output else {
                    return Ok(());
                };
                shape = output;
            }
            "GlobalAveragePooling2D" | "GlobalMaxPooling2D" => {
                let output = GlobalAveragePooling2D::from_config(&entry.config)
                    .and_then(|layer| layer.compute_output_shape(&shape));
                let Ok(output) = output else {
                    return Ok(());
                };
                shape = output;
            }
            _ => return Ok(()),
        }
    }
    Ok(())
}

/// Checks that the file holds `{layer}/kernel` with shape `expected`.
fn check_kernel(file: &SavedFile, layer: &str, expected: &[usize]) -> Result<()> {
    let kernel = format!("{layer}/kernel");
    match file.tensors.get(&kernel) {
        Some(t) if t.shape == expected => Ok(()),
        Some(t) => Err(file.error(format!(
            "weight `{kernel}` has shape {:?} in the file, but the model config makes it \
             {expected:?}",
            t.shape
        ))),
        None => Err(missing_weight(file, &kernel, expected)),
    }
}

/// The file's tensor for each weight of `model`, in the order of
/// [`Sequential::get_weights`]. Tensors of the optimizer's state are left
/// aside; any other tensor must be a weight of the model.
fn matching_weights(file: &SavedFile, model: &Sequential) -> Result<Vec<ArrayD<f32>>> {
    let mut arrays = Vec::new();
    let mut used = BTreeSet::new();
    for layer in model.layers() {
        for (weight, view) in layer.weights() {
            let name = format!("{}/{weight}", layer.name());
            let Some(tensor) = file.tensors.get(&name) else {
                return Err(missing_weight(file, &name, view.shape()));
            };
            if tensor.shape != view.shape() {
                return Err(file.error(format!(
                    "weight `{name}` has shape {:?} in the file, but the model's is {:?}",
                    tensor.shape,
                    view.shape()
                )));
            }
            let array = ArrayD::from_shape_vec(IxDyn(&tensor.shape), tensor.values.clone())
                .map_err(|e| file.error(format!("weight `{name}`: {e}")))?;
            arrays.push(array);
            used.insert(name);
        }
    }
    let stray: Vec<&str> = file
        .tensors
        .keys()
        .filter(|n| !used.contains(*n) && !n.starts_with(OPTIMIZER_PREFIX))
        .map(String::as_str)
        .collect();
    if let Some(first) = stray.first() {
        return Err(file.error(format!(
            "tensor `{first}` is no weight of the model ({} such tensors: {}); the model's \
             weights: {}",
            stray.len(),
            listed(stray.iter().copied()),
            listed(used.iter().map(String::as_str)),
        )));
    }
    Ok(arrays)
}

fn missing_weight(file: &SavedFile, name: &str, shape: &[usize]) -> Error {
    file.error(format!(
        "weight `{name}` {shape:?} is not in the file, which holds: {}",
        listed(file.tensors.keys().map(String::as_str))
    ))
}

/// Up to [`LISTED_NAMES`] names, comma separated, with how many were left
/// out.
fn listed<'a>(names: impl Iterator<Item = &'a str>) -> String {
    let names: Vec<&str> = names.collect();
    if names.is_empty() {
        return "none".to_string();
    }
    let mut text = names
        .iter()
        .take(LISTED_NAMES)
        .copied()
        .collect::<Vec<_>>()
        .join(", ");
    if names.len() > LISTED_NAMES {
        text.push_str(&format!(" and {} more", names.len() - LISTED_NAMES));
    }
    text
}

/// Compiles `model` as the file's `compile_config` says and restores the
/// optimizer's state.
fn restore_compile(file: &SavedFile, model: &mut Sequential) -> Result<()> {
    let Some(text) = file.optional(KEY_COMPILE) else {
        let has_state = file.optional(KEY_ITERATIONS).is_some()
            || file.tensors.keys().any(|n| n.starts_with(OPTIMIZER_PREFIX));
        if has_state {
            return Err(file.error(format!(
                "the file holds optimizer state but no `{KEY_COMPILE}` to make the optimizer"
            )));
        }
        return Ok(());
    };
    let config: CompileConfig = serde_json::from_str(text)
        .map_err(|e| file.error(format!("`{KEY_COMPILE}` is not a compile config: {e}")))?;
    let optimizer = optimizer_from_config(&config.optimizer)
        .map_err(|e| file.error(format!("the saved optimizer cannot be made: {e}")))?;
    let loss = loss_from_config(&config.loss)
        .map_err(|e| file.error(format!("the saved loss cannot be made: {e}")))?;
    let metrics = config
        .metrics
        .iter()
        .map(metric_from_config)
        .collect::<Result<Vec<_>>>()
        .map_err(|e| file.error(format!("a saved metric cannot be made: {e}")))?;
    model
        .compile(optimizer, loss, metrics)
        .map_err(|e| file.error(format!("the model cannot be compiled as saved: {e}")))?;

    let state = optimizer_state(file, model)?;
    if let Some(optimizer) = model.optimizer_mut() {
        optimizer
            .load_state(&state)
            .map_err(|e| file.error(format!("the optimizer state does not fit: {e}")))?;
    }
    Ok(())
}

/// The optimizer state a file holds, checked against the model's trainable
/// weights: each slot holds one array per weight, of that weight's length.
fn optimizer_state(file: &SavedFile, model: &mut Sequential) -> Result<OptimizerState> {
    let text = file.require(KEY_ITERATIONS)?;
    // Keras counts steps in an int64; a larger count was never reached, and
    // would overflow as training goes on.
    let iterations = text
        .parse::<u64>()
        .ok()
        .filter(|&n| n <= i64::MAX as u64)
        .ok_or_else(|| {
            file.error(format!(
                "`{KEY_ITERATIONS}` is \"{text}\", expected a whole number up to {}",
                i64::MAX
            ))
        })?;
    let sizes = parameter_sizes(model);
    let mut slots = Vec::new();
    let mut covered: BTreeMap<&str, BTreeSet<usize>> = BTreeMap::new();
    for (name, tensor) in &file.tensors {
        let Some(rest) = name.strip_prefix(OPTIMIZER_PREFIX) else {
            continue;
        };
        let parsed = rest
            .rsplit_once('/')
            .filter(|(slot, _)| !slot.is_empty())
            .and_then(|(slot, index)| Some((slot, index.parse::<usize>().ok()?)));
        let Some((slot, index)) = parsed else {
            return Err(file.error(format!(
                "tensor `{name}` is not named `{OPTIMIZER_PREFIX}{{slot}}/{{index}}`"
            )));
        };
        let Some(&size) = sizes.get(index) else {
            return Err(file.error(format!(
                "tensor `{name}` is optimizer state of weight {index}, but the model has {} \
                 trainable weights",
                sizes.len()
            )));
        };
        if tensor.shape != [size] {
            return Err(file.error(format!(
                "tensor `{name}` has shape {:?}, expected [{size}] as weight {index}",
                tensor.shape
            )));
        }
        if !covered.entry(slot).or_default().insert(index) {
            return Err(file.error(format!(
                "optimizer slot `{slot}` of weight {index} appears twice"
            )));
        }
        slots.push((slot.to_string(), index, tensor.values.clone()));
    }
    for (slot, indices) in &covered {
        if let Some(missing) = (0..sizes.len()).find(|i| !indices.contains(i)) {
            return Err(file.error(format!(
                "tensor `{OPTIMIZER_PREFIX}{slot}/{missing}` is missing: optimizer slot \
                 `{slot}` covers {} of the model's {} trainable weights",
                indices.len(),
                sizes.len()
            )));
        }
    }
    Ok(OptimizerState { iterations, slots })
}

/// The length of each trainable weight, in the optimizer's slot order.
fn parameter_sizes(model: &mut Sequential) -> Vec<usize> {
    let mut sizes = Vec::new();
    for layer in model.layers_mut() {
        layer.visit_parameters(&mut |value, _| sizes.push(value.len()));
    }
    sizes
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn layer_names_must_be_present_distinct_and_not_reserved() {
        assert!(check_layer_names(&["dense", "dense_1", "flatten"]).is_ok());
        assert!(check_layer_names(&["dense", ""]).is_err());
        assert!(check_layer_names(&["optimizer"]).is_err());
        let (name, reason) = check_layer_names(&["a", "b", "a"]).unwrap_err();
        assert_eq!(name, "\"a\"");
        assert!(reason.contains("unique"), "{reason}");
    }

    #[test]
    fn long_lists_are_cut_with_a_count() {
        let names: Vec<String> = (0..15).map(|i| format!("t{i}")).collect();
        let text = listed(names.iter().map(String::as_str));
        assert!(text.ends_with("t11 and 3 more"), "{text}");
        assert_eq!(listed(std::iter::empty()), "none");
    }
}
