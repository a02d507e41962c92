"""GEMM blocks derived from the reported caches: valid for any cache sizes, and the results
stay equal to the reference (within assert_close's bound) and independent of the thread count.

The C++ test hook _C._gemm_set_caches rebuilds every path's context as if the CPU reported
the given (L1d, L2, L3) sizes; 0 stands for a level the CPU did not report.
"""

import os
import subprocess
import sys

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

KIB, MIB = 1024, 1024 * 1024
CACHES = {
    "small L2": (32 * KIB, 64 * KIB, 2 * MIB),
    "tiny L1": (8 * KIB, 128 * KIB, 0),
    "huge L2": (64 * KIB, 32 * MIB, 512 * MIB),
    "missing": (0, 0, 0),
    "L1 only": (48 * KIB, 0, 0),
    # Two threads' private B panels overflow this L3: the team's NC shrinks to its floor.
    "tiny L3": (32 * KIB, 256 * KIB, 512 * KIB),
    # Sapphire Rapids as a 2-core VM reports it: 48 KiB L1d and 2 MiB L2 per core, 105 MiB L3.
    "sapphire rapids": (48 * KIB, 2 * MIB, 105 * MIB),
}
# The float32 blocks (MC, KC, NC) the rule gives on the machines its shares were measured on
# (csrc/gemm.cpp, BlockRule): a change of the rule must keep them or say why.
MEASURED_BLOCKS = [
    ("zen 4", "avx512", (32 * KIB, 1 * MIB, 32 * MIB), (240, 384, 4096)),
    ("zen 3", "avx2", (32 * KIB, 512 * KIB, 32 * MIB), (126, 256, 4096)),
    # KC x NR = 72 KiB of B streams from L2 here too; MC in 192-480, KC in 288-768 and NC 3072
    # measured the same within the noise at 1024^3 and 2048^3 (1 thread, CPU time).
    ("sapphire rapids", "avx512", (48 * KIB, 2 * MIB, 105 * MIB), (312, 576, 8960)),
    ("sapphire rapids", "avx2", (48 * KIB, 2 * MIB, 105 * MIB), (336, 384, 8960)),
]
ISAS = ["baseline", "avx2", "avx512"]
# Several KC and MC blocks under the smallest blocks, tails off every tile.
SHAPES = [(263, 301, 777), (700, 37, 300), (50, 900, 129)]


@pytest.fixture
def caches(request):
    _C._gemm_set_caches(CACHES[request.param])
    yield CACHES[request.param]
    _C._gemm_set_caches(None)


def _ref(a, b, ta, tb):
    return Backend().gemm(a.astype(np.float64), b.astype(np.float64), ta, tb)


@pytest.mark.parametrize("caches", list(CACHES), indirect=True)
@pytest.mark.parametrize("isa", ISAS)
def test_blocks_are_valid(caches, isa):
    cfg = _C.gemm_config(isa)
    assert cfg["caches"]["l1d"] == caches[0] and cfg["caches"]["l2"] == caches[1]
    for dtype in ("float32", "float64"):
        b = cfg[dtype]
        assert b["MC"] % b["MR"] == 0 and b["NC"] % b["NR"] == 0
        assert b["MR"] <= b["MC"] <= 4096 and 64 <= b["KC"] <= 2048 and 4 * b["NR"] <= b["NC"] <= 16384
    assert cfg["direct_a_bytes"] > 0


@pytest.mark.parametrize("caches", list(CACHES), indirect=True)
@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_results_match_reference_for_any_caches(caches, isa, dtype, rng):
    pyminidl.config.set_cpu_capability(isa)
    for m, n, k in SHAPES:
        for ta, tb in [(False, False), (True, False), (False, True)]:
            a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
            b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
            pyminidl.config.set_num_threads(1)
            one = _C.gemm(a, b, ta, tb)
            pyminidl.config.set_num_threads(2)
            two = _C.gemm(a, b, ta, tb)
            assert_close(one, _ref(a, b, ta, tb), k=k)
            np.testing.assert_array_equal(one, two)


def test_blocks_follow_the_caches():
    # A bigger L2 gives a bigger MC x KC block of A; a bigger L1 a longer KC.
    _C._gemm_set_caches((32 * KIB, 256 * KIB, 8 * MIB))
    small = _C.gemm_config("avx2")["float32"]
    _C._gemm_set_caches((64 * KIB, 2 * MIB, 8 * MIB))
    big = _C.gemm_config("avx2")["float32"]
    _C._gemm_set_caches(None)
    assert big["KC"] > small["KC"] and big["MC"] * big["KC"] > small["MC"] * small["KC"]


@pytest.mark.parametrize("machine,isa,caches,want", MEASURED_BLOCKS, ids=[f"{m[0]}-{m[1]}" for m in MEASURED_BLOCKS])
def test_blocks_on_measured_machines(machine, isa, caches, want):
    _C._gemm_set_caches(caches)
    try:
        b = _C.gemm_config(isa)["float32"]
    finally:
        _C._gemm_set_caches(None)
    assert (b["MC"], b["KC"], b["NC"]) == want, machine


def test_env_override_sets_the_blocks(tmp_path):
    code = ("import pyminidl, numpy as np; g = pyminidl.config.cpu_features()['gemm'];"
            "b = g['float32']; print(g['blocks_from'], b['MC'], b['KC'], b['NC'], b['MR'], b['NR']);"
            "from pyminidl.backend._compat import _C; a = np.ones((100, 300), np.float32);"
            "print(float(_C.gemm(a, a.T)[0, 0]))")
    env = dict(os.environ, PYMINIDL_GEMM_BLOCKS="50,100,200")
    # Run outside the repository: its source folder would shadow the installed package.
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True,
                         cwd=tmp_path)
    first, second = out.stdout.split("\n")[:2]
    from_, mc, kc, nc, mr, nr = first.split()
    mr, nr = int(mr), int(nr)
    assert from_ == "PYMINIDL_GEMM_BLOCKS" and int(kc) == 100
    assert int(mc) == -(-50 // mr) * mr and int(nc) == -(-200 // nr) * nr
    assert float(second) == 300.0


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("grid_rows", ["1", "2"])
def test_every_thread_grid_gives_the_same_bits(isa, grid_rows, monkeypatch, rng):
    # PYMINIDL_GEMM_GRID fixes the grid (read when the contexts are rebuilt): 1 x 2 and 2 x 1
    # split C differently, yet tiles and KC blocks, hence every sum, stay the same.
    pyminidl.config.set_cpu_capability(isa)
    pyminidl.config.set_num_threads(2)
    shapes = [(263, 301, 777), (784, 256, 128), (37, 1100, 300)]
    cases = [(rng.standard_normal((m, k)).astype(np.float32), rng.standard_normal((k, n)).astype(np.float32))
             for m, n, k in shapes]
    derived = [_C.gemm(a, b) for a, b in cases]
    monkeypatch.setenv("PYMINIDL_GEMM_GRID", grid_rows)
    _C._gemm_set_caches(None)
    try:
        for (a, b), want in zip(cases, derived):
            np.testing.assert_array_equal(_C.gemm(a, b), want)
    finally:
        monkeypatch.delenv("PYMINIDL_GEMM_GRID")
        _C._gemm_set_caches(None)


def test_fma_ceiling_is_positive():
    assert _C.fma_ceiling("baseline", 1, 0.02) > 0.0


@pytest.mark.parametrize("isa", ISAS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("m,n,k", [(5, 7, 3), (128, 10, 256), (70, 90, 60), (263, 301, 777), (10, 600, 700)])
@pytest.mark.parametrize("ta,tb", [(False, False), (True, False), (False, True)])
def test_serial_entry_equals_threaded_gemm(isa, dtype, m, n, k, ta, tb, rng):
    # The workspace entry takes the same path and sums as the threaded call: bit-identical.
    pyminidl.config.set_cpu_capability(isa)
    pyminidl.config.set_num_threads(2)
    a = rng.standard_normal((k, m) if ta else (m, k)).astype(dtype)
    b = rng.standard_normal((n, k) if tb else (k, n)).astype(dtype)
    np.testing.assert_array_equal(_C._gemm_serial(a, b, ta, tb), _C.gemm(a, b, ta, tb))


def test_serial_entry_rejects_a_short_workspace(rng):
    a = rng.standard_normal((300, 300)).astype(np.float32)
    with pytest.raises(ValueError, match="workspace of 10 elements"):
        _C._gemm_serial(a, a, False, False, 10)
