"""Reading the pickled parts of published datasets without running code from them.

CIFAR batches are Python pickles, and the IMDB/Reuters ``.npz`` files hold ``dtype=object``
arrays (ragged lists of word indices), which ``.npy`` stores as a pickle stream. A plain
``pickle.load`` (or ``np.load(allow_pickle=True)``) would call any function the file
names, e.g. ``os.system``. ``SafeUnpickler`` resolves only the three globals that
rebuilding a NumPy array needs, and to inert records at that (see ``SafeUnpickler``);
plain containers, str/bytes, ints and floats need no global at all. Everything else is
refused with ``pickle.UnpicklingError``.
"""

import io
import pickle
import re
import zipfile

import numpy as np

_MAX_DEPTH = 64


class _NdarrayClass:
    """Stands for ``numpy.ndarray`` as an argument; calling it (``ndarray(shape, "O",
    buffer=...)`` would make object pointers from raw bytes) is impossible."""


class _DtypeStub:
    """``numpy.dtype(code, align, copy)`` recorded, turned into a real dtype after loading."""

    def __init__(self, code, align=False, copy=False):
        self.code, self.state = code, None

    def __setstate__(self, state):
        self.state = state


class _ArrayStub:
    """An array's pickled state, turned into a real array after loading."""

    state = None

    def __setstate__(self, state):
        self.state = state


def _reconstruct(subtype, shape, dtype_code):
    if not isinstance(subtype, _NdarrayClass):
        raise pickle.UnpicklingError(f"Refusing to rebuild an array of type {subtype!r} from a dataset file.")
    return _ArrayStub()


def _frombuffer(buffer, dtype, shape, order):
    """Protocol 5 spells an array as ``_frombuffer(buffer, dtype, shape, order)``."""
    stub = _ArrayStub()
    data = bytes(buffer) if type(buffer) in (bytes, bytearray) else buffer
    stub.state = (1, shape, dtype, order == "F", data)
    return stub


def _latin1_encode(text, encoding="latin1"):
    """Protocol-2 pickles written by Python 3 spell bytes as ``_codecs.encode(s, "latin1")``."""
    if type(text) is not str or encoding not in ("latin1", "latin-1"):
        raise pickle.UnpicklingError(f"Refusing _codecs.encode with encoding {encoding!r} in a dataset file.")
    return text.encode("latin1")


def _empty_bytes(*args):
    """Protocol-2 pickles written by Python 3 spell ``b""`` as ``bytes()``; nothing else is admitted."""
    if args:
        raise pickle.UnpicklingError(f"Refusing bytes{args!r} in a dataset file.")
    return b""


# (module, name) as files written by NumPy < 2 (numpy.core) and >= 2 (numpy._core) spell them.
_ALLOWED = {
    ("numpy", "ndarray"): _NdarrayClass(),
    ("numpy", "dtype"): _DtypeStub,
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy.core.numeric", "_frombuffer"): _frombuffer,
    ("numpy._core.numeric", "_frombuffer"): _frombuffer,
    ("_codecs", "encode"): _latin1_encode,
    ("__builtin__", "bytes"): _empty_bytes,
    ("builtins", "bytes"): _empty_bytes,
}
_DTYPE_CODE = re.compile(r"^([biufcOSU])(\d+)$")


class SafeUnpickler(pickle.Unpickler):
    """An unpickler that admits plain data and NumPy arrays/dtypes, and nothing else.

    NumPy's own functions never see the file's contents: arrays and dtypes load as inert
    records that ``safe_load`` then checks and builds (simple dtypes only; raw bytes of
    exactly the declared size; object arrays from lists).
    """

    def find_class(self, module, name):
        found = _ALLOWED.get((module, name))
        if found is None:
            raise pickle.UnpicklingError(
                f"Refusing to load `{module}.{name}` from a dataset file: only plain containers, "
                "str/bytes, numbers and NumPy arrays are allowed. The file may be corrupt or malicious."
            )
        return found

    def persistent_load(self, pid):
        raise pickle.UnpicklingError(f"Refusing a persistent reference in a dataset file. Received: {pid!r}")


def safe_load(fileobj, encoding="ASCII"):
    """Unpickle ``fileobj`` safely (``encoding="bytes"`` for Python 2 files such as CIFAR's).

    Raises:
        pickle.UnpicklingError: The file names a function or class other than NumPy's
            array and dtype, or holds an array that does not check out.

    Example:
        >>> with open("data_batch_1", "rb") as f:
        ...     batch = safe_load(f, encoding="bytes")
    """
    try:
        return _build(SafeUnpickler(fileobj, encoding=encoding).load(), 0)
    except (TypeError, ValueError, AttributeError, IndexError, KeyError, RecursionError) as e:
        raise pickle.UnpicklingError(f"Malformed dataset pickle: {e}") from e


def _build(obj, depth):
    """Replace the records in a loaded object graph with checked arrays and dtypes."""
    kind = type(obj)
    if kind in (int, float, bool, str, bytes, complex) or obj is None:
        return obj
    if depth > _MAX_DEPTH:
        raise pickle.UnpicklingError(f"Dataset pickle nested deeper than {_MAX_DEPTH} levels.")
    if kind is list:
        if all(type(v) is int for v in obj):  # the common case (word indices, labels): no copy
            return obj
        return [_build(v, depth + 1) for v in obj]
    if kind is tuple:
        return tuple(_build(v, depth + 1) for v in obj)
    if kind is dict:
        return {_build(k, depth + 1): _build(v, depth + 1) for k, v in obj.items()}
    if kind is _ArrayStub:
        return _build_array(obj.state, depth)
    if kind is _DtypeStub:
        return _build_dtype(obj)
    raise pickle.UnpicklingError(f"Refusing an object of type {kind.__name__} in a dataset file.")


def _build_dtype(stub):
    match = _DTYPE_CODE.match(stub.code) if isinstance(stub.code, str) else None
    state = stub.state if stub.state is not None else (3, "|", None, None, None, -1, -1, 0)
    if match is None or len(state) < 6 or any(part is not None for part in state[2:5]):
        raise pickle.UnpicklingError(f"Refusing a structured or unknown dtype in a dataset file. Received: {stub.code!r}")
    kind, size = match.group(1), int(match.group(2))
    elsize = state[5] if isinstance(state[5], int) and state[5] >= 0 else None
    if kind == "S" and elsize is not None:
        size = elsize
    elif kind == "U" and elsize is not None:
        size = elsize // 4
    dtype = np.dtype(f"{kind}{size}")
    return dtype.newbyteorder(state[1]) if state[1] in ("<", ">") else dtype


def _build_array(state, depth):
    if not isinstance(state, tuple) or len(state) != 5:
        raise pickle.UnpicklingError("Malformed array in a dataset file.")
    _, shape, dtype, fortran, data = state
    if type(shape) is not tuple:
        raise pickle.UnpicklingError(f"Malformed array in a dataset file: shape {shape!r}.")
    dtype = _build_dtype(dtype) if type(dtype) is _DtypeStub else dtype
    if not isinstance(dtype, np.dtype) or not all(type(n) is int and n >= 0 for n in shape):
        raise pickle.UnpicklingError(f"Malformed array in a dataset file: shape {shape!r}, dtype {dtype!r}.")
    count = int(np.prod(shape, dtype=np.int64))
    order = "F" if fortran else "C"
    if dtype.hasobject:
        if type(data) is not list or len(data) != count:
            raise pickle.UnpicklingError(f"Malformed object array in a dataset file: shape {shape}.")
        out = np.empty(count, dtype=object)
        for i, value in enumerate(data):
            out[i] = _build(value, depth + 1)
        return out.reshape(shape, order=order)
    if isinstance(data, str):
        data = data.encode("latin1")  # Python 2 pickles loaded with encoding="latin1"
    if not isinstance(data, bytes) or len(data) != count * dtype.itemsize:
        raise pickle.UnpicklingError(
            f"Malformed array in a dataset file: shape {shape} of {dtype} needs "
            f"{count * dtype.itemsize} bytes, the file holds {len(data) if isinstance(data, bytes) else type(data).__name__}."
        )
    return np.frombuffer(data, dtype=dtype).reshape(shape, order=order).copy(order="C")


def _read_npy(buffer, name):
    """One ``.npy`` member: numeric arrays with pickling off, object arrays safely."""
    version = np.lib.format.read_magic(buffer)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(buffer)
    elif version in ((2, 0), (3, 0)):
        # 3.0 differs from 2.0 only in the header's text encoding (UTF-8 for field names).
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(buffer)
    else:
        raise ValueError(f"Unsupported .npy format version {version} in member '{name}'.")
    if not dtype.hasobject:
        buffer.seek(0)
        return np.lib.format.read_array(buffer, allow_pickle=False)
    array = safe_load(buffer)
    if not isinstance(array, np.ndarray) or array.shape != tuple(shape):
        raise ValueError(
            f"Corrupt .npy member '{name}': its header says shape {tuple(shape)}, the data holds "
            f"{getattr(array, 'shape', type(array).__name__)}."
        )
    return array


def load_npz(path):
    """An ``.npz`` file as a dict of arrays; object arrays are unpickled with ``SafeUnpickler``.

    Example:
        >>> arrays = load_npz("imdb.npz")
        >>> arrays["x_train"].dtype
        dtype('O')
    """
    arrays = {}
    with zipfile.ZipFile(path) as archive:
        for member in archive.namelist():
            if member.endswith(".npy"):
                with archive.open(member) as raw:
                    arrays[member[: -len(".npy")]] = _read_npy(io.BytesIO(raw.read()), member)
    return arrays
