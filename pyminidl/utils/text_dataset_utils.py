"""text_dataset_from_directory: a folder of ``.txt`` files, one subfolder per class -> a Dataset of strings.

Example:
    >>> ds = text_dataset_from_directory("reviews/", batch_size=32, seed=0)
    >>> ds.class_names
    ['neg', 'pos']
"""

import os

import numpy as np

from pyminidl.data import Dataset

_LABEL_MODES = ("int", "categorical", "binary", None)


def _index_directory(directory, labels, class_names, follow_links):
    """(file paths, integer labels, class names) in Keras's order: classes sorted, files sorted per class."""
    subdirs = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if labels == "inferred":
        if class_names is not None:
            missing = sorted(set(class_names) - set(subdirs))
            if missing or sorted(class_names) != sorted(set(class_names)):
                raise ValueError(f"The `class_names` passed did not match the names of the subdirectories of the "
                                 f"target directory. Expected: {subdirs}, but received: {class_names}")
            subdirs = list(class_names)
        folders = [(i, os.path.join(directory, d)) for i, d in enumerate(subdirs)]
    else:
        subdirs, folders = [], [(0, directory)]
    paths, labels_out = [], []
    for label, folder in folders:
        found = []
        for root, _, files in os.walk(folder, followlinks=follow_links):
            found.extend(os.path.join(root, f) for f in files if f.lower().endswith(".txt"))
        found.sort()
        paths.extend(found)
        labels_out.extend([label] * len(found))
    return paths, np.asarray(labels_out, dtype=np.int32), subdirs


def _check_args(labels, label_mode, validation_split, subset, directory):
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the number "
                         f"of text files in the target directory. If you wish to infer the labels from the "
                         f"subdirectory names in the target directory, pass `labels=\"inferred\"`. Received: labels={labels!r}")
    if label_mode not in _LABEL_MODES:
        raise ValueError(f'`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode!r}")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if subset not in (None, "training", "validation", "both"):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset}')
    if (validation_split is None) != (subset is None):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely. "
                         f"Received: validation_split={validation_split}, subset={subset}")
    if not os.path.isdir(directory):
        raise ValueError(f"text_dataset_from_directory: `directory` is not a folder. Received: directory={directory!r}")


def _read(paths, max_length):
    texts = []
    for p in paths:
        with open(p, encoding="utf-8") as f:
            t = f.read()
        texts.append(t if max_length is None else t[:max_length])
    return np.array(texts, dtype=object) if texts else np.zeros(0, dtype=object)


def _make(paths, labels, label_mode, num_classes, batch_size, max_length, class_names):
    x = _read(paths, max_length)
    if label_mode is None:
        ds = Dataset.from_tensor_slices(x)
    else:
        if label_mode == "binary":
            y = labels.astype(np.float32).reshape(-1, 1)
        elif label_mode == "categorical":
            y = np.eye(num_classes, dtype=np.float32)[labels]
        else:
            y = labels
        ds = Dataset.from_tensor_slices((x, y))
    if batch_size is not None:
        ds = ds.batch(batch_size)
    ds.class_names = class_names
    ds.file_paths = list(paths)
    return ds


def _shuffle_and_split(paths, labels, shuffle, seed, validation_split):
    """Keras's order: one seeded shuffle of all files, then the last ``validation_split`` held out."""
    if seed is None:
        seed = int(np.random.randint(1e6))
    order = np.arange(len(paths))
    if shuffle:
        np.random.RandomState(seed).shuffle(order)
    paths, labels = [paths[i] for i in order], labels[order]
    if not validation_split:
        return {"all": (paths, labels)}
    cut = len(paths) - int(validation_split * len(paths))
    return {"training": (paths[:cut], labels[:cut]), "validation": (paths[cut:], labels[cut:])}


def text_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None, batch_size=32,
                                max_length=None, shuffle=True, seed=None, validation_split=None, subset=None,
                                follow_links=False, verbose=True):
    """A Dataset of (text, label) from ``directory/class_a/*.txt``, ``directory/class_b/*.txt``, ... (Keras's).

    Args:
        directory: the folder; with ``labels="inferred"`` each subfolder is a class (sorted names).
        labels: "inferred", None (texts only) or a list of integer labels, one per file in sorted path order.
        label_mode: "int" (int32), "categorical" (one-hot float32), "binary" (float32, shape (batch, 1)) or None.
        class_names: the subfolders to use, in this order (default: all, sorted).
        batch_size: None for unbatched elements.
        max_length: keep at most this many characters of each text.
        shuffle: shuffle the files once (seeded by ``seed``); False keeps the sorted order.
        seed: the shuffle and split seed.
        validation_split: fraction of files held out; needs ``subset``.
        subset: "training", "validation" or "both" (returns two datasets).
        follow_links: descend into symbolic links.
        verbose: print the number of files and classes found.

    Returns:
        a ``pyminidl.data.Dataset`` of strings (object arrays) and labels, with ``class_names`` and ``file_paths``.

    Raises:
        ValueError: bad arguments, no class folders, or ``labels`` of the wrong length.
    """
    _check_args(labels, label_mode, validation_split, subset, directory)
    paths, inferred, names = _index_directory(directory, labels, class_names, follow_links)
    if isinstance(labels, (list, tuple)):
        if len(labels) != len(paths):
            raise ValueError(f"Expected the lengths of `labels` to match the number of files in the target directory. "
                             f"len(labels) is {len(labels)} while we found {len(paths)} files in directory {directory}.")
        inferred, names = np.asarray(labels, dtype=np.int32), None
    elif labels is None:
        label_mode = None
    num_classes = int(inferred.max()) + 1 if len(inferred) and names is None else len(names or [])
    if verbose:
        print(f"Found {len(paths)} files belonging to {num_classes} classes.")
    if label_mode == "binary" and num_classes != 2:
        raise ValueError(f'When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={names}")
    splits = _shuffle_and_split(paths, inferred, shuffle, seed, validation_split)
    wanted = ["training", "validation"] if subset == "both" else [subset or "all"]
    out = []
    for key in wanted:
        p, lab = splits[key]
        if verbose and key != "all":
            print(f"Using {len(p)} files for {key}.")
        out.append(_make(p, lab, label_mode, num_classes, batch_size, max_length, names))
    return tuple(out) if subset == "both" else out[0]
