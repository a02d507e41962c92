"""Conv2D throughput: pyminidl vs PyTorch CPU (NCHW and channels_last), float32.

Usage:
    python benchmarks/bench_conv.py                 # 1 and 2 threads
    python benchmarks/bench_conv.py --threads 2 --quick
    PYMINIDL_CPU_CAPABILITY=avx2 python benchmarks/bench_conv.py --threads 2
    python benchmarks/bench_conv.py --json out.jsonl

Shapes are the CNN of issue 9 (3x3 'same', stride 1): batch 128 1->32 on 28x28 (the first
layer: no input gradient, as the trainer skips it), batch 128 32->64 on 14x14, batch 64
64->64 on 32x32. "fwd" is conv_forward with bias; "fwd+bwd" adds conv_backward (dw, db and
dx except on the first layer). GFLOP/s counts 2*N*OH*OW*F*KH*KW*C per product (forward, dw,
dx). Each case is checked against the float64 reference before it is timed; the peers are
timed in alternating blocks (_harness.bench). ratio = pyminidl / the fastest torch layout from
the medians; ratio(min) compares the best reps, the steadier figure on a shared machine.

Each thread count runs in its own subprocess (OpenMP and torch read their thread counts at
start). The CNN epoch of issue 9 (``cnn_epoch``) runs the same model, optimizer and batch size in
PyTorch (NCHW and channels_last) alternately with pyminidl and reports pyminidl's speed over each.
"""

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402  (imports no NumPy)

# (name, batch, H, W, C, F, k, need_dx)
CASES = (
    ("28x28 1->32", 128, 28, 28, 1, 32, 3, False),
    ("14x14 32->64", 128, 14, 14, 32, 64, 3, True),
    ("32x32 64->64", 64, 32, 32, 64, 64, 3, True),
)


def _check(cpu, ref, x, w, b, dy, need_dx, assert_close):
    """pyminidl's forward and backward against the float64 reference on the first 4 images."""
    x4, dy4 = x[:4], dy[:4]
    f64 = [a.astype("float64") for a in (x4, w, b, dy4)]
    k = w.shape[0] * w.shape[1] * w.shape[2]
    assert_close(cpu.conv_forward(x4, w, b, 1, "same", 1, 1), ref.conv_forward(f64[0], f64[1], f64[2], 1, "same", 1, 1), k=k)
    got = cpu.conv_backward(dy4, x4, w, 1, "same", 1, 1, True, need_dx)
    want = ref.conv_backward(f64[3], f64[0], f64[1], 1, "same", 1, 1, True, need_dx)
    for g, r, kk in zip(got, want, (w.shape[3] * 9, 4 * x.shape[1] * x.shape[2], 4 * x.shape[1] * x.shape[2])):
        if r is not None:
            assert_close(g, r, k=kk)


def _torch_fns(torch, x, w, b, dy, need_dx, channels_last):
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt).requires_grad_(need_dx)
    wt = torch.from_numpy(w.transpose(3, 2, 0, 1).copy()).contiguous(memory_format=fmt).requires_grad_(True)
    bt = torch.from_numpy(b).requires_grad_(True)
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
    conv = torch.nn.functional.conv2d

    def fwd():
        with torch.no_grad():
            return conv(xt, wt, bt, padding=1)

    def fwd_bwd():
        wt.grad = bt.grad = xt.grad = None
        conv(xt, wt, bt, padding=1).backward(dyt)

    return fwd, fwd_bwd


def conv_cases(threads, quick, torch):
    import numpy as np

    from pyminidl.backend.base import Backend
    from pyminidl.backend.cpu_backend import CpuBackend
    from pyminidl.testing import assert_close

    cpu, ref, rng = CpuBackend(), Backend(), np.random.default_rng(0)
    for name, n, h, wd, c, f, k, need_dx in CASES:
        x = rng.standard_normal((n, h, wd, c), dtype=np.float32)
        w = (rng.standard_normal((k, k, c, f), dtype=np.float32) / np.sqrt(k * k * c)).astype(np.float32)
        b = rng.standard_normal(f, dtype=np.float32)
        dy = rng.standard_normal((n, h, wd, f), dtype=np.float32)
        _check(cpu, ref, x, w, b, dy, need_dx, assert_close)
        flop = 2.0 * n * h * wd * f * k * k * c

        def fwd_bwd():
            cpu.conv_forward(x, w, b, 1, "same", 1, 1)
            return cpu.conv_backward(dy, x, w, 1, "same", 1, 1, True, need_dx)

        fns = {"fwd": {"pyminidl": lambda: cpu.conv_forward(x, w, b, 1, "same", 1, 1)},
               "fwd+bwd": {"pyminidl": fwd_bwd}}
        if torch is not None:
            for layout, cl in (("torch NCHW", False), ("torch NHWC", True)):
                fwd, fwd_bwd = _torch_fns(torch, x, w, b, dy, need_dx, cl)
                fns["fwd"][layout], fns["fwd+bwd"][layout] = fwd, fwd_bwd
        for mode, peers in fns.items():
            timing = _harness.bench(peers, budget_s=0.3 if quick else 1.0, rounds=2 if quick else 3)
            total = flop * (1 if mode == "fwd" else (3 if need_dx else 2))
            for backend, (med, lo, hi) in timing.items():
                _harness.emit({"op": "conv2d", "case": name, "mode": mode, "backend": backend, "threads": threads,
                               "median_s": med, "min_s": lo, "max_s": hi, "gflops": total / med / 1e9})


def cnn_epoch(threads, quick):
    """One epoch of issue 9's CNN on 60,000 synthetic 28x28 images (fewer with --quick), when the
    pooling layers exist; returns the samples/s record or None."""
    import numpy as np

    import pyminidl
    from pyminidl import layers

    if not hasattr(layers, "MaxPooling2D"):
        return None
    n = 6000 if quick else 60000
    rng = np.random.default_rng(0)
    x = rng.random((n, 28, 28, 1), dtype=np.float32)
    y = rng.integers(0, 10, n)
    model = pyminidl.Sequential([
        layers.Input(shape=(28, 28, 1)), layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(100, activation="relu"), layers.Dropout(0.4),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # warm-up
    runs = {"pyminidl": lambda: model.fit(x, y, batch_size=128, epochs=1, verbose=0)}
    runs.update(_torch_cnn_epochs(x, y))
    best = {name: float("inf") for name in runs}
    for _ in range(1 if quick else 2):  # peers alternate: the machine's noise falls on all of them
        for name, run in runs.items():
            t0 = time.perf_counter()
            run()
            best[name] = min(best[name], time.perf_counter() - t0)
    record = {"op": "cnn_epoch", "backend": "pyminidl", "threads": threads, "samples": n,
              "samples_per_s": n / best.pop("pyminidl")}
    record.update({f"{name}_samples_per_s": n / t for name, t in best.items()})
    return record


def _torch_cnn_epochs(x, y):
    """The same CNN, optimizer and batches in PyTorch, NCHW and channels_last ({} without torch)."""
    try:
        import torch
    except ImportError:
        return {}
    xt, yt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()), torch.from_numpy(y.astype("int64"))

    def make(memory_format):
        net = torch.nn.Sequential(
            torch.nn.Conv2d(1, 32, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
            torch.nn.Conv2d(32, 64, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2), torch.nn.Flatten(),
            torch.nn.Linear(64 * 7 * 7, 100), torch.nn.ReLU(), torch.nn.Dropout(0.4), torch.nn.Linear(100, 10))
        net = net.to(memory_format=memory_format)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        loss_fn = torch.nn.CrossEntropyLoss()

        def epoch():
            order = torch.randperm(len(xt))
            for i in range(0, len(xt), 128):
                idx = order[i:i + 128]
                xb = xt[idx].contiguous(memory_format=memory_format)
                opt.zero_grad(set_to_none=True)
                loss_fn(net(xb), yt[idx]).backward()
                opt.step()

        return epoch

    return {"torch_nchw": make(torch.contiguous_format), "torch_channels_last": make(torch.channels_last)}


def worker(threads, options):
    quick = options.quick
    removed = _harness.setup_threads(threads)
    import pyminidl

    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    pyminidl.config.set_num_threads(threads)
    _harness.emit({"op": "meta", "threads": threads, "unset_env": sorted(removed),
                   "pyminidl_isa": pyminidl.config.cpu_features()["active"],
                   "torch": None if torch is None else torch.__version__, "machine": _harness.machine(threads)})
    conv_cases(threads, quick, torch)
    record = cnn_epoch(threads, quick)
    _harness.emit(record or {"op": "cnn_epoch", "skipped": "pyminidl.layers has no MaxPooling2D yet",
                             "threads": threads})


def report(records):
    metas = [r for r in records if r["op"] == "meta"]
    if metas:
        print("machine: " + _harness.machine_line(metas[0]["machine"]))
    for m in metas:
        print(f"threads={m['threads']}: ISA {m['pyminidl_isa']}, torch {m['torch']}, FMA ceiling "
              f"{m['machine']['fma_ceiling_gflops']:.1f} GFLOP/s")
    by_key = {}
    for r in records:
        if r["op"] == "conv2d":
            by_key.setdefault((r["threads"], r["case"], r["mode"]), {})[r["backend"]] = r
    rows = []
    for (threads, case, mode), peers in by_key.items():
        p = peers["pyminidl"]
        torch_best = max((v["gflops"] for k, v in peers.items() if k.startswith("torch")), default=None)
        torch_min = min((v["min_s"] for k, v in peers.items() if k.startswith("torch")), default=None)
        rows.append({"case": case, "mode": mode, "thr": threads, "pyminidl GF/s": p["gflops"],
                     "torch NCHW GF/s": peers.get("torch NCHW", {}).get("gflops"),
                     "torch NHWC GF/s": peers.get("torch NHWC", {}).get("gflops"),
                     "ratio": p["gflops"] / torch_best if torch_best else None,
                     "ratio(min)": torch_min / p["min_s"] if torch_min else None,
                     "pmd ms med [min,max]": f"{1e3 * p['median_s']:.2f} [{1e3 * p['min_s']:.2f},{1e3 * p['max_s']:.2f}]"})
    _harness.table(rows, list(rows[0].keys()) if rows else [])
    for r in records:
        if r["op"] == "cnn_epoch":
            print(f"CNN epoch, {r['threads']} thread(s): " + (r["skipped"] if "skipped" in r else
                  f"{r['samples_per_s']:.0f} samples/s over {r['samples']} samples" + _peer_ratios(r)))


def _peer_ratios(record):
    """", torch_nchw 2700/s (1.63x), ...": each peer's samples/s and pyminidl's speed over it."""
    peers = [(k[:-len("_samples_per_s")], v) for k, v in record.items() if k.endswith("_samples_per_s")]
    return "".join(f", {name} {rate:.0f}/s ({record['samples_per_s'] / rate:.2f}x)" for name, rate in peers)


if __name__ == "__main__":
    _harness.run_main(__doc__, __file__, worker, report)
