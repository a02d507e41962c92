"""Data-parallel fit on this host: 2 ranks x 1 thread against 1 process x 2 threads.

    python benchmarks/bench_distributed.py [--samples 8192] [--epochs 4] [--rounds 3]

This machine has 2 cores, so the honest comparison gives both sides both cores: one process with
2 OpenMP threads, or ``mpirun -np 2`` with 1 thread per rank (what ``initialize()`` picks). It
also runs 2 ranks with the Allreduce started only after backward (overlap off), measures the
share of step time spent waiting on Allreduce, the loopback Allreduce latency and bandwidth at
the models' gradient sizes, and prints a ring-Allreduce projection (alpha + beta * bytes) for
2-64 machines at 10 and 100 Gbit/s. The configurations run in turn, ``--rounds`` times (A B C A B
C ...), and each reports the median over rounds of its median epoch (the first epoch is warm-up).

Models: the MLP of bench_train (784-256-128-10) and, when this build has Conv2D, a small CNN;
global batch 256 (128 per rank on 2 ranks). Correctness first: each run reports whether every
rank ended with the same weights. Run it from outside the repository's root or with the package
installed; it starts its workers with cwd=/tmp.
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
GLOBAL_BATCH = 256


def _args():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--samples", type=int, default=8192)
    p.add_argument("--epochs", type=int, default=4)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    p.add_argument("--model", default="mlp", help=argparse.SUPPRESS)
    return p.parse_args()


# ---------------------------------------------------------------------- worker (one rank)


def _build(keras, name):
    L = keras.layers
    if name == "cnn":
        return keras.Sequential([L.Input((28, 28, 1)), L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(2),
                                 L.Conv2D(32, 3, activation="relu"), L.MaxPooling2D(2), L.Flatten(),
                                 L.Dense(10, activation="softmax")])
    return keras.Sequential([L.Input((784,)), L.Dense(256, activation="relu"), L.Dense(128, activation="relu"),
                             L.Dense(10, activation="softmax")])


def _worker_fit(args, overlap):
    import time

    import numpy as np

    import pyminidl as keras
    from pyminidl import distribution

    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel(overlap=overlap))
    shape = (28, 28, 1) if args.model == "cnn" else (784,)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((args.samples,) + shape, dtype=np.float32)
    y = rng.integers(0, 10, args.samples)
    keras.random.seed(1)
    model = _build(keras, args.model)
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    times, waits = [], []

    class Clock(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.t0 = time.perf_counter()
            model._distributed().allreduce_seconds = 0.0

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.t0)
            waits.append(model._distributed().allreduce_seconds)

    model.fit(x, y, batch_size=GLOBAL_BATCH, epochs=args.epochs, verbose=0, callbacks=[Clock()])
    digest = float(np.sum([np.abs(w).sum(dtype=np.float64) for w in model.get_weights()]))
    digests = distribution._world().allgather_object(digest)
    params = sum(int(w.size) for w in model.get_weights())
    if distribution.rank() == 0:
        epoch_s = statistics.median(times[1:])
        print(json.dumps({"epoch_s": epoch_s, "samples_per_s": args.samples / epoch_s,
                          "allreduce_share": statistics.median(waits[1:]) / epoch_s,
                          "same_weights": len(set(digests)) == 1, "grad_bytes": 4 * params,
                          "steps": -(-args.samples // GLOBAL_BATCH)}))


def _worker_allreduce(args):
    import time

    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    out = {}
    for nbytes in (8, 4096, 65536, 1 << 20, 4 << 20, int(args.model)):
        buf = np.ones(max(1, nbytes // 4), np.float32)
        res = np.empty_like(buf)
        times = []
        for _ in range(5):
            comm.Allreduce(buf, res)
        for _ in range(60 if nbytes <= 65536 else 20):
            comm.Barrier()
            t0 = time.perf_counter()
            comm.Allreduce(buf, res)
            times.append(time.perf_counter() - t0)
        out[nbytes] = (statistics.median(times), min(times))
    if comm.Get_rank() == 0:
        print(json.dumps(out))


# ---------------------------------------------------------------------- driver


def _env(threads):
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), OMPI_ALLOW_RUN_AS_ROOT="1",
               OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
    return env


def _mpirun():
    local = os.path.join(os.path.dirname(sys.executable), "mpirun")
    return local if os.path.exists(local) else shutil.which("mpirun")


def _run(ranks, threads, worker, args, model):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", worker, "--model", str(model),
           "--samples", str(args.samples), "--epochs", str(args.epochs)]
    if ranks > 1:
        cmd = [_mpirun(), "-np", str(ranks)] + cmd
    done = subprocess.run(cmd, env=_env(threads), capture_output=True, text=True, cwd="/tmp", timeout=600)
    if done.returncode != 0:
        raise RuntimeError(done.stdout + done.stderr)
    return json.loads(done.stdout.strip().splitlines()[-1])


def _compare(args, model):
    configs = {"1 rank x 2 threads": (1, 2, "fit"), "2 ranks x 1 thread": (2, 1, "fit"),
               "2 ranks x 1 thread, no overlap": (2, 1, "fit-no-overlap")}
    runs = {name: [] for name in configs}
    for _ in range(args.rounds):
        for name, (ranks, threads, worker) in configs.items():
            runs[name].append(_run(ranks, threads, worker, args, model))
    base = statistics.median(r["samples_per_s"] for r in runs["1 rank x 2 threads"])
    print(f"\n{model}: {args.samples} samples, global batch {GLOBAL_BATCH}, Adam; median of {args.rounds} rounds")
    print(f"{'configuration':34s} {'samples/s':>10s} {'ratio':>6s} {'allreduce wait':>15s} {'ranks equal':>11s}")
    for name, rs in runs.items():
        sps = statistics.median(r["samples_per_s"] for r in rs)
        share = statistics.median(r["allreduce_share"] for r in rs)
        same = all(r["same_weights"] for r in rs)
        print(f"{name:34s} {sps:10.0f} {sps / base:6.2f} {share:14.1%} {str(same):>11s}")
    return runs


def _fit_line(points):
    """Least-squares alpha (s) and beta (s/byte) of t = alpha + beta * bytes."""
    n = len(points)
    mx = sum(b for b, _ in points) / n
    my = sum(t for _, t in points) / n
    beta = sum((b - mx) * (t - my) for b, t in points) / sum((b - mx) ** 2 for b, _ in points)
    return my - beta * mx, beta


def _projection(step_compute_s, grad_bytes, name):
    """Ring Allreduce on p machines: 2 (p - 1) alpha + 2 (p - 1) / p * bytes / bandwidth, no overlap."""
    print(f"\nprojection for {name} ({grad_bytes / 1e6:.2f} MB of gradients, {step_compute_s * 1e3:.1f} ms compute "
          "per step per machine, assumed alpha = 25 us per message, no overlap): efficiency")
    print(f"{'machines':>8s} " + " ".join(f"{p:>6d}" for p in (2, 4, 8, 16, 32, 64)))
    for gbit in (10, 100):
        cells = []
        for p in (2, 4, 8, 16, 32, 64):
            comm = 2 * (p - 1) * 25e-6 + 2 * (p - 1) / p * grad_bytes * 8 / (gbit * 1e9)
            cells.append(f"{step_compute_s / (step_compute_s + comm):6.0%}")
        print(f"{str(gbit) + ' Gb/s':>8s} " + " ".join(cells))


def main():
    args = _args()
    if args.worker == "allreduce":
        return _worker_allreduce(args)
    if args.worker:
        return _worker_fit(args, overlap=args.worker == "fit")
    if _mpirun() is None:
        raise SystemExit("needs mpirun and mpi4py: pip install 'pyminidl[mpi]'")
    import pyminidl

    models = ["mlp"] + (["cnn"] if hasattr(pyminidl.layers, "Conv2D") else [])
    print("machine: 2 cores; both sides use both (1 process x 2 OpenMP threads vs 2 ranks x 1 thread)")
    results = {m: _compare(args, m) for m in models}
    for model in models:
        grad_bytes = results[model]["2 ranks x 1 thread"][0]["grad_bytes"]
        timings = _run(2, 1, "allreduce", args, grad_bytes)
        print(f"\nloopback Allreduce, 2 ranks ({model} gradients = {grad_bytes} bytes): median and min of 20-60")
        for nbytes, (med, low) in sorted((int(k), v) for k, v in timings.items()):
            print(f"  {nbytes:>9d} B  median {med * 1e6:9.1f} us ({nbytes / med / 1e9:6.2f} GB/s)"
                  f"  min {low * 1e6:8.1f} us ({nbytes / low / 1e9:6.2f} GB/s)")
        for label, pick in (("median", 0), ("min", 1)):
            alpha, beta = _fit_line([(int(k), v[pick]) for k, v in timings.items()])
            print(f"  fit to the {label}s: alpha = {alpha * 1e6:.1f} us, beta = {beta * 1e9:.3f} ns/B "
                  f"({1 / beta / 1e9:.2f} GB/s)")
        one = statistics.median(r["epoch_s"] for r in results[model]["2 ranks x 1 thread"])
        steps = results[model]["2 ranks x 1 thread"][0]["steps"]
        share = statistics.median(r["allreduce_share"] for r in results[model]["2 ranks x 1 thread"])
        _projection(one * (1 - share) / steps, grad_bytes, model)


if __name__ == "__main__":
    main()
