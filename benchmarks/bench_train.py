"""End-to-end training speed: pyminidl vs PyTorch CPU, measured in the same run.

1. MLP 784-256-128-10 (ReLU, softmax cross-entropy, Adam, batch 128): samples/second of
   one epoch over 60,000 synthetic MNIST-shaped samples (``model.fit(..., epochs=1)`` vs
   the idiomatic PyTorch loop: shuffle, slice batches, zero_grad/backward/step).
   The same with Keras's mnist_mlp example's stack: 784-512-512-10 with Dropout(0.2) after each
   hidden layer (training mode: a fresh mask per layer and step), Adam, batch 128.
2. Tiny model Dense(10 -> 10), batch 1, MSE, SGD: time per ``train_on_batch`` step vs one
   PyTorch step (the framework overhead, not the arithmetic), in blocks of ``--tiny-steps``
   steps alternated with PyTorch's ``--tiny-reps`` times.

Both frameworks start from the same weights, and a check of the first loss (MLP) and of
the weights after one step (tiny model) runs before any timing. The thread count is set
before NumPy/PyTorch are imported. Targets: >= 2x PyTorch's samples/s on the MLP and
<= 1/3 of its per-step time on the tiny model.

    $ python benchmarks/bench_train.py --threads 2
    $ python benchmarks/bench_train.py --threads 1 --reps 5 --json results.jsonl
"""

import argparse
import os
import sys


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1, help="threads for both frameworks")
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (median reported)")
    parser.add_argument("--tiny-reps", type=int, default=9, help="timed, alternated blocks of tiny-model steps")
    parser.add_argument("--samples", type=int, default=60000, help="MLP training samples (one epoch)")
    parser.add_argument("--tiny-steps", type=int, default=2000, help="train steps per tiny-model repetition")
    parser.add_argument("--no-torch", action="store_true", help="skip PyTorch even when it is installed")
    parser.add_argument("--json", help="also append JSON lines to this file")
    parser.add_argument("--no-rss", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--rss-child", choices=["data", "pyminidl", "torch"], help=argparse.SUPPRESS)
    return parser.parse_args()


ARGS = _parse()
for _var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_var] = str(ARGS.threads)  # before numpy / torch load their thread pools

import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import _harness  # noqa: E402  (imports no NumPy)
import pyminidl  # noqa: E402
from pyminidl.layers import Dense, Dropout  # noqa: E402
from pyminidl.models import Sequential  # noqa: E402

try:
    if ARGS.no_torch or ARGS.rss_child in ("data", "pyminidl"):
        raise ImportError("not wanted here")  # a peak-memory child carries only its own framework
    import torch  # noqa: E402

    torch.set_num_threads(ARGS.threads)
except ImportError:
    torch = None

BATCH = 128
MLP_UNITS = (784, 256, 128, 10)


def _median(times):
    return statistics.median(times), min(times), max(times)


PAUSE_S = float(os.environ.get("BENCH_PAUSE_S", "0.2"))


def _interleaved(run_ours, run_theirs, reps=None):
    """Time the two alternately, rep by rep, so a slow phase of this shared machine hits both.

    A short pause after each run lets the other library's OpenMP workers stop spinning first.
    """
    ours, theirs = [], []
    for _ in range(reps or ARGS.reps):
        for run, times in ((run_ours, ours), (run_theirs, theirs)):
            if run is None:
                continue
            t0 = time.perf_counter()
            run()
            times.append(time.perf_counter() - t0)
            time.sleep(PAUSE_S)
    return ours, theirs


# ---------------------------------------------------------------------------- models


DROPOUT_UNITS, DROPOUT_RATE = (784, 512, 512, 10), 0.2  # Keras's examples/mnist_mlp


def _pyminidl_mlp(units=MLP_UNITS, dropout=None):
    pyminidl.utils.set_random_seed(0)
    stack = [Dense(units[1], activation="relu", input_dim=units[0])]
    for width in units[2:-1]:
        stack += ([Dropout(dropout)] if dropout else []) + [Dense(width, activation="relu")]
    stack += ([Dropout(dropout)] if dropout else []) + [Dense(units[-1], activation="softmax")]
    model = Sequential(stack)
    model.compile(optimizer=pyminidl.optimizers.Adam(1e-3), loss="sparse_categorical_crossentropy")
    return model


def _torch_copy(model, activation=torch.nn.ReLU if torch else None):
    """A torch.nn.Sequential with the same weights (and Dropout layers) as the pyminidl stack."""
    layers = []
    dense = [layer for layer in model.layers if isinstance(layer, Dense)]
    for layer in model.layers:
        if isinstance(layer, Dropout):
            layers.append(torch.nn.Dropout(layer.rate))
            continue
        kernel, bias = layer.get_weights()
        linear = torch.nn.Linear(*kernel.shape)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(kernel.T.copy()))
            linear.bias.copy_(torch.from_numpy(bias))
        layers.append(linear)
        if activation is not None and layer is not dense[-1]:
            layers.append(activation())
    return torch.nn.Sequential(*layers)


def _torch_epoch(net, opt, x, y, generator):
    order = torch.randperm(len(x), generator=generator)
    loss_fn = torch.nn.functional.cross_entropy
    for start in range(0, len(x), BATCH):
        idx = order[start:start + BATCH]
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
    return loss.item()


# ---------------------------------------------------------------------------- benchmarks

# The kernels that hold the MLP's matrix products (forward: GEMM + bias; backward: the GEMMs).
_GEMM_KERNELS = ("gemm", "dense_forward")
_GEMM_SHARE = {}


def _gemm_share(run_epoch):
    """Seconds of one epoch inside the GEMM kernels and in all, from cProfile (its per-call cost
    lands on the Python side, so the share outside the GEMMs reads a little high)."""
    import cProfile
    import pstats

    profile = cProfile.Profile()
    profile.runcall(run_epoch)
    stats = pstats.Stats(profile).stats
    inside = sum(tottime for (_, _, name), (_, _, tottime, _, _) in stats.items()
                 if any(name == f"<built-in method pyminidl._C.{k}>" for k in _GEMM_KERNELS))
    return {"gemm_s": inside, "total_s": pstats.Stats(profile).total_tt}



def bench_mlp(units=MLP_UNITS, dropout=None, profile=True):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ARGS.samples, units[0]), dtype=np.float32)
    y = rng.integers(0, units[-1], ARGS.samples)
    model = _pyminidl_mlp(units, dropout)
    model.build((None, units[0]))
    net = _torch_copy(model) if torch else None
    if net is not None:  # correctness first: same weights -> same loss on a batch (Dropout off)
        ours = model.evaluate(x[:BATCH], y[:BATCH], verbose=0)
        net.eval()
        with torch.no_grad():
            theirs = float(torch.nn.functional.cross_entropy(net(torch.from_numpy(x[:BATCH])),
                                                             torch.from_numpy(y[:BATCH])))
        assert abs(ours - theirs) < 1e-4 * max(1.0, abs(theirs)), (ours, theirs)
        net.train()
    model.fit(x[:2048], y[:2048], epochs=1, batch_size=BATCH, verbose=0)  # warm-up
    run_ours = lambda: model.fit(x, y, epochs=1, batch_size=BATCH, verbose=0, shuffle=True)
    run_theirs = None
    if net is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        gen = torch.Generator().manual_seed(0)
        _torch_epoch(net, opt, xt[:2048], yt[:2048], gen)
        run_theirs = lambda: _torch_epoch(net, opt, xt, yt, gen)
    ours, theirs = _interleaved(run_ours, run_theirs)
    if profile:
        _GEMM_SHARE.update(_gemm_share(run_ours))
    results = {"pyminidl": _median(ours)}
    if theirs:
        results["torch"] = _median(theirs)
    return results


def bench_tiny():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((1, 10), dtype=np.float32)
    y = rng.standard_normal((1, 10), dtype=np.float32)
    pyminidl.utils.set_random_seed(0)
    model = Sequential([Dense(10, input_dim=10)])
    model.compile(optimizer=pyminidl.optimizers.SGD(0.01), loss="mse")
    model.build((None, 10))
    net = _torch_copy(model, activation=None) if torch else None
    model.train_on_batch(x, y)
    if net is not None:  # correctness first: one identical SGD step
        opt = torch.optim.SGD(net.parameters(), lr=0.01)
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        loss = torch.nn.functional.mse_loss(net(xt), yt)
        loss.backward()
        opt.step()
        kernel = model.layers[0].get_weights()[0]
        np.testing.assert_allclose(kernel, net[0].weight.detach().numpy().T, rtol=1e-5, atol=1e-6)
    steps = ARGS.tiny_steps

    def run_ours():
        for _ in range(steps):
            model.train_on_batch(x, y)

    run_theirs = None if net is None else _torch_tiny_steps(net, opt, xt, yt, steps)
    for _ in range(200 // steps + 1):  # warm-up
        run_ours()
        if run_theirs is not None:
            run_theirs()
    ours, theirs = _interleaved(run_ours, run_theirs, ARGS.tiny_reps)
    results = {"pyminidl": _median([t / steps for t in ours])}
    if theirs:
        results["torch"] = _median([t / steps for t in theirs])
    return results


def _torch_tiny_steps(net, opt, xt, yt, steps):
    mse = torch.nn.functional.mse_loss

    def run():
        for _ in range(steps):
            opt.zero_grad(set_to_none=True)
            loss = mse(net(xt), yt)
            loss.backward()
            opt.step()

    return run


# ---------------------------------------------------------------------------- report


def _emit(rows):
    if ARGS.json:
        with open(ARGS.json, "a") as f:
            for row in rows:
                f.write(json.dumps(row) + "\n")


def _rss_child():
    """One MLP epoch (or just the data) in this fresh process; prints the peak resident MB (Linux)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((ARGS.samples, MLP_UNITS[0]), dtype=np.float32)
    y = rng.integers(0, MLP_UNITS[-1], ARGS.samples)
    if ARGS.rss_child == "pyminidl":
        _pyminidl_mlp().fit(x, y, epochs=1, batch_size=BATCH, verbose=0)
    elif ARGS.rss_child == "torch":
        model = _pyminidl_mlp()
        model.build((None, MLP_UNITS[0]))
        net = _torch_copy(model)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3, eps=1e-7)
        _torch_epoch(net, opt, torch.from_numpy(x), torch.from_numpy(y), torch.Generator().manual_seed(0))
    # VmHWM, not getrusage's ru_maxrss: that one carries the parent's peak across fork + exec.
    with open("/proc/self/status") as f:
        hwm_kib = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
    print(hwm_kib / 1024)
    return 0


def _peak_rss_mb(which):
    """Peak resident size of a fresh process running ``_rss_child`` for ``which``."""
    import subprocess

    cmd = [sys.executable, __file__, "--rss-child", which, "--threads", str(ARGS.threads),
           "--samples", str(ARGS.samples)]
    return float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.split()[-1])


def _print_rss():
    data = _peak_rss_mb("data")
    ours = _peak_rss_mb("pyminidl")
    theirs = _peak_rss_mb("torch") if torch else None
    print(f"{'peak RSS, one MLP epoch (MB)':<34}{ours:>14.0f}{(f'{theirs:.0f}' if theirs else '-'):>14}"
          f"{(f'{ours / theirs:.2f}x' if theirs else '-'):>9}   (the data alone: {data:.0f} MB)")


def _print_erf():
    """The reference backend's erf (exact GELU) on 256x1024 float32: vectorised vs one math.erf per element."""
    import math

    from pyminidl.backend.base import Backend

    be, x = Backend(), np.random.default_rng(0).standard_normal((256, 1024)).astype("float32")
    per_element = np.frompyfunc(math.erf, 1, 1)
    ref = per_element(x).astype("float32")
    np.testing.assert_allclose(be._erf(x), ref, atol=1e-7)  # correct before timed
    ours = statistics.median(_timed(lambda: be._erf(x)) for _ in range(ARGS.reps)) * 1e3
    theirs = statistics.median(_timed(lambda: per_element(x).astype("float32")) for _ in range(ARGS.reps)) * 1e3
    tanh = statistics.median(_timed(lambda: np.tanh(x)) for _ in range(ARGS.reps)) * 1e3
    print(f"{'reference erf 256x1024 (ms)':<34}{ours:>14.1f}{theirs:>14.1f}{ours / theirs:>8.2f}x   "
          f"(vs math.erf per element; np.tanh {tanh:.1f} ms)")


def _timed(fn):
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def main():
    if ARGS.rss_child:
        return _rss_child()
    pyminidl.config.set_num_threads(ARGS.threads)
    peer = f"torch {torch.__version__}" if torch else "PyTorch not installed"
    print(f"pyminidl {pyminidl.__version__} ({pyminidl.backend.get_backend().name} backend, "
          f"{pyminidl.config.cpu_features().get('active')}), {peer}, threads={ARGS.threads}, reps={ARGS.reps}")
    machine = _harness.machine(ARGS.threads)
    print("machine: " + _harness.machine_line(machine))
    print(f"measured FMA ceiling, {ARGS.threads} thread(s): {machine['fma_ceiling_gflops']:.1f} GFLOP/s; "
          f"load average before: {_load()}")
    mlp, tiny = bench_mlp(), bench_tiny()
    dropout = bench_mlp(DROPOUT_UNITS, DROPOUT_RATE, profile=False)
    rows = []
    n = ARGS.samples
    for name, res in (("mlp_784_256_128_10_epoch", mlp), ("tiny_dense10_step", tiny),
                      ("mlp_784_512_512_10_dropout_epoch", dropout)):
        for framework, (med, lo, hi) in res.items():
            rows.append({"op": name, "backend": framework, "threads": ARGS.threads, "median_s": med,
                         "min_s": lo, "max_s": hi})
    _emit(rows)
    header = f"{'benchmark':<34}{'pyminidl':>14}{'PyTorch':>14}{'ratio':>9}   target"
    print(header)
    print("-" * len(header))
    ours = n / mlp["pyminidl"][0]
    theirs = n / mlp["torch"][0] if "torch" in mlp else None
    ratio = f"{ours / theirs:.2f}x" if theirs else "-"
    print(f"{'MLP epoch (samples/s, higher=better)':<34}{ours:>14,.0f}{(f'{theirs:,.0f}' if theirs else '-'):>14}"
          f"{ratio:>9}   >= 2x")
    ours = n / dropout["pyminidl"][0]
    theirs = n / dropout["torch"][0] if "torch" in dropout else None
    ratio = f"{ours / theirs:.2f}x" if theirs else "-"
    print(f"{'MLP with Dropout (samples/s)':<34}{ours:>14,.0f}{(f'{theirs:,.0f}' if theirs else '-'):>14}"
          f"{ratio:>9}   (Keras's mnist_mlp: 784-512-512-10, Dropout(0.2) x2)")
    ours = tiny["pyminidl"][0] * 1e6
    theirs = tiny["torch"][0] * 1e6 if "torch" in tiny else None
    ratio = f"{ours / theirs:.2f}x" if theirs else "-"
    print(f"{'tiny step (us/step, lower=better)':<34}{ours:>14.1f}{(f'{theirs:.1f}' if theirs else '-'):>14}"
          f"{ratio:>9}   <= 0.33x")
    for name, (med, lo, hi) in mlp.items():
        print(f"  MLP epoch seconds, {name}: median {med:.3f}, min {lo:.3f}, max {hi:.3f}")
    if _GEMM_SHARE.get("total_s"):
        g, t = _GEMM_SHARE["gemm_s"], _GEMM_SHARE["total_s"]
        print(f"  MLP epoch under cProfile: {t:.3f} s, in the GEMM kernels ({', '.join(_GEMM_KERNELS)}) {g:.3f} s; "
              f"outside them {100 * (1 - g / t):.0f} %")
    _print_erf()
    if not ARGS.no_rss:
        _print_rss()
    print(f"load average after: {_load()}")
    return 0


def _load():
    """The 1/5/15-minute load averages (this machine is shared: the ratios mean more than the times)."""
    try:
        return " ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


if __name__ == "__main__":
    sys.exit(main())
