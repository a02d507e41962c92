"""StringLookup / IntegerLookup: Keras 3 index layout, OOV, mask, invert, output modes."""

import numpy as np
import pytest

from pyminidl import layers


def test_string_lookup_default_layout():
    layer = layers.StringLookup(vocabulary=["a", "b", "c"])
    assert layer.get_vocabulary() == ["[UNK]", "a", "b", "c"]
    np.testing.assert_array_equal(layer(np.array([["a", "c"], ["z", "b"]])), [[1, 3], [0, 2]])
    assert layer.vocabulary_size() == 4


def test_mask_token_takes_index_zero_in_int_mode():
    layer = layers.StringLookup(vocabulary=["a", "b"], mask_token="")
    assert layer.get_vocabulary() == ["", "[UNK]", "a", "b"]
    np.testing.assert_array_equal(layer(np.array(["", "a", "q"])), [0, 2, 1])


def test_num_oov_indices_buckets_and_zero():
    layer = layers.IntegerLookup(vocabulary=[12, 36], num_oov_indices=2)
    # OOV 7 -> 7 % 2 = 1, 42 -> 0: Keras's floormod buckets
    np.testing.assert_array_equal(layer(np.array([12, 7, 42, 36])), [2, 1, 0, 3])
    strings = layers.StringLookup(vocabulary=["a"], num_oov_indices=3)
    ids = strings(np.array(["x", "y", "x", "a"]))
    assert ids[0] == ids[2] and 0 <= ids[1] < 3 and ids[3] == 3
    strict = layers.StringLookup(vocabulary=["a"], num_oov_indices=0)
    np.testing.assert_array_equal(strict(np.array(["a"])), [0])
    with pytest.raises(ValueError, match="num_oov_indices=0.*'b'"):
        strict(np.array(["a", "b"]))


def test_invert_maps_back():
    layer = layers.StringLookup(vocabulary=["좋아", "별로"], invert=True)
    assert layer(np.array([1, 2, 0, 9])).tolist() == ["좋아", "별로", "[UNK]", "[UNK]"]
    ints = layers.IntegerLookup(vocabulary=[12, 36], invert=True, mask_token=0)
    np.testing.assert_array_equal(ints(np.array([0, 2, 3, 1, 8])), [0, 12, 36, -1, -1])


@pytest.mark.parametrize("mode, want", [
    ("multi_hot", [[0, 1, 0, 1], [1, 0, 1, 0]]),
    ("count", [[0, 2, 0, 1], [1, 0, 1, 0]]),
])
def test_multi_hot_and_count(mode, want):
    layer = layers.StringLookup(vocabulary=["a", "b", "c"], output_mode=mode)
    out = layer(np.array([["a", "c", "a"], ["z", "b", "z"]]))
    expected = np.array(want, dtype="float32")
    expected[1, 0] = 2 if mode == "count" else 1
    np.testing.assert_array_equal(out, expected)
    assert out.dtype == np.float32


def test_one_hot_and_pad_to_max_tokens():
    layer = layers.StringLookup(vocabulary=["a", "b"], output_mode="one_hot")
    np.testing.assert_array_equal(layer(np.array(["b", "q"])), [[0, 0, 1], [1, 0, 0]])
    padded = layers.StringLookup(vocabulary=["a", "b"], output_mode="multi_hot", max_tokens=6, pad_to_max_tokens=True)
    assert padded(np.array([["a"]])).shape == (1, 6)


def test_adapt_orders_by_count_then_token_descending():
    layer = layers.StringLookup()
    layer.adapt(np.array([["b", "a"], ["c", "a"], ["d", "d"]]))
    # a:2, d:2 -> tie broken by descending token (d before a); b, c: 1 -> c before b
    assert layer.get_vocabulary() == ["[UNK]", "d", "a", "c", "b"]
    capped = layers.StringLookup(max_tokens=3)
    capped.adapt(np.array(["b", "a", "a", "c", "c", "c"]))
    assert capped.get_vocabulary() == ["[UNK]", "c", "a"]


def test_tf_idf_weights_worked_by_hand():
    layer = layers.StringLookup(output_mode="tf_idf")
    layer.adapt(np.array([["a", "a"], ["a", "b"]]))
    # a: df 2 -> ln(1 + 2/3); b: df 1 -> ln(2); OOV gets their mean
    ia, ib = np.log(1 + 2 / 3), np.log(2)
    np.testing.assert_allclose(layer.idf_weights, [(ia + ib) / 2, ia, ib])
    out = layer(np.array([["a", "a", "q"]]))
    np.testing.assert_allclose(out, [[(ia + ib) / 2, 2 * ia, 0]], rtol=1e-6)


def test_integer_lookup_adapt_and_config_round_trip():
    layer = layers.IntegerLookup(mask_token=0)
    layer.adapt(np.array([[5, 5, 0], [7, 9, 9]]))
    assert layer.get_vocabulary() == [0, -1, 9, 5, 7]
    clone = layers.IntegerLookup.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(np.array([9, 7, 3, 0])), layer(np.array([9, 7, 3, 0])))


def test_errors():
    with pytest.raises(ValueError, match="max_tokens"):
        layers.StringLookup(max_tokens=1)
    with pytest.raises(ValueError, match="num_oov_indices"):
        layers.StringLookup(num_oov_indices=-1)
    with pytest.raises(ValueError, match="output_mode"):
        layers.StringLookup(output_mode="bag")
    with pytest.raises(ValueError, match="invert"):
        layers.StringLookup(invert=True, output_mode="count")
    with pytest.raises(ValueError, match="repeated"):
        layers.StringLookup(vocabulary=["a", "a"])
    with pytest.raises(ValueError, match="empty vocabulary"):
        layers.StringLookup(vocabulary=[])
    with pytest.raises(ValueError, match="vocabulary would be empty"):
        layers.StringLookup().adapt(np.zeros((0,), dtype=str))
    with pytest.raises(TypeError, match="expects strings"):
        layers.StringLookup(vocabulary=["a"])(np.array([1, 2]))
    with pytest.raises(ValueError, match="static vocabulary"):
        layers.StringLookup(vocabulary=["a"]).adapt(["a"])
    with pytest.raises(RuntimeError, match="vocabulary before calling"):
        layers.StringLookup(output_mode="multi_hot")(np.array([["a"]]))
