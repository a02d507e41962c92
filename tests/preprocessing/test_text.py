"""preprocessing.text: tf.keras's Tokenizer and helpers against outputs worked out by hand, Korean included."""

import json
import os
import math
import subprocess
import sys

import numpy as np
import pytest

from pyminidl.preprocessing import text
from pyminidl.preprocessing.text import (Tokenizer, clean, get_stop_words, hashing_trick, one_hot,
                                         text_to_word_sequence, tokenizer_from_json)

TEXTS = ["The cat sat on the mat.", "The dog sat!", "고양이 고양이 개"]


def test_text_to_word_sequence_as_tf_keras():
    assert text_to_word_sequence("Hello, World! It's\tme.") == ["hello", "world", "it's", "me"]
    assert text_to_word_sequence("a-b c", filters="", lower=False) == ["a-b", "c"]
    assert text_to_word_sequence("a,b", split=",", filters="") == ["a", "b"]


def test_unicode_words_punctuation_and_lowercase():
    assert text_to_word_sequence("정말 좋아요! 최고예요.") == ["정말", "좋아요", "최고예요"]
    assert text_to_word_sequence("こんにちは、世界。") == ["こんにちは", "世界"]
    assert text_to_word_sequence("ÉCOLE Über «naïve»\u3000Ça") == ["école", "über", "naïve", "ça"]
    # tf.keras's behaviour on non-ASCII punctuation, on request
    assert text_to_word_sequence("こんにちは、世界。", unicode_punctuation=False) == ["こんにちは、世界。"]


def test_word_index_orders_by_count_then_first_appearance():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    # counts: the 3, sat 2, 고양이 2, cat/on/mat/dog/개 1; ties in order of first appearance
    assert list(tok.word_index.items()) == [("the", 1), ("sat", 2), ("고양이", 3), ("cat", 4), ("on", 5),
                                            ("mat", 6), ("dog", 7), ("개", 8)]
    assert tok.index_word[3] == "고양이"
    assert tok.word_counts["the"] == 3 and tok.word_docs["the"] == 2 and tok.document_count == 3
    assert tok.index_docs[1] == 2 and tok.index_docs[3] == 1


def test_texts_to_sequences_oov_and_num_words():
    tok = Tokenizer(num_words=4, oov_token="<OOV>")
    tok.fit_on_texts(TEXTS)
    assert tok.word_index["<OOV>"] == 1 and tok.word_index["the"] == 2
    # the=2, sat=3, 고양이=4 >= num_words -> OOV, cat=5 -> OOV, bird unknown -> OOV
    assert tok.texts_to_sequences(["the sat 고양이 cat bird"]) == [[2, 3, 1, 1, 1]]
    assert tok.sequences_to_texts([[2, 3, 5, 99]]) == ["the sat <OOV> <OOV>"]
    plain = Tokenizer(num_words=3)
    plain.fit_on_texts(TEXTS)
    assert plain.texts_to_sequences(["the sat 고양이 bird"]) == [[1, 2]]  # dropped without an oov_token
    assert plain.sequences_to_texts([[1, 2, 3]]) == ["the sat"]


def test_char_level_splits_hangul_syllables():
    tok = Tokenizer(char_level=True)
    tok.fit_on_texts(["한국 한"])
    assert tok.word_index == {"한": 1, "국": 2, " ": 3}
    assert tok.texts_to_sequences(["국한"]) == [[2, 1]]


def test_token_lists_are_taken_as_is():
    tok = Tokenizer()
    tok.fit_on_texts([["New York", "is"], ["new york"]])
    assert tok.word_index == {"new york": 1, "is": 2}


def test_stop_words_english_and_custom():
    tok = Tokenizer(stop_words="english")
    tok.fit_on_texts(["The movie was not good", "the movie"])
    assert tok.word_index == {"movie": 1, "good": 2}
    assert tok.texts_to_sequences(["the good movie"]) == [[2, 1]]
    ko = Tokenizer(stop_words=["정말", "너무"])
    ko.fit_on_texts(["정말 너무 좋아요"])
    assert ko.word_index == {"좋아요": 1}
    assert {"the", "and", "don't"} <= get_stop_words("english")


def _hand_matrix(tok, seqs, mode):
    width = tok.num_words or len(tok.word_index) + 1
    x = np.zeros((len(seqs), width))
    for i, seq in enumerate(seqs):
        for j in set(seq):
            c = seq.count(j)
            x[i, j] = {"binary": 1, "count": c, "freq": c / len(seq),
                       "tfidf": (1 + math.log(c)) * math.log(1 + tok.document_count / (1 + tok.index_docs.get(j, 0)))}[mode]
    return x


@pytest.mark.parametrize("mode", ["binary", "count", "freq", "tfidf"])
def test_texts_to_matrix_modes_match_their_formulas(mode):
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    docs = ["the the cat 고양이", "dog", ""]
    got = tok.texts_to_matrix(docs, mode=mode)
    assert got.shape == (3, 9) and got.dtype == np.float64
    np.testing.assert_allclose(got, _hand_matrix(tok, tok.texts_to_sequences(docs), mode), rtol=1e-12)


def test_tfidf_value_worked_by_hand():
    tok = Tokenizer()
    tok.fit_on_texts(TEXTS)
    # "the" twice: tf = 1 + ln 2; idf = ln(1 + 3 / (1 + 2)) = ln 2
    row = tok.texts_to_matrix(["the the"], mode="tfidf")[0]
    assert row[1] == pytest.approx((1 + math.log(2)) * math.log(2))


def test_num_words_caps_matrix_width():
    tok = Tokenizer(num_words=3)
    tok.fit_on_texts(TEXTS)
    np.testing.assert_array_equal(tok.texts_to_matrix(["the sat 고양이"], mode="count"), [[0, 1, 1]])


def test_json_round_trip_keeps_korean_and_state():
    tok = Tokenizer(num_words=5, oov_token="<OOV>", stop_words=["개"])
    tok.fit_on_texts(TEXTS)
    for kwargs in ({}, {"ensure_ascii": False}):
        back = tokenizer_from_json(tok.to_json(**kwargs))
        assert back.word_index == tok.word_index and back.index_word == tok.index_word
        assert list(back.word_counts.items()) == list(tok.word_counts.items())
        assert back.texts_to_sequences(TEXTS) == tok.texts_to_sequences(TEXTS)
        np.testing.assert_array_equal(back.texts_to_matrix(TEXTS, "tfidf"), tok.texts_to_matrix(TEXTS, "tfidf"))
    assert json.loads(json.loads(tok.to_json())["config"]["word_index"])["고양이"] == 4
    back.fit_on_texts(["고양이 새"])  # a loaded tokenizer keeps fitting
    assert back.word_index["고양이"] == 3 and back.word_counts["고양이"] == 3 and "새" in back.word_index


def test_json_layout_is_tf_keras():
    tok = Tokenizer()
    tok.fit_on_texts(["a b"])
    cfg = json.loads(tok.to_json())
    assert cfg["class_name"] == "Tokenizer"
    assert set(cfg["config"]) == {"num_words", "filters", "lower", "split", "char_level", "oov_token",
                                  "document_count", "word_counts", "word_docs", "index_docs", "index_word",
                                  "word_index"}
    assert json.loads(cfg["config"]["index_word"]) == {"1": "a", "2": "b"}


def test_hashing_md5_matches_tf_keras_formula():
    import hashlib
    want = [int(hashlib.md5(w.encode()).hexdigest(), 16) % 9 + 1 for w in ["좋은", "movie"]]
    assert hashing_trick("좋은 Movie", 10, hash_function="md5") == want


def test_default_hash_is_stable_across_processes():
    code = "from pyminidl.preprocessing.text import one_hot; print(one_hot('good movie 좋은 영화', 1000))"
    runs = {subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                           env={"PYTHONHASHSEED": str(seed), "PATH": ""}, cwd=os.path.dirname(os.path.abspath(__file__))).stdout for seed in (1, 2)}
    assert len(runs) == 1
    ids = one_hot("good movie good", 50)
    assert ids[0] == ids[2] and all(1 <= i < 50 for i in ids)


def test_clean_markup_unicode_control_and_spaces():
    assert clean("<p>Ｇｒｅａｔ&nbsp;&amp;   cheap!</p>\u200b") == "Great & cheap!"
    assert clean("a<br>b<script>x=1</script>c") == "a b c"
    assert clean("  정말\t\t좋아요\x00\n ") == "정말 좋아요"
    assert clean("\u1100\u1161") == "가"  # NFKC composes Hangul jamo
    assert clean("Ｃａｆé", lower=True) == "café"
    assert clean("teh moive", lower=True) == "teh moive"  # no spelling correction
    assert clean("<b>x</b>", strip_markup=False, normalization=None) == "<b>x</b>"


def test_bad_input_errors_name_the_argument():
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(num_words=0)
    with pytest.raises(ValueError, match="num_words"):
        Tokenizer(num_words=-3)
    tok = Tokenizer()
    with pytest.raises(TypeError, match="texts.*int at index 1"):
        tok.fit_on_texts(["ok", 3])
    with pytest.raises(TypeError, match="single string"):
        tok.fit_on_texts("not a list")
    with pytest.raises(TypeError, match="texts"):
        tok.texts_to_sequences([None])
    with pytest.raises(ValueError, match="fit on some text"):
        Tokenizer().texts_to_matrix(["a"])
    tok.fit_on_texts(["a"])
    with pytest.raises(ValueError, match="mode"):
        tok.texts_to_matrix(["a"], mode="onehot")
    with pytest.raises(ValueError, match="`n`"):
        hashing_trick("a", 1)
    with pytest.raises(TypeError, match="input_text"):
        text_to_word_sequence(5)
    with pytest.raises(ValueError, match="stop_words"):
        Tokenizer(stop_words="klingon")
    with pytest.raises(TypeError, match="stop_words"):
        Tokenizer(stop_words=["a", 1])
    with pytest.raises(TypeError, match="text"):
        clean(3)
    with pytest.raises(ValueError, match="normalization"):
        clean("a", normalization="NFX")
    with pytest.raises(ValueError, match="Tokenizer JSON"):
        tokenizer_from_json('{"config": {}}')


PARITY_TEXTS = ["The cat sat on the mat.", "The dog ate my homework!", "고양이 고양이 개, 좋아요?",
                "Ça va? Très bien... très!", "a b c d e f a b a"]


def test_parity_with_tf_keras_tokenizer():
    tf = pytest.importorskip("tensorflow")
    legacy = tf.keras.preprocessing.text
    for kwargs in ({}, {"num_words": 5, "oov_token": "<OOV>"}, {"char_level": True}):
        ref, got = legacy.Tokenizer(**kwargs), Tokenizer(**kwargs)
        ref.fit_on_texts(PARITY_TEXTS)
        got.fit_on_texts(PARITY_TEXTS)
        assert got.word_index == ref.word_index
        assert got.texts_to_sequences(PARITY_TEXTS) == ref.texts_to_sequences(PARITY_TEXTS)
        for mode in ("binary", "count", "freq", "tfidf"):
            np.testing.assert_allclose(got.texts_to_matrix(PARITY_TEXTS, mode), ref.texts_to_matrix(PARITY_TEXTS, mode))
        assert tokenizer_from_json(ref.to_json()).word_index == ref.word_index
    assert text.hashing_trick("좋은 movie", 7, "md5") == legacy.hashing_trick("좋은 movie", 7, "md5")


def test_no_punctuation_or_whitespace_beyond_the_scanned_planes():
    import unicodedata
    start = text._LAST_PUNCTUATION_PLANE_END
    assert not [c for c in range(start, sys.maxunicode + 1)
                if chr(c).isspace() or unicodedata.category(chr(c))[0] == "P"]
