"""NumPy's OpenBLAS runs its threaded calls on pyminidl's OpenMP team (csrc/blas_threads.h):
the same results, bit for bit, every job of a call at once, and a fork() child or the opt-out
gives OpenBLAS its own threads back."""

import os
import threading

import numpy as np
import pytest
from childproc import child_json

from pyminidl.backend import get_backend
from pyminidl.backend._compat import _C

pytestmark = pytest.mark.sanitize


def _numpy_blas():
    """(name, version tuple) of the BLAS NumPy was built against, or (None, ())."""
    try:
        blas = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
    except (KeyError, TypeError):
        return None, ()
    version = tuple(int(p) for p in str(blas.get("version", "")).split(".")[:3] if p.isdigit())
    return str(blas.get("name", "")).lower(), version


NAME, VERSION = _numpy_blas()
TAKES_CALLBACK = NAME is not None and "openblas" in NAME and VERSION >= (0, 3, 27)
needs_callback = pytest.mark.skipif(not TAKES_CALLBACK, reason=f"NumPy's BLAS ({NAME} {VERSION}) takes no threads callback")


def _child(code, **env):
    """Run ``code`` in a fresh interpreter (2 threads); returns the JSON it prints last."""
    prelude = ("import json, os\nimport numpy as np\nfrom pyminidl.backend import get_backend\n"
               "from pyminidl.backend._compat import _C\n")
    return child_json(code, {"OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2", **env}, prelude, timeout=120)


def _numpy_work(rng):
    """Threaded OpenBLAS calls of several kinds: products of each float type, a transposed
    operand, a matrix-vector product and a solve."""
    out = []
    for dtype in (np.float32, np.float64, np.complex64):
        a = rng.standard_normal((300, 517)).astype(dtype)
        b = rng.standard_normal((517, 263)).astype(dtype)
        out += [a @ b, a.T @ a[:, :200], a @ b[:, 0]]
    m = rng.standard_normal((400, 400)) + 400 * np.eye(400)
    out.append(np.linalg.solve(m, rng.standard_normal(400)))
    return out


@needs_callback
def test_the_cpu_backend_hands_numpy_openblas_its_team():
    get_backend()  # the cpu backend shares when it starts (the suite's default backend)
    shared = _C.blas_threads_state()["shared"]
    assert shared and all("openblas" in os.path.basename(p) for p in shared)


@needs_callback
def test_numpy_results_keep_their_bits_on_the_shared_team():
    try:
        assert _C.share_blas_threads(False) == []
        own = _numpy_work(np.random.default_rng(7))
        assert _C.share_blas_threads(True)
        before = _C.blas_threads_state()["calls_run"]
        shared = _numpy_work(np.random.default_rng(7))
        assert _C.blas_threads_state()["calls_run"] > before  # the products did run here
    finally:
        _C.share_blas_threads(True)
    for o, s in zip(own, shared):
        assert o.dtype == s.dtype and np.array_equal(o, s)


@pytest.mark.parametrize("inside_region", [False, True])
@pytest.mark.parametrize("jobs", [1, 2, 3, 5])
def test_every_job_of_a_call_runs_at_once(jobs, inside_region):
    # OpenBLAS's jobs wait for each other; from inside another region, where a nested team
    # gets one thread, the jobs past it need threads of their own.
    assert _C.blas_jobs_probe(jobs, inside_region)


def test_blas_jobs_probe_refuses_a_job_count_out_of_range():
    for jobs in (0, -1, 65):
        with pytest.raises(ValueError, match=r"blas_jobs_probe.*1 <= jobs <= 64.*Received: jobs="):
            _C.blas_jobs_probe(jobs)


@needs_callback
def test_numpy_from_several_python_threads_at_once():
    a = np.random.default_rng(1).standard_normal((384, 384)).astype(np.float32)
    want = a @ a
    errors = []

    def products():
        for _ in range(20):
            if not np.array_equal(a @ a, want):
                errors.append("differs")

    workers = [threading.Thread(target=products) for _ in range(3)]
    for w in workers:
        w.start()
    for _ in range(20):
        get_backend().gemm(a, a)
    for w in workers:
        w.join(timeout=60)
    assert not any(w.is_alive() for w in workers) and not errors


@needs_callback
@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_fork_child_gives_openblas_its_own_threads_back():
    got = _child("""
        get_backend()
        a = np.random.default_rng(0).standard_normal((512, 512))
        want = a @ a
        parent = _C.blas_threads_state()["shared"]
        read, write = os.pipe()
        pid = os.fork()
        if pid == 0:
            ok = np.array_equal(a @ a, want) and _C.blas_threads_state()["shared"] == []
            os.write(write, b"1" if ok else b"0")
            os._exit(0)
        os.waitpid(pid, 0)
        print(json.dumps({"parent": parent, "child_ok": os.read(read, 1) == b"1",
                          "parent_after": np.array_equal(a @ a, want)}))
    """)
    assert got["parent"] and got["child_ok"] and got["parent_after"]


def test_the_opt_out_leaves_openblas_its_own_threads():
    got = _child("""
        get_backend()
        a = np.ones((512, 512))
        a @ a
        print(json.dumps(_C.blas_threads_state()))
    """, PYMINIDL_SHARE_BLAS_THREADS="0")
    assert got == {"shared": [], "calls_run": 0}
