"""pad_sequences: ragged lists of token ids -> one (num_samples, maxlen) array (``keras.utils.pad_sequences``).

Example:
    >>> pad_sequences([[1, 2, 3], [4]], maxlen=2)
    array([[2, 3],
           [0, 4]], dtype=int32)
"""

import numpy as np


def _check_choice(name, value):
    if value not in ("pre", "post"):
        kind = "Padding" if name == "padding" else "Truncating"
        raise ValueError(f'{kind} type "{value}" not understood. Expected "pre" or "post". Received: {name}={value!r}')


def _lengths_and_sample_shape(sequences):
    lengths, sample_shape = [], None
    for i, s in enumerate(sequences):
        if isinstance(s, (str, bytes)) or not hasattr(s, "__len__"):
            raise ValueError("`sequences` must be a list of iterables (one sequence per sample). "
                             f"Found non-iterable or string at index {i}: {s!r}")
        lengths.append(len(s))
        if sample_shape is None and len(s):
            sample_shape = np.asarray(s).shape[1:]
    return lengths, (() if sample_shape is None else sample_shape)


def _as_row(s, dtype, index):
    """One sequence as ``dtype``; refuses lossy casts (strings or fractions into an integer dtype)."""
    raw = np.asarray(s)
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
        if raw.dtype.kind in "USO" and raw.size:
            raise ValueError(f"pad_sequences: sequence {index} holds non-numbers "
                             f"(e.g. {raw.flat[0]!r}) but `dtype` is {np.dtype(dtype).name}. Received: dtype={dtype!r}; "
                             "convert the tokens to ids first (Tokenizer.texts_to_sequences) or pass dtype=object.")
        if raw.dtype.kind in "fc" and raw.size and not np.all(np.isfinite(raw) & (np.round(raw) == raw)):
            bad = raw[~(np.isfinite(raw) & (np.round(raw) == raw))].flat[0].item()
            raise ValueError(f"pad_sequences: sequence {index} holds the non-integer value {bad!r} but `dtype` is "
                             f"{np.dtype(dtype).name}, which would truncate it. Received: dtype={dtype!r}; "
                             "pass dtype='float32' for real-valued sequences.")
    try:
        return np.asarray(raw, dtype=dtype)
    except (TypeError, ValueError) as e:
        raise ValueError(f"pad_sequences: sequence {index} cannot be converted to `dtype`={dtype!r}: {e}") from None


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Pads (or truncates) sequences to one length, as ``keras.utils.pad_sequences``.

    Sequences shorter than ``maxlen`` get ``value`` added at the start (``padding="pre"``) or end;
    longer ones lose values from the start (``truncating="pre"``) or end. Elements may themselves
    be arrays (all of one shape), giving ``(num_samples, maxlen, *sample_shape)``.

    Args:
        sequences: a list (or array) of sequences, each a list or array; ragged is the point.
        maxlen: the output length (default: the longest sequence). A percentile of the lengths,
            e.g. ``int(np.percentile([len(s) for s in seqs], 95))``, keeps rare outliers from
            setting the width.
        dtype: output type; ``object`` or a NumPy string dtype for token strings.
        padding: "pre" or "post".
        truncating: "pre" or "post".
        value: the padding value (a string needs a string or object ``dtype``).

    Returns:
        NumPy array ``(len(sequences), maxlen)``.

    Raises:
        ValueError: a non-iterable sequence, a bad ``padding``/``truncating``, a string ``value`` with a
            numeric ``dtype``, or values ``dtype`` cannot hold (strings, fractions into ints).

    Example:
        >>> pad_sequences([[1], [2, 3]], padding="post").tolist()
        [[1, 0], [2, 3]]
    """
    if not hasattr(sequences, "__len__") or isinstance(sequences, (str, bytes)):
        raise ValueError(f"`sequences` must be a list of iterables. Received: sequences={sequences!r}")
    _check_choice("padding", padding)
    _check_choice("truncating", truncating)
    lengths, sample_shape = _lengths_and_sample_shape(sequences)
    if maxlen is None:
        maxlen = max(lengths) if lengths else 0
    if isinstance(maxlen, bool) or int(maxlen) != maxlen or maxlen < 0:
        raise ValueError(f"`maxlen` must be a non-negative integer or None. Received: maxlen={maxlen!r}")
    maxlen = int(maxlen)
    is_str_dtype = dtype is not object and np.issubdtype(np.dtype(dtype), np.str_)
    if isinstance(value, str) and dtype is not object and not is_str_dtype:
        raise ValueError(f"`dtype` {dtype} is not compatible with `value`'s type: {type(value)}\n"
                         "You should set `dtype=object` for variable length strings.")
    x = np.full((len(lengths), maxlen) + tuple(sample_shape), value, dtype=dtype)
    if maxlen == 0:
        return x
    for idx, s in enumerate(sequences):
        if not len(s):
            continue
        trunc = s[-maxlen:] if truncating == "pre" else s[:maxlen]
        trunc = _as_row(trunc, dtype, idx)
        if trunc.shape[1:] != tuple(sample_shape):
            raise ValueError(f"Shape of sample {trunc.shape[1:]} of sequence at position {idx} is different from "
                             f"expected shape {tuple(sample_shape)}")
        if padding == "post":
            x[idx, :len(trunc)] = trunc
        else:
            x[idx, -len(trunc):] = trunc
    return x
