import os

import pytest

import pyminidl
from pyminidl.backend import _compat


def test_cpu_features_reports_best_and_active():
    feats = pyminidl.config.cpu_features()
    assert feats["best"] in ("baseline", "avx2", "avx512")
    assert feats["active"] == feats["best"]


@pytest.mark.parametrize("cap", ["baseline", "avx2", "avx512"])
def test_set_cpu_capability_caps_the_path(cap):
    order = ["baseline", "avx2", "avx512"]
    best = pyminidl.config.cpu_features()["best"]
    active = pyminidl.config.set_cpu_capability(cap)
    assert active == order[min(order.index(cap), order.index(best))]
    assert pyminidl.config.cpu_features()["active"] == active


def test_set_cpu_capability_rejects_unknown():
    with pytest.raises(ValueError, match="avx512"):
        pyminidl.config.set_cpu_capability("sse9")


def test_set_num_threads_round_trip():
    pyminidl.config.set_num_threads(1)
    assert pyminidl.config.get_num_threads() == 1
    with pytest.raises(ValueError, match="Received: n=0"):
        pyminidl.config.set_num_threads(0)


def test_set_backend_unknown_lists_valid():
    with pytest.raises(ValueError, match="'numpy', 'cpu', 'cupy'"):
        pyminidl.config.set_backend("tpu")


def test_default_backend_is_cpu():
    assert _compat._C is not None
    assert pyminidl.backend.get_backend().name == "cpu"


def test_use_backend_is_scoped():
    with pyminidl.backend.use_backend("numpy") as be:
        assert be.name == "numpy" and pyminidl.backend.get_backend().name == "numpy"
    assert pyminidl.backend.get_backend().name == "cpu"


def test_cupy_backend_without_gpu_is_a_clear_error():
    if _compat.cupy_device_available():
        pytest.skip("a GPU is present")
    with pytest.raises(RuntimeError, match="CuPy"):
        pyminidl.config.set_backend("cupy")


def test_show_config_prints_openmp(capsys):
    pyminidl.show_config()
    out = capsys.readouterr().out
    assert "OpenMP" in out and "ISA" in out and "NumPy's BLAS threads: " in out


def test_cpu_backend_tunes_the_allocator_unless_told_not_to():
    import os
    import subprocess
    import sys

    code = "import pyminidl; print(pyminidl.backend.get_backend()._allocator_tuned)"
    here = os.path.dirname(__file__)
    env = {k: v for k, v in os.environ.items() if k != "PYMINIDL_TUNE_MALLOC"}
    run = lambda **extra: subprocess.run([sys.executable, "-c", code], env=dict(env, **extra), cwd=here,
                                         capture_output=True, text=True, check=True).stdout.strip()
    assert run(PYMINIDL_TUNE_MALLOC="0") == "False"
    if sys.platform.startswith("linux") and not os.environ.get("PYMINIDL_SANITIZED"):  # ASan's malloc has no mallopt
        assert run() == "True"  # by default
        assert run(PYMINIDL_TUNE_MALLOC="1") == "True"
        assert run(MALLOC_MMAP_THRESHOLD_="65536") == "False"  # the user's own settings win
        assert run(MALLOC_TRIM_THRESHOLD_="65536") == "False"


def test_cpu_features_reports_caches_and_gemm_blocks():
    feats = pyminidl.config.cpu_features()
    assert set(feats["caches"]) == {"l1d", "l2", "l3", "source"}
    gemm = feats["gemm"]
    assert gemm["isa"] == feats["active"]
    for dtype in ("float32", "float64"):
        b = gemm[dtype]
        assert b["MC"] % b["MR"] == 0 and b["NC"] % b["NR"] == 0 and b["KC"] > 0


def test_show_config_names_caches_and_blocks(capsys):
    pyminidl.show_config()
    out = capsys.readouterr().out
    assert "caches (" in out and "GEMM (" in out and "KC=" in out


def _wait_policy_in_child(env):
    import subprocess
    import sys

    code = ("import os, pyminidl; e = os.environ; "
            "print(e.get('OMP_WAIT_POLICY'), e.get('GOMP_SPINCOUNT'), pyminidl.backend._compat.WAIT_POLICY_SET)")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))  # not the source tree
    return out.stdout.split()


def test_a_short_spin_unless_the_user_chose():
    import os

    from pyminidl.backend._compat import DEFAULT_SPINCOUNT

    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    assert _wait_policy_in_child(base) == ["None", DEFAULT_SPINCOUNT, "True"]
    assert _wait_policy_in_child(dict(base, OMP_WAIT_POLICY="passive")) == ["passive", "None", "False"]
    assert _wait_policy_in_child(dict(base, OMP_WAIT_POLICY="active")) == ["active", "None", "False"]
    assert _wait_policy_in_child(dict(base, GOMP_SPINCOUNT="1000")) == ["None", "1000", "False"]


def _spin_window_in_child(env):
    import subprocess
    import sys

    code = "import pyminidl; print(pyminidl.backend._compat._C.build_info()['team_spin_window_us'])"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=os.path.dirname(os.path.abspath(__file__)))
    return float(out.stdout.split()[-1])


def test_spin_window_follows_the_wait_policy():
    # How long after a region the GEMM counts the workers as awake (team.h): half the time of
    # GOMP_SPINCOUNT's PAUSEs, none under the passive policy or a count libgomp cannot read,
    # without end under the active one.
    base = {k: v for k, v in os.environ.items() if k not in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT")}
    short = _spin_window_in_child(base)  # pyminidl's own GOMP_SPINCOUNT
    assert 0 < short < 1e5
    assert _spin_window_in_child(dict(base, OMP_WAIT_POLICY="passive")) == 0
    assert _spin_window_in_child(dict(base, GOMP_SPINCOUNT="lots")) == 0
    assert _spin_window_in_child(dict(base, GOMP_SPINCOUNT="infinite")) >= 1e12
    assert _spin_window_in_child(dict(base, OMP_WAIT_POLICY="active")) >= 1e12
    assert 0 < _spin_window_in_child(dict(base, GOMP_SPINCOUNT="2k")) < short
