"""The demo (`python -m pyminidl`, `pyminidl demo`) trains the shipped digits to > 90 % test accuracy."""

import re
import subprocess
import sys

import numpy as np

import pyminidl
from pyminidl.__main__ import main


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pyminidl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_demo_subprocess_reaches_90_percent(tmp_path):
    proc = _run("--epochs", "10", "--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"Test accuracy: ([0-9.]+) \(10 epochs, [0-9.]+ s\)", proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) > 0.9


def test_demo_shows_keras_progress_bar(tmp_path):
    proc = _run("--epochs", "2", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "Epoch 1/2" in proc.stdout and "Epoch 2/2" in proc.stdout
    assert re.search(r"\d+/\d+ .*accuracy: [0-9.]+ - loss: [0-9.]+", proc.stdout), proc.stdout


def test_main_in_process_and_bad_arguments(capsys):
    assert main(["demo", "--epochs", "1", "--quiet"]) == 0
    assert "Test accuracy:" in capsys.readouterr().out
    assert main(["--epochs", "0"]) == 2


def test_load_digits():
    x, y = pyminidl.datasets.load_digits()
    assert x.shape == (1797, 64) and x.dtype == np.float32 and y.shape == (1797,)
    assert x.min() == 0 and x.max() == 16 and sorted(set(y.tolist())) == list(range(10))
    assert np.bincount(y).min() > 170
    images, _ = pyminidl.datasets.load_digits(as_images=True)
    assert images.shape == (1797, 8, 8)
    x[0, 0] = 99  # callers get copies
    assert pyminidl.datasets.load_digits()[0][0, 0] == 0
