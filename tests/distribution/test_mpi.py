"""Multi-process tests: ``mpirun -np 2`` and ``-np 3`` on this host (skipped without mpi4py/mpirun).

Install the extra to run them: ``pip install "pyminidl[mpi]"``. Each job runs outside the
repository (the source folder would shadow the installed package). As root, Open MPI needs
OMPI_ALLOW_RUN_AS_ROOT=1 and OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1; ``--oversubscribe`` lets 3 ranks
share 2 cores.

Bound: after two epochs of Adam the weights, logs, evaluate and predict of N ranks differ from one
process on the same global batches by at most 1e-5 relative to the array's largest magnitude
(float32 gradients summed in another order, amplified by Adam's division by sqrt(v) on small
weights; measured up to 2e-6 on 3 ranks).
"""

import importlib.util
import os
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest

JOB = os.path.join(os.path.dirname(os.path.abspath(__file__)), "mpi_job.py")
BOUND = 1e-5


def _mpirun():
    local = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return local if os.path.exists(local) else shutil.which("mpirun")


pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("mpi4py") is None or _mpirun() is None,
    reason="needs mpi4py and mpirun: pip install 'pyminidl[mpi]'",
)


def _env():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    env.pop("OMP_NUM_THREADS", None)
    return env


def _launch(out, mode, ranks=None, timeout=60):
    cmd = [sys.executable, JOB, str(out), mode]
    if ranks is not None:
        cmd = [_mpirun(), "--oversubscribe", "-np", str(ranks)] + cmd
    return subprocess.run(cmd, cwd=out, env=_env(), capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def single(tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    done = _launch(out, "single")
    assert done.returncode == 0, done.stderr
    return np.load(out / "rank0.npz")


@pytest.mark.parametrize("ranks", [2, 3])
def test_ranks_agree_bitwise_and_match_one_process(tmp_path, single, ranks):
    done = _launch(tmp_path, "dp", ranks)
    assert done.returncode == 0, done.stdout + done.stderr
    results = [np.load(tmp_path / f"rank{r}.npz") for r in range(ranks)]
    for key in single.files:
        for r in range(1, ranks):
            assert np.array_equal(results[0][key], results[r][key]), f"{key}: rank {r} differs from rank 0"
        ref = single[key]
        err = np.max(np.abs(results[0][key] - ref)) / max(np.max(np.abs(ref)), 1e-30)
        assert err <= BOUND, f"{key}: {ranks} ranks vs one process, relative error {err:.2e}"
    # Only rank 0 writes files: one CSV log per model, complete.
    logs = sorted(p.name for p in tmp_path.glob("log_*.csv"))
    assert logs == sorted(f"log_{k.split('/')[0]}.csv" for k in single.files if k.endswith("/evaluate"))
    assert (tmp_path / "log_mlp.csv").read_text().count("\n") == 3


def test_mismatched_models_fail_naming_both(tmp_path):
    done = _launch(tmp_path, "mismatch", 2)
    assert done.returncode != 0
    assert "rank 0 has 259 parameters" in done.stderr and "rank 1 has 275 parameters" in done.stderr


@pytest.mark.parametrize("mode", ["raise", "kill"])
def test_a_rank_that_fails_stops_the_job(tmp_path, mode):
    start = time.monotonic()
    done = _launch(tmp_path, mode, 2, timeout=60)
    assert done.returncode != 0
    assert time.monotonic() - start < 30
    if mode == "raise":
        assert "rank 1 fails on purpose" in done.stderr
    assert not (tmp_path / "rank0.npz").exists()


def test_a_killed_job_resumes_from_its_backup_to_the_uninterrupted_weights(tmp_path):
    import pyminidl

    if not hasattr(pyminidl.callbacks, "BackupAndRestore"):
        pytest.skip("this build has no BackupAndRestore callback")
    whole, resumed = tmp_path / "whole", tmp_path / "resumed"
    whole.mkdir(), resumed.mkdir()
    assert _launch(whole, "backup", 2).returncode == 0
    killed = subprocess.run([_mpirun(), "-np", "2", sys.executable, JOB, str(resumed), "backup"], cwd=resumed,
                            env=dict(_env(), PYMINIDL_TEST_KILL="1"), capture_output=True, text=True, timeout=60)
    assert killed.returncode != 0 and (resumed / "backup" / "latest.keras").exists()
    done = _launch(resumed, "backup", 2)
    assert done.returncode == 0, done.stderr
    ref = np.load(whole / "rank0.npz")
    for rank in (0, 1):
        got = np.load(resumed / f"rank{rank}.npz")
        for key in ref.files:
            np.testing.assert_array_equal(got[key], ref[key], err_msg=f"rank {rank} {key}")
