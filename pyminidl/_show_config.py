"""``pyminidl.show_config()``: the build and runtime report, above both the configuration it reads and
the distribution it describes (numpy keeps its ``show_config`` apart likewise, in ``numpy/__config__.py``)."""

import os

import numpy as np

from pyminidl import __version__  # set by the package before it imports this module
from pyminidl import distribution
from pyminidl.backend import _compat, get_backend
from pyminidl.backend._compat import _C


def _caches_line():
    c = _C.gemm_config()["caches"]

    def kib(n):
        return f"{n // 1024} KiB" if n else "not reported"

    return f"caches ({c['source']}): L1d {kib(c['l1d'])}, L2 {kib(c['l2'])} per core, L3 {kib(c['l3'])}"


def _gemm_line():
    g = _C.gemm_config()
    parts = [f"{dt} {b['MR']}x{b['NR']} MC={b['MC']} KC={b['KC']} NC={b['NC']}"
             for dt, b in ((dt, g[dt]) for dt in ("float32", "float64"))]
    return f"GEMM ({g['isa']}, blocks from {g['blocks_from']}): " + "; ".join(parts)


def _awake_words(window_us):
    """How long after a parallel region the GEMM counts the team's workers as awake (team.h)."""
    if window_us >= 1e12:
        return "workers spin until the next region (active wait)"
    return f"workers counted awake {window_us:.0f} us after a region"


def _contention_words():
    """What the kernels do when a region's workers come late (team.h), and the team's state now."""
    t = _C.team_state()
    setting = os.environ.get("PYMINIDL_SERIAL_WHEN_CONTENDED", "(unset)")
    if t["rule_on"]:  # as the kernels read the setting
        rule = "kernels run on one thread while workers come late"
    else:
        rule = "late workers are waited for; =1 runs kernels on one thread meanwhile"
    return (f"PYMINIDL_SERIAL_WHEN_CONTENDED: {setting} ({rule}); regions late so far: "
            f"{t['regions_late']} of {t['regions_timed']}, team {'free' if t['free'] else 'contended'}")


def _blas_threads_words():
    """Whose threads run NumPy's threaded BLAS calls (blas_threads.h)."""
    shared = _C.blas_threads_state()["shared"]
    if shared:
        names = ", ".join(os.path.basename(p) for p in shared)
        return f"NumPy's BLAS threads: pyminidl's OpenMP team ({names}); PYMINIDL_SHARE_BLAS_THREADS=0 gives them back"
    from pyminidl.backend.cpu_backend import blas_sharing_wanted

    why = "no loaded OpenBLAS takes a threads callback" if blas_sharing_wanted() else "PYMINIDL_SHARE_BLAS_THREADS=0"
    return (f"NumPy's BLAS threads: its own ({why}); OPENBLAS_THREAD_TIMEOUT: "
            f"{os.environ.get('OPENBLAS_THREAD_TIMEOUT', '(unset)')} (they busy-wait after each product: see the README's configuration)")


def show_config():
    """Print the build and runtime configuration (paste it into bug reports)."""
    lines = [f"pyminidl {__version__}", f"numpy {np.__version__}", f"backend: {get_backend().name}"]
    if _C is None:
        lines.append("C++ extension: not available")
    else:
        info = _C.build_info()
        feats = _C.cpu_features()
        lines += [
            f"compiler: {info['compiler']}  flags: {info['flags']}",
            f"OpenMP: {'on' if info['openmp'] else 'off (serial kernels)'}, threads: {info['max_threads']}",
            f"OMP_NUM_THREADS: {os.environ.get('OMP_NUM_THREADS', '(unset)')}",
            _blas_threads_words(),
            f"OMP_WAIT_POLICY: {os.environ.get('OMP_WAIT_POLICY', '(unset)')}, "
            f"GOMP_SPINCOUNT: {os.environ.get('GOMP_SPINCOUNT', '(unset)')}"
            + (" (set by pyminidl: neither was set)" if _compat.WAIT_POLICY_SET else "")
            + f"; {_awake_words(info['team_spin_window_us'])}",
            _contention_words(),
            f"CPU: best ISA {feats['best']}, active {feats['active']}",
            _caches_line(),
            _gemm_line(),
        ]
        backend = get_backend()
        if backend.name == "cpu":
            lines.append(f"allocator tuned for per-step temporaries: {'yes' if backend._allocator_tuned else 'no'}")
    # ---- distribution: the world and each rank's threads
    lines.append(distribution.config_line())
    print("\n".join(lines))
