"""Recurrent layers and the sentiment model: pyminidl vs PyTorch CPU, measured in the same run.

1. LSTM, SimpleRNN and GRU layers, batch 64, 80 steps, 32 inputs, 128 units, the full output
   sequence: forward (inference) and forward + backward (training), vs torch.nn.LSTM / RNN / GRU with
   the same weights (Keras layout converted; gate order i, f, c, o is PyTorch's i, f, g, o; GRU's
   z, r, h (reset_after, Keras's default and PyTorch's formula) is PyTorch's r, z, n).
2. One epoch of Embedding(10000, 32) -> LSTM(32) -> Dense(1, sigmoid), RMSprop, binary
   cross-entropy, batch 128, on synthetic sequences of length 200 (``model.fit(..., epochs=1)`` vs
   the idiomatic PyTorch loop), samples/second.

Outputs are checked against PyTorch before any timing. Peers alternate in blocks (harness.bench).
PyTorch runs both of its CPU recurrent paths: oneDNN's fused RNN (its default where oneDNN is built
in) and ATen's step-by-step cells (``torch.backends.mkldnn.flags(enabled=False)``); the table names
each and the speedup is over the faster of the two, so neither path's weak spot flatters pyminidl.
Targets (2 threads): >= 1.2x PyTorch on each layer, >= 1.5x its samples/s on the epoch.

    $ python benchmarks/bench_rnn.py --threads 2
    $ PYMINIDL_CPU_CAPABILITY=avx2 python benchmarks/bench_rnn.py --threads 2 --samples 5000
    $ python benchmarks/bench_rnn.py --tf-python /work/venvs/tf/bin/python   # + Keras on TensorFlow's epoch
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness as harness  # noqa: E402


def _parse():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--samples", type=int, default=25000, help="epoch samples (0 skips the epoch)")
    parser.add_argument("--epochs", type=int, default=2, help="timed epochs per framework (alternating)")
    parser.add_argument("--json", help="also append JSON lines to this file")
    parser.add_argument("--tf-python", help="an interpreter with tensorflow-cpu: Keras on TensorFlow joins the "
                                            "epoch as a peer")
    parser.add_argument("--tf-server", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _tf_server():
    """The Keras-on-TensorFlow epoch peer, run by ``--tf-python`` as this file with ``--tf-server``."""
    import numpy as np

    tf = harness.tf_import(ARGS.threads)
    import keras

    state = {}

    def handle(req):
        if req["cmd"] == "hello":
            return {"version": f"tensorflow {tf.__version__}, keras {keras.__version__}"}
        if req["cmd"] == "setup":  # the model, compiled as the Keras books do
            with np.load(req["path"]) as a:
                state["data"] = a["x"], a["y"]
            state["model"] = keras.Sequential([keras.Input(shape=(200,), dtype="int32"),
                                               keras.layers.Embedding(10000, 32), keras.layers.LSTM(32),
                                               keras.layers.Dense(1, activation="sigmoid")])
            state["model"].compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
        x, y = state["data"]
        state["model"].fit(x[:256] if req["cmd"] == "setup" else x, y[:256] if req["cmd"] == "setup" else y,
                           batch_size=128, epochs=1, verbose=0)
        return None

    harness.serve(handle)


ARGS = _parse()
harness.setup_threads(ARGS.threads)
if ARGS.tf_server:
    sys.exit(_tf_server())

import time  # noqa: E402
import warnings  # noqa: E402

import numpy as np  # noqa: E402

import pyminidl  # noqa: E402
from pyminidl import layers  # noqa: E402

try:
    import torch
except ImportError:  # the peer is optional
    torch = None

N, T, I, U = 64, 80, 32, 128


_LAYERS = {"lstm": (layers.LSTM, "LSTM"), "simple_rnn": (layers.SimpleRNN, "RNN"), "gru": (layers.GRU, "GRU")}


def _torch_gates(a, kind):
    """Keras's gate blocks (last axis) in PyTorch's order: GRU z, r, h -> r, z, n; others as they are."""
    if kind != "gru":
        return a
    z, r, h = np.split(a, 3, axis=-1)
    return np.concatenate([r, z, h], axis=-1)


def _layer_pair(kind, rng):
    """(pyminidl layer, torch module) with the same weights."""
    cls, torch_name = _LAYERS[kind]
    layer = cls(U, return_sequences=True)
    layer.build((None, T, I))
    if torch is None:
        return layer, None
    mod = getattr(torch.nn, torch_name)(I, U, batch_first=True)
    kernel, recurrent, bias = layer.get_weights()
    bias = bias + rng.standard_normal(bias.shape).astype("float32") * 0.1
    layer.set_weights([kernel, recurrent, bias])
    b_ih, b_hh = (bias[0], bias[1]) if bias.ndim == 2 else (bias, np.zeros_like(bias))
    with torch.no_grad():
        for name, value in (("weight_ih_l0", kernel), ("weight_hh_l0", recurrent), ("bias_ih_l0", b_ih),
                            ("bias_hh_l0", b_hh)):
            getattr(mod, name).copy_(torch.from_numpy(np.ascontiguousarray(_torch_gates(value, kind).T)))
    return layer, mod


def _layer_rows(kind, rng):
    layer, mod = _layer_pair(kind, rng)
    x = rng.standard_normal((N, T, I)).astype("float32")
    dy = rng.standard_normal((N, T, U)).astype("float32")

    def ours_fwd():
        return layer._infer(x)

    def ours_train():
        y, backward = layer._forward_full(x, True)
        layer.zero_grads()
        return backward(dy)

    fns = {"pyminidl": (ours_fwd, ours_train)}
    if mod is not None:
        xt, dyt = torch.from_numpy(x).requires_grad_(True), torch.from_numpy(dy)
        want = mod(torch.from_numpy(x))[0].detach().numpy()
        np.testing.assert_allclose(ours_fwd(), want, rtol=1e-4, atol=1e-4)  # correctness before timing

        def torch_fwd():
            with torch.no_grad():
                return mod(xt)[0]

        def torch_train():
            mod.zero_grad()
            xt.grad = None
            mod(xt)[0].backward(dyt)

        fwd_paths, train_paths = _torch_paths(torch_fwd), _torch_paths(torch_train)
        fns.update({name: (fwd_paths[name], train_paths[name]) for name in _TORCH_PATHS})
    rows = []
    for what, idx in (("forward", 0), ("forward+backward", 1)):
        res = harness.bench({name: f[idx] for name, f in fns.items()})
        rows.append(_row(f"{kind} {what}", res, "ms"))
    return rows


def _row(op, res, unit):
    """One table row: pyminidl's time, each PyTorch path's, and the speedup over the faster path."""
    ours = res["pyminidl"][0]
    peers = {name: res[name][0] for name in _TORCH_PATHS if name in res}
    peer = min(peers.values()) if peers else None
    row = {"op": op, "pyminidl_ms": ours * 1e3, "speedup": None if peer is None else peer / ours}
    row.update({f"{name}_ms": t * 1e3 for name, t in peers.items()})
    harness.emit({"op": op, "backend": "cpu", "threads": ARGS.threads, "median_s": ours,
                  **{f"{name}_median_s": t for name, t in peers.items()}},
                 open(ARGS.json, "a") if ARGS.json else open(os.devnull, "w"))
    return row


# PyTorch's two CPU recurrent paths: name -> whether oneDNN (mkldnn) may run the layer.
_TORCH_PATHS = {"torch_onednn": True, "torch_aten": False}


def _torch_paths(fn):
    """{path name: fn run under that path's mkldnn flag} for a PyTorch callable."""
    def under(enabled):
        def run():
            with warnings.catch_warnings():  # the flags' setter warns that TF32 needs an Intel GPU
                warnings.simplefilter("ignore", UserWarning)
                with torch.backends.mkldnn.flags(enabled=enabled):
                    return fn()
        return run
    return {name: under(enabled) for name, enabled in _TORCH_PATHS.items()}


def _epoch_data(samples, rng):
    x = rng.integers(1, 10000, (samples, 200)).astype("int32")
    y = (x[:, -10:].mean(axis=1) > 5000).astype("float32")
    return x, y


def _ours_epoch(x, y):
    model = pyminidl.Sequential([layers.Input((200,), dtype="int32"), layers.Embedding(10000, 32), layers.LSTM(32),
                                 layers.Dense(1, activation="sigmoid")])
    model.compile(optimizer="rmsprop", loss="binary_crossentropy", metrics=["accuracy"])
    model.fit(x[:256], y[:256], batch_size=128, epochs=1, verbose=0)  # warm up

    def run():
        t0 = time.perf_counter()
        model.fit(x, y, batch_size=128, epochs=1, verbose=0)
        return time.perf_counter() - t0

    return run


def _torch_epoch(x, y):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.emb, self.lstm, self.out = torch.nn.Embedding(10000, 32), torch.nn.LSTM(32, 32, batch_first=True), \
                torch.nn.Linear(32, 1)

        def forward(self, ids):
            return torch.sigmoid(self.out(self.lstm(self.emb(ids))[0][:, -1]))

    net, loss_fn = Net(), torch.nn.BCELoss()
    opt = torch.optim.RMSprop(net.parameters(), lr=1e-3, alpha=0.9, eps=1e-7)
    xt, yt = torch.from_numpy(x.astype("int64")), torch.from_numpy(y)[:, None]

    def run():
        t0 = time.perf_counter()
        perm = torch.randperm(len(xt))
        for i in range(0, len(xt), 128):
            idx = perm[i:i + 128]
            opt.zero_grad()
            loss = loss_fn(net(xt[idx]), yt[idx])
            loss.backward()
            opt.step()
        return time.perf_counter() - t0

    return run


def _tf_epoch(x, y):
    """A callable timing one Keras-on-TensorFlow epoch in the peer process (built and warmed up now)."""
    peer = harness.PeerProcess(ARGS.tf_python, __file__, ["--tf-server", "--threads", str(ARGS.threads)],
                               harness.TF_ENV)
    print(f"# keras_tf peer: {peer.ask(cmd='hello')['version']}")
    path = os.path.join(peer.dir, "epoch.npz")
    np.savez(path, x=x, y=y)
    peer.ask(cmd="setup", path=path)

    def run():
        t0 = time.perf_counter()
        peer.ask(cmd="epoch")
        return time.perf_counter() - t0

    return run


def _epoch_row(samples, rng):
    x, y = _epoch_data(samples, rng)
    runs = {"pyminidl": _ours_epoch(x, y)}
    if torch is not None:
        runs.update(_torch_paths(_torch_epoch(x, y)))
    if ARGS.tf_python:
        runs["keras_tf"] = _tf_epoch(x, y)
    times = {name: [] for name in runs}
    for _ in range(ARGS.epochs):  # alternate whole epochs
        for name, run in runs.items():
            times[name].append(run())
    res = {name: (min(ts),) for name, ts in times.items()}
    row = _row(f"epoch Embedding->LSTM(32)->Dense, {samples} x 200", res, "s")
    row.update({f"{name}_samples/s": samples / t for name, (t,) in res.items()})
    if "keras_tf" in res:
        row["x keras_tf"] = res["keras_tf"][0] / res["pyminidl"][0]
    return row


def main():
    pyminidl.config.set_num_threads(ARGS.threads)
    if torch is not None:
        torch.set_num_threads(ARGS.threads)
    rng = np.random.default_rng(0)
    m = harness.machine(ARGS.threads)
    print(f"# {harness.machine_line(m)}; FMA ceiling {m['fma_ceiling_gflops']:.0f} GFLOP/s")
    print(f"# threads {ARGS.threads}; torch {torch.__version__ if torch else 'not installed'}; "
          f"speedup = the faster torch path's time / pyminidl's; load average {_load()} (start)")
    rows = _layer_rows("lstm", rng) + _layer_rows("simple_rnn", rng) + _layer_rows("gru", rng)
    torch_cols = [name for name in _TORCH_PATHS if torch is not None]
    harness.table(rows, ["op", "pyminidl_ms"] + [f"{name}_ms" for name in torch_cols] + ["speedup"])
    if ARGS.samples:
        row = _epoch_row(ARGS.samples, rng)
        tf_cols = ["keras_tf_samples/s", "x keras_tf"] if ARGS.tf_python else []
        harness.table([row], ["op"] + [f"{name}_samples/s" for name in ["pyminidl"] + torch_cols] + ["speedup"]
                      + tf_cols)
    print(f"# load average {_load()} (end)")


def _load():
    """The 1, 5 and 15 minute load averages: the machine is shared, so ratios need them beside."""
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


if __name__ == "__main__":
    main()
