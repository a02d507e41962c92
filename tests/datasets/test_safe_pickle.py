"""The restricted unpickler: NumPy arrays and plain data load; anything callable is refused."""

import io
import os
import pickle
import subprocess

import numpy as np
import pytest

from pyminidl.datasets._safe_pickle import load_npz, safe_load


class _Reduce:
    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


SAMPLE = {
    b"data": np.arange(24, dtype=np.uint8).reshape(2, 12),
    "floats": np.linspace(0, 1, 6).reshape(2, 3, order="F"),
    "big_endian": np.arange(6, dtype=">i4"),
    "strings": np.array(["ab", "c"]),
    "bytes": np.array([b"xy", b""]),
    "bools": np.array([True, False]),
    "empty": np.zeros((0, 3), dtype=np.float32),
    "ragged": np.array([[1, 2, 3], [4]], dtype=object),
    "plain": [1, 2.5, "s", b"b", b"", (3, None), {"k": [True]}],
}


def _assert_same(got, want):
    assert type(got) is type(want)
    if isinstance(want, np.ndarray):
        assert got.dtype == want.dtype and got.shape == want.shape
        assert all(np.array_equal(a, b) for a, b in zip(got.ravel(), want.ravel()))
    elif isinstance(want, dict):
        assert got.keys() == want.keys()
        for k in want:
            _assert_same(got[k], want[k])
    else:
        assert got == want


@pytest.mark.parametrize("protocol", [2, 3, 4, 5])
def test_arrays_and_plain_data_round_trip(protocol):
    _assert_same(safe_load(io.BytesIO(pickle.dumps(SAMPLE, protocol=protocol))), SAMPLE)


def test_numpy1_spelling_of_the_array_globals_loads():
    raw = pickle.dumps(SAMPLE, protocol=2).replace(b"numpy._core.multiarray", b"numpy.core.multiarray")
    assert b"numpy.core.multiarray" in raw
    _assert_same(safe_load(io.BytesIO(raw)), SAMPLE)


@pytest.mark.parametrize("gadget", [
    lambda marker: _Reduce(os.mkdir, marker),
    lambda marker: _Reduce(os.system, f"mkdir {marker}"),
    lambda marker: _Reduce(eval, f"__import__('os').mkdir({marker!r})"),
    lambda marker: _Reduce(subprocess.call, ["mkdir", marker]),
    lambda marker: _Reduce(getattr, marker, "upper"),
])
def test_code_executing_objects_are_refused(tmp_path, gadget):
    marker = str(tmp_path / "pwned")
    raw = pickle.dumps({b"data": np.zeros(3), b"labels": [gadget(marker)]}, protocol=2)
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        safe_load(io.BytesIO(raw), encoding="bytes")
    assert not os.path.exists(marker)


def test_ndarray_cannot_be_called_to_forge_object_pointers():
    # numpy.ndarray(shape, "O", buffer=raw) would read raw bytes as PyObject pointers.
    forged = b"cnumpy\nndarray\n((I2\ntS'O8'\nC\x10" + b"A" * 16 + b"tR."
    with pytest.raises(pickle.UnpicklingError):
        safe_load(io.BytesIO(forged))


def test_structured_dtypes_and_short_buffers_are_refused():
    with pytest.raises(pickle.UnpicklingError, match="structured"):
        safe_load(io.BytesIO(pickle.dumps(np.zeros(2, dtype=[("a", "f4"), ("b", "O")]))))
    with pytest.raises(pickle.UnpicklingError, match="needs 32 bytes"):
        safe_load(io.BytesIO(pickle.dumps(_ShortArray())))


class _ShortArray:
    """Pickles as an int64 array of 4 elements that carries only 3 elements of data."""

    def __reduce__(self):
        reconstruct, args, _ = np.zeros(0).__reduce__()
        return reconstruct, args, (1, (4,), np.dtype(np.int64), False, np.arange(3, dtype=np.int64).tobytes())


def test_load_npz_reads_object_arrays_without_allow_pickle(tmp_path, monkeypatch):
    path = tmp_path / "ragged.npz"
    np.savez(path, x=SAMPLE["ragged"], y=np.array([0, 1]))
    with pytest.raises(ValueError, match="allow_pickle"):
        np.load(path, allow_pickle=False)["x"]  # the file really holds a pickled object array
    monkeypatch.setattr(pickle, "load", None)  # no plain unpickling on the way
    monkeypatch.setattr(pickle, "loads", None)
    arrays = load_npz(path)
    assert arrays["x"].dtype == object and arrays["x"][0] == [1, 2, 3] and arrays["x"][1] == [4]
    assert np.array_equal(arrays["y"], [0, 1])


def test_load_npz_refuses_a_malicious_member(tmp_path):
    marker = str(tmp_path / "pwned")
    evil = np.empty(1, dtype=object)
    evil[0] = _Reduce(os.mkdir, marker)
    np.savez(tmp_path / "evil.npz", x=evil)
    with pytest.raises(pickle.UnpicklingError, match="Refusing"):
        load_npz(tmp_path / "evil.npz")
    assert not os.path.exists(marker)
