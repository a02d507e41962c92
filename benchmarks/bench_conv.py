"""Conv2D throughput: pyminidl vs PyTorch CPU (NCHW and channels_last), float32.

Usage:
    python benchmarks/bench_conv.py                 # 1 and 2 threads
    python benchmarks/bench_conv.py --threads 2 --quick
    PYMINIDL_CPU_CAPABILITY=avx2 python benchmarks/bench_conv.py --threads 2
    python benchmarks/bench_conv.py --json out.jsonl
    python benchmarks/bench_conv.py --only depthwise --threads 2     # the depthwise rows alone
    python benchmarks/bench_conv.py --only epoch --threads 2         # the CNN epoch (60,000 images) and its memory
    python benchmarks/bench_conv.py --tf-python /work/venvs/tf/bin/python   # + Keras on TensorFlow

Shapes are the CNN of issue 9 (3x3 'same', stride 1): batch 128 1->32 on 28x28 (the first
layer: no input gradient, as the trainer skips it), batch 128 32->64 on 14x14, batch 64
64->64 on 32x32. "fwd" is conv_forward with bias; "fwd+bwd" adds conv_backward (dw, db and
dx except on the first layer). GFLOP/s counts 2*N*OH*OW*F*KH*KW*C per product (forward, dw,
dx). Each case is checked against the float64 reference before it is timed; the peers are
timed in alternating blocks (_harness.bench). ratio = pyminidl / the fastest torch layout from
the medians; ratio(min) compares the best reps, the steadier figure on a shared machine.
busy = pyminidl's / the most contended peer's share of timed blocks that shared their cores
(_harness.busy; such a block runs again up to ``--redo`` times): a row with a busy share is not a
measurement of the kernels alone.

Depthwise rows (``depthwise ...``, MobileNet-like layers, 3x3/5x5 'same'): depthwise_conv_forward
(+ depthwise_conv_backward with dx, dw, db) against torch conv2d with groups = C (NCHW and
channels_last) and against pyminidl's own grouped convolution (conv_forward with groups = C, the
path the depthwise layers took before the direct kernel), column xgrouped; GFLOP/s counts
2*N*OH*OW*C*M*KH*KW per product.

Each thread count runs in its own subprocess (OpenMP and torch read their thread counts at
start). The CNN epoch of issue 9 (``cnn_epoch``) runs the same model, optimizer and batch size in
PyTorch (NCHW and channels_last) alternately with pyminidl and reports pyminidl's speed over each.

Keras 3 on TensorFlow joins as a peer when ``--tf-python`` names an interpreter that has
tensorflow-cpu (its own venv: TensorFlow and this process's NumPy/PyTorch need not agree). That
interpreter runs this file as a server (``_TfPeer``) that holds each case's arrays and answers one
call per request, so its blocks alternate with the others' in the same timing loop; its outputs
on the first images are checked against the reference before it is timed.

Peak memory: one CNN epoch in a fresh process per framework (the process imports only that
framework), its VmHWM (peak resident set, Linux) beside the data's own; ``--no-rss`` skips it.
"""

import argparse
import os
import subprocess
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


def _check_peer(ref, got, x, w, b, dy, need_dx, assert_close):
    """A peer's (y, dx, dw, db) on the first 4 images against the float64 reference."""
    f64 = [a.astype("float64") for a in (x[:4], w, b, dy[:4])]
    k = w.shape[0] * w.shape[1] * w.shape[2]
    assert_close(got["y"], ref.conv_forward(f64[0], f64[1], f64[2], 1, "same", 1, 1), k=k)
    want = ref.conv_backward(f64[3], f64[0], f64[1], 1, "same", 1, 1, True, need_dx)
    for name, r, kk in zip(("dx", "dw", "db"), want, (w.shape[3] * 9, 4 * x.shape[1] * x.shape[2],
                                                      4 * x.shape[1] * x.shape[2])):
        if r is not None:
            assert_close(got[name], r, k=kk)


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


def conv_cases(threads, quick, torch, tf_peer=None, redo=2):
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
        if tf_peer is not None:
            fwd, fwd_bwd = tf_peer.conv_case(x, w, b, dy, need_dx, lambda got: _check_peer(ref, got, x, w, b, dy,
                                                                                            need_dx, assert_close))
            fns["fwd"]["keras/tf"], fns["fwd+bwd"]["keras/tf"] = fwd, fwd_bwd
        for mode, peers in fns.items():
            contended = {}
            timing = _harness.bench(peers, budget_s=0.3 if quick else 1.0, rounds=2 if quick else 3,
                                    contention=contended, redo=redo, threads=threads,
                                    pids=() if tf_peer is None else (tf_peer.peer.proc.pid,))
            total = flop * (1 if mode == "fwd" else (3 if need_dx else 2))
            for backend, (med, lo, hi) in timing.items():
                _harness.emit({"op": "conv2d", "case": name, "mode": mode, "backend": backend, "threads": threads,
                               "median_s": med, "min_s": lo, "max_s": hi, "gflops": total / med / 1e9,
                               "contended": contended[backend]})


# (name, batch, H, W, C, depth_multiplier, k, stride): MobileNet-like depthwise layers, 'same'.
DEPTHWISE_CASES = (
    ("depthwise 56x56x64 k3", 32, 56, 56, 64, 1, 3, 1),
    ("depthwise 28x28x256 k3 s2", 32, 28, 28, 256, 1, 3, 2),
    ("depthwise 14x14x32 k5 M2", 64, 14, 14, 32, 2, 5, 1),
)


def _torch_depthwise_fns(torch, x, w, b, dy, stride, channels_last):
    """torch conv2d with groups = C: output channel c*M + m reads channel c, as Keras's layout."""
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    k, c, m = w.shape[0], w.shape[2], w.shape[3]
    xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt).requires_grad_(True)
    wt = torch.from_numpy(w.reshape(k, k, c * m).transpose(2, 0, 1)[:, None].copy())
    wt = wt.contiguous(memory_format=fmt).requires_grad_(True)
    bt = torch.from_numpy(b).requires_grad_(True)
    dyt = torch.from_numpy(dy.transpose(0, 3, 1, 2).copy()).contiguous(memory_format=fmt)
    conv = torch.nn.functional.conv2d

    def fwd():
        with torch.no_grad():
            return conv(xt, wt, bt, stride=stride, padding=k // 2, groups=c)

    def fwd_bwd():
        wt.grad = bt.grad = xt.grad = None
        conv(xt, wt, bt, stride=stride, padding=k // 2, groups=c).backward(dyt)

    return fwd, fwd_bwd


def depthwise_cases(threads, quick, torch):
    import numpy as np

    from pyminidl.backend.base import Backend
    from pyminidl.backend.cpu_backend import CpuBackend
    from pyminidl.testing import assert_close

    cpu, ref, rng = CpuBackend(), Backend(), np.random.default_rng(0)
    for name, n, h, wd, c, m, k, s in DEPTHWISE_CASES:
        x = rng.standard_normal((n, h, wd, c), dtype=np.float32)
        w = rng.standard_normal((k, k, c, m), dtype=np.float32) / k
        b = rng.standard_normal(c * m, dtype=np.float32)
        y = cpu.depthwise_conv_forward(x, w, b, s, "same", 1)
        dy = rng.standard_normal(y.shape, dtype=np.float32)
        f64 = [a.astype("float64") for a in (x[:2], w, b, dy[:2])]
        assert_close(cpu.depthwise_conv_forward(x[:2], w, b, s, "same", 1),
                     ref.depthwise_conv_forward(f64[0], f64[1], f64[2], s, "same", 1), k=k * k)
        for got, want in zip(cpu.depthwise_conv_backward(dy[:2], x[:2], w, s, "same", 1),
                             ref.depthwise_conv_backward(f64[3], f64[0], f64[1], s, "same", 1)):
            assert_close(got, want, k=2 * y.shape[1] * y.shape[2])
        grouped = w.reshape(k, k, 1, c * m)
        flop = 2.0 * n * y.shape[1] * y.shape[2] * c * m * k * k

        def fwd_bwd():
            cpu.depthwise_conv_forward(x, w, b, s, "same", 1)
            return cpu.depthwise_conv_backward(dy, x, w, s, "same", 1)

        def grouped_fwd_bwd():
            cpu.conv_forward(x, grouped, b, s, "same", 1, c)
            return cpu.conv_backward(dy, x, grouped, s, "same", 1, c)

        fns = {"fwd": {"pyminidl": lambda: cpu.depthwise_conv_forward(x, w, b, s, "same", 1),
                       "pmd grouped": lambda: cpu.conv_forward(x, grouped, b, s, "same", 1, c)},
               "fwd+bwd": {"pyminidl": fwd_bwd, "pmd grouped": grouped_fwd_bwd}}
        if torch is not None:
            for layout, cl in (("torch NCHW", False), ("torch NHWC", True)):
                fns["fwd"][layout], fns["fwd+bwd"][layout] = _torch_depthwise_fns(torch, x, w, b, dy, s, cl)
        for mode, peers in fns.items():
            timing = _harness.bench(peers, budget_s=0.3 if quick else 1.0, rounds=2 if quick else 3)
            total = flop * (1 if mode == "fwd" else 3)
            for backend, (med, lo, hi) in timing.items():
                _harness.emit({"op": "conv2d", "case": name, "mode": mode, "backend": backend, "threads": threads,
                               "median_s": med, "min_s": lo, "max_s": hi, "gflops": total / med / 1e9})


def cnn_epoch(threads, quick, tf_peer=None):
    """One epoch of issue 9's CNN on 60,000 synthetic 28x28 images (fewer with --quick), when the
    pooling layers exist; returns the samples/s record or None."""
    from pyminidl import layers

    if not hasattr(layers, "MaxPooling2D"):
        return None
    n = _cnn_samples(quick)
    x, y = _cnn_data(n)
    model = _pyminidl_cnn()
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # warm-up
    runs = {"pyminidl": lambda: model.fit(x, y, batch_size=128, epochs=1, verbose=0)}
    runs.update(_torch_cnn_epochs(x, y))
    if tf_peer is not None:
        runs["keras_tf"] = tf_peer.cnn_epoch(n)
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


def _cnn_samples(quick):
    return 6000 if quick else 60000


def _cnn_data(n):
    """n synthetic 28x28x1 images and labels, the same in every process (and interpreter)."""
    import numpy as np

    rng = np.random.default_rng(0)
    return rng.random((n, 28, 28, 1), dtype=np.float32), rng.integers(0, 10, n)


def _pyminidl_cnn():
    """Issue 9's CNN in pyminidl, compiled as the Keras tutorials do."""
    import pyminidl
    from pyminidl import layers

    model = pyminidl.Sequential([
        layers.Input(shape=(28, 28, 1)), layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(100, activation="relu"), layers.Dropout(0.4),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


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


class _TfPeer:
    """Keras 3 on TensorFlow in a second interpreter: this file run there as ``_tf_server``."""

    def __init__(self, python, threads):
        self.peer = _harness.PeerProcess(python, __file__, ["--tf-server", "--threads", str(threads)],
                                         _harness.TF_ENV)
        self.ask = self.peer.ask
        self.version = self.ask(cmd="hello")["version"]

    def conv_case(self, x, w, b, dy, need_dx, check):
        """(fwd, fwd_bwd) callables for one case, after ``check`` has passed on the peer's outputs."""
        import numpy as np

        path = os.path.join(self.peer.dir, "case.npz")
        np.savez(path, x=x, w=w, b=b, dy=dy)
        out = self.ask(cmd="case", path=path, need_dx=need_dx)["outputs"]
        with np.load(out) as got:
            check(dict(got))
        return (lambda: self.ask(cmd="run", mode="fwd")), (lambda: self.ask(cmd="run", mode="fwd+bwd"))

    def cnn_epoch(self, n):
        """A callable running one epoch of the Keras CNN on n samples (built and warmed up now)."""
        self.ask(cmd="cnn", n=n)
        return lambda: self.ask(cmd="epoch")

    def close(self):
        self.peer.close()


def _tf_conv_fns(tf, x, w, b, dy, need_dx):
    """Conv2D forward and forward+backward as Keras's TensorFlow backend runs them (tf.nn.convolution
    in a tf.function; the backward asks the tape only for the gradients the trainer would)."""
    x, w, b, dy = (tf.constant(a) for a in (x, w, b, dy))

    def conv(xx, ww, bb):
        return tf.nn.bias_add(tf.nn.convolution(xx, ww, strides=1, padding="SAME"), bb)

    @tf.function
    def fwd(xx):
        return conv(xx, w, b)

    @tf.function
    def fwd_bwd(xx, dyy):
        with tf.GradientTape() as tape:
            tape.watch([xx, w, b])
            y = conv(xx, w, b)
        # y is returned too: a graph returning the gradients alone would prune the forward away
        # (no gradient of a convolution reads its output).
        return [y] + tape.gradient(y, [xx, w, b] if need_dx else [w, b], output_gradients=dyy)

    return lambda xx=x: fwd(xx), lambda xx=x, dyy=dy: fwd_bwd(xx, dyy)


def _keras_cnn(keras):
    """Issue 9's CNN in Keras 3, compiled as the tutorials do."""
    layers = keras.layers
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)), layers.Conv2D(32, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Conv2D(64, kernel_size=3, activation="relu", padding="same"),
        layers.MaxPooling2D(2), layers.Flatten(), layers.Dense(100, activation="relu"), layers.Dropout(0.4),
        layers.Dense(10, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def _tf_server(threads):
    """The TensorFlow side of ``_TfPeer``: one answer per request (``_harness.serve``)."""
    _harness.setup_threads(threads)
    import numpy as np

    tf = _harness.tf_import(threads)
    import keras

    state = {}

    def handle(req):
        if req["cmd"] == "hello":
            return {"version": f"tensorflow {tf.__version__}, keras {keras.__version__}"}
        if req["cmd"] == "case":
            with np.load(req["path"]) as a:
                x, w, b, dy = a["x"], a["w"], a["b"], a["dy"]
            fwd, fwd_bwd = _tf_conv_fns(tf, x, w, b, dy, req["need_dx"])
            state["fns"] = {"fwd": fwd, "fwd+bwd": fwd_bwd}
            grads = fwd_bwd(tf.constant(x[:4]), tf.constant(dy[:4]))
            got = {"y": fwd(tf.constant(x[:4])).numpy(), "dw": grads[-2].numpy(), "db": grads[-1].numpy()}
            if req["need_dx"]:
                got["dx"] = grads[1].numpy()
            np.savez(req["path"] + ".out.npz", **got)
            return {"outputs": req["path"] + ".out.npz"}
        if req["cmd"] == "run":
            state["fns"][req["mode"]]()
        elif req["cmd"] == "cnn":
            state["data"], state["model"] = _cnn_data(req["n"]), _keras_cnn(keras)
            state["model"].fit(state["data"][0][:256], state["data"][1][:256], batch_size=128, epochs=1,
                               verbose=0)  # warm-up
        elif req["cmd"] == "epoch":
            state["model"].fit(state["data"][0], state["data"][1], batch_size=128, epochs=1, verbose=0)
        return None

    _harness.serve(handle)


def _rss_child(which, threads, quick):
    """One CNN epoch of ``which`` ("data": none) in this fresh process, which imports that framework
    alone; prints the peak resident MB."""
    _harness.setup_threads(threads)
    x, y = _cnn_data(_cnn_samples(quick))
    if which == "pyminidl":
        import pyminidl

        pyminidl.config.set_num_threads(threads)
        _pyminidl_cnn().fit(x, y, batch_size=128, epochs=1, verbose=0)
    elif which in ("torch_nchw", "torch_channels_last"):
        import torch

        torch.set_num_threads(threads)
        _torch_cnn_epochs(x, y)[which]()
    elif which == "keras_tf":
        _harness.tf_import(threads)
        import keras

        _keras_cnn(keras).fit(x, y, batch_size=128, epochs=1, verbose=0)
    # VmHWM, not getrusage's ru_maxrss: that one carries the parent's peak across fork + exec.
    with open("/proc/self/status") as f:
        print(next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024)


def peak_memory(threads, quick, tf_python=None):
    """{"data": MB, framework: MB, ...}: each CNN epoch's VmHWM in its own fresh process."""
    children = [("data", sys.executable), ("pyminidl", sys.executable), ("torch_nchw", sys.executable),
                ("torch_channels_last", sys.executable)] + ([("keras_tf", tf_python)] if tf_python else [])
    record = {"op": "cnn_peak_rss_mb", "threads": threads, "samples": _cnn_samples(quick)}
    for which, python in children:
        cmd = [python, os.path.abspath(__file__), "--rss-child", which, "--threads", str(threads)]
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2", KERAS_BACKEND="tensorflow")
        out = subprocess.run(cmd + (["--quick"] if quick else []), capture_output=True, text=True, env=env)
        if out.returncode == 0:
            record[which] = float(out.stdout.split()[-1])
        elif which.startswith("torch") and "No module named 'torch'" in out.stderr:
            continue
        else:
            raise RuntimeError(f"peak-memory child {which} failed:\n{out.stderr}")
    return record


def worker(threads, options):
    quick, tf_python = options.quick, options.tf_python
    removed = _harness.setup_threads(threads)
    import pyminidl

    try:
        import torch

        torch.set_num_threads(threads)
    except ImportError:
        torch = None
    pyminidl.config.set_num_threads(threads)
    tf_peer = _TfPeer(tf_python, threads) if tf_python else None
    _harness.emit({"op": "meta", "threads": threads, "unset_env": sorted(removed),
                   "pyminidl_isa": pyminidl.config.cpu_features()["active"],
                   "torch": None if torch is None else torch.__version__,
                   "tf": None if tf_peer is None else tf_peer.version, "machine": _harness.machine(threads)})
    if options.only in (None, "conv"):
        conv_cases(threads, quick, torch, tf_peer, options.redo)
    if options.only in (None, "depthwise"):
        depthwise_cases(threads, quick, torch)
    if options.only in (None, "epoch"):
        record = cnn_epoch(threads, quick, tf_peer)
        _harness.emit(record or {"op": "cnn_epoch", "skipped": "pyminidl.layers has no MaxPooling2D yet",
                                 "threads": threads})
    if tf_peer is not None:
        tf_peer.close()


PEERS = (("torch NCHW", "NCHW"), ("torch NHWC", "NHWC"), ("keras/tf", "TF"))
OWN = (("pmd grouped", "grouped"),)  # pyminidl's other path for the same op: a column, not a peer


def report(records):
    metas = [r for r in records if r["op"] == "meta"]
    if metas:
        print("machine: " + _harness.machine_line(metas[0]["machine"]) + f"; load average {_load()}")
    for m in metas:
        print(f"threads={m['threads']}: ISA {m['pyminidl_isa']}, torch {m['torch']}, {m.get('tf') or 'no TF peer'}, "
              f"FMA ceiling {m['machine']['fma_ceiling_gflops']:.1f} GFLOP/s")
    by_key = {}
    for r in records:
        if r["op"] == "conv2d":
            by_key.setdefault((r["threads"], r["case"], r["mode"]), {})[r["backend"]] = r
    rows = []
    for (threads, case, mode), peers in by_key.items():
        p, others = peers["pyminidl"], {k: v for k, v in peers.items() if k in dict(PEERS)}
        row = {"case": case, "mode": mode, "thr": threads, "pyminidl GF/s": p["gflops"]}
        row.update({f"{name} GF/s": others.get(name, {}).get("gflops") for name, _ in PEERS})
        row.update({f"x{short}": p["gflops"] / others[name]["gflops"] if name in others else None
                    for name, short in PEERS})
        row.update({f"x{short}": p["gflops"] / peers[name]["gflops"] if name in peers else None
                    for name, short in OWN})
        fastest = max((v["gflops"] for v in others.values()), default=None)
        fastest_min = min((v["min_s"] for v in others.values()), default=None)
        row["x fastest"] = p["gflops"] / fastest if fastest else None
        row["x fastest(min)"] = fastest_min / p["min_s"] if fastest_min else None
        row["pmd ms med [min,max]"] = f"{1e3 * p['median_s']:.2f} [{1e3 * p['min_s']:.2f},{1e3 * p['max_s']:.2f}]"
        row["busy"] = _harness.busy({"pyminidl": p, **others})
        rows.append(row)
    _harness.table(rows, list(rows[0].keys()) if rows else [])
    for r in records:
        if r["op"] == "cnn_epoch":
            print(f"CNN epoch, {r['threads']} thread(s): " + (r["skipped"] if "skipped" in r else
                  f"{r['samples_per_s']:.0f} samples/s over {r['samples']} samples" + _peer_ratios(r)))
        if r["op"] == "cnn_peak_rss_mb":
            peers = [k for k in r if k not in ("op", "threads", "samples", "data", "pyminidl")]
            print(f"CNN epoch peak RSS ({r['samples']} samples, {r['threads']} thread(s)): pyminidl "
                  f"{r['pyminidl']:.0f} MB" + "".join(f", {k} {r[k]:.0f} MB ({r['pyminidl'] / r[k]:.2f}x)" for k in peers)
                  + f"; the data alone {r['data']:.0f} MB")


def _load():
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def _peer_ratios(record):
    """", torch_nchw 2700/s (1.63x), ...": each peer's samples/s and pyminidl's speed over it."""
    peers = [(k[:-len("_samples_per_s")], v) for k, v in record.items() if k.endswith("_samples_per_s")]
    return "".join(f", {name} {rate:.0f}/s ({record['samples_per_s'] / rate:.2f}x)" for name, rate in peers)


def _add_arguments(ap):
    ap.add_argument("--tf-python", help="an interpreter with tensorflow-cpu: Keras on TensorFlow joins as a peer")
    ap.add_argument("--no-rss", action="store_true", help="skip the peak-memory measurement")
    ap.add_argument("--only", choices=("conv", "depthwise", "epoch"),
                    help="only these rows: conv or depthwise (no CNN epoch, no peak memory), or the CNN epoch "
                         "and its peak memory")


def _peak_memory_record(args):
    """The epoch's peak memory per framework, measured after the timing workers (fresh processes)."""
    if args.no_rss or args.only in ("conv", "depthwise"):
        return []
    return [peak_memory(max(args.threads or [1, 2]), args.quick, args.tf_python)]


def _child_mode():
    """``--tf-server`` (the TF peer) and ``--rss-child NAME`` (one peak-memory process), or None."""
    ap = argparse.ArgumentParser(add_help=False)
    ap.add_argument("--tf-server", action="store_true")
    ap.add_argument("--rss-child")
    ap.add_argument("--threads", type=int, action="append")
    ap.add_argument("--quick", action="store_true")
    args, _ = ap.parse_known_args()
    if args.tf_server:
        return lambda: _tf_server(args.threads[0])
    if args.rss_child:
        return lambda: _rss_child(args.rss_child, args.threads[0], args.quick)
    return None


def main():
    child = _child_mode()
    if child is not None:
        return child()
    _harness.run_main(__doc__, __file__, worker, report, add_arguments=_add_arguments,
                      extra_records=_peak_memory_record)


if __name__ == "__main__":
    main()
