"""Benchmark harness: thread setup before NumPy loads, timing, JSON lines, tables.

Import this module and call ``setup_threads(n)`` *before* importing NumPy (or anything
that imports it): BLAS and OpenMP read their thread counts once, when they load. The
harness also unsets ``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE``, which, when left over in
an environment, pin OpenBLAS to a slower kernel and would make the peer look worse than it is.

Results are JSON lines ``{op, shape, backend, threads, median_s, min_s, max_s, gflops}``
so runs can be compared; ``table`` prints the same records for people.

``run_main`` is the driver of a benchmark that runs each thread count in its own worker
subprocess (OpenMP, the BLAS and torch read their thread counts once, at start): it parses
the common options, starts the workers, collects their JSON lines and hands them to the
benchmark's report.
"""

import argparse
import ctypes
import json
import os
import statistics
import subprocess
import sys
import time

THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
               "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS")
SLOWING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
# Zen 4 (and every core with two 256-bit FMA pipes): 2 pipes x 8 float32 lanes x 2 FLOP.
# AVX-512 on Zen 4 is double-pumped over the same pipes, so it has the same peak.
FP32_FLOP_PER_CYCLE = 32


def setup_threads(threads, openblas_coretype=None):
    """Fix every BLAS/OpenMP thread count to ``threads``; call before importing NumPy.

    ``openblas_coretype`` (e.g. "Haswell") pins OpenBLAS's kernel through
    ``OPENBLAS_CORETYPE``, which OpenBLAS reads once, when NumPy loads it: a peer for
    pyminidl forced onto the same ISA path (``PYMINIDL_CPU_CAPABILITY=avx2``).
    """
    if "numpy" in sys.modules:
        raise RuntimeError("setup_threads must run before NumPy is imported")
    removed = {name: os.environ.pop(name) for name in SLOWING_VARS if name in os.environ}
    for name in THREAD_VARS:
        os.environ[name] = str(threads)
    if openblas_coretype:
        os.environ["OPENBLAS_CORETYPE"] = openblas_coretype
    return removed


def single_process_options(doc, budget):
    """The options of a benchmark that runs in one process: --threads, --budget (seconds of timing
    per peer and case, default ``budget``) and --json; ``doc``'s first paragraph describes it."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--budget", type=float, default=budget, help="seconds of timing per peer and case")
    parser.add_argument("--json", help="also append JSON lines to this file")
    return parser


def import_torch(threads):
    """(torch, torch.nn.functional) held to ``threads`` threads, or (None, None) where PyTorch is not
    installed. Call after ``setup_threads``."""
    try:
        import torch
        import torch.nn.functional as functional
    except ImportError:
        return None, None
    torch.set_num_threads(threads)
    return torch, functional


def bench(fns, reps=None, warmup=2, budget_s=0.4, min_reps=6, max_reps=300, rounds=3, settle_s=0.15,
          interleave=False, contention=None, redo=0, pids=(), threads=None):
    """Time each callable of ``fns`` (dict name -> fn). Returns {name: (median_s, min_s, max_s)}.

    The peers run in blocks, ``rounds`` times in turn (A B A B ...), so a noisy neighbour
    slows all of them alike, but never rep by rep: OpenBLAS's worker threads keep spinning
    for a while after each call (its THREAD_TIMEOUT, 2**28 cycles by default), and a peer
    timed right after a NumPy call would share its cores with them. ``settle_s`` of sleep
    before each block lets the previous library's threads go idle.

    Each block also measures how long runnable threads of this process (and of ``pids``: a peer
    in another process) waited for a core, plus the time the hypervisor stole (``CpuWait``); a
    block where that exceeds ``CONTENDED_SHARE`` of its wall time on ``threads`` cores (default
    all) is *contended*: something else ran on the cores it timed (another process, or more threads of
    the timed library than there are cores: TensorFlow's pools). ``contention``, a dict, gets
    each peer's share of contended blocks; ``redo`` times at most, a contended block is run
    again and replaces its times (a peer that is always contended keeps its last block).

    ``interleave=True`` instead runs the peers rep by rep with no pause (A B A B ... per
    call): a script that mixes the libraries, where each one's idle threads compete with the
    other's work. That is the case the OpenMP waiting policy is chosen for.
    """
    if interleave:
        return _bench_interleaved(fns, reps, warmup, budget_s, min_reps, max_reps)
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    if reps is None:
        t0 = time.perf_counter()
        for fn in fns.values():
            fn()
        once = max(time.perf_counter() - t0, 1e-7)
        reps = int(min(max_reps, max(min_reps, budget_s / once)))
    per_round = max(2, reps // rounds)
    wait = CpuWait(pids, threads)
    times = {name: [] for name in fns}
    flagged = {name: 0 for name in fns}
    for _ in range(rounds):
        for name, fn in fns.items():
            for attempt in range(redo + 1):
                time.sleep(settle_s)
                fn()  # wakes this library's threads
                wait.start()
                block = []
                for _ in range(per_round):
                    t0 = time.perf_counter()
                    fn()
                    block.append(time.perf_counter() - t0)
                contended = wait.share() > CONTENDED_SHARE
                if not contended or attempt == redo:
                    break
            times[name].extend(block)
            flagged[name] += contended
    if contention is not None:
        contention.update({name: flagged[name] / rounds for name in fns})
    return {name: (statistics.median(ts), min(ts), max(ts)) for name, ts in times.items()}


def busy(records, ours="pyminidl"):
    """A table cell: the share of contended blocks (``bench(contention=...)``) of ``ours`` and the
    most contended peer among ``records`` (backend -> record), e.g. "0/50%"; "-" when not measured.

    A contended block is one in which threads waited for a core (another process ran on them, or
    the library's own threads outnumber the cores) or the hypervisor stole time, over
    ``CONTENDED_SHARE`` of the block (``CpuWait``)."""
    if any("contended" not in r for r in records.values()):
        return "-"
    peers = [r["contended"] for name, r in records.items() if name != ours]
    return f"{records[ours]['contended']:.0%}/{max(peers, default=0.0):.0%}"


# A timed block whose threads waited for a core (or had it stolen) more than this share of
# its wall time, summed over the cores it ran on, is reported as contended.
CONTENDED_SHARE = 0.10


class CpuWait:
    """Time this process's threads (and ``pids``') spent runnable but waiting for a core, plus
    the CPU time the hypervisor stole, between ``start()`` and ``share()``: the share of
    ``threads`` cores' wall time lost to something else. Linux's /proc/<pid>/task/*/schedstat
    (second field: run-queue wait, ns) and /proc/stat's steal column; 0 where they are missing."""

    def __init__(self, pids=(), threads=None):
        self.pids = ("self",) + tuple(pids)
        self.threads = max(1, threads or os.cpu_count() or 1)
        self.tick = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
        self._t0 = self._lost0 = 0.0

    def _waited_s(self):
        total = 0
        for pid in self.pids:
            try:
                tasks = os.listdir(f"/proc/{pid}/task")
            except OSError:
                continue
            for task in tasks:
                try:
                    with open(f"/proc/{pid}/task/{task}/schedstat") as f:
                        total += int(f.read().split()[1])
                except (OSError, ValueError, IndexError):
                    pass  # a thread that ended, or no schedstat
        return total / 1e9

    def _stolen_s(self):
        try:
            with open("/proc/stat") as f:
                fields = f.readline().split()
            return int(fields[8]) / self.tick if fields[0] == "cpu" and len(fields) > 8 else 0.0
        except (OSError, ValueError):
            return 0.0

    def start(self):
        self._t0, self._lost0 = time.perf_counter(), self._waited_s() + self._stolen_s()

    def share(self):
        wall = max(time.perf_counter() - self._t0, 1e-9)
        return (self._waited_s() + self._stolen_s() - self._lost0) / (wall * self.threads)


def _bench_interleaved(fns, reps, warmup, budget_s, min_reps, max_reps):
    for _ in range(warmup):
        for fn in fns.values():
            fn()
    if reps is None:
        t0 = time.perf_counter()
        for fn in fns.values():
            fn()
        reps = int(min(max_reps, max(min_reps, budget_s / max(time.perf_counter() - t0, 1e-7))))
    times = {name: [] for name in fns}
    for _ in range(reps):
        for name, fn in fns.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    return {name: (statistics.median(ts), min(ts), max(ts)) for name, ts in times.items()}


def emit(record, stream=None):
    """Write one result as a JSON line."""
    stream = sys.stdout if stream is None else stream
    stream.write(json.dumps(record, sort_keys=True) + "\n")
    stream.flush()


def cpu_ghz():
    """The clock /proc/cpuinfo reports (the nominal clock; turbo can run above it)."""
    try:
        with open("/proc/cpuinfo") as f:
            mhz = [float(line.split(":")[1]) for line in f if line.startswith("cpu MHz")]
        return max(mhz) / 1000.0 if mhz else None
    except OSError:
        return None


def cpu_model():
    """The CPU's model name as /proc/cpuinfo reports it (None elsewhere)."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def machine(threads, seconds=0.3):
    """What a benchmark ran on: CPU model, pyminidl's ISA path, the caches it saw, the GEMM
    blocks it chose, and the measured float32 FMA ceiling of that path on ``threads`` threads
    (independent FMA chains, no memory traffic: what a micro-kernel can at best reach)."""
    import pyminidl
    from pyminidl.backend._compat import _C

    feats = pyminidl.config.cpu_features()
    pyminidl.backend.get_backend()  # the cpu backend hands NumPy's OpenBLAS its team when it starts
    return {"cpu": cpu_model(), "isa": feats["active"], "caches": feats["caches"],
            "gemm_f32": feats["gemm"]["float32"], "wait_policy": os.environ.get("OMP_WAIT_POLICY"),
            "spincount": os.environ.get("GOMP_SPINCOUNT"),
            # Whether NumPy's OpenBLAS runs its threaded calls on pyminidl's team (unless
            # PYMINIDL_SHARE_BLAS_THREADS=0).
            "blas_threads_shared": bool(_C.blas_threads_state()["shared"]),
            # The best of three: on a shared machine a probe that loses its core reads low.
            "fma_ceiling_gflops": max(_C.fma_ceiling(None, threads, seconds / 3) for _ in range(3))}


def machine_line(m):
    """One line naming the machine of ``machine()``."""
    c, g = m["caches"], m["gemm_f32"]
    blas_threads = "pyminidl's team" if m.get("blas_threads_shared") else "its own"
    return (f"{m['cpu']}; ISA path {m['isa']}; L1d {c['l1d'] // 1024} KiB, L2 {c['l2'] // 1024} KiB per core, "
            f"L3 {c['l3'] // 1048576} MiB ({c['source']}); sgemm {g['MR']}x{g['NR']} MC={g['MC']} KC={g['KC']} "
            f"NC={g['NC']}; OMP_WAIT_POLICY={m['wait_policy']}, "
            f"GOMP_SPINCOUNT={m.get('spincount')}; NumPy's BLAS threads: {blas_threads}")


def peak_gflops(threads, ghz=None, flop_per_cycle=FP32_FLOP_PER_CYCLE):
    """Theoretical float32 peak: cores x GHz x FLOP/cycle/core."""
    ghz = cpu_ghz() if ghz is None else ghz
    return None if ghz is None else threads * ghz * flop_per_cycle


def _openblas_lib():
    try:
        with open("/proc/self/maps") as f:
            paths = {line.split()[-1] for line in f if "openblas" in line.lower() and "/" in line}
    except OSError:
        return None
    for path in sorted(paths):
        try:
            return ctypes.CDLL(path)
        except OSError:
            continue
    return None


def _call_str(lib, names):
    for name in names:
        fn = getattr(lib, name, None)
        if fn is not None:
            fn.restype = ctypes.c_char_p
            return fn().decode()
    return None


def blas_info():
    """Which BLAS NumPy uses and which OpenBLAS kernel runs (threadpoolctl when installed)."""
    import numpy as np

    try:
        from threadpoolctl import threadpool_info

        blas = [d for d in threadpool_info() if d.get("user_api") == "blas"]
        if blas:
            d = blas[0]
            return {"blas": d.get("internal_api"), "version": d.get("version"),
                    "kernel": d.get("architecture"), "threads": d.get("num_threads"), "source": "threadpoolctl"}
    except ImportError:
        pass
    info = {"source": "numpy.show_config + OpenBLAS symbols"}
    try:
        dep = np.show_config(mode="dicts")["Build Dependencies"]["blas"]
        info.update(blas=dep.get("name"), version=dep.get("version"))
    except Exception:  # older NumPy: no dict mode
        pass
    lib = _openblas_lib()
    if lib is not None:
        info["kernel"] = _call_str(lib, ("openblas_get_corename", "scipy_openblas_get_corename64_",
                                         "openblas_get_corename64_"))
        info["config"] = _call_str(lib, ("openblas_get_config", "scipy_openblas_get_config64_",
                                         "openblas_get_config64_"))
    return info


def table(rows, columns):
    """Print ``rows`` (list of dicts) as an aligned text table with the given columns."""
    cells = [[str(c) for c in columns]] + [[_fmt(r.get(c)) for c in columns] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for n, row in enumerate(cells):
        print("  ".join(v.rjust(w) for v, w in zip(row, widths)))
        if n == 0:
            print("  ".join("-" * w for w in widths))


def _fmt(v):
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.2f}" if abs(v) < 10 else f"{v:.1f}"
    return str(v)


# ---------------------------------------------------------------- worker-per-thread-count driver


def run_main(doc, script, worker, report, add_arguments=None, extra_records=None):
    """The command line of a benchmark whose thread counts each run in a worker subprocess.

    Options: ``--threads`` (repeatable; default 1 and 2), ``--quick``, ``--json FILE``, ``--redo N``
    (``bench``'s redo of contended blocks), plus
    those ``add_arguments(parser)`` adds. Each worker runs ``script`` again with the parsed
    options (as JSON) and calls ``worker(threads, options)``, which emits JSON lines
    (``emit``); ``extra_records(args)``, when given, adds records measured after the workers;
    ``report(records)`` prints them all, in order.
    """
    ap = argparse.ArgumentParser(description=doc.splitlines()[0])
    ap.add_argument("--threads", type=int, action="append", help="thread count (repeatable); default 1 and 2")
    ap.add_argument("--quick", action="store_true", help="shorter timing budget (and fewer cases)")
    ap.add_argument("--json", help="also write the JSON lines to this file")
    ap.add_argument("--redo", type=int, default=2, metavar="N",
                    help="run a contended block (another thread waited for its cores) again, N times at most")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    if add_arguments is not None:
        add_arguments(ap)
    args = ap.parse_args()
    if args.worker is not None:
        options = argparse.Namespace(**json.loads(args.worker))
        return worker(options.threads, options)
    records = run_workers(script, args)
    if extra_records is not None:
        records += extra_records(args)
    if args.json:
        with open(args.json, "w") as f:
            for r in records:
                emit(r, f)
    report(records)


def run_workers(script, args):
    """One worker subprocess of ``script`` per thread count in ``args.threads``; their records."""
    records = []
    for t in args.threads or [1, 2]:
        options = {k: v for k, v in vars(args).items() if k not in ("worker", "json", "threads")}
        options["threads"] = t
        cmd = [sys.executable, os.path.abspath(script), "--worker", json.dumps(options)]
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True)  # stderr: shown
        records += [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    return records


class PeerProcess:
    """A peer framework in a second interpreter (Keras on TensorFlow lives in its own venv):
    ``script`` run there with ``args``, answering JSON-line requests through ``serve``.

    Each timed callable asks for one call and waits for its answer (~0.1 ms of pipe traffic
    against calls of milliseconds), so the peer sits in the same alternating loop as the
    in-process ones. Arrays travel as .npz files in ``self.dir``.
    """

    def __init__(self, python, script, args, env=None):
        import tempfile

        self.dir = tempfile.mkdtemp(prefix="bench_peer_")
        self.proc = subprocess.Popen([python, os.path.abspath(script)] + list(args), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, env=dict(os.environ, **(env or {})))

    def ask(self, **request):
        self.proc.stdin.write(json.dumps(request) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the peer process stopped (exit code {self.close()}); see its stderr above")
        return json.loads(line)

    def close(self):
        """End the peer (its stdin closes) and return its exit code."""
        try:
            self.proc.stdin.close()
        except BrokenPipeError:  # the peer is already gone
            pass
        code = self.proc.wait()
        self.proc.stdout.close()
        return code


def serve(handle):
    """The peer side of ``PeerProcess``: ``handle(request) -> dict`` answers each stdin line."""
    for line in sys.stdin:
        answer = {"ok": True}
        answer.update(handle(json.loads(line)) or {})
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()


TF_ENV = {"TF_CPP_MIN_LOG_LEVEL": "2", "KERAS_BACKEND": "tensorflow"}


def tf_import(threads):
    """TensorFlow with its thread pools at ``threads`` (call ``setup_threads`` first)."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(threads)
    tf.config.threading.set_inter_op_parallelism_threads(threads)  # TF's own default at threads = cores
    return tf
