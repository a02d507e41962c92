"""mnist, fashion_mnist, cifar10, cifar100 on small files in the real formats."""

import os
import pickle

import numpy as np
import pytest

from dataset_files import cifar_batch_bytes, cifar_pixels, sha256, tar_gz, write_cifar10, write_cifar100, write_idx_gz
from pyminidl.datasets import cifar10, cifar100, fashion_mnist, mnist
from pyminidl.utils.file_utils import DownloadError


def _mnist_npz(path, rng):
    arrays = {
        "x_train": rng.integers(0, 256, (5, 28, 28), dtype=np.uint8), "y_train": rng.integers(0, 10, 5, dtype=np.uint8),
        "x_test": rng.integers(0, 256, (3, 28, 28), dtype=np.uint8), "y_test": rng.integers(0, 10, 3, dtype=np.uint8),
    }
    np.savez(path, **arrays)
    return arrays


def test_mnist_over_http(home, origin_dir, http_origin, monkeypatch, rng):
    arrays = _mnist_npz(origin_dir / "mnist.npz", rng)
    monkeypatch.setattr(mnist, "ORIGIN", http_origin.url("mnist.npz"))
    monkeypatch.setattr(mnist, "FILE_HASH", sha256(origin_dir / "mnist.npz"))
    (x_train, y_train), (x_test, y_test) = mnist.load_data()
    for got, name in ((x_train, "x_train"), (y_train, "y_train"), (x_test, "x_test"), (y_test, "y_test")):
        assert got.dtype == np.uint8 and np.array_equal(got, arrays[name])
    assert x_train.shape == (5, 28, 28) and (home / "datasets" / "mnist.npz").exists()


def test_mnist_offline_from_a_file_placed_in_pyminidl_home(home, monkeypatch, closed_port_url, rng):
    (home / "datasets").mkdir(parents=True)
    arrays = _mnist_npz(home / "datasets" / "mnist.npz", rng)
    monkeypatch.setattr(mnist, "ORIGIN", closed_port_url("mnist.npz"))
    monkeypatch.setattr(mnist, "FILE_HASH", sha256(home / "datasets" / "mnist.npz"))
    (x_train, _), _ = mnist.load_data()
    assert np.array_equal(x_train, arrays["x_train"])


def test_mnist_offline_and_absent_names_the_place_for_the_file(home, monkeypatch, closed_port_url):
    monkeypatch.setattr(mnist, "ORIGIN", closed_port_url("mnist.npz"))
    with pytest.raises(DownloadError, match=str(home / "datasets" / "mnist.npz")):
        mnist.load_data()


def test_mnist_with_the_published_hash_refuses_another_file(home, origin_dir, monkeypatch, rng):
    _mnist_npz(origin_dir / "mnist.npz", rng)
    monkeypatch.setattr(mnist, "ORIGIN", (origin_dir / "mnist.npz").as_uri())  # FILE_HASH stays Keras's
    with pytest.raises(ValueError, match=mnist.FILE_HASH):
        mnist.load_data()
    assert os.listdir(home / "datasets") == []


def _fashion_files(origin_dir, rng):
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (4, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte.gz": np.array([9, 0, 3, 9], dtype=np.uint8),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (2, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte.gz": np.array([1, 2], dtype=np.uint8),
    }
    for name, array in arrays.items():
        write_idx_gz(origin_dir / name, array)
    return arrays


def _serve_fashion(monkeypatch, origin_dir, folder_url):
    monkeypatch.setattr(fashion_mnist, "ORIGIN_FOLDER", folder_url)
    monkeypatch.setattr(fashion_mnist, "FILE_HASHES", {n: sha256(origin_dir / n) for n in fashion_mnist.FILE_HASHES})


def test_fashion_mnist_idx_gzip_over_http(home, origin_dir, http_origin, monkeypatch, rng):
    arrays = _fashion_files(origin_dir, rng)
    _serve_fashion(monkeypatch, origin_dir, http_origin.url(""))
    (x_train, y_train), (x_test, y_test) = fashion_mnist.load_data()
    assert np.array_equal(x_train, arrays["train-images-idx3-ubyte.gz"]) and x_train.dtype == np.uint8
    assert np.array_equal(y_train, [9, 0, 3, 9]) and np.array_equal(y_test, [1, 2])
    assert x_test.shape == (2, 28, 28)
    assert sorted(os.listdir(home / "datasets" / "fashion-mnist")) == sorted(fashion_mnist.FILE_HASHES)
    assert fashion_mnist.CLASS_NAMES[y_train[0]] == "Ankle boot"


def test_fashion_mnist_malformed_idx_is_a_clear_error(home, origin_dir, monkeypatch, rng):
    _fashion_files(origin_dir, rng)
    write_idx_gz(origin_dir / "t10k-images-idx3-ubyte.gz", np.zeros((3, 28, 28)))  # 3 images, 2 labels
    _serve_fashion(monkeypatch, origin_dir, origin_dir.as_uri() + "/")
    with pytest.raises(ValueError, match=r"images \(3, 28, 28\), labels \(2,\)"):
        fashion_mnist.load_data()
    with open(origin_dir / "bad.gz", "wb") as f:
        f.write(b"\x1f\x8b")  # a gzip magic and nothing else
    with pytest.raises(ValueError, match="not a readable gzip file"):
        fashion_mnist.read_idx(origin_dir / "bad.gz")


def test_read_idx_checks_header_and_length(tmp_path):
    import gzip

    path = tmp_path / "x.gz"
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x08, 2, 0, 0, 0, 2, 0, 0, 0, 3]) + bytes(range(5)))  # 5 of 6 bytes
    with pytest.raises(ValueError, match="does not match its header"):
        fashion_mnist.read_idx(path)
    with gzip.open(path, "wb") as f:
        f.write(bytes([0, 0, 0x0D, 1, 0, 0, 0, 1]) + b"\0\0\0\0")  # type 0x0D: float, not ubyte
    with pytest.raises(ValueError, match="not an IDX file of unsigned bytes"):
        fashion_mnist.read_idx(path)


def _expected_nhwc(rows):
    """From the definition: each row is 1024 red, 1024 green, 1024 blue values, row-major."""
    n = len(rows)
    out = np.zeros((n, 32, 32, 3), dtype=np.uint8)
    for k in range(n):
        for c in range(3):
            for i in range(32):
                out[k, i, :, c] = rows[k][c * 1024 + i * 32: c * 1024 + i * 32 + 32]
    return out


def test_cifar10_batches_in_a_tar_gz(home, origin_dir, http_origin, monkeypatch):
    data, labels = write_cifar10(origin_dir / "cifar-10-python.tar.gz", n_per_batch=2)
    monkeypatch.setattr(cifar10, "ORIGIN", http_origin.url("cifar-10-python.tar.gz"))
    monkeypatch.setattr(cifar10, "FILE_HASH", sha256(origin_dir / "cifar-10-python.tar.gz"))
    (x_train, y_train), (x_test, y_test) = cifar10.load_data()
    assert x_train.shape == (10, 32, 32, 3) and x_train.dtype == np.uint8 and x_train.flags.c_contiguous
    assert y_train.shape == (10, 1) and y_train.dtype == np.uint8
    assert np.array_equal(x_train, _expected_nhwc(np.concatenate(data[:5])))
    assert np.array_equal(y_train[:, 0], sum(labels[:5], []))
    assert np.array_equal(x_test, _expected_nhwc(data[5])) and np.array_equal(y_test[:, 0], labels[5])
    cifar10.load_data()  # second call: cached archive and folder, no new request
    assert len(http_origin.requests) == 1
    assert (home / "datasets" / "cifar-10-batches-py-target" / "cifar-10-batches-py" / "test_batch").exists()


@pytest.mark.parametrize("label_mode", ["fine", "coarse"])
def test_cifar100_label_modes(home, origin_dir, monkeypatch, label_mode):
    out = write_cifar100(origin_dir / "cifar-100-python.tar.gz")
    monkeypatch.setattr(cifar100, "ORIGIN", (origin_dir / "cifar-100-python.tar.gz").as_uri())
    monkeypatch.setattr(cifar100, "FILE_HASH", sha256(origin_dir / "cifar-100-python.tar.gz"))
    (x_train, y_train), (x_test, y_test) = cifar100.load_data(label_mode=label_mode)
    column = 1 if label_mode == "fine" else 2
    assert np.array_equal(x_train, _expected_nhwc(out["train"][0])) and x_test.shape == (2, 32, 32, 3)
    assert y_train.shape == (3, 1) and y_train.dtype == np.int64
    assert np.array_equal(y_train[:, 0], out["train"][column]) and np.array_equal(y_test[:, 0], out["test"][column])


def test_cifar100_bad_label_mode():
    with pytest.raises(ValueError, match="label_mode=medium"):
        cifar100.load_data(label_mode="medium")


class _Marker:
    """Unpickled by a plain pickle.load, this would create the marker folder."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (os.mkdir, (self.path,))


def test_cifar_batch_with_code_executing_pickle_is_refused(home, origin_dir, monkeypatch, tmp_path):
    marker = str(tmp_path / "pwned")
    evil = cifar_batch_bytes(cifar_pixels(2, 0), [0, 1], extra={b"payload": _Marker(marker)})
    members = {f"cifar-10-batches-py/data_batch_{i}": evil for i in range(1, 6)}
    members["cifar-10-batches-py/test_batch"] = evil
    tar_gz(origin_dir / "c.tar.gz", members)
    monkeypatch.setattr(cifar10, "ORIGIN", (origin_dir / "c.tar.gz").as_uri())
    monkeypatch.setattr(cifar10, "FILE_HASH", sha256(origin_dir / "c.tar.gz"))
    with pytest.raises(ValueError, match="posix.mkdir|os.mkdir|nt.mkdir"):
        cifar10.load_data()
    assert not os.path.exists(marker)


def test_cifar_batch_with_a_wrong_layout_is_a_clear_error(tmp_path):
    from pyminidl.datasets._cifar import load_batch

    path = tmp_path / "batch"
    path.write_bytes(cifar_batch_bytes(np.zeros((2, 100), np.uint8), [0, 1]))
    with pytest.raises(ValueError, match=r"shape \(N, 3072\)"):
        load_batch(path)
    path.write_bytes(cifar_batch_bytes(cifar_pixels(2, 0), [0]))
    with pytest.raises(ValueError, match="list of 2 ints"):
        load_batch(path)
    path.write_bytes(pickle.dumps([1, 2]))
    with pytest.raises(ValueError, match="not a dict"):
        load_batch(path)


def test_cifar10_offline_from_an_archive_placed_by_hand(home, monkeypatch, closed_port_url):
    placed = home / "datasets" / "cifar-10-batches-py-target_archive"  # the path the README names
    placed.parent.mkdir(parents=True)
    data, labels = write_cifar10(placed, n_per_batch=1)
    monkeypatch.setattr(cifar10, "ORIGIN", closed_port_url("cifar-10-python.tar.gz"))
    monkeypatch.setattr(cifar10, "FILE_HASH", sha256(placed))
    (x_train, y_train), (x_test, _) = cifar10.load_data()
    assert x_train.shape == (5, 32, 32, 3) and np.array_equal(x_test, _expected_nhwc(data[5]))
