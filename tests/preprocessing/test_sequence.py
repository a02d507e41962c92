"""pad_sequences: Keras's defaults and semantics, worked out by hand, and clear errors."""

import numpy as np
import pytest

from pyminidl.preprocessing.sequence import pad_sequences as pad_from_preprocessing
from pyminidl.utils import pad_sequences


def test_same_function_in_both_namespaces():
    assert pad_from_preprocessing is pad_sequences


def test_defaults_pad_and_truncate_at_the_front():
    out = pad_sequences([[1, 2, 3], [4], [5, 6]])
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [[1, 2, 3], [0, 0, 4], [0, 5, 6]])
    np.testing.assert_array_equal(pad_sequences([[1, 2, 3, 4], [5]], maxlen=2), [[3, 4], [0, 5]])


def test_post_padding_and_truncating_and_value():
    out = pad_sequences([[1, 2, 3, 4], [5]], maxlen=3, padding="post", truncating="post", value=-1)
    np.testing.assert_array_equal(out, [[1, 2, 3], [5, -1, -1]])


def test_empty_sequences_and_arrays():
    np.testing.assert_array_equal(pad_sequences([[], [7]]), [[0], [7]])
    out = pad_sequences([np.array([1, 2]), np.array([3])], maxlen=3)
    np.testing.assert_array_equal(out, [[0, 1, 2], [0, 0, 3]])
    assert pad_sequences([[1, 2]], maxlen=0).shape == (1, 0)


def test_vector_elements_keep_their_shape():
    out = pad_sequences([[[1, 1], [2, 2]], [[3, 3]]], dtype="float32")
    assert out.shape == (2, 2, 2)
    np.testing.assert_array_equal(out[1], [[0, 0], [3, 3]])


def test_string_tokens_with_object_dtype():
    out = pad_sequences([["좋은", "영화"], ["별로"]], dtype=object, value="<pad>")
    assert out.tolist() == [["좋은", "영화"], ["<pad>", "별로"]]


def test_float_sequences_with_a_float_dtype():
    out = pad_sequences([[0.5, 1.5], [2.5]], dtype="float32", padding="post")
    np.testing.assert_allclose(out, [[0.5, 1.5], [2.5, 0.0]])


def test_integral_floats_are_accepted_as_ids():
    np.testing.assert_array_equal(pad_sequences([[1.0, 2.0]]), [[1, 2]])


@pytest.mark.parametrize("seqs, match", [
    ([[1, 2], [0.5, 3]], "non-integer value 0.5.*dtype"),
    ([["a", "b"], [1]], "non-numbers.*dtype"),
])
def test_ragged_input_of_the_wrong_dtype_names_dtype(seqs, match):
    with pytest.raises(ValueError, match=match):
        pad_sequences(seqs)


def test_bad_arguments_are_named():
    with pytest.raises(ValueError, match="padding"):
        pad_sequences([[1]], padding="middle")
    with pytest.raises(ValueError, match="truncating"):
        pad_sequences([[1]], truncating="middle")
    with pytest.raises(ValueError, match="maxlen"):
        pad_sequences([[1]], maxlen=-1)
    with pytest.raises(ValueError, match="non-iterable"):
        pad_sequences([[1], 5])
    with pytest.raises(ValueError, match="dtype=object"):
        pad_sequences([["a"]], value="x")
    with pytest.raises(ValueError, match="sequences"):
        pad_sequences("abc")
