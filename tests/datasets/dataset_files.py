"""Writers of small files in the published datasets' real formats, for the tests."""

import gzip
import hashlib
import io
import os
import pathlib
import pickle
import struct
import tarfile

import numpy as np


def sha256(path):
    return hashlib.sha256(pathlib.Path(path).read_bytes()).hexdigest()


def md5(path):
    return hashlib.md5(pathlib.Path(path).read_bytes()).hexdigest()


def write_idx_gz(path, array):
    """LeCun's IDX format, gzipped: 0, 0, type 0x08 (ubyte), ndim, big-endian sizes, data."""
    array = np.ascontiguousarray(array, dtype=np.uint8)
    header = bytes([0, 0, 0x08, array.ndim]) + b"".join(struct.pack(">I", n) for n in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


def cifar_batch_bytes(data, labels, label_key="labels", numpy_core=True, extra=None):
    """A CIFAR batch pickle: protocol 2 with bytes keys, as the published Python 2 files.

    ``numpy_core`` spells the array globals ``numpy.core.multiarray`` as NumPy 1 (and the
    published files) do; NumPy 2 writes ``numpy._core``.
    """
    batch = {b"batch_label": b"testing batch", label_key.encode(): list(labels), b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
    batch.update(extra or {})
    raw = pickle.dumps(batch, protocol=2)
    return raw.replace(b"numpy._core.multiarray", b"numpy.core.multiarray") if numpy_core else raw


def tar_gz(path, members):
    """members: {name: bytes}; written with a folder entry per top-level folder."""
    with tarfile.open(path, "w:gz") as tar:
        folders = sorted({name.split("/")[0] for name in members if "/" in name})
        for folder in folders:
            info = tarfile.TarInfo(folder)
            info.type, info.mode = tarfile.DIRTYPE, 0o755
            tar.addfile(info)
        for name, body in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(body)
            tar.addfile(info, io.BytesIO(body))


def cifar_pixels(n, seed):
    return np.random.default_rng(seed).integers(0, 256, size=(n, 3072), dtype=np.uint8)


def write_cifar10(path, n_per_batch=2):
    """The cifar-10-python.tar.gz layout: cifar-10-batches-py/data_batch_1..5, test_batch."""
    members, data, labels = {}, [], []
    for i in range(1, 7):
        name = f"data_batch_{i}" if i < 6 else "test_batch"
        x, y = cifar_pixels(n_per_batch, i), [(i + k) % 10 for k in range(n_per_batch)]
        members[f"cifar-10-batches-py/{name}"] = cifar_batch_bytes(x, y, numpy_core=i % 2 == 1)
        data.append(x)
        labels.append(y)
    members["cifar-10-batches-py/batches.meta"] = pickle.dumps({b"label_names": [b"airplane"]}, protocol=2)
    tar_gz(path, members)
    return data, labels


def write_cifar100(path, n_train=3, n_test=2):
    members, out = {}, {}
    for split, n, seed in (("train", n_train, 11), ("test", n_test, 12)):
        x = cifar_pixels(n, seed)
        fine, coarse = [(seed * 7 + k) % 100 for k in range(n)], [(seed + k) % 20 for k in range(n)]
        members[f"cifar-100-python/{split}"] = cifar_batch_bytes(x, fine, "fine_labels", extra={b"coarse_labels": coarse})
        out[split] = (x, fine, coarse)
    tar_gz(path, members)
    return out


def object_array(seqs):
    out = np.empty(len(seqs), dtype=object)
    for i, seq in enumerate(seqs):
        out[i] = list(seq)
    return out


def write_npz(path, **arrays):
    """np.savez, as the published IMDB/Reuters files were written (object arrays pickled)."""
    np.savez(path, **arrays)
    return os.fspath(path)
