"""Dataset: tf.data semantics of batch, shuffle, repeat, take, skip, map, filter, len."""

import numpy as np
import pytest

from pyminidl.data import Dataset


def _x(ds):
    return [np.asarray(b).tolist() for b in ds]


def test_batch_remainder_and_len():
    ds = Dataset.from_tensor_slices(np.arange(7)).batch(3)
    assert _x(ds) == [[0, 1, 2], [3, 4, 5], [6]] and len(ds) == 3
    ds = Dataset.from_tensor_slices(np.arange(7)).batch(3, drop_remainder=True)
    assert _x(ds) == [[0, 1, 2], [3, 4, 5]] and len(ds) == 2
    with pytest.raises(ValueError, match="batch_size"):
        Dataset.from_tensor_slices(np.arange(3)).batch(0)


def test_unshuffled_batches_are_views():
    x = np.arange(12.0).reshape(6, 2)
    first = next(iter(Dataset.from_tensor_slices(x).batch(4)))
    assert np.shares_memory(first, x)


def test_tuples_dicts_and_nesting():
    x, y, w = np.arange(10.0).reshape(5, 2), np.arange(5), np.linspace(0, 1, 5)
    xb, yb, wb = next(iter(Dataset.from_tensor_slices((x, y, w)).batch(2)))
    np.testing.assert_array_equal(xb, x[:2])
    np.testing.assert_array_equal(yb, y[:2])
    np.testing.assert_array_equal(wb, w[:2])
    element = next(iter(Dataset.from_tensor_slices({"a": x, "b": (y, w)})))
    assert set(element) == {"a", "b"} and isinstance(element["b"], tuple)
    np.testing.assert_array_equal(element["a"], x[0])
    batch = next(iter(Dataset.from_tensor_slices({"a": x, "b": y}).map(lambda d: d).batch(5)))
    np.testing.assert_array_equal(batch["a"], x)


def test_mismatched_lengths():
    with pytest.raises(ValueError, match=r"\[5, 4\]"):
        Dataset.from_tensor_slices((np.zeros(5), np.zeros(4)))


def test_shuffle_is_a_permutation_and_deterministic_with_seed():
    ds = Dataset.from_tensor_slices(np.arange(50)).shuffle(100, seed=3)
    first, second = _x(ds), _x(ds)
    assert sorted(first) == list(range(50)) and first != list(range(50))
    assert first != second  # reshuffled each iteration
    again = Dataset.from_tensor_slices(np.arange(50)).shuffle(100, seed=3)
    assert _x(again) == first and _x(again) == second
    fixed = Dataset.from_tensor_slices(np.arange(50)).shuffle(100, seed=3, reshuffle_each_iteration=False)
    assert _x(fixed) == _x(fixed)


def test_small_buffer_shuffles_locally():
    # with buffer 1 the order is unchanged; with buffer 2 element i can move back at most... arbitrarily
    # but never forward by more than buffer_size - 1 positions
    assert _x(Dataset.from_tensor_slices(np.arange(20)).shuffle(1, seed=0)) == list(range(20))
    out = _x(Dataset.from_tensor_slices(np.arange(200)).shuffle(5, seed=0))
    assert sorted(out) == list(range(200))
    assert all(pos >= value - 4 for pos, value in enumerate(out))
    batched = _x(Dataset.from_tensor_slices(np.arange(30)).shuffle(4, seed=1).batch(7))
    assert sorted(sum(batched, [])) == list(range(30)) and [len(b) for b in batched] == [7, 7, 7, 7, 2]


def test_shuffle_seed_none_follows_set_random_seed():
    import pyminidl

    pyminidl.utils.set_random_seed(7)
    a = _x(Dataset.from_tensor_slices(np.arange(20)).shuffle(20))
    pyminidl.utils.set_random_seed(7)
    assert _x(Dataset.from_tensor_slices(np.arange(20)).shuffle(20)) == a


def test_repeat_take_skip():
    ds = Dataset.from_tensor_slices(np.arange(4))
    assert _x(ds.repeat(2)) == [0, 1, 2, 3, 0, 1, 2, 3] and len(ds.repeat(2)) == 8
    assert _x(ds.repeat().take(6)) == [0, 1, 2, 3, 0, 1] and len(ds.repeat().take(6)) == 6
    assert _x(ds.skip(1).take(2)) == [1, 2] and len(ds.skip(1)) == 3
    assert _x(ds.skip(10)) == [] and len(ds.skip(10)) == 0
    assert _x(ds.take(-1)) == [0, 1, 2, 3]
    assert _x(ds.repeat(2).batch(3)) == [[0, 1, 2], [3, 0, 1], [2, 3]]
    shuffled = _x(ds.shuffle(4, seed=0).repeat(3))
    assert all(sorted(shuffled[i:i + 4]) == [0, 1, 2, 3] for i in (0, 4, 8))
    with pytest.raises(TypeError, match="infinite"):
        len(ds.repeat())


def test_map_filter_prefetch():
    ds = Dataset.from_tensor_slices((np.arange(6), np.arange(6) * 10))
    mapped = ds.map(lambda x, y: (x + 1, y)).filter(lambda x, y: x % 2 == 0).prefetch(2)
    assert [(int(a), int(b)) for a, b in mapped] == [(2, 10), (4, 30), (6, 50)]
    with pytest.raises(TypeError, match="unknown"):
        len(mapped)
    assert len(ds.map(lambda x, y: x)) == 6
    batched = _x(ds.map(lambda x, y: x * 2).batch(4))
    assert batched == [[0, 2, 4, 6], [8, 10]]
    assert _x(ds.batch(4).map(lambda x, y: x)) == [[0, 1, 2, 3], [4, 5]]
    assert ds.prefetch(1) is ds


def test_from_generator_and_range():
    def gen():
        for i in range(5):
            yield np.full(2, i), i

    ds = Dataset.from_generator(gen).batch(2)
    assert [b[1].tolist() for b in ds] == [[0, 1], [2, 3], [4]]
    assert [b[1].tolist() for b in ds] == [[0, 1], [2, 3], [4]]  # re-iterable
    with pytest.raises(TypeError):
        len(ds)
    assert _x(Dataset.range(2, 8, 2)) == [2, 4, 6]


def test_unbatch_cache_autotune():
    from pyminidl.data import AUTOTUNE

    ds = Dataset.from_tensor_slices((np.arange(5), np.arange(5) * 2)).batch(2).unbatch()
    assert [(int(a), int(b)) for a, b in ds] == [(i, 2 * i) for i in range(5)]
    calls = []
    cached = Dataset.from_tensor_slices(np.arange(6)).shuffle(6, seed=0).map(lambda v: calls.append(1) or v).cache()
    first = _x(cached)
    assert _x(cached) == first and len(calls) == 6  # replayed, not recomputed or reshuffled
    assert _x(Dataset.range(4).prefetch(AUTOTUNE)) == [0, 1, 2, 3]
