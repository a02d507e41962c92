"""text_dataset_from_directory: Keras's labels from subfolders, order, splits and label modes."""

import numpy as np
import pytest

from pyminidl.utils import text_dataset_from_directory


@pytest.fixture
def reviews(tmp_path):
    for label, texts in {"neg": ["별로예요", "bad", "awful"], "pos": ["좋아요", "great"]}.items():
        (tmp_path / label).mkdir()
        for i, t in enumerate(texts):
            (tmp_path / label / f"{i}.txt").write_text(t, encoding="utf-8")
    (tmp_path / "pos" / "notes.md").write_text("ignored")
    return tmp_path


def test_labels_from_subfolders_unshuffled(reviews, capsys):
    ds = text_dataset_from_directory(reviews, shuffle=False, batch_size=2)
    assert "Found 5 files belonging to 2 classes." in capsys.readouterr().out
    assert ds.class_names == ["neg", "pos"]
    texts, labels = zip(*[(t, y) for xb, yb in ds for t, y in zip(xb.tolist(), yb.tolist())])
    assert texts == ("별로예요", "bad", "awful", "좋아요", "great")
    assert labels == (0, 0, 0, 1, 1)
    assert next(iter(ds))[1].dtype == np.int32


def test_shuffle_is_seeded_and_splits_partition(reviews):
    a = text_dataset_from_directory(reviews, seed=3, batch_size=None, verbose=False)
    b = text_dataset_from_directory(reviews, seed=3, batch_size=None, verbose=False)
    assert [x for x, _ in a] == [x for x, _ in b]
    train, val = text_dataset_from_directory(reviews, seed=3, validation_split=0.4, subset="both",
                                             batch_size=None, verbose=False)
    seen = sorted(str(x) for x, _ in train) + sorted(str(x) for x, _ in val)
    assert len(list(val)) == 2 and sorted(seen) == sorted(["별로예요", "bad", "awful", "좋아요", "great"])


def test_label_modes_and_max_length(reviews):
    cat = text_dataset_from_directory(reviews, label_mode="categorical", shuffle=False, batch_size=5, verbose=False)
    np.testing.assert_array_equal(next(iter(cat))[1], np.eye(2)[[0, 0, 0, 1, 1]])
    binary = text_dataset_from_directory(reviews, label_mode="binary", shuffle=False, batch_size=5, verbose=False)
    assert next(iter(binary))[1].shape == (5, 1)
    short = text_dataset_from_directory(reviews, labels=None, shuffle=False, max_length=2, batch_size=5, verbose=False)
    assert next(iter(short)).tolist() == ["별로", "ba", "aw", "좋아", "gr"]


def test_errors(reviews):
    with pytest.raises(ValueError, match="label_mode"):
        text_dataset_from_directory(reviews, label_mode="sparse")
    with pytest.raises(ValueError, match="subset"):
        text_dataset_from_directory(reviews, validation_split=0.2)
    with pytest.raises(ValueError, match="directory"):
        text_dataset_from_directory(reviews / "missing")
    with pytest.raises(ValueError, match="len\\(labels\\)"):
        text_dataset_from_directory(reviews, labels=[0, 1], verbose=False)
