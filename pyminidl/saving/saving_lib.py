"""Model files in Keras 3's layout: ``.keras`` zips, ``.weights.h5`` and ``.weights.npz``.

A ``.keras`` file is a zip of ``metadata.json``, ``config.json`` (the model's config with its
``compile_config``) and ``model.weights.h5``: h5py groups ``vars`` (the model's own weights),
``layers/<class_snake_name>/vars/<i>`` for each layer (numbered per class as Keras numbers them:
``dense``, ``dense_1``, ...; nested models under ``layers/<name>/layers/...``) and
``optimizer/vars/<i>`` (iterations, learning rate, slots), so Keras 3 reads what pyminidl writes
and the other way round. Without h5py the weights member is ``model.weights.npz`` with the same
keys, which only pyminidl reads.

Loading never runs code from the file: JSON configs resolved through the serialization registry
(unknown class names refused unless in ``custom_objects``), arrays read with
``np.load(allow_pickle=False)`` or h5py datasets of numeric dtype, sizes bounded before reading.
Every write goes through ``file_io.atomic_write``.

Example:
    >>> model.save("model.keras")
    >>> model = pyminidl.saving.load_model("model.keras")
"""

import datetime
import io
import json
import os
import re
import zipfile
import zlib

import numpy as np

from pyminidl import random as pmd_random
from pyminidl.backend import get_backend
from pyminidl.saving import serialization_lib
from pyminidl.saving.file_io import atomic_write
from pyminidl.saving.object_registration import CustomObjectScope

CONFIG_NAME, METADATA_NAME = "config.json", "metadata.json"
H5_MEMBER, NPZ_MEMBER = "model.weights.h5", "model.weights.npz"
MAX_JSON_BYTES = 16 * 2**20  # a config this large is not a model description
MAX_WEIGHTS_BYTES = 16 * 2**30
_MAX_RATIO = 200  # uncompressed / compressed beyond this is a zip bomb, not weights
_KEY = re.compile(r"^(?:[A-Za-z0-9_.\-]+/)*vars/(\d+)$")


_H5PY = []


def _h5py():
    """The h5py module, or None when it is not installed (an optional extra: weights travel as .npz then)."""
    if not _H5PY:
        try:
            import h5py  # imported on first use: `import pyminidl` stays quick
        except ImportError:
            h5py = None
        _H5PY.append(h5py)
    return _H5PY[0]


def _version():
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("pyminidl")
    except PackageNotFoundError:
        return "unknown"


# ---------------------------------------------------------------------------- where each weight goes


def _snake(name):
    name = re.sub(r"(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub(r"([a-z])([A-Z])", r"\1_\2", name).lower()


def _container(prefix, layers):
    """Children of a list of layers, named by class and numbered per class (Keras: ``dense``, ``dense_1``)."""
    used, out = {}, []
    for child in layers:
        base = _snake(type(child).__name__)
        used[base] = used.get(base, -1) + 1
        out.append((f"{prefix}/" + (base if used[base] == 0 else f"{base}_{used[base]}"), child))
    return out


def _children(layer):
    """``[(path part, child layer)]`` as Keras walks a saveable: a model's ``layers`` first (a property
    of Sequential and functional models), then its layer-valued attributes by name (lists of layers as
    containers), public names before private ones."""
    out = _container("layers", layer.layers) if isinstance(getattr(type(layer), "layers", None), property) else []
    subs = {id(s) for s in layer._sublayers}
    taken = {id(child) for _, child in out}
    for key in sorted(vars(layer), key=lambda k: ("~" + k) if k.startswith("_") else k):
        value = vars(layer)[key]
        if id(value) in subs and id(value) not in taken:
            out.append((key, value))
            taken.add(id(value))
        elif isinstance(value, (list, tuple)) and value and all(id(v) in subs for v in value):
            fresh = [v for v in value if id(v) not in taken]
            out.extend(_container(key, fresh))
            taken.update(id(v) for v in fresh)
    return out


def _groups(model):
    """``[(group path, layer)]`` for the model and every layer below it, root first ("" is the root)."""
    out, stack = [], [("", model)]
    while stack:
        path, layer = stack.pop(0)
        out.append((path, layer))
        stack[:0] = [(f"{path}/{part}" if path else part, child) for part, child in _children(layer)]
    return out


def _vars_key(path, i):
    return f"{path}/vars/{i}" if path else f"vars/{i}"


def _weight_plan(model):
    """``[(layer, group path, [Variable])]``: each layer's own weights, trainable first (Keras's order)."""
    return [(layer, path, layer._own_weights()) for path, layer in _groups(model)]


# ---------------------------------------------------------------------------- optimizer state


def _optimizer_arrays(model):
    """Keras 3's optimizer variables: iterations, the learning rate (unless a schedule), then the slots."""
    opt = getattr(model, "optimizer", None)
    if opt is None or not getattr(model, "built", False):
        return None
    variables = [w for _, w in model._trainable_slots()]
    opt.build(variables)
    out = [np.asarray(opt.iterations, dtype=np.int64)]
    if not callable(opt._learning_rate):
        out.append(np.asarray(opt._learning_rate, dtype=np.float32))
    be = get_backend()
    return out + [be.to_numpy(s) for s in opt.ordered_slots(variables)]


def _restore_optimizer(model, arrays):
    opt = getattr(model, "optimizer", None)
    if opt is None or not arrays:
        return None
    variables = [w for _, w in model._trainable_slots()]
    opt.build(variables)
    slots = opt.ordered_slots(variables)
    head = 1 if callable(opt._learning_rate) else 2
    if len(arrays) != head + len(slots):
        raise ValueError(f"The saved optimizer state holds {len(arrays)} variables, but optimizer "
                         f"{opt.name!r} of this model has {head + len(slots)}.")
    for i, (slot, new) in enumerate(zip(slots, arrays[head:])):
        if tuple(slot.shape) != tuple(new.shape):
            raise ValueError(f"Optimizer variable {head + i} has shape {tuple(slot.shape)}, but the saved one "
                             f"has shape {tuple(new.shape)}.")

    def apply():
        opt.iterations = int(arrays[0])
        if head == 2 and np.float32(opt._learning_rate) != np.float32(arrays[1]):
            # the file holds the rate as float32 (Keras's variable): the config's exact value stands unless
            # training changed it (ReduceLROnPlateau, LearningRateScheduler)
            opt._learning_rate = float(arrays[1])
        be = get_backend()
        for slot, new in zip(slots, arrays[head:]):
            slot[...] = be.asarray(new, dtype=slot.dtype)

    return apply


# ---------------------------------------------------------------------------- arrays <-> files


def _collect(model, include_optimizer=True):
    """``({key: array}, [group paths with their layer names])`` for ``model``."""
    be = get_backend()
    arrays, groups = {}, []
    for layer, path, variables in _weight_plan(model):
        groups.append((path or "", layer.name))
        for i, w in enumerate(variables):
            arrays[_vars_key(path, i)] = be.to_numpy(w.value)
    opt = _optimizer_arrays(model) if include_optimizer else None
    if opt is not None:
        groups.append(("optimizer", model.optimizer.name))
        for i, a in enumerate(opt):
            arrays[f"optimizer/vars/{i}"] = a
    return arrays, groups


def _write_h5(f, arrays, groups):
    with _h5py().File(f, "w") as h5:
        for path, name in groups:
            h5.require_group(f"{path}/vars" if path else "vars").attrs["name"] = name
        for key, value in arrays.items():
            h5.create_dataset(key, data=value)


def _write_npz(f, arrays):
    np.savez(f, **arrays)


def _check_array(key, value, source):
    if not isinstance(value, np.ndarray) or value.dtype.kind not in "biuf":
        raise ValueError(f"{source}: entry {key!r} is not a numeric array (dtype "
                         f"{getattr(value, 'dtype', type(value))}); refusing to load it.")
    return value


def _read_h5(f, source):
    arrays, h5py = {}, _h5py()
    with h5py.File(f, "r") as h5:
        def visit(name, obj):
            if isinstance(obj, h5py.Dataset):
                if obj.dtype.kind not in "biuf":
                    raise ValueError(f"{source}: dataset {name!r} has dtype {obj.dtype}; only numeric arrays load.")
                arrays[name] = np.asarray(obj[()])
        h5.visititems(visit)
    return arrays


def _read_npz(f, source):
    try:
        with np.load(f, allow_pickle=False) as data:
            return {key: _check_array(key, data[key], source) for key in data.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as e:
        raise ValueError(f"{source} is not a readable .npz weights file ({e}).") from e


def _read_weights_file(path):
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No such weights file: {path!r}")
    if os.path.getsize(path) > MAX_WEIGHTS_BYTES:
        raise ValueError(f"{path!r} is larger than pyminidl.saving.saving_lib.MAX_WEIGHTS_BYTES "
                         f"({MAX_WEIGHTS_BYTES} bytes); refusing to read it.")
    if path.endswith(".npz"):
        with open(path, "rb") as f:
            return _read_npz(f, path)
    if _h5py() is None:
        raise ImportError(f"Reading {path!r} needs h5py (`pip install h5py`); or save weights as .weights.npz.")
    try:
        return _read_h5(path, path)
    except OSError as e:
        raise ValueError(f"{path!r} is not a readable HDF5 weights file ({e}).") from e


# ---------------------------------------------------------------------------- assigning loaded weights


def _split_arrays(arrays, source):
    """``({group path: {index: array}}, [optimizer arrays])``; keys outside Keras's layout are refused."""
    groups, optimizer = {}, {}
    for key, value in arrays.items():
        m = _KEY.match(key)
        if m is None:
            raise ValueError(f"{source}: unexpected entry {key!r} (not <group>/vars/<index>).")
        path = key[: -len(f"vars/{m.group(1)}")].rstrip("/")
        target = optimizer if path == "optimizer" else groups.setdefault(path, {})
        target[int(m.group(1))] = value
    return groups, [optimizer[i] for i in sorted(optimizer)]


def _assign_plan(model, groups, source):
    """``[(Variable, array)]`` for every weight of ``model``, checked before any is written.

    Raises:
        ValueError: naming the first layer whose weights differ in number or shape (both shapes).
    """
    plan, known = [], set()
    for layer, path, variables in _weight_plan(model):
        known.add(path)
        saved = groups.get(path, {})
        if len(saved) != len(variables) or sorted(saved) != list(range(len(saved))):
            raise ValueError(
                f"Layer '{layer.name}' expects {len(variables)} weight(s) ({[w.shape for w in variables]}), but "
                f"{source} holds {len(saved)} for it ({[saved[i].shape for i in sorted(saved)]}) at "
                f"{path or '<root>'!r}. The file was saved from a different architecture.")
        for i, w in enumerate(variables):
            if tuple(saved[i].shape) != w.shape:
                raise ValueError(
                    f"Layer '{layer.name}' weight '{w.name}' has shape {w.shape}, but the saved weight at "
                    f"{_vars_key(path, i)!r} in {source} has shape {tuple(saved[i].shape)}.")
            plan.append((w, saved[i]))
    extra = sorted(p for p, entries in groups.items() if p not in known and entries)
    if extra:
        raise ValueError(f"{source} holds weights for {extra[0]!r}, which this model does not have. "
                         "The file was saved from a different architecture.")
    return plan


def _load_arrays_into(model, arrays, source, with_optimizer=True):
    groups, optimizer = _split_arrays(arrays, source)
    plan = _assign_plan(model, groups, source)
    restore = _restore_optimizer(model, optimizer) if with_optimizer else None
    for w, value in plan:  # everything was checked: now write
        w.assign(value)
    if restore is not None:
        restore()


# ---------------------------------------------------------------------------- public: weights


def save_weights(model, filepath, overwrite=True):
    """Write the weights (and the optimizer state) to ``*.weights.h5`` (h5py) or ``*.weights.npz``.

    Raises:
        ValueError: another extension, or the file exists and ``overwrite`` is False.
        ImportError: ``.weights.h5`` without h5py.
    """
    filepath = os.fspath(filepath)
    if not (filepath.endswith(".weights.h5") or filepath.endswith(".weights.npz")):
        raise ValueError("The filename must end in `.weights.h5` (or `.weights.npz`, pyminidl's format without "
                         f"h5py). Received: filepath={filepath}")
    if not overwrite and os.path.exists(filepath):
        raise ValueError(f"{filepath!r} exists and overwrite=False.")
    arrays, groups = _collect(model)
    if filepath.endswith(".h5") and _h5py() is None:
        raise ImportError("Saving .weights.h5 needs h5py (`pip install h5py`); or use a .weights.npz filepath.")
    with atomic_write(filepath) as f:
        _write_h5(f, arrays, groups) if filepath.endswith(".h5") else _write_npz(f, arrays)


def load_weights(model, filepath, skip_mismatch=False):
    """Read weights written by ``save_weights`` (or by Keras 3) into ``model``; all or nothing.

    Raises:
        ValueError: a file from a different architecture (naming the first mismatching layer and both
            shapes), a malformed file, or ``skip_mismatch=True`` (not supported).
    """
    if skip_mismatch:
        raise ValueError("load_weights(skip_mismatch=True) is not supported by pyminidl.")
    filepath = os.fspath(filepath)
    if filepath.endswith(".keras"):
        with _open_archive(filepath) as archive:
            arrays = _archive_arrays(archive, filepath)
    else:
        arrays = _read_weights_file(filepath)
    _ensure_built(model, filepath)
    _load_arrays_into(model, arrays, filepath, with_optimizer=getattr(model, "optimizer", None) is not None)


def _ensure_built(model, source):
    if not model.built:
        raise ValueError(f"Cannot load weights from {source!r} into model '{model.name}': it is not built. Build "
                         "it first (give it an Input, or call it on data).")


# ---------------------------------------------------------------------------- public: .keras archives


def save_model(model, filepath, overwrite=True, extra_members=None):
    """Write ``model`` to a ``.keras`` zip (config, compile settings, weights, optimizer state).

    Args:
        model: a built model.
        filepath: a path ending in ``.keras``.
        overwrite: replace an existing file (atomically).
        extra_members: ``{name: bytes}`` also stored (BackupAndRestore keeps its training state there).

    Raises:
        ValueError: another extension, or the file exists and ``overwrite`` is False.
    """
    filepath = os.fspath(filepath)
    if not filepath.endswith(".keras"):
        raise ValueError("The filename must end in `.keras` (use `save_weights` for `.weights.h5`). "
                         f"Received: filepath={filepath}")
    if not overwrite and os.path.exists(filepath):
        raise ValueError(f"{filepath!r} exists and overwrite=False.")
    config = json.dumps(serialization_lib.serialize_keras_object(model))
    metadata = json.dumps({"keras_version": "3.0.0", "pyminidl_version": _version(),
                           "date_saved": datetime.datetime.now().strftime("%Y-%m-%d@%H:%M:%S")})
    arrays, groups = _collect(model)
    weights = io.BytesIO()
    member = H5_MEMBER if _h5py() is not None else NPZ_MEMBER
    _write_h5(weights, arrays, groups) if member == H5_MEMBER else _write_npz(weights, arrays)
    with atomic_write(filepath) as f:
        with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            archive.writestr(METADATA_NAME, metadata)
            archive.writestr(CONFIG_NAME, config)
            # float weights barely deflate: stored, they save (and load) several times faster
            archive.writestr(member, weights.getvalue(), compress_type=zipfile.ZIP_STORED)
            for name, data in (extra_members or {}).items():
                archive.writestr(name, data)


def _open_archive(filepath):
    if not os.path.isfile(filepath):
        raise FileNotFoundError(f"No such file: {filepath!r}")
    if not zipfile.is_zipfile(filepath):
        raise ValueError(f"{filepath!r} is not a .keras archive (not a zip file: truncated, tampered or another "
                         "format).")
    try:
        return zipfile.ZipFile(filepath, "r")
    except (zipfile.BadZipFile, OSError) as e:
        raise ValueError(f"{filepath!r} is not a readable .keras archive ({e}).") from e


def read_member(archive, name, source, limit):
    """The bytes of member ``name``, its declared size bounded by ``limit`` and its CRC checked."""
    try:
        info = archive.getinfo(name)
    except KeyError:
        raise ValueError(f"{source!r} has no {name!r}: not a .keras archive, or a truncated one.") from None
    if info.file_size > limit or (info.compress_size and info.file_size > _MAX_RATIO * max(info.compress_size, 1 << 16)):
        raise ValueError(f"{source!r}: member {name!r} declares {info.file_size} bytes, more than allowed "
                         f"({limit}); refusing to read it.")
    try:
        with archive.open(info) as f:
            data = f.read(limit + 1)
    except (zipfile.BadZipFile, OSError, EOFError, ValueError, zlib.error) as e:  # CRC mismatch, truncation
        raise ValueError(f"{source!r}: member {name!r} is corrupt ({e}).") from e
    if len(data) > limit:
        raise ValueError(f"{source!r}: member {name!r} is larger than allowed ({limit} bytes).")
    return data


def read_json_member(archive, name, source):
    try:
        return json.loads(read_member(archive, name, source, MAX_JSON_BYTES).decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise ValueError(f"{source!r}: {name} is not valid JSON ({e}).") from e


def _archive_arrays(archive, source):
    names = set(archive.namelist())
    if H5_MEMBER in names:
        if _h5py() is None:
            raise ImportError(f"{source!r} holds its weights as HDF5: reading them needs h5py (`pip install h5py`).")
        data = read_member(archive, H5_MEMBER, source, MAX_WEIGHTS_BYTES)
        try:
            return _read_h5(io.BytesIO(data), source)
        except OSError as e:
            raise ValueError(f"{source!r}: {H5_MEMBER} is not a readable HDF5 file ({e}).") from e
    if NPZ_MEMBER in names:
        return _read_npz(io.BytesIO(read_member(archive, NPZ_MEMBER, source, MAX_WEIGHTS_BYTES)), source)
    raise ValueError(f"{source!r} holds no weights ({H5_MEMBER} or {NPZ_MEMBER}).")


def load_model(filepath, custom_objects=None, compile=True, safe_mode=True):
    """The model stored in a ``.keras`` file (pyminidl's or Keras 3's), weights and optimizer state included.

    Args:
        filepath: a ``.keras`` path.
        custom_objects: ``{name: class or function}`` for custom layers, losses, ... in the config.
        compile: restore the compile settings (and the optimizer state) saved with the model.
        safe_mode: accepted for Keras compatibility: pyminidl never deserializes code.

    Returns:
        The model, built and, with ``compile=True``, compiled.

    Raises:
        ValueError: not a ``.keras`` zip, a truncated or tampered one, or a config naming a class that is
            neither built in, registered nor in ``custom_objects``.

    Example:
        >>> model = pyminidl.models.load_model("best-model.keras")
    """
    filepath = os.fspath(filepath)
    if filepath.endswith((".h5", ".hdf5")) and not filepath.endswith(".weights.h5"):
        raise ValueError(f"{filepath!r}: the legacy Keras 2 HDF5 model format is not supported; save as .keras.")
    with _open_archive(filepath) as archive:
        config = read_json_member(archive, CONFIG_NAME, filepath)
        read_json_member(archive, METADATA_NAME, filepath)
        arrays = _archive_arrays(archive, filepath)
    model = model_from_config(config, custom_objects, compile)
    _ensure_built(model, filepath)
    _load_arrays_into(model, arrays, filepath, with_optimizer=compile)
    return model


def restore_training_state(model, filepath, member):
    """Load the weights and optimizer state of the ``.keras`` file into ``model`` and return the JSON
    of its extra ``member`` (what ``save_model(extra_members=...)`` stored); all or nothing."""
    with _open_archive(filepath) as archive:
        state = read_json_member(archive, member, filepath)
        arrays = _archive_arrays(archive, filepath)
    _ensure_built(model, filepath)
    _load_arrays_into(model, arrays, filepath, with_optimizer=True)
    return state


def model_from_config(config, custom_objects=None, compile=False):
    """The (untrained) model a serialized config describes; its compile settings only when ``compile``.

    Keeps pyminidl's global random state as it was: the weights drawn while building are overwritten
    by a load, and a resumed training must see the same random stream as an uninterrupted one.
    """
    if not isinstance(config, dict):
        raise ValueError(f"A model config must be a JSON object. Received: {type(config).__name__}")
    if not compile:
        config = {k: v for k, v in config.items() if k != "compile_config"}
    state = pmd_random.get_state()
    try:
        with CustomObjectScope(custom_objects or {}):
            return serialization_lib.deserialize_keras_object(config, custom_objects,
                                                              serialization_lib.family("layers"))
    finally:
        pmd_random.set_state(state)


__all__ = ["load_model", "load_weights", "model_from_config", "save_model", "save_weights"]
