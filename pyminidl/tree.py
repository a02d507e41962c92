"""Nested structures of values (Keras 3 ``keras.tree``): lists, tuples and dicts of leaves.

Dicts are walked in sorted key order, as Keras does, so a model's dict inputs have one flat order.

Example:
    >>> flatten({"b": 1, "a": [2, 3]})
    [2, 3, 1]
    >>> pack_sequence_as([0, (0, 0)], [1, 2, 3])
    [1, (2, 3)]
"""


def is_nested(structure):
    """True for a list, tuple or dict (the containers this module walks)."""
    return isinstance(structure, (list, tuple, dict))


def _children(structure):
    if isinstance(structure, dict):
        return [structure[k] for k in sorted(structure)]
    return list(structure)


def flatten(structure):
    """The leaves of ``structure`` in order (a leaf alone gives ``[leaf]``)."""
    if not is_nested(structure):
        return [structure]
    out = []
    for child in _children(structure):
        out.extend(flatten(child))
    return out


def _rebuild(structure, items):
    if isinstance(structure, dict):
        by_key = dict(zip(sorted(structure), items))
        return {k: by_key[k] for k in structure}  # the caller's key order
    if isinstance(structure, tuple) and hasattr(structure, "_fields"):
        return type(structure)(*items)  # a namedtuple
    return type(structure)(items)


def pack_sequence_as(structure, flat_sequence):
    """``flat_sequence`` arranged as ``structure``.

    Raises:
        ValueError: the number of leaves differs.
    """
    flat_sequence = list(flat_sequence)
    count = len(flatten(structure))
    if count != len(flat_sequence):
        raise ValueError(f"The structure has {count} leaves but {len(flat_sequence)} values were given.")
    it = iter(flat_sequence)

    def build(s):
        if not is_nested(s):
            return next(it)
        return _rebuild(s, [build(c) for c in _children(s)])

    return build(structure)


def map_structure(fn, structure):
    """``fn`` applied to every leaf, in a structure like ``structure``."""
    if not is_nested(structure):
        return fn(structure)
    return _rebuild(structure, [map_structure(fn, c) for c in _children(structure)])


__all__ = ["flatten", "is_nested", "map_structure", "pack_sequence_as"]
