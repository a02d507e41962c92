"""Softmax and the fused softmax cross-entropy: pyminidl's row kernels vs PyTorch CPU, in the same run.

Cases, float32, (samples, classes): (128, 10) the MLP's output, (128, 1000) an ImageNet-sized
head, (64, 10000) a word-level language model's vocabulary. Ops: softmax forward; the sparse
cross-entropy forward (per-sample loss and the probabilities: what ``fit`` calls, against
``F.cross_entropy(reduction='none')``); and the cross-entropy forward+backward (against autograd
through the same call, ``backward`` with a ones gradient). Every result is checked against the
other framework before any timing; the peers are timed alternately in blocks (``_harness.bench``).
Reported: the median and the best time, the elements per nanosecond, and pyminidl's speed-up
over PyTorch, of the medians and of the best times.

    $ python benchmarks/bench_losses.py --threads 2
    $ PYMINIDL_CPU_CAPABILITY=avx2 python benchmarks/bench_losses.py --threads 1
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

ARGS = _harness.single_process_options(__doc__, 0.3).parse_args()
_harness.setup_threads(ARGS.threads)

import numpy as np  # noqa: E402

from pyminidl.backend import get_backend  # noqa: E402

torch, F = _harness.import_torch(ARGS.threads)

SHAPES = [(128, 10), (128, 1000), (64, 10000)]


def _ours(be, op, x, y, ones):
    if op == "softmax fwd":
        return (be.softmax_forward(x),)
    loss, probs = be.softmax_cross_entropy_forward(x, y, True)
    if op == "CE fwd":
        return loss, probs
    return loss, be.softmax_cross_entropy_backward(ones, probs, y, True)


def _torch(op, xt, yt):
    if op == "softmax fwd":
        with torch.no_grad():
            return (F.softmax(xt, dim=-1),)
    if op == "CE fwd":
        with torch.no_grad():
            return F.cross_entropy(xt, yt, reduction="none"), F.softmax(xt, dim=-1)
    xg = xt.detach().requires_grad_()
    loss = F.cross_entropy(xg, yt, reduction="none")
    loss.backward(torch.ones_like(loss))
    return loss, xg.grad


def _case(be, rows, op, shape, rng):
    x = (3.0 * rng.standard_normal(shape)).astype(np.float32)
    y = rng.integers(0, shape[1], shape[0])
    ones = np.ones(shape[0], np.float32)
    got = _ours(be, op, x, y, ones)
    fns = {"pyminidl": lambda: _ours(be, op, x, y, ones)}
    if torch is not None:
        xt, yt = torch.from_numpy(x), torch.from_numpy(y)
        for g, w in zip(got, _torch(op, xt, yt)):
            np.testing.assert_allclose(g, w.detach().numpy(), rtol=1e-4, atol=1e-6)
        fns["torch"] = lambda: _torch(op, xt, yt)
    times = _harness.bench(fns, budget_s=ARGS.budget)
    ours_med, ours_best = times["pyminidl"][:2]
    for name, (med, lo, hi) in times.items():
        rec = {"op": op, "shape": list(shape), "backend": name, "threads": ARGS.threads, "median_s": med,
               "min_s": lo, "max_s": hi}
        if ARGS.json:
            with open(ARGS.json, "a") as f:
                _harness.emit(rec, f)
        rows.append({"op": op, "shape": "x".join(map(str, shape)), "peer": name, "us": med * 1e6,
                     "best us": lo * 1e6, "elem/ns": x.size / med / 1e9,
                     "speed-up": med / ours_med, "speed-up (best)": lo / ours_best})


def main():
    be = get_backend()
    if be.name != "cpu":
        raise SystemExit(f"the cpu backend is needed (got {be.name!r})")
    m = _harness.machine(ARGS.threads)
    print(f"# {_harness.machine_line(m)}; threads={ARGS.threads}; torch {torch.__version__ if torch else 'not installed'}")
    print(f"# load average {os.getloadavg()[0]:.2f} at start")
    rng = np.random.default_rng(0)
    rows = []
    for shape in SHAPES:
        for op in ("softmax fwd", "CE fwd", "CE fwd+bwd"):
            _case(be, rows, op, shape, rng)
    _harness.table(rows, ["op", "shape", "peer", "us", "best us", "elem/ns", "speed-up", "speed-up (best)"])
    print(f"# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
