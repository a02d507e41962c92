"""A fork() child of a process that trained runs kernels (serially: libgomp's pool stays in
the parent), in a bare os.fork() and in a multiprocessing Pool of the 'fork' context.

Each scenario runs in a fresh interpreter under a timeout, so a regression (the child
hanging forever in its first parallel kernel) fails the test instead of hanging the suite."""

import os
import subprocess
import sys
import textwrap

import pytest

from pyminidl.backend._compat import _C

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="no fork() on Windows")

_SETUP = """
import os, multiprocessing
import numpy as np
from pyminidl import _C, layers, models
_C.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.random((4096, 64), dtype=np.float32)
y = x.sum(axis=1, keepdims=True)
model = models.Sequential([layers.Input(shape=(64,)), layers.Dense(256, activation="relu"), layers.Dense(1)])
model.compile(optimizer="adam", loss="mse")
model.fit(x, y, epochs=1, batch_size=512, verbose=0)  # big enough batches to start OpenMP's pool
want = model.predict(x, verbose=0)

def work(_=None):
    got = model.predict(x, verbose=0)
    assert np.allclose(got, want, rtol=1e-5, atol=1e-5), "child predicted other values"
    model.fit(x, y, epochs=1, batch_size=512, verbose=0)
    return _C.get_num_threads()
"""


def _run(body):
    code = _SETUP + textwrap.dedent(body)
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                         cwd=os.path.dirname(os.path.abspath(__file__)))  # not the source tree


def test_forked_child_predicts_and_fits():
    out = _run("""
        pid = os.fork()
        if pid == 0:
            try:
                threads = work()
                try:
                    _C.set_num_threads(2)
                    os._exit(3)
                except ValueError as e:
                    assert "fork() child" in str(e)
                os._exit(0 if threads == 1 else 2)
            except BaseException:
                os._exit(1)
        _, status = os.waitpid(pid, 0)
        assert os.waitstatus_to_exitcode(status) == 0, status
        assert work() == 2  # the parent keeps its threads
        print("ok")
    """)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


def test_fork_pool_workers_predict_and_fit():
    out = _run("""
        with multiprocessing.get_context("fork").Pool(2, maxtasksperchild=1) as pool:  # each task a fresh fork
            assert pool.map(work, range(4)) == [1, 1, 1, 1]
        print("ok")
    """)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr[-2000:]


@pytest.mark.skipif(not _C.build_info()["openmp"], reason="serial build: no thread pool to lose")
def test_spawned_workers_keep_their_threads():
    out = _run("""
        if __name__ == "__main__":
            with multiprocessing.get_context("spawn").Pool(1) as pool:
                print(pool.apply(_C.get_num_threads) >= 1)
    """)
    assert out.returncode == 0 and out.stdout.strip() == "True", out.stderr[-2000:]
