"""model.summary(): Keras 3's table, parameter counts and sizes."""

import numpy as np
import pytest

import pyminidl
from pyminidl import layers
from pyminidl.models import Sequential

EXPECTED_151 = '''Model: "sequential"
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━━━━━┓
┃ Layer (type)                    ┃ Output Shape           ┃       Param # ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━━━━━┩
│ dense (Dense)                   │ (None, 10)             │            30 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_1 (Dense)                 │ (None, 10)             │           110 │
├─────────────────────────────────┼────────────────────────┼───────────────┤
│ dense_2 (Dense)                 │ (None, 1)              │            11 │
└─────────────────────────────────┴────────────────────────┴───────────────┘
 Total params: 151 (604.00 B)
 Trainable params: 151 (604.00 B)
 Non-trainable params: 0 (0.00 B)
'''


@pytest.fixture(autouse=True)
def _fresh_names():
    layers.clear_session()


def _text(model, **kwargs):
    out = []
    model.summary(print_fn=out.append, **kwargs)
    assert len(out) == 1
    return out[0]


def test_exact_keras3_table_for_151_params():
    model = Sequential([layers.Dense(10, input_dim=2), layers.Dense(10), layers.Dense(1)])
    assert _text(model, line_length=76) == EXPECTED_151


def test_default_width_follows_terminal(monkeypatch, capsys):
    monkeypatch.setenv("COLUMNS", "80")
    model = Sequential([layers.Dense(10, input_dim=2), layers.Dense(10), layers.Dense(1)])
    model.summary()
    assert capsys.readouterr().out == EXPECTED_151
    monkeypatch.setenv("COLUMNS", "200")
    lines = _text(model).splitlines()
    assert {len(line) for line in lines[1:-3]} == {88}


def test_sizes_thousands_and_non_trainable():
    model = Sequential([pyminidl.Input((784,)), layers.Dense(128, activation="relu"), layers.Dense(10)],
                       name="mnist")
    model.layers[1].trainable = False
    text = _text(model, line_length=76)
    assert text.startswith('Model: "mnist"\n')
    assert "│ dense (Dense)                   │ (None, 128)            │       100,480 │" in text
    assert " Total params: 101,770 (397.54 KB)\n" in text
    assert " Trainable params: 100,480 (392.50 KB)\n" in text
    assert " Non-trainable params: 1,290 (5.04 KB)\n" in text


def test_unbuilt_layers_show_question_marks():
    model = Sequential([layers.Dense(4)])
    text = _text(model, line_length=76)
    assert "│ dense (Dense)                   │ ?                      │   0 (unbuilt) │" in text
    assert " Total params: 0 (0.00 B)" in text


def test_flatten_dropout_shapes():
    model = Sequential([pyminidl.Input((28, 28)), layers.Flatten(), layers.Dropout(0.2), layers.Dense(10)])
    text = _text(model, line_length=76)
    assert "│ flatten (Flatten)               │ (None, 784)            │             0 │" in text
    assert "│ dropout (Dropout)               │ (None, 784)            │             0 │" in text
    assert "│ dense (Dense)                   │ (None, 10)             │         7,850 │" in text


def test_show_trainable_and_empty_model():
    model = Sequential([layers.Dense(2, input_dim=3)])
    lines = _text(model, line_length=100, show_trainable=True).splitlines()
    assert lines[2].endswith("┃ Traina… ┃")  # rich cuts the header to the column, as in Keras 3
    assert lines[4].endswith("│    Y    │")
    empty = _text(Sequential(name="e"), line_length=76).splitlines()
    assert empty[0] == 'Model: "e"' and empty[3].startswith("┡") and empty[4].startswith("└")


def test_long_names_wrap_in_their_cell():
    model = Sequential([layers.Dense(2, input_dim=3, name="a_really_long_layer_name_for_wrapping")])
    lines = _text(model, line_length=60).splitlines()
    assert len({len(line) for line in lines[1:-3]}) == 1
    assert any("(Dense)" in line for line in lines[4:6])


def test_float64_sizes():
    model = Sequential([layers.Dense(10, input_dim=2, dtype="float64")])
    assert " Total params: 30 (240.00 B)" in _text(model, line_length=76)


def test_optimizer_params_after_fit():
    model = Sequential([layers.Dense(10, input_dim=2), layers.Dense(10), layers.Dense(1)])
    model.compile(optimizer="adam", loss="mse")
    model.fit(np.zeros((4, 2), np.float32), np.zeros((4, 1), np.float32), epochs=1, verbose=0)
    text = _text(model, line_length=76)
    assert " Optimizer params: 304 (1.19 KB)\n" in text and " Total params: 455 (1.78 KB)\n" in text


def test_expand_nested_rows():
    inner = Sequential([layers.Dense(3)], name="inner")
    model = Sequential([pyminidl.Input((2,)), inner, layers.Dense(1)])
    text = _text(model, line_length=76, expand_nested=True)
    assert "│ inner (Sequential)              │ (None, 3)              │             9 │" in text
    assert "│    └ dense (Dense)              │ (None, 3)              │             9 │" in text


def test_rich_wrapping_rules():
    from pyminidl.models.summary_utils import _wrap

    assert _wrap("   └ dense (Dense)", 15) == ["   └ dense", "(Dense)"]
    assert _wrap("conv2d_with_some_long_name (Conv2D)", 17) == ["conv2d_with_some…", "(Conv2D)"]
    assert _wrap("0 (unbuilt)", 4) == ["0", "(un…"]
    assert _wrap("", 5) == [""]
