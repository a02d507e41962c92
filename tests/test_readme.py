"""The README's code example runs as written and learns what it says it learns."""

import pathlib
import re

import pytest

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"


def test_readme_example_runs_and_learns(capsys):
    if not README.exists():
        pytest.skip("README.md is not next to the tests (installed elsewhere)")
    blocks = re.findall(r"```python\n(.*?)```", README.read_text(encoding="utf-8"), re.S)
    assert blocks, "README has no python example"
    namespace = {}
    exec(compile(blocks[0], str(README), "exec"), namespace)  # noqa: S102 - our own README
    loss, accuracy = namespace["model"].evaluate(namespace["x"], namespace["y"], verbose=0)
    assert accuracy > 0.95
    assert "Epoch 20/20" in capsys.readouterr().out
