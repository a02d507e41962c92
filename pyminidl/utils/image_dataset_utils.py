"""``image_dataset_from_directory``: a folder of class subfolders of images as a batched Dataset (Keras 3).

Example:
    >>> train, val = image_dataset_from_directory("flowers/", image_size=(64, 64), validation_split=0.2,
    ...                                           subset="both", seed=1)
    >>> train.class_names
    ['daisy', 'rose', 'tulip']
"""

import os

import numpy as np

from pyminidl import random as pmd_random
from pyminidl.data import Dataset
from pyminidl.backend import _image_ops as imops
from pyminidl.layers.preprocessing import resize_images
from pyminidl.utils import image_utils

ALLOWLIST_FORMATS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")
_WHO = "image_dataset_from_directory"


def _check_arguments(labels, label_mode, color_mode, interpolation, validation_split, subset,
                     crop_to_aspect_ratio, pad_to_aspect_ratio):
    if labels not in ("inferred", None) and not isinstance(labels, (list, tuple)):
        raise ValueError("`labels` argument should be a list/tuple of integer labels, of the same size as the "
                         f"number of image files in the target directory. Received: labels={labels!r}")
    if label_mode not in ("int", "categorical", "binary", None):
        raise ValueError('`label_mode` argument must be one of "int", "categorical", "binary", or None. '
                         f"Received: label_mode={label_mode!r}")
    if color_mode not in ("rgb", "rgba", "grayscale"):
        raise ValueError('`color_mode` must be one of {"rgb", "rgba", "grayscale"}. '
                         f"Received: color_mode={color_mode!r}")
    if interpolation not in imops.RESIZE_INTERPOLATIONS:
        raise ValueError(f"{_WHO}: `interpolation` must be one of {imops.RESIZE_INTERPOLATIONS}. "
                         f"Received: interpolation={interpolation!r}")
    if validation_split is not None and not 0 < validation_split < 1:
        raise ValueError(f"`validation_split` must be between 0 and 1, received: {validation_split}")
    if (validation_split is None) != (subset is None):
        raise ValueError("If `subset` is set, `validation_split` must be set, and inversely. "
                         f"Received: validation_split={validation_split!r}, subset={subset!r}")
    if subset not in ("training", "validation", "both", None):
        raise ValueError(f'`subset` must be either "training", "validation" or "both", received: {subset!r}')
    if crop_to_aspect_ratio and pad_to_aspect_ratio:
        raise ValueError("Only one of `pad_to_aspect_ratio` & `crop_to_aspect_ratio` can be `True`.")


def _image_files(folder, follow_links):
    """Image files under ``folder`` (recursively), sorted as Keras lists them."""
    out = []
    for root, dirs, files in os.walk(folder, followlinks=follow_links):
        dirs.sort()
        for name in sorted(files):
            if name.lower().endswith(ALLOWLIST_FORMATS):
                out.append(os.path.join(root, name))
    return out


def index_directory(directory, labels, class_names=None, follow_links=False):
    """(file_paths, labels, class_names) of the images under ``directory``.

    With labels="inferred" each subfolder is a class (sorted names, or the order of ``class_names``);
    otherwise every image under ``directory`` is listed, in sorted order.

    Raises:
        ValueError: no such directory, no class subfolders, class_names that do not match the
            subfolders, or a labels list of the wrong length.
    """
    if not os.path.isdir(directory):
        raise ValueError(f"{_WHO}: `directory` is not a directory: {os.fspath(directory)!r}")
    if labels != "inferred":
        paths = _image_files(directory, follow_links)
        if labels is None:
            return paths, None, None
        if len(labels) != len(paths):
            raise ValueError("Expected the lengths of `labels` to match the number of files in the target "
                             f"directory. len(labels) is {len(labels)} while we found {len(paths)} files in "
                             f"directory {directory}.")
        return paths, np.asarray(labels), class_names
    subdirs = sorted(d for d in os.listdir(directory) if os.path.isdir(os.path.join(directory, d)))
    if not subdirs:
        found = len(_image_files(directory, follow_links))
        raise ValueError(f"{_WHO}: directory {os.fspath(directory)!r} has no class subfolders (labels='inferred' "
                         f"takes one subfolder per class); it holds {found} image files directly. Put each "
                         "class's images in a subfolder, or pass labels=None to load them unlabelled.")
    if class_names is not None:
        if sorted(class_names) != subdirs:
            raise ValueError("The `class_names` passed did not match the names of the subdirectories of the "
                             f"target directory. Expected: {subdirs} (or a permutation thereof), but received: "
                             f"class_names={list(class_names)}")
        subdirs = list(class_names)
    paths, ids = [], []
    for i, name in enumerate(subdirs):
        files = _image_files(os.path.join(directory, name), follow_links)
        paths.extend(files)
        ids.extend([i] * len(files))
    return paths, np.asarray(ids, dtype=np.int32), list(subdirs)


def _split(paths, labels, validation_split, subset):
    """Keras's split: the last ``validation_split`` fraction is the validation subset."""
    n_val = int(validation_split * len(paths))
    if subset == "training":
        return paths[:len(paths) - n_val], None if labels is None else labels[:len(paths) - n_val]
    return paths[len(paths) - n_val:], None if labels is None else labels[len(paths) - n_val:]


def _encode_labels(labels, label_mode, num_classes):
    if label_mode == "binary":
        return labels.astype(np.float32).reshape(-1, 1)
    if label_mode == "categorical":
        return np.eye(num_classes, dtype=np.float32)[labels]
    return labels.astype(np.int32)


def load_image(path, image_size, color_mode, interpolation="bilinear", crop_to_aspect_ratio=False,
               pad_to_aspect_ratio=False):
    """One image file as a float32 (height, width, channels) array of ``image_size`` (values in [0, 255])."""
    x = image_utils.convert_color(image_utils._decode(path), color_mode).astype(np.float32)
    return resize_images(np, x[None], image_size, interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio)[0]


def _make_dataset(paths, labels, label_mode, num_classes, loader, batch_size, shuffle, seed):
    """A Dataset of decoded images (and labels), shuffled each epoch with a buffer of 8 batches as Keras."""
    paths = np.asarray(paths, dtype=str)
    if label_mode is not None and labels is not None:
        ds = Dataset.from_tensor_slices((paths, _encode_labels(labels, label_mode, num_classes)))
        step = (lambda p, y: (loader(str(p)), y))
    else:
        ds = Dataset.from_tensor_slices(paths)
        step = (lambda p: loader(str(p)))
    if shuffle:
        ds = ds.shuffle(buffer_size=(batch_size or 1) * 8, seed=seed)
    ds = ds.map(step)
    if batch_size is not None:
        ds = ds.batch(batch_size)
    return ds


def image_dataset_from_directory(directory, labels="inferred", label_mode="int", class_names=None,
                                 color_mode="rgb", batch_size=32, image_size=(256, 256), shuffle=True, seed=None,
                                 validation_split=None, subset=None, interpolation="bilinear", follow_links=False,
                                 crop_to_aspect_ratio=False, pad_to_aspect_ratio=False, data_format=None,
                                 verbose=True):
    """A Dataset of images (and labels) from a folder with one subfolder per class (Keras 3).

    Images are decoded when iterated (each epoch), converted to ``color_mode``, resized to
    ``image_size`` and yielded as float32 batches (batch, height, width, channels) in [0, 255].

    Args:
        directory: the folder; with labels="inferred" it holds one subfolder of images per class.
        labels: "inferred", None (no labels) or a list of ints, one per image in sorted path order.
        label_mode: "int" (int32), "categorical" (one-hot float32), "binary" (float32 (batch, 1)) or None.
        class_names: the subfolder names in the order of the class ids (default: sorted).
        color_mode: "grayscale", "rgb" or "rgba" (1, 3 or 4 channels).
        batch_size: images per batch; None yields single images.
        image_size: (height, width) to resize to.
        shuffle: shuffle the files (once, with ``seed``) and the elements each epoch.
        seed: for the shuffles and the split.
        validation_split: fraction of the files held out for validation.
        subset: "training", "validation" or "both" (returns the two datasets).
        interpolation: "bilinear", "nearest" or "area".
        follow_links: follow symbolic links to subfolders.
        crop_to_aspect_ratio: crop the largest centred window of the target aspect ratio before resizing.
        pad_to_aspect_ratio: pad with zeros to the target aspect ratio before resizing instead.
        data_format: "channels_last" (the only layout produced; "channels_first" moves channels first).
        verbose: print how many files and classes were found.

    Returns:
        A Dataset with ``class_names`` and ``file_paths`` attributes; a list of two for subset="both".

    Raises:
        ValueError: a missing directory, no class subfolders, no images, a bad argument (each message
            names the value received).
        ImportError: Pillow is not installed (``pip install "pyminidl[image]"``).

    Example:
        >>> ds = image_dataset_from_directory("shapes/", image_size=(32, 32), batch_size=16, seed=0)
        >>> ds.class_names
        ['circle', 'square']
    """
    _check_arguments(labels, label_mode, color_mode, interpolation, validation_split, subset,
                     crop_to_aspect_ratio, pad_to_aspect_ratio)
    image_size = imops.check_size(image_size, _WHO, "image_size")
    data_format = data_format or "channels_last"
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{_WHO}: unknown data_format: {data_format!r}")
    if labels is None:
        label_mode = None  # Keras: no labels, images only
    image_utils._pil_image()  # fail early, naming the extra, before listing any file
    paths, ids, names = index_directory(directory, labels, class_names, follow_links)
    if not paths:
        raise ValueError(f"No images found in directory {directory}. Allowed formats: {ALLOWLIST_FORMATS}")
    num_classes = len(names) if names else (int(ids.max()) + 1 if ids is not None else 0)
    if label_mode == "binary" and num_classes != 2:
        raise ValueError('When passing `label_mode="binary"`, there must be exactly 2 class_names. '
                         f"Received: class_names={names}")
    if verbose:
        print(f"Found {len(paths)} files" + (f" belonging to {num_classes} classes." if names else "."))
    if shuffle and seed is None:
        seed = int(pmd_random.global_rng().integers(1_000_000))
    if shuffle:  # one permutation of the files before the split, so the subsets are fixed by the seed
        order = np.random.RandomState(seed).permutation(len(paths))
        paths = [paths[i] for i in order]
        ids = None if ids is None else ids[order]

    def loader(path):
        x = load_image(path, image_size, color_mode, interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio)
        return x.transpose(2, 0, 1) if data_format == "channels_first" else x

    def build(subset_name, do_shuffle):
        p, y = (paths, ids) if subset_name is None else _split(paths, ids, validation_split, subset_name)
        if verbose and subset_name is not None:
            print(f"Using {len(p)} files for {subset_name}.")
        ds = _make_dataset(p, y, label_mode, num_classes, loader, batch_size, do_shuffle, seed)
        ds.class_names, ds.file_paths = names, list(p)
        return ds

    if subset == "both":
        return [build("training", shuffle), build("validation", False)]
    return build(subset, shuffle)
