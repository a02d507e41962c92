"""image_dataset_from_directory on folders the tests write: labels, modes, splits, seeds, errors; and the
image-folder example trains above chance."""

import importlib.util
import pathlib

import numpy as np
import pytest

pytest.importorskip("PIL")

from pyminidl import utils  # noqa: E402
from pyminidl.preprocessing import image_dataset_from_directory  # noqa: E402
from pyminidl.testing import assert_close  # noqa: E402

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture
def folder(tmp_path):
    """cats/ (3 png, 2 jpg) and dogs/ (4 png), each image a constant colour encoding its class and index."""
    for cls, count in (("cats", 5), ("dogs", 4)):
        (tmp_path / cls).mkdir()
        for i in range(count):
            value = (100 if cls == "cats" else 200) + i
            ext = "jpg" if cls == "cats" and i >= 3 else "png"
            utils.save_img(tmp_path / cls / f"{i}.{ext}", np.full((10 + i, 14, 3), value, np.uint8), scale=False)
    (tmp_path / "dogs" / "readme.txt").write_text("not an image: skipped")
    return tmp_path


def _collect(ds):
    xs, ys = zip(*list(ds))
    return np.concatenate(xs), np.concatenate(ys)


def test_labels_follow_the_subfolders(folder, capsys):
    ds = image_dataset_from_directory(folder, image_size=(8, 8), batch_size=4, shuffle=False)
    assert "Found 9 files belonging to 2 classes." in capsys.readouterr().out
    assert ds.class_names == ["cats", "dogs"] and len(ds.file_paths) == 9
    x, y = _collect(ds)
    assert x.shape == (9, 8, 8, 3) and x.dtype == np.float32 and y.dtype == np.int32
    np.testing.assert_array_equal(y, [0] * 5 + [1] * 4)
    png_cats = x[:3, 4, 4, 0]
    np.testing.assert_array_equal(png_cats, [100, 101, 102])  # constant images stay exact through the resize
    assert np.all(np.abs(x[:5] - 100) < 8) and np.all(x[5:] >= 199)  # jpg is lossy, but close


def test_label_modes_color_modes_and_class_names(folder):
    ds = image_dataset_from_directory(folder, label_mode="categorical", class_names=["dogs", "cats"],
                                      color_mode="grayscale", image_size=(5, 6), batch_size=None, shuffle=False,
                                      verbose=False)
    x, y = next(iter(ds))
    assert x.shape == (5, 6, 1) and ds.class_names == ["dogs", "cats"]
    np.testing.assert_array_equal(y, [1.0, 0.0])  # the first file is a dog (dogs is class 0 now)
    binary = image_dataset_from_directory(folder, label_mode="binary", image_size=(4, 4), verbose=False,
                                          shuffle=False)
    assert next(iter(binary))[1].shape == (9, 1)
    images_only = image_dataset_from_directory(folder, labels=None, image_size=(4, 4), color_mode="rgba",
                                               verbose=False, shuffle=False)
    batch = next(iter(images_only))
    assert batch.shape == (9, 4, 4, 4) and (batch[..., 3] == 255).all()
    given = image_dataset_from_directory(folder, labels=list(range(9)), image_size=(4, 4), verbose=False,
                                         shuffle=False)
    np.testing.assert_array_equal(_collect(given)[1], np.arange(9))


def test_split_is_fixed_by_the_seed_and_disjoint(folder):
    def split(seed):
        return image_dataset_from_directory(folder, image_size=(4, 4), validation_split=0.34, subset="both",
                                            seed=seed, verbose=False)

    train, val = split(3)
    assert len(train.file_paths) == 6 and len(val.file_paths) == 3
    assert not set(train.file_paths) & set(val.file_paths)
    again_train, again_val = split(3)
    assert again_val.file_paths == val.file_paths
    np.testing.assert_array_equal(_collect(train)[0], _collect(again_train)[0])  # same seed: same epoch order
    only_val = image_dataset_from_directory(folder, image_size=(4, 4), validation_split=0.34, subset="validation",
                                            seed=3, verbose=False)
    assert only_val.file_paths == val.file_paths
    x, y = _collect(val)
    for image, label in zip(x, y):  # labels travel with their images through the shuffles
        assert (image[0, 0, 0] >= 190) == (label == 1)


def test_crop_and_pad_to_aspect_ratio(folder):
    ds = image_dataset_from_directory(folder / "dogs", labels=None, image_size=(6, 6), pad_to_aspect_ratio=True,
                                      shuffle=False, verbose=False)
    x = next(iter(ds))
    assert x[0, 0, 0, 0] == 0 and x[0, 3, 3, 0] == 200  # padded rows are zeros, the image in the middle
    cropped = next(iter(image_dataset_from_directory(folder / "dogs", labels=None, image_size=(6, 6),
                                                     crop_to_aspect_ratio=True, shuffle=False, verbose=False)))
    assert_close(cropped, np.full((4, 6, 6, 3), 200.0) + np.arange(4)[:, None, None, None], k=1)


def test_bad_directories_and_arguments(tmp_path, folder):
    with pytest.raises(ValueError, match="missing"):
        image_dataset_from_directory(tmp_path / "missing")
    flat = tmp_path / "flat"
    flat.mkdir()
    utils.save_img(flat / "a.png", np.zeros((4, 4, 3)))
    with pytest.raises(ValueError, match=r"flat.*has no class subfolders.*1 image files"):
        image_dataset_from_directory(flat)
    empty = tmp_path / "empty" / "cls"
    empty.mkdir(parents=True)
    with pytest.raises(ValueError, match="No images found in directory"):
        image_dataset_from_directory(tmp_path / "empty")
    with pytest.raises(ValueError, match=r"image_size=\(0, 8\)"):
        image_dataset_from_directory(folder, image_size=(0, 8))
    with pytest.raises(ValueError, match="label_mode='sparse'"):
        image_dataset_from_directory(folder, label_mode="sparse")
    with pytest.raises(ValueError, match=r"class_names=\['cats'\]"):
        image_dataset_from_directory(folder, class_names=["cats"])
    with pytest.raises(ValueError, match="`validation_split` must be set"):
        image_dataset_from_directory(folder, subset="training")
    (folder / "cats" / "broken.png").write_bytes(b"\x89PNG not really")
    ds = image_dataset_from_directory(folder, image_size=(4, 4), verbose=False)
    with pytest.raises(ValueError, match=r"broken\.png"):
        list(ds)


def test_image_folder_example_trains_above_chance():
    spec = importlib.util.spec_from_file_location("image_folder_classifier", EXAMPLES / "image_folder_classifier.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    accuracy, names = module.main(verbose=0, seed=0)
    assert names == ["circle", "square", "triangle"]
    assert accuracy > 0.5  # chance is 1/3
