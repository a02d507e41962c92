"""Progress output: Keras 3's verbose=0/1/2 text, and the Progbar itself."""

import re

import numpy as np
import pytest

from pyminidl import optimizers
from pyminidl.layers import Dense
from pyminidl.models import Sequential
from pyminidl.training import progbar
from pyminidl.training.progbar import Progbar, format_time, format_value

NUM = r"-?\d+\.\d{4}(e[+-]\d+)?"
TIME = r"\d+(s|ms|us)/step"
BAR = "━" * 20


def _fit(rng, capsys, **kwargs):
    x = rng.standard_normal((40, 3)).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int64)
    model = Sequential([Dense(2, activation="softmax", input_dim=3)])
    model.compile(optimizer=optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    capsys.readouterr()
    model.fit(x, y, batch_size=16, **kwargs)
    return model, x, y, capsys.readouterr().out


def test_verbose_0_prints_nothing(rng, capsys):
    model, x, y, out = _fit(rng, capsys, epochs=2, verbose=0, validation_split=0.25)
    assert out == ""
    model.evaluate(x, y, verbose=0)
    model.predict(x, verbose=0)
    assert capsys.readouterr().out == ""


def test_verbose_2_prints_one_line_per_epoch(rng, capsys):
    _, _, _, out = _fit(rng, capsys, epochs=3, verbose=2, validation_split=0.25)
    lines = out.splitlines()
    assert lines[0::2] == ["Epoch 1/3", "Epoch 2/3", "Epoch 3/3"]
    pattern = rf"^2/2 - \d+s - {TIME} - accuracy: {NUM} - loss: {NUM} - val_accuracy: {NUM} - val_loss: {NUM}$"
    assert len(lines) == 6
    for line in lines[1::2]:
        assert re.match(pattern, line), line


def test_verbose_1_prints_the_keras_bar(rng, capsys):
    _, _, _, out = _fit(rng, capsys, epochs=2, verbose=1)
    lines = out.splitlines()
    assert lines[0] == "Epoch 1/2" and lines[2] == "Epoch 2/2" and len(lines) == 4
    for line in lines[1::2]:
        assert re.match(rf"^3/3 {BAR} \d+s {TIME} - accuracy: {NUM} - loss: {NUM}$", line), line
    assert "\r" not in out and "\x1b" not in out  # not a terminal: no redraws, no colour codes


def test_verbose_auto_is_1_and_one_epoch_has_no_epoch_header(rng, capsys):
    model, x, y, out = _fit(rng, capsys, epochs=1)
    assert re.match(rf"^3/3 {BAR} \d+s {TIME} - accuracy: {NUM} - loss: {NUM}\n$", out), out
    model.evaluate(x, y, batch_size=8)
    assert re.match(rf"^5/5 {BAR} \d+s {TIME} - accuracy: {NUM} - loss: {NUM}\n$", capsys.readouterr().out)
    model.evaluate(x, y, batch_size=8, verbose=2)
    assert re.match(rf"^5/5 - \d+s - {TIME} - accuracy: {NUM} - loss: {NUM}\n$", capsys.readouterr().out)
    model.predict(x, batch_size=32)
    assert re.match(rf"^2/2 {BAR} \d+s {TIME}\n$", capsys.readouterr().out)


def test_final_values_are_the_epoch_logs(rng, capsys):
    model, _, _, out = _fit(rng, capsys, epochs=1, verbose=2)
    loss = model.history.history["loss"][0]
    assert f"loss: {format_value(loss)}" in out


def test_time_and_value_formats():
    assert format_time(0, "step") == " 0s/step"
    assert format_time(2.4, "step") == " 2s/step"
    assert format_time(0.0031, "step") == " 3ms/step"
    assert format_time(0.00085, "step") == " 850us/step"
    assert format_value(0.31704) == "0.3170"
    assert format_value(-1.5) == "-1.5000"
    assert format_value(1e-5) == "1.0000e-05"
    assert format_value(0.0) == "0.0000e+00"


def test_running_bar_on_a_terminal_shows_eta_and_redraws(capsys, monkeypatch):
    monkeypatch.setattr(progbar, "_is_interactive", lambda: True)
    monkeypatch.setenv("NO_COLOR", "1")
    bar = Progbar(target=12, interval=0.0)
    bar.update(1, [("loss", 1.0)])
    bar.update(5, [("loss", 3.0)])
    out = capsys.readouterr().out
    assert out.startswith("\r 1/12 ━╺━━━━━━━━━━━━━━━━━━ ")
    running = out.split("\r")[-1]
    # 8 of 20 done, the head marker, then the rest; ETA; the average weighted by steps
    assert re.match(rf"^ 5/12 {'━' * 8}╺{'━' * 11} \d+s {TIME} - loss: 2\.6000 *$", running), running
    bar.update(12, [("loss", 0.5)])
    final = capsys.readouterr().out
    assert re.match(rf"^\r12/12 {BAR} \d+s {TIME} - loss: 0\.5000 *\n$", final), final


def test_terminal_bar_uses_keras_colours(capsys, monkeypatch):
    monkeypatch.setattr(progbar, "_is_interactive", lambda: True)
    monkeypatch.delenv("NO_COLOR", raising=False)
    bar = Progbar(target=4, interval=0.0)
    bar.update(2)
    out = capsys.readouterr().out
    assert "\x1b[1m2/4\x1b[0m \x1b[32m" + "━" * 10 + "\x1b[0m\x1b[37m" + "━" * 10 + "\x1b[0m" in out


def test_unknown_target_and_verbose_2(capsys, monkeypatch):
    monkeypatch.setattr(progbar, "_is_interactive", lambda: True)
    bar = Progbar(target=None, interval=0.0)
    bar.update(3)
    assert "      3/Unknown" in capsys.readouterr().out
    quiet = Progbar(target=3, verbose=2)
    quiet.update(1, [("loss", 1.0)])
    assert capsys.readouterr().out == ""
    quiet.update(3, [("loss", 0.25)])
    assert re.match(rf"^3/3 - \d+s - {TIME} - loss: 0\.2500\n$", capsys.readouterr().out)


@pytest.mark.parametrize("verbose", [3, "loud"])
def test_bad_verbose(rng, verbose):
    model = Sequential([Dense(1, input_dim=3)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="verbose"):
        model.fit(np.zeros((2, 3)), np.zeros((2, 1)), verbose=verbose)
