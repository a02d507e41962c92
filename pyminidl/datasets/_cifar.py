"""Reading CIFAR batch files (Python 2 pickles) without running code from them."""

import pickle

import numpy as np

from pyminidl.datasets._safe_pickle import safe_load


def load_batch(fpath, label_key="labels"):
    """One CIFAR batch as ``(data, labels)``: uint8 (N, 3, 32, 32) and a list of N ints.

    The pickle is read by ``safe_load`` (plain data and NumPy arrays only) and its layout
    is checked: a dict with ``data`` (N, 3072) uint8 and ``label_key`` a list of N ints.

    Example:
        >>> data, labels = load_batch("cifar-10-batches-py/data_batch_1")
        >>> data.shape
        (10000, 3, 32, 32)
    """
    with open(fpath, "rb") as f:
        try:
            batch = safe_load(f, encoding="bytes")
        except (pickle.UnpicklingError, EOFError) as e:
            raise ValueError(f"{fpath} is not a readable CIFAR batch: {e}") from e
    if not isinstance(batch, dict):
        raise ValueError(f"{fpath} is not a CIFAR batch: it holds a {type(batch).__name__}, not a dict.")
    batch = {k.decode("utf8") if isinstance(k, bytes) else k: v for k, v in batch.items()}
    data, labels = batch.get("data"), batch.get(label_key)
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        raise ValueError(f"{fpath}: 'data' must be a uint8 array of shape (N, 3072). Received: {getattr(data, 'shape', data)!r}")
    if not isinstance(labels, list) or len(labels) != len(data) or not all(type(v) is int for v in labels):
        raise ValueError(f"{fpath}: '{label_key}' must be a list of {len(data)} ints. Received: {type(labels).__name__}")
    return data.reshape(len(data), 3, 32, 32), labels
