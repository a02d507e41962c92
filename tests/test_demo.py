"""The demo (`python -m pyminidl`, `pyminidl demo`) trains a CNN on the shipped digits to >= 97 % test accuracy."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest

import pyminidl
from pyminidl.__main__ import main


def _run(*args, cwd):
    return subprocess.run([sys.executable, "-m", "pyminidl", *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_demo_subprocess_reaches_97_percent_on_the_cpp_kernels(tmp_path):
    proc = _run("--quiet", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    match = re.search(r"Test accuracy: ([0-9.]+) \(20 epochs, [0-9.]+ s, (.*)\)", proc.stdout)
    assert match, proc.stdout
    assert float(match.group(1)) >= 0.97
    if pyminidl.backend._compat._C is not None:
        assert match.group(2).startswith("cpu backend, "), match.group(2)


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


REPO_ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.skipif(pyminidl.backend._compat._C is None, reason="the extension is not built here")
def test_readme_command_from_the_repository_root_runs_the_cpp_kernels():
    # From the root, `python -m pyminidl` imports the source folder; after a plain `pip install .`
    # that folder has no extension, and the installed copy's extension must be found.
    if not (REPO_ROOT / "pyproject.toml").is_file():
        pytest.skip("the tests do not sit in a source checkout")
    env = {k: v for k, v in os.environ.items() if k != "PYMINIDL_BACKEND"}
    proc = subprocess.run([sys.executable, "-m", "pyminidl", "config"], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, env=env)
    assert proc.returncode == 0, proc.stderr
    assert "backend: cpu" in proc.stdout, proc.stdout + proc.stderr


def test_source_folder_without_extension_says_how_to_fix_it(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'pyminidl'\n")
    (tmp_path / "pyminidl").mkdir()
    monkeypatch.setattr(pyminidl.backend._compat, "_PACKAGE_DIR", tmp_path / "pyminidl")
    message = str(pyminidl.backend._compat._missing_extension_error(ImportError("cannot import name '_C'")))
    assert "source folder" in message and "pip install" in message and "circular" not in message
