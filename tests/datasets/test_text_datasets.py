"""imdb and reuters: Keras 3's shuffling, index shift, vocabulary limits and maxlen rule,
checked on small files against outputs worked out by hand from the definitions."""

import json
import os

import numpy as np
import pytest

from dataset_files import md5, object_array, sha256, write_npz
from pyminidl.datasets import imdb, reuters

# Raw files hold word ranks from 1 (most frequent); the loaders shift them by index_from.
IMDB_TRAIN = [[1, 2, 3], [4, 5], [6], [2, 2, 7, 1]]
IMDB_TRAIN_Y = [0, 1, 1, 0]
IMDB_TEST = [[1, 8], [3, 3, 3]]
IMDB_TEST_Y = [1, 0]


@pytest.fixture
def imdb_file(home, origin_dir, monkeypatch):
    path = write_npz(origin_dir / "imdb.npz", x_train=object_array(IMDB_TRAIN), y_train=np.array(IMDB_TRAIN_Y),
                     x_test=object_array(IMDB_TEST), y_test=np.array(IMDB_TEST_Y))
    monkeypatch.setattr(imdb, "ORIGIN", (origin_dir / "imdb.npz").as_uri())
    monkeypatch.setattr(imdb, "FILE_HASH", sha256(path))
    return path


def _perms(seed, n_train, n_test):
    """Keras shuffles train, then test, with one RandomState: rng.shuffle(np.arange(n))."""
    rng = np.random.RandomState(seed)
    a, b = np.arange(n_train), np.arange(n_test)
    rng.shuffle(a)
    rng.shuffle(b)
    return a, b


def _in_file_order(x, y, perm):
    """Undo the shuffle: row i of the output came from row perm[i] of the file."""
    order = np.argsort(perm)
    return [list(x[i]) for i in order], [int(y[i]) for i in order]


def test_imdb_default_shift_and_largest_index_as_oov(imdb_file):
    (x_train, y_train), (x_test, y_test) = imdb.load_data()
    p_train, p_test = _perms(113, 4, 2)
    # start_char 1, each index + 3; num_words=None -> the largest index (11) becomes oov (2).
    assert _in_file_order(x_train, y_train, p_train) == ([[1, 4, 5, 6], [1, 7, 8], [1, 9], [1, 5, 5, 10, 4]], IMDB_TRAIN_Y)
    assert _in_file_order(x_test, y_test, p_test) == ([[1, 4, 2], [1, 6, 6, 6]], IMDB_TEST_Y)
    assert x_train.dtype == object and x_train.shape == (4,) and y_train.shape == (4,)


def test_imdb_rows_follow_the_seeded_shuffle(imdb_file):
    shifted = [[1, 4, 5, 6], [1, 7, 8], [1, 9], [1, 5, 5, 10, 4]]
    for seed in (113, 0, 7):
        (x_train, y_train), _ = imdb.load_data(seed=seed)
        p_train, _ = _perms(seed, 4, 2)
        assert [list(s) for s in x_train] == [shifted[i] for i in p_train]
        assert list(y_train) == [IMDB_TRAIN_Y[i] for i in p_train]


def test_imdb_num_words_and_skip_top(imdb_file):
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=8, skip_top=5)
    p_train, p_test = _perms(113, 4, 2)
    # Kept: 5 <= w < 8 (after the shift); everything else, start_char included, becomes 2.
    assert _in_file_order(x_train, y_train, p_train)[0] == [[2, 2, 5, 6], [2, 7, 2], [2, 2], [2, 5, 5, 2, 2]]
    assert _in_file_order(x_test, y_test, p_test)[0] == [[2, 2, 2], [2, 6, 6, 6]]


def test_imdb_oov_none_drops_words(imdb_file):
    (x_train, y_train), (x_test, y_test) = imdb.load_data(num_words=8, skip_top=5, oov_char=None)
    p_train, p_test = _perms(113, 4, 2)
    assert _in_file_order(x_train, y_train, p_train)[0] == [[5, 6], [7], [], [5, 5]]
    assert _in_file_order(x_test, y_test, p_test)[0] == [[], [6, 6, 6]]


def test_imdb_maxlen_keeps_sequences_strictly_shorter(imdb_file):
    (x_train, y_train), (x_test, y_test) = imdb.load_data(maxlen=4)
    p_train, p_test = _perms(113, 4, 2)
    # Shifted lengths 4, 3, 2, 5 (train) and 3, 4 (test): only lengths < 4 stay; then the
    # largest remaining index (11) becomes oov.
    kept = [i for i in p_train if i in (1, 2)]
    assert [list(s) for s in x_train] == [{1: [1, 7, 8], 2: [1, 9]}[i] for i in kept]
    assert list(y_train) == [IMDB_TRAIN_Y[i] for i in kept]
    assert [list(s) for s in x_test] == [[1, 4, 2]] and list(y_test) == [1]


def test_imdb_no_start_char_and_index_from(imdb_file):
    (x_train, y_train), (x_test, y_test) = imdb.load_data(start_char=None, index_from=0, num_words=100)
    p_train, p_test = _perms(113, 4, 2)
    assert _in_file_order(x_train, y_train, p_train)[0] == IMDB_TRAIN
    assert _in_file_order(x_test, y_test, p_test)[0] == IMDB_TEST


@pytest.mark.parametrize("kwargs, name", [
    ({"num_words": 0}, "num_words"), ({"num_words": -5}, "num_words"), ({"maxlen": 0}, "maxlen"),
    ({"skip_top": -1}, "skip_top"), ({"index_from": 1.5}, "index_from"), ({"oov_char": "x"}, "oov_char"),
])
def test_imdb_bad_arguments_name_the_argument(home, kwargs, name):
    with pytest.raises(ValueError, match=f"`{name}` must be .* Received: {name}="):
        imdb.load_data(**kwargs)


def test_imdb_maxlen_keeping_nothing_is_an_error(imdb_file):
    with pytest.raises(ValueError, match="maxlen=2"):
        imdb.load_data(maxlen=2)


def test_imdb_get_word_index(home, origin_dir, monkeypatch):
    (origin_dir / "imdb_word_index.json").write_text(json.dumps({"the": 1, "and": 2, "영화": 3}), encoding="utf-8")
    monkeypatch.setattr(imdb, "WORD_INDEX_ORIGIN", (origin_dir / "imdb_word_index.json").as_uri())
    monkeypatch.setattr(imdb, "WORD_INDEX_HASH", md5(origin_dir / "imdb_word_index.json"))
    assert imdb.get_word_index() == {"the": 1, "and": 2, "영화": 3}
    assert (home / "datasets" / "imdb_word_index.json").exists()


def test_imdb_malicious_npz_is_refused(home, origin_dir, monkeypatch, tmp_path):
    marker = str(tmp_path / "pwned")

    class Gadget:
        def __reduce__(self):
            return (os.mkdir, (marker,))

    evil = np.empty(1, dtype=object)
    evil[0] = Gadget()
    path = write_npz(origin_dir / "imdb.npz", x_train=evil, y_train=np.array([0]), x_test=evil, y_test=np.array([0]))
    monkeypatch.setattr(imdb, "ORIGIN", (origin_dir / "imdb.npz").as_uri())
    monkeypatch.setattr(imdb, "FILE_HASH", sha256(path))
    with pytest.raises(Exception, match="Refusing"):
        imdb.load_data()
    assert not os.path.exists(marker)


REUTERS_X = [[1, 2], [3, 4, 5], [6], [7, 8, 9, 10], [2]]
REUTERS_Y = [3, 4, 3, 19, 1]


@pytest.fixture
def reuters_file(home, origin_dir, monkeypatch):
    path = write_npz(origin_dir / "reuters.npz", x=object_array(REUTERS_X), y=np.array(REUTERS_Y))
    monkeypatch.setattr(reuters, "ORIGIN", (origin_dir / "reuters.npz").as_uri())
    monkeypatch.setattr(reuters, "FILE_HASH", sha256(path))
    return path


def _reuters_perm(seed):
    perm = np.arange(5)
    np.random.RandomState(seed).shuffle(perm)
    return perm


def test_reuters_one_shuffle_then_split(reuters_file):
    (x_train, y_train), (x_test, y_test) = reuters.load_data(test_split=0.4, num_words=100)
    perm = _reuters_perm(113)
    shifted = [[1] + [w + 3 for w in x] for x in REUTERS_X]
    # int(5 * (1 - 0.4)) = 3 training rows, taken after one shuffle of all five.
    assert [list(s) for s in x_train] == [shifted[i] for i in perm[:3]]
    assert [list(s) for s in x_test] == [shifted[i] for i in perm[3:]]
    assert list(y_train) == [REUTERS_Y[i] for i in perm[:3]] and list(y_test) == [REUTERS_Y[i] for i in perm[3:]]


def test_reuters_defaults_maxlen_and_vocabulary(reuters_file):
    (x_train, y_train), (x_test, y_test) = reuters.load_data(maxlen=4, skip_top=5, test_split=0.0)
    perm = _reuters_perm(113)
    # Shifted: [1,4,5] [1,6,7,8] [1,9] [1,10,11,12,13] [1,5]; maxlen 4 keeps lengths < 4
    # (rows 0, 2, 4); num_words=None -> the largest kept index, 9, and it becomes oov too.
    by_row = {0: [2, 2, 5], 2: [2, 2], 4: [2, 5]}
    assert [list(s) for s in x_train] == [by_row[i] for i in perm if i in by_row]
    assert list(y_train) == [REUTERS_Y[i] for i in perm if i in by_row]
    assert len(x_test) == 0 and len(y_test) == 0


def test_reuters_bad_test_split_and_empty_maxlen(reuters_file):
    with pytest.raises(ValueError, match="test_split=1.5"):
        reuters.load_data(test_split=1.5)
    with pytest.raises(ValueError, match="maxlen=2"):
        reuters.load_data(maxlen=2)


def test_reuters_word_index_and_label_names(home, origin_dir, monkeypatch):
    (origin_dir / "reuters_word_index.json").write_text(json.dumps({"the": 1, "of": 2}))
    monkeypatch.setattr(reuters, "WORD_INDEX_ORIGIN", (origin_dir / "reuters_word_index.json").as_uri())
    monkeypatch.setattr(reuters, "WORD_INDEX_HASH", md5(origin_dir / "reuters_word_index.json"))
    assert reuters.get_word_index() == {"the": 1, "of": 2}
    names = reuters.get_label_names()
    assert len(names) == 46 and names[3] == "earn" and names[4] == "acq" and names[-1] == "lead"


def test_published_origins_and_hashes_are_keras():
    assert imdb.ORIGIN == "https://storage.googleapis.com/tensorflow/tf-keras-datasets/imdb.npz"
    assert imdb.FILE_HASH == "69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"
    assert reuters.FILE_HASH == "d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"
    assert len(imdb.WORD_INDEX_HASH) == 32 and len(reuters.WORD_INDEX_HASH) == 32


@pytest.mark.parametrize("module", [imdb, reuters])
@pytest.mark.parametrize("content", ['["the", "of"]', '{"the": "1"}', '{"the": 1', '{"the": true}'])
def test_a_word_index_that_is_not_words_to_indices_is_refused(home, origin_dir, monkeypatch, module, content):
    # Both loaders read their index through one function, which checks what it returns
    name = f"{module.__name__.rsplit('.', 1)[-1]}_word_index.json"
    (origin_dir / name).write_text(content)
    monkeypatch.setattr(module, "WORD_INDEX_ORIGIN", (origin_dir / name).as_uri())
    monkeypatch.setattr(module, "WORD_INDEX_HASH", md5(origin_dir / name))
    with pytest.raises(ValueError, match="is not a word index"):
        module.get_word_index()
