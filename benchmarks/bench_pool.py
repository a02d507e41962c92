"""Pooling and normalization: pyminidl's NHWC kernels vs PyTorch CPU and vs memory bandwidth, in the same run.

Max and average pooling 2x2 (stride 2) forward and forward+backward on the MNIST CNN's two pool
inputs, (128, 28, 28, 32) and (128, 14, 14, 64); global average and max pooling forward+backward
on (128, 14, 14, 64); BatchNormalization training forward+backward (batch statistics) on
(128, 28, 28, 32) and (64, 32, 32, 64); LayerNormalization forward+backward on (64, 80, 128).
PyTorch runs on the same values in NCHW and in channels_last memory format (layer norm has one
layout). Every result is checked against the other framework (and pyminidl against its NumPy
reference) before any timing.

The bandwidth ceiling of each case is a plain copy moving the case's minimum traffic (read the
inputs, write the outputs once: forward x + y; forward+backward adds dy + dx; the norms'
backwards also reread x), timed as one more peer: pyminidl's `linear` activation on the same
threads, into a fresh output like every op here. The header also gives a STREAM-like triad
(a = b + s c, PyTorch, 2 x 16 MiB in, 16 MiB out). All peers, the copy included, are timed
alternately in blocks (``_harness.bench``). Reported: the median and the best time, the effective
bandwidth of the minimum traffic (median), the share of the copy ceiling (median over median), and
pyminidl's speed-up over each peer, of the medians and of the best times (on a shared machine the
best time is the one least disturbed by the neighbours).

    $ python benchmarks/bench_pool.py --threads 2
    $ PYMINIDL_CPU_CAPABILITY=avx2 python benchmarks/bench_pool.py --threads 2 --json pool.jsonl
"""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _harness  # noqa: E402

ARGS = _harness.single_process_options(__doc__, 0.4).parse_args()
_harness.setup_threads(ARGS.threads)

import numpy as np  # noqa: E402

import pyminidl  # noqa: E402
from pyminidl.backend import get_backend  # noqa: E402
from pyminidl.backend.base import Backend  # noqa: E402

torch, F = _harness.import_torch(ARGS.threads)

POOL_SHAPES = [(128, 28, 28, 32), (128, 14, 14, 64)]
GLOBAL_SHAPE = (128, 14, 14, 64)
BN_SHAPES = [(128, 28, 28, 32), (64, 32, 32, 64)]
LN_SHAPE = (64, 80, 128)
COPY = "copy (ceiling)"


def _ours_pool(be, mode, x, with_backward, dy, k=(2, 2)):
    if mode == "max":
        y, arg = be.maxpool_forward(x, k, k, "valid")
        return (y, be.maxpool_backward(dy, arg, x.shape, k, k, "valid")) if with_backward else (y,)
    y = be.avgpool_forward(x, k, k, "valid")
    return (y, be.avgpool_backward(dy, x.shape, k, k, "valid")) if with_backward else (y,)


def _torch_pool(mode, xt, with_backward, dyt, k=(2, 2)):
    fn = F.max_pool2d if mode == "max" else F.avg_pool2d
    if not with_backward:
        with torch.no_grad():
            return (fn(xt, k),)
    xg = xt.detach().requires_grad_()
    y = fn(xg, k)
    return (y, torch.autograd.grad(y, xg, dyt)[0])


def _nhwc(t):
    return t.detach().permute(0, 2, 3, 1).contiguous().numpy()


def _torch_inputs(x, dy):
    """NCHW and channels_last tensors holding x and dy (same values as the NHWC arrays)."""
    nchw = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    dnchw = torch.from_numpy(np.ascontiguousarray(dy.transpose(0, 3, 1, 2)))
    return {"torch NCHW": (nchw, dnchw),
            "torch channels_last": (nchw.contiguous(memory_format=torch.channels_last),
                                    dnchw.contiguous(memory_format=torch.channels_last))}


def _check_pool(be, mode, x, dy, k=(2, 2)):
    ref = Backend()
    got = _ours_pool(be, mode, x, True, dy, k)
    want = _ours_pool(ref, mode, x.astype(np.float64), True, dy.astype(np.float64), k)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=1e-6)
    if torch is not None:
        for xt, dyt in _torch_inputs(x, dy).values():
            for g, t in zip(got, _torch_pool(mode, xt, True, dyt, k)):
                np.testing.assert_allclose(g, _nhwc(t), rtol=1e-5, atol=1e-6)


def _pool_case(be, rows, op, mode, x, dy, k, with_backward):
    fns = {"pyminidl": lambda: _ours_pool(be, mode, x, with_backward, dy, k)}
    if torch is not None:
        for name, (xt, dyt) in _torch_inputs(x, dy).items():
            fns[name] = lambda xt=xt, dyt=dyt: _torch_pool(mode, xt, with_backward, dyt, k)
    traffic = 4 * (x.size + dy.size) * (2 if with_backward else 1)  # x + y (+ dy + dx)
    _report(rows, op, x.shape, fns, traffic)


def bench_pools(be, rows):
    rng = np.random.default_rng(0)
    for shape in POOL_SHAPES:
        x = rng.standard_normal(shape).astype(np.float32)
        out = (shape[0], shape[1] // 2, shape[2] // 2, shape[3])
        dy = rng.standard_normal(out).astype(np.float32)
        for mode in ("max", "avg"):
            _check_pool(be, mode, x, dy)
            for with_backward in (False, True):
                _pool_case(be, rows, f"{mode}pool 2x2 {'fwd+bwd' if with_backward else 'fwd'}", mode, x, dy, (2, 2),
                           with_backward)
    x = rng.standard_normal(GLOBAL_SHAPE).astype(np.float32)
    k = GLOBAL_SHAPE[1:3]
    dy = rng.standard_normal((GLOBAL_SHAPE[0], 1, 1, GLOBAL_SHAPE[3])).astype(np.float32)
    for mode in ("max", "avg"):
        _check_pool(be, mode, x, dy, k)
        _pool_case(be, rows, f"global {mode}pool fwd+bwd", mode, x, dy, k, True)


def _ours_bn(be, x, gamma, beta, dy):
    y, mean, var = be.batch_norm_forward(x, gamma, beta, -1, 1e-3)
    return (y,) + tuple(be.batch_norm_backward(dy, x, gamma, mean, var, -1, 1e-3, True))


def _torch_bn(xt, w, b, dyt):
    xg, wg, bg = (t.detach().requires_grad_() for t in (xt, w, b))
    rm, rv = torch.zeros(w.shape[0]), torch.ones(w.shape[0])
    y = F.batch_norm(xg, rm, rv, wg, bg, training=True, momentum=0.01, eps=1e-3)
    return (y,) + torch.autograd.grad(y, (xg, wg, bg), dyt)


def _assert_near(got, want):
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-3, atol=1e-3 * max(1.0, float(np.abs(w).max())))


def bench_batch_norm(be, rows):
    rng = np.random.default_rng(1)
    for shape in BN_SHAPES:
        x = (rng.standard_normal(shape) * 2 + 1).astype(np.float32)
        dy = rng.standard_normal(shape).astype(np.float32)
        c = shape[-1]
        gamma, beta = rng.standard_normal(c).astype(np.float32), rng.standard_normal(c).astype(np.float32)
        got = _ours_bn(be, x, gamma, beta, dy)
        _assert_near(got, _ours_bn(Backend(), *(a.astype(np.float64) for a in (x, gamma, beta, dy))))
        fns = {"pyminidl": lambda x=x, gamma=gamma, beta=beta, dy=dy: _ours_bn(be, x, gamma, beta, dy)}
        if torch is not None:
            w, b = torch.from_numpy(gamma), torch.from_numpy(beta)
            for name, (xt, dyt) in _torch_inputs(x, dy).items():
                _assert_near(got, [_nhwc(t) if t.ndim == 4 else t.detach().numpy() for t in _torch_bn(xt, w, b, dyt)])
                fns[name] = lambda xt=xt, dyt=dyt, w=w, b=b: _torch_bn(xt, w, b, dyt)
        _report(rows, "batch_norm fwd+bwd", shape, fns, 4 * x.size * 5)  # x, y; dy, x, dx


def _ours_ln(be, x, gamma, beta, dy):
    y, mean, var = be.layer_norm_forward(x, gamma, beta, -1, 1e-3)
    return (y,) + tuple(be.layer_norm_backward(dy, x, gamma, mean, var, -1, 1e-3))


def _torch_ln(xt, w, b, dyt):
    xg, wg, bg = (t.detach().requires_grad_() for t in (xt, w, b))
    y = F.layer_norm(xg, (w.shape[0],), wg, bg, eps=1e-3)
    return (y,) + torch.autograd.grad(y, (xg, wg, bg), dyt)


def bench_layer_norm(be, rows):
    rng = np.random.default_rng(2)
    x = (rng.standard_normal(LN_SHAPE) * 2 + 1).astype(np.float32)
    dy = rng.standard_normal(LN_SHAPE).astype(np.float32)
    d = LN_SHAPE[-1]
    gamma, beta = rng.standard_normal(d).astype(np.float32), rng.standard_normal(d).astype(np.float32)
    got = _ours_ln(be, x, gamma, beta, dy)
    _assert_near(got, _ours_ln(Backend(), *(a.astype(np.float64) for a in (x, gamma, beta, dy))))
    fns = {"pyminidl": lambda: _ours_ln(be, x, gamma, beta, dy)}
    if torch is not None:
        xt, dyt, w, b = (torch.from_numpy(a) for a in (x, dy, gamma, beta))
        _assert_near(got, [t.detach().numpy() for t in _torch_ln(xt, w, b, dyt)])
        fns["torch"] = lambda: _torch_ln(xt, w, b, dyt)
    _report(rows, "layer_norm fwd+bwd", LN_SHAPE, fns, 4 * x.size * 5)  # x, y; dy, x, dx


def _copy_peer(traffic):
    """A plain copy moving ``traffic`` bytes (half read, half written) on pyminidl's threads."""
    from pyminidl.backend._compat import _C

    src = np.ones(max(1, traffic // 8), np.float32)
    return lambda: _C.activation_forward("linear", src)


def triad_gbps(n=1 << 22):
    """STREAM triad a = b + s c (PyTorch, on its threads): 3 x 4n bytes per call."""
    if torch is None:
        return None
    a, b, c = torch.empty(n), torch.ones(n), torch.ones(n)
    times = _harness.bench({"triad": lambda: torch.add(b, c, alpha=3.0, out=a)}, budget_s=ARGS.budget)
    return 12 * n / times["triad"][0] / 1e9


def _report(rows, op, shape, fns, traffic):
    fns[COPY] = _copy_peer(traffic)
    times = _harness.bench(fns, budget_s=ARGS.budget)
    ours, ceiling = times["pyminidl"][0], times[COPY][0]
    ours_best = times["pyminidl"][1]
    for name, (med, lo, hi) in times.items():
        rec = {"op": op, "shape": list(shape), "backend": name, "threads": ARGS.threads, "median_s": med,
               "min_s": lo, "max_s": hi, "gbps": traffic / med / 1e9, "of_copy_ceiling": ceiling / med}
        if ARGS.json:
            with open(ARGS.json, "a") as f:
                _harness.emit(rec, f)
        rows.append({"op": op, "shape": "x".join(map(str, shape)), "peer": name, "ms": med * 1e3, "best ms": lo * 1e3,
                     "GB/s": rec["gbps"], "of copy": rec["of_copy_ceiling"],
                     "speed-up": None if name == COPY else med / ours,
                     "speed-up (best)": None if name == COPY else lo / ours_best})


def main():
    be = get_backend()
    if be.name != "cpu":
        raise SystemExit(f"the cpu backend is needed (got {be.name!r})")
    m = _harness.machine(ARGS.threads)
    print(f"# {_harness.machine_line(m)}; threads={ARGS.threads}; FMA ceiling {m['fma_ceiling_gflops']:.0f} GFLOP/s; "
          f"torch {torch.__version__ if torch else 'not installed'}")
    triad = triad_gbps()
    print(f"# load average {os.getloadavg()[0]:.2f} at start; STREAM triad (torch, 2x16 MiB in, 16 MiB out) "
          f"{'n/a' if triad is None else f'{triad:.1f} GB/s'}; 'of copy' = the copy ceiling's time / the peer's")
    rows = []
    bench_pools(be, rows)
    bench_batch_norm(be, rows)
    bench_layer_norm(be, rows)
    _harness.table(rows, ["op", "shape", "peer", "ms", "best ms", "GB/s", "of copy", "speed-up", "speed-up (best)"])
    print(f"# load average {os.getloadavg()[0]:.2f} at end")


if __name__ == "__main__":
    main()
