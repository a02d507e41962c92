"""examples/text_classification.py runs offline and reaches its stated accuracy."""

import importlib.util
import pathlib

import numpy as np

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "text_classification.py"


def _load():
    spec = importlib.util.spec_from_file_location("example_text_classification", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_lesson_steps_shapes_and_korean_share():
    example = _load()
    texts, labels = example.make_reviews(400, seed=1)
    korean = sum(any("\uac00" <= c <= "\ud7a3" for c in t) for t in texts)
    assert 0.2 < korean / len(texts) < 0.5 and set(np.unique(labels)) == {0.0, 1.0}
    cleaned, padded = example.lesson_steps(texts, verbose=0)
    assert padded.shape[0] == 400 and padded.shape[1] < max(len(c.split()) for c in cleaned)
    assert not any("<" in c or "  " in c for c in cleaned)


def test_example_reaches_stated_accuracy():
    assert _load().main(verbose=0) >= 0.95
