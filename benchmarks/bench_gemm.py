"""GEMM throughput: pyminidl vs NumPy/OpenBLAS (and PyTorch CPU when importable), float32.

Usage:
    python benchmarks/bench_gemm.py                 # 1 and 2 threads, squares 64..2048 + Dense shapes
    python benchmarks/bench_gemm.py --quick         # squares up to 512, shorter timing budget
    python benchmarks/bench_gemm.py --threads 2     # one thread count only
    python benchmarks/bench_gemm.py --json out.jsonl
    python benchmarks/bench_gemm.py --interleave     # peers rep by rep, no pause: a mixed script
    python benchmarks/bench_gemm.py --interleave --no-torch   # the same, NumPy and pyminidl only
    PYMINIDL_CPU_CAPABILITY=avx2 python benchmarks/bench_gemm.py --openblas-coretype Haswell

``--openblas-coretype`` pins NumPy's OpenBLAS kernel (OPENBLAS_CORETYPE, set in each worker
before NumPy loads): on an AVX-512 machine, pyminidl forced onto its AVX2 path against
OpenBLAS's AVX2 (Haswell) kernel is the like-for-like comparison. The header prints the
kernel OpenBLAS reports, so a pin it ignored shows. PyTorch's CPU GEMM is not OpenBLAS and
keeps its own ISA choice.

Each thread count runs in its own subprocess, so OpenMP and the BLAS read their thread counts
at start. Every case is checked against the float64 reference before it is timed. The
peers are timed in alternating blocks (see _harness.bench for why not rep by rep);
``--interleave`` times them rep by rep with no pause instead, as in a script that alternates
NumPy and pyminidl calls, where each library's idle threads compete with the other's work
(the case pyminidl's OpenMP waiting policy is chosen for; the header prints the policy).
``--no-torch`` leaves PyTorch out, so that an interleaved run mixes NumPy and pyminidl only;
NumPy's OpenBLAS runs its threaded products on pyminidl's OpenMP team (csrc/blas_threads.h)
unless PYMINIDL_SHARE_BLAS_THREADS=0, where its own threads busy-wait 2^28 TSC cycles after each
product unless OPENBLAS_THREAD_TIMEOUT is set (the README's configuration table; the header says which).
ratio = pyminidl GFLOP/s / NumPy GFLOP/s from the medians; ratio(min) compares the best
reps, which is the steadier figure on a shared machine.
busy = pyminidl's / the most contended peer's share of timed blocks that shared their cores
(_harness.busy; such a block runs again up to ``--redo`` times): a row with a busy share is not a
measurement of the kernels alone.

% of peak = GFLOP/s / the FMA ceiling measured in the same worker for pyminidl's ISA path
and thread count (independent FMA chains in registers, _C.fma_ceiling): the rate a
micro-kernel can at best reach on this machine at its present clock. The table is headed
by the machine: CPU model, ISA path, cache sizes, the blocks chosen and that ceiling.
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402  (imports no NumPy)

SQUARES = (64, 128, 256, 512, 1024, 2048)
QUICK_SQUARES = (64, 128, 256, 512)
# The Dense layers of an MNIST MLP 784-256-10 at batch 128: (name, M, N, K, trans_a, trans_b).
DENSE = (
    ("fwd1 x@W1", 128, 256, 784, False, False),
    ("fwd2 h@W2", 128, 10, 256, False, False),
    ("dW1 x.T@dy", 784, 256, 128, True, False),
    ("dX1 dy@W1.T", 128, 784, 256, False, True),
    ("dW2 h.T@dy", 256, 10, 128, True, False),
    ("dh dy@W2.T", 128, 256, 10, False, True),
)


def cases(quick):
    sq = QUICK_SQUARES if quick else SQUARES
    return [(f"square {s}", s, s, s, False, False) for s in sq] + list(DENSE)


def worker(threads, options):
    quick = options.quick
    removed = _harness.setup_threads(threads, options.openblas_coretype)
    import numpy as np

    import pyminidl
    from pyminidl.backend.base import Backend
    from pyminidl.backend.cpu_backend import CpuBackend
    from pyminidl.testing import assert_close

    try:
        if options.no_torch:
            raise ImportError("not wanted here")
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    pyminidl.config.set_num_threads(threads)
    _harness.emit({"op": "meta", "threads": threads, "unset_env": sorted(removed),
                   "openblas_coretype": options.openblas_coretype,
                   "blas": _harness.blas_info(), "pyminidl_isa": pyminidl.config.cpu_features()["active"],
                   "torch": None if torch is None else torch.__version__, "numpy": np.__version__,
                   "ghz": _harness.cpu_ghz(), "machine": _harness.machine(threads)})
    cpu, ref, rng = CpuBackend(), Backend(), np.random.default_rng(0)
    for name, m, n, k, ta, tb in cases(quick):
        a = rng.standard_normal((k, m) if ta else (m, k), dtype=np.float32)
        b = rng.standard_normal((n, k) if tb else (k, n), dtype=np.float32)
        at, bt = (a.T if ta else a), (b.T if tb else b)
        want = ref.gemm(a.astype(np.float64), b.astype(np.float64), ta, tb)
        assert_close(cpu.gemm(a, b, ta, tb), want, k=k)  # correctness first, then time
        assert_close(np.matmul(at, bt), want, k=k)
        fns = {"pyminidl": lambda: cpu.gemm(a, b, ta, tb), "numpy": lambda: np.matmul(at, bt)}
        if torch is not None:
            ta_, tb_ = torch.from_numpy(at), torch.from_numpy(bt)
            assert_close(torch.mm(ta_, tb_).numpy(), want, k=k)
            fns["torch"] = lambda: torch.mm(ta_, tb_)
        contended = {}
        timing = _harness.bench(fns, budget_s=0.15 if quick else 0.6, rounds=2 if quick else 3,
                                interleave=options.interleave, contention=contended, redo=options.redo,
                                threads=threads)
        for backend, (med, lo, hi) in timing.items():
            _harness.emit({"op": "gemm", "case": name, "shape": [m, n, k], "trans": [ta, tb],
                           "backend": backend, "threads": threads, "median_s": med, "min_s": lo,
                           "max_s": hi, "gflops": 2.0 * m * n * k / med / 1e9,
                           **({"contended": contended[backend]} if backend in contended else {})})


def report(records):
    metas = [r for r in records if r["op"] == "meta"]
    for meta in metas:
        print(f"threads={meta['threads']}: pyminidl ISA {meta['pyminidl_isa']}, NumPy {meta['numpy']}, "
              f"BLAS {meta['blas']}, torch {meta['torch']}, unset {meta['unset_env'] or 'nothing'}, "
              f"OPENBLAS_CORETYPE={meta['openblas_coretype'] or 'unset'}")
        kernel, pinned = str(meta["blas"].get("kernel")), meta["openblas_coretype"]
        if pinned and kernel.lower() != pinned.lower():
            print(f"WARNING: OPENBLAS_CORETYPE={pinned} asked for, but OpenBLAS runs its {kernel} kernel")
    if metas:
        print("machine: " + _harness.machine_line(metas[0]["machine"]))
    ceiling = {m["threads"]: m["machine"]["fma_ceiling_gflops"] for m in metas}
    for t, c in sorted(ceiling.items()):
        print(f"measured FMA ceiling, {t} thread(s): {c:.1f} GFLOP/s (pmd %peak is against it)")
    by_key = {}
    for r in records:
        if r["op"] == "gemm":
            by_key.setdefault((r["threads"], r["case"]), {})[r["backend"]] = r
    rows = []
    for (threads, case), peers in by_key.items():
        p, n, t = peers["pyminidl"], peers["numpy"], peers.get("torch")
        peak = ceiling.get(threads)
        rows.append({"case": case, "M,N,K": ",".join(map(str, p["shape"])),
                     "tA,tB": "".join("T" if x else "N" for x in p["trans"]), "thr": threads,
                     "pyminidl GF/s": p["gflops"], "numpy GF/s": n["gflops"],
                     "ratio": p["gflops"] / n["gflops"], "ratio(min)": n["min_s"] / p["min_s"],
                     "torch GF/s": t["gflops"] if t else None,
                     "pmd %peak": 100.0 * p["gflops"] / peak if peak else None,
                     "busy": _harness.busy(peers),
                     "pmd ms med [min,max]": f"{1e3 * p['median_s']:.3f} [{1e3 * p['min_s']:.3f},{1e3 * p['max_s']:.3f}]"})
    _harness.table(rows, list(rows[0].keys()) if rows else [])


def add_arguments(ap):
    ap.add_argument("--openblas-coretype", metavar="CORE",
                    help="pin NumPy's OpenBLAS kernel (OPENBLAS_CORETYPE), e.g. Haswell beside "
                         "PYMINIDL_CPU_CAPABILITY=avx2")
    ap.add_argument("--interleave", action="store_true",
                    help="time the peers rep by rep with no pause (a script mixing the libraries)")
    ap.add_argument("--no-torch", action="store_true",
                    help="leave PyTorch out even where it is installed (--interleave: NumPy and pyminidl only)")


if __name__ == "__main__":
    _harness.run_main(__doc__, __file__, worker, report, add_arguments)
