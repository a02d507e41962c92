"""TextVectorization: Keras 3 outputs worked out by hand (Korean included), adapt on a Dataset, models."""

import numpy as np
import pytest

import pyminidl as pm
from pyminidl import layers
from pyminidl.data import Dataset

CORPUS = np.array(["foo bar", "bar baz", "baz bada boom"])


def test_keras_docstring_example():
    layer = layers.TextVectorization(max_tokens=5000, output_mode="int", output_sequence_length=4)
    layer.adapt(["foo bar", "bar baz", "baz bada boom"])
    np.testing.assert_array_equal(layer(np.array([["foo qux bar"], ["qux baz"]])), [[4, 1, 3, 0], [1, 2, 0, 0]])
    fixed = layers.TextVectorization(output_sequence_length=4, vocabulary=["earth", "wind", "and", "fire"])
    assert fixed.get_vocabulary() == ["", "[UNK]", "earth", "wind", "and", "fire"]


def test_standardize_strips_keras_punctuation_and_unicode_punctuation():
    layer = layers.TextVectorization()
    layer.adapt(["Don't STOP!", "정말 좋아요, 최고!", "こんにちは、世界。", "Ça VA"])
    vocab = set(layer.get_vocabulary())
    assert {"dont", "stop", "정말", "좋아요", "최고", "こんにちは", "世界", "ça", "va"} <= vocab
    assert not any(any(p in t for p in ",.!'、。") for t in vocab)


def test_int_output_pads_to_longest_and_truncates_keeping_the_front():
    layer = layers.TextVectorization(vocabulary=["a", "b", "c"])
    np.testing.assert_array_equal(layer(np.array(["a b c a", "c"])), [[2, 3, 4, 2], [4, 0, 0, 0]])
    cut = layers.TextVectorization(vocabulary=["a", "b", "c"], output_sequence_length=2)
    np.testing.assert_array_equal(cut(np.array(["a b c", "z"])), [[2, 3], [1, 0]])
    assert cut(np.array(["a b c"])).dtype == np.int64


def test_character_split_gives_hangul_syllables():
    layer = layers.TextVectorization(split="character", standardize=None)
    layer.adapt(["한국어", "한국"])
    # 한:2, 국:2 (tie: descending code point, 한 U+D55C > 국 U+AD6D), 어:1
    assert layer.get_vocabulary() == ["", "[UNK]", "한", "국", "어"]
    np.testing.assert_array_equal(layer(np.array(["어한"])), [[4, 2]])


def test_ngrams_in_tf_strings_order():
    layer = layers.TextVectorization(ngrams=2, vocabulary=["a", "b", "a b", "b c"])
    # tokens a b c -> 1-grams a, b, c then 2-grams "a b", "b c"
    np.testing.assert_array_equal(layer(np.array(["a b c"])), [[2, 3, 1, 4, 5]])


def test_multi_hot_count_and_tf_idf():
    multi = layers.TextVectorization(output_mode="multi_hot")
    multi.adapt(["좋은 영화", "나쁜 영화"])
    assert multi.get_vocabulary() == ["[UNK]", "영화", "좋은", "나쁜"]
    np.testing.assert_array_equal(multi(np.array(["좋은 좋은 별로"])), [[1, 0, 1, 0]])
    count = layers.TextVectorization(output_mode="count", vocabulary=["a", "b"])
    np.testing.assert_array_equal(count(np.array(["a a b q q"])), [[2, 2, 1]])
    tfidf = layers.TextVectorization(output_mode="tf_idf")
    tfidf.adapt(["a a b", "b c"])
    # idf: b in both documents -> ln(1 + 2/3); a, c in one -> ln 2
    vocab = tfidf.get_vocabulary()
    idf = {"b": np.log(1 + 2 / 3), "a": np.log(2), "c": np.log(2)}
    assert vocab == ["[UNK]", "b", "a", "c"]  # a: count 2, b: 2 -> tie, b > a; c: 1
    oov = np.mean([idf[t] for t in vocab[1:]])
    np.testing.assert_allclose(tfidf(np.array(["a a d"])), [[oov, 0, 2 * idf["a"], 0]], rtol=1e-6)


def test_stop_words_option():
    layer = layers.TextVectorization(stop_words="english")
    layer.adapt(["The movie was not good", "the movie"])
    assert layer.get_vocabulary() == ["", "[UNK]", "movie", "good"]
    custom = layers.TextVectorization(stop_words=["정말"])
    custom.adapt(["정말 좋아요"])
    assert custom.get_vocabulary() == ["", "[UNK]", "좋아요"]
    assert layers.TextVectorization.from_config(custom.get_config()).get_vocabulary() == custom.get_vocabulary()


def test_adapt_on_a_dataset_equals_adapt_on_the_array():
    texts = np.array(["the cat", "the dog sat", "고양이 개", "the 고양이", "dog dog"])
    for mode in ("int", "tf_idf"):
        a, b = layers.TextVectorization(output_mode=mode), layers.TextVectorization(output_mode=mode)
        a.adapt(texts)
        b.adapt(Dataset.from_tensor_slices(texts).batch(2))
        assert a.get_vocabulary() == b.get_vocabulary()
        np.testing.assert_array_equal(a(texts), b(texts))
        c = layers.TextVectorization(output_mode=mode)
        c.adapt(list(texts))
        assert c.get_vocabulary() == a.get_vocabulary()


def test_set_vocabulary_and_config_round_trip():
    layer = layers.TextVectorization(max_tokens=10, output_sequence_length=3)
    layer.set_vocabulary(["x", "y"])
    clone = layers.TextVectorization.from_config(layer.get_config())
    np.testing.assert_array_equal(clone(np.array(["y x z"])), [[3, 2, 1]])
    assert layer.compute_output_shape((None,)) == (None, 3)


def test_first_layer_of_a_sequential_trained_on_raw_strings():
    pm.utils.set_random_seed(0)
    pos, neg = ["great movie", "loved it", "정말 좋아요", "wonderful"], ["terrible film", "hated it", "정말 별로", "awful"]
    x = np.array([(pos if i % 2 else neg)[i // 2 % 4] for i in range(160)])
    y = (np.arange(160) % 2).astype("float32")
    vectorize = layers.TextVectorization(output_mode="multi_hot")
    vectorize.adapt(x)
    model = pm.Sequential([vectorize, layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer=pm.optimizers.Adam(0.05), loss="binary_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, epochs=15, batch_size=16, verbose=0)
    assert history.history["accuracy"][-1] == 1.0
    pred = model.predict(np.array(["loved it, great", "awful, terrible"]), verbose=0).ravel()
    assert pred[0] > 0.5 > pred[1]


def test_in_dataset_map():
    vectorize = layers.TextVectorization(output_sequence_length=3, vocabulary=["a", "b"])
    ds = Dataset.from_tensor_slices((np.array(["a b", "b", "q a"]), np.array([0, 1, 0]))).batch(2)
    batches = list(ds.map(lambda t, label: (vectorize(t), label)))
    np.testing.assert_array_equal(batches[0][0], [[2, 3, 0], [3, 0, 0]])
    np.testing.assert_array_equal(batches[1][0], [[1, 2, 0]])


def test_errors_name_the_argument():
    with pytest.raises(ValueError, match="standardize"):
        layers.TextVectorization(standardize="upper")
    with pytest.raises(ValueError, match="split"):
        layers.TextVectorization(split="comma")
    with pytest.raises(ValueError, match="output_sequence_length"):
        layers.TextVectorization(output_mode="multi_hot", output_sequence_length=3)
    with pytest.raises(ValueError, match="ngrams"):
        layers.TextVectorization(ngrams=0)
    with pytest.raises(ValueError, match="vocabulary would be empty"):
        layers.TextVectorization().adapt(["", "  ", "!!!"])
    with pytest.raises(ValueError, match="vocabulary would be empty"):
        layers.TextVectorization(stop_words="english").adapt(["the and of"])
    with pytest.raises(TypeError, match="expects strings.*int"):
        layers.TextVectorization(vocabulary=["a"])([1, 2])
    with pytest.raises(ValueError, match="rank"):
        layers.TextVectorization(vocabulary=["a"])(np.array([["a", "b"]]))


# Keras's tf.strings.lower leaves non-ASCII capitals ("Ç") as they are, pyminidl lowercases them: the
# parity texts keep non-ASCII letters lowercase.
PARITY = ["The cat sat on the mat.", "the dog ate my homework!", "고양이 고양이 개, 좋아요?", "ça va? Très bien... très!",
          "a b c d e f a b a", "Don't stop"]


@pytest.mark.parametrize("kwargs", [{}, {"output_sequence_length": 5, "max_tokens": 8}, {"ngrams": 2},
                                    {"output_mode": "multi_hot"}, {"output_mode": "count"}, {"output_mode": "tf_idf"},
                                    {"split": "character", "standardize": "lower"}])
def test_parity_with_keras_text_vectorization(kwargs):
    tf = pytest.importorskip("tensorflow")
    ref, got = tf.keras.layers.TextVectorization(**kwargs), layers.TextVectorization(**kwargs)
    ref.adapt(PARITY)
    got.adapt(PARITY)
    assert got.get_vocabulary() == ref.get_vocabulary()
    np.testing.assert_allclose(got(np.array(PARITY)), np.asarray(ref(tf.constant(PARITY))), rtol=1e-6)
