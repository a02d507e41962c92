"""Run a snippet in a fresh interpreter and read the JSON it prints last: the tests of
process-wide state (the OpenMP team's contention rule, NumPy's BLAS threads) each need a
process of their own."""

import json
import os
import subprocess
import sys
import textwrap


def child_json(code, env, prelude, timeout=300):
    """``prelude`` then ``code`` (dedented) in ``sys.executable`` with os.environ updated by ``env``;
    asserts a clean exit and returns the JSON of the last line printed."""
    out = subprocess.run([sys.executable, "-c", prelude + textwrap.dedent(code)], env={**os.environ, **env},
                         capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout.strip().splitlines()[-1])
