"""Recurrent and Embedding kernels: CpuBackend (float32) vs the reference Backend (float64 from the
same inputs), the reference vs a step-by-step NumPy loop written from the equations, masks (pre-
and post-padding, random), awkward sizes, strided inputs, 1 vs 2 threads, bad input."""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

REF = Backend()
SHAPES = [(1, 1, 1, 1), (3, 7, 5, 17), (17, 5, 3, 1), (5, 2, 33, 7), (64, 3, 4, 9)]
GATES = {"simple_rnn": 1, "lstm": 4, "gru": 3, "gru_before": 3}


def _sig(z):
    return 1.0 / (1.0 + np.exp(-z))


def _masks(rng, n, t):
    lengths = rng.integers(0, t + 1, n)
    post = np.arange(t)[None, :] < lengths[:, None]  # valid first, padding after
    return {"none": None, "post": post, "pre": post[:, ::-1].copy(), "random": rng.random((n, t)) > 0.4}


def _step_by_step(kind, x, w, r, b, h0, c0, mask):
    """Every sample and step on its own, from the equations (Keras's rnn loop for the mask)."""
    n, t = x.shape[:2]
    u = r.shape[0]
    ys = np.zeros((n, t, u))
    hs, cs = h0.copy(), c0.copy()
    for s in range(n):
        h, c, out = h0[s].copy(), c0[s].copy(), np.zeros(u)
        for k in range(t):
            if kind == "simple_rnn":
                hn, cn = np.tanh(x[s, k] @ w + h @ r + b), c
            elif kind == "lstm":
                z = x[s, k] @ w + h @ r + b
                i, f, g, o = _sig(z[:u]), _sig(z[u:2 * u]), np.tanh(z[2 * u:3 * u]), _sig(z[3 * u:])
                cn = f * c + i * g
                hn = o * np.tanh(cn)
            elif kind == "gru":  # reset_after: b is (2, 3u)
                xz, q = x[s, k] @ w + b[0], h @ r + b[1]
                zg, rg = _sig(xz[:u] + q[:u]), _sig(xz[u:2 * u] + q[u:2 * u])
                hh = np.tanh(xz[2 * u:] + rg * q[2 * u:])
                hn, cn = zg * h + (1 - zg) * hh, c
            else:
                xz = x[s, k] @ w + b
                zg, rg = _sig(xz[:u] + h @ r[:, :u]), _sig(xz[u:2 * u] + h @ r[:, u:2 * u])
                hh = np.tanh(xz[2 * u:] + (rg * h) @ r[:, 2 * u:])
                hn, cn = zg * h + (1 - zg) * hh, c
            valid = mask is None or mask[s, k]
            if valid:
                h, c, out = hn, cn, hn
            ys[s, k] = out
        hs[s], cs[s] = h, c
    return ys, hs, cs


def _weights(rng, kind, i, u, dtype=np.float64):
    k = GATES[kind]
    w = rng.standard_normal((i, k * u)) * 0.5
    r = rng.standard_normal((u, k * u)) * 0.5
    b = rng.standard_normal((2, 3 * u) if kind == "gru" else (k * u,)) * 0.5
    return w.astype(dtype), r.astype(dtype), b.astype(dtype)


def _forward(be, kind, x, w, r, b, h0, c0, mask):
    """(y, h, [c], caches...) of the backend's op for `kind`."""
    if kind == "simple_rnn":
        return be.simple_rnn_forward(x, w, r, b, h0, mask)
    if kind == "lstm":
        return be.lstm_forward(x, w, r, b, h0, c0, mask)
    return be.gru_forward(x, w, r, b, h0, mask, reset_after=kind == "gru")


def _backward(be, kind, dy, dh, dc, x, w, r, mask, out, has_bias=True):
    if kind == "simple_rnn":
        return be.simple_rnn_backward(dy, dh, x, w, r, mask, *out[2:], has_bias)
    if kind == "lstm":
        return be.lstm_backward(dy, dh, dc, x, w, r, mask, *out[3:], has_bias)
    return be.gru_backward(dy, dh, x, w, r, mask, *out[2:], has_bias, reset_after=kind == "gru")


@pytest.mark.parametrize("kind", sorted(GATES))
@pytest.mark.parametrize("mask_kind", ["none", "post", "pre", "random"])
def test_reference_matches_the_step_by_step_equations(rng, kind, mask_kind):
    n, t, i, u = 4, 6, 3, 5
    x = rng.standard_normal((n, t, i))
    w, r, b = _weights(rng, kind, i, u)
    h0, c0 = rng.standard_normal((n, u)), rng.standard_normal((n, u))
    mask = _masks(rng, n, t)[mask_kind]
    out = _forward(REF, kind, x, w, r, b, h0, c0, mask)
    ys, hs, cs = _step_by_step(kind, x, w, r, b, h0, c0 if kind == "lstm" else np.zeros_like(c0), mask)
    np.testing.assert_allclose(out[0], ys, atol=1e-12)
    np.testing.assert_allclose(out[1], hs, atol=1e-12)
    if kind == "lstm":
        np.testing.assert_allclose(out[2], cs, atol=1e-12)


@pytest.mark.parametrize("kind", sorted(GATES))
@pytest.mark.parametrize("shape", SHAPES)
def test_kernels_match_reference(cpu, rng, kind, shape):
    n, t, i, u = shape
    for mask_kind, mask in _masks(rng, n, t).items():
        x = rng.standard_normal((n, t, i)).astype(np.float32)
        w, r, b = _weights(rng, kind, i, u, np.float32)
        h0, c0 = (rng.standard_normal((n, u)).astype(np.float32) for _ in range(2))
        dy, dh, dc = (rng.standard_normal(s).astype(np.float32) for s in ((n, t, u), (n, u), (n, u)))
        got = _forward(cpu, kind, x, w, r, b, h0, c0, mask)
        f64 = [a.astype(np.float64) for a in (x, w, r, b, h0, c0)]
        want = _forward(REF, kind, *f64, mask)
        for g, wnt in zip(got, want):
            assert_close(g, wnt, k=i + u)
        gb = _backward(cpu, kind, dy, dh, dc, x, w, r, mask, got)
        wb = _backward(REF, kind, *(a.astype(np.float64) for a in (dy, dh, dc)), *f64[:3], mask, want)
        for g, wnt in zip(gb, wb):
            assert_close(g, wnt, k=n * t * (u + i) + 1)


@pytest.mark.parametrize("kind", sorted(GATES))
def test_strided_input_and_no_bias_or_states(cpu, rng, kind):
    x = rng.standard_normal((6, 10, 4)).astype(np.float32)[:, ::2]  # a strided view
    w, r, _ = _weights(rng, kind, 4, 3, np.float32)
    got = _forward(cpu, kind, x, w, r, None, None, None, None)
    want = _forward(REF, kind, x.astype(np.float64), w.astype(np.float64), r.astype(np.float64), None, None, None,
                    None)
    for g, wnt in zip(got, want):
        assert_close(g, wnt, k=7)
    dy = rng.standard_normal(got[0].shape).astype(np.float32)
    gb = _backward(cpu, kind, dy, None, None, x, w, r, None, got, has_bias=False)
    assert gb[3] is None
    wb = _backward(REF, kind, dy.astype(np.float64), None, None, x.astype(np.float64), w.astype(np.float64),
                   r.astype(np.float64), None, want, has_bias=False)
    for g, wnt in zip(gb, wb):
        if wnt is not None:
            assert_close(g, wnt, k=40)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("kind", sorted(GATES))
def test_prepacked_recurrent_kernel_spans_several_gemm_blocks(cpu, rng, isa, kind):
    # The recurrent kernel is packed once per call into the GEMM's (KC, NC) blocks; with the
    # smallest blocks (tiny caches: KC 64, NC 128 or 192) the 4 * 53 LSTM gate columns span two
    # NC blocks and the backward's K = 4 * 53 several KC blocks, on every ISA path.
    pyminidl.config.set_cpu_capability(isa)
    _C._gemm_set_caches((4 * 1024, 32 * 1024, 256 * 1024))
    try:
        n, t, i, u = 19, 4, 3, 53
        x = rng.standard_normal((n, t, i)).astype(np.float32)
        w, r, b = _weights(rng, kind, i, u, np.float32)
        h0, c0 = (rng.standard_normal((n, u)).astype(np.float32) for _ in range(2))
        dy, dh, dc = (rng.standard_normal(s).astype(np.float32) for s in ((n, t, u), (n, u), (n, u)))
        mask = _masks(rng, n, t)["random"]
        got = _forward(cpu, kind, x, w, r, b, h0, c0, mask)
        gb = _backward(cpu, kind, dy, dh, dc, x, w, r, mask, got)
    finally:
        _C._gemm_set_caches(None)
    f64 = [a.astype(np.float64) for a in (x, w, r, b, h0, c0)]
    want = _forward(REF, kind, *f64, mask)
    for g, wnt in zip(got, want):
        assert_close(g, wnt, k=i + u)
    wb = _backward(REF, kind, *(a.astype(np.float64) for a in (dy, dh, dc)), *f64[:3], mask, want)
    for g, wnt in zip(gb, wb):
        assert_close(g, wnt, k=n * t * (u + i) + 1)


@pytest.mark.parametrize("kind", ["simple_rnn", "lstm"])
@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
def test_backward_without_dx_gives_the_same_weight_and_state_gradients(cpu, rng, kind, isa):
    # The backward's per-step product is [dx_t | dh] += dz_t [W; R]^T; without dx only R is
    # stacked. Either way the weight, bias and state gradients match the reference, on every path.
    pyminidl.config.set_cpu_capability(isa)
    n, t, i, u = 21, 6, 5, 19
    x = rng.standard_normal((n, t, i)).astype(np.float32)
    w, r, b = _weights(rng, kind, i, u, np.float32)
    h0, c0 = (rng.standard_normal((n, u)).astype(np.float32) for _ in range(2))
    dy, dh, dc = (rng.standard_normal(s).astype(np.float32) for s in ((n, t, u), (n, u), (n, u)))
    mask = _masks(rng, n, t)["random"]
    out = _forward(cpu, kind, x, w, r, b, h0, c0, mask)
    if kind == "lstm":
        with_dx = cpu.lstm_backward(dy, dh, dc, x, w, r, mask, *out[3:], True, need_dx=True)
        without = cpu.lstm_backward(dy, dh, dc, x, w, r, mask, *out[3:], True, need_dx=False)
    else:
        with_dx = cpu.simple_rnn_backward(dy, dh, x, w, r, mask, *out[2:], True, need_dx=True)
        without = cpu.simple_rnn_backward(dy, dh, x, w, r, mask, *out[2:], True, need_dx=False)
    assert without[0] is None
    f64 = [a.astype(np.float64) for a in (x, w, r, b, h0, c0)]
    want = _backward(REF, kind, *(a.astype(np.float64) for a in (dy, dh, dc)), *f64[:3], mask,
                     _forward(REF, kind, *f64, mask))
    for a, c, wnt in zip(with_dx, without, want):
        assert_close(a, wnt, k=n * t * (u + i) + 1)
        if c is not None:
            assert_close(c, wnt, k=n * t * (u + i) + 1)


@pytest.mark.parametrize("kind", ["lstm", "gru", "gru_before", "simple_rnn"])
def test_one_and_two_threads_agree_and_runs_repeat_bit_for_bit(cpu, rng, kind):
    n, t, i, u = 64, 5, 6, 16  # 64 rows: two row blocks on two threads
    x = rng.standard_normal((n, t, i)).astype(np.float32)
    w, r, b = _weights(rng, kind, i, u, np.float32)
    mask = _masks(rng, n, t)["random"]
    dy = rng.standard_normal((n, t, u)).astype(np.float32)

    def run(threads):
        pyminidl.config.set_num_threads(threads)
        out = _forward(cpu, kind, x, w, r, b, None, None, mask)
        return list(out) + list(_backward(cpu, kind, dy, None, None, x, w, r, mask, out))

    one, two, again = run(1), run(2), run(2)
    for a, b2, c in zip(one, two, again):
        if a is not None:
            np.testing.assert_allclose(a, b2, rtol=1e-5, atol=1e-5)
            np.testing.assert_array_equal(b2, c)


def test_other_activations_match_reference(cpu, rng):
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    w, r, b = _weights(rng, "lstm", 2, 3, np.float32)
    for act, ract in [("relu", "hard_sigmoid"), ("linear", "sigmoid"), ("sigmoid", "tanh")]:
        got = cpu.lstm_forward(x, w, r, b, activation=act, recurrent_activation=ract)
        want = REF.lstm_forward(*(a.astype(np.float64) for a in (x, w, r, b)), activation=act,
                                recurrent_activation=ract)
        assert_close(got[0], want[0], k=5)
    with pytest.raises(ValueError, match="gelu"):
        _C.lstm_forward(x, w, r, b, None, None, None, "gelu", "sigmoid")


def test_embedding_gather_and_deterministic_scatter_add(cpu, rng):
    ids = rng.integers(0, 7, (33, 5)).astype(np.int32)  # many repeated ids
    ids[0, :] = 6
    table = rng.standard_normal((7, 9)).astype(np.float32)
    np.testing.assert_array_equal(cpu.embedding_forward(ids, table), table[ids])
    dy = rng.standard_normal((33, 5, 9)).astype(np.float32)
    want = REF.embedding_backward(dy.astype(np.float64), ids, 7)
    runs = []
    for threads in (1, 2, 2):
        pyminidl.config.set_num_threads(threads)
        runs.append(cpu.embedding_backward(dy, ids.astype(np.int64), 7))
    assert_close(runs[0], want, k=40)
    np.testing.assert_array_equal(runs[0], runs[1])  # each row summed in position order on any thread count
    np.testing.assert_array_equal(runs[1], runs[2])


@pytest.mark.parametrize("bad", [7, 100, -1])
def test_embedding_ids_out_of_range_are_refused_before_any_read(cpu, bad):
    ids = np.array([[0, 3, bad]], dtype=np.int64)
    table = np.zeros((7, 2), np.float32)
    for fn in (lambda: _C.embedding_forward(ids, table), lambda: REF.embedding_forward(ids, table),
               lambda: _C.embedding_backward(np.zeros((1, 3, 2), np.float32), ids, 7)):
        with pytest.raises(ValueError, match=f"input_dim=7.*{'largest id ' + str(max(bad, 3))}"):
            fn()


def test_bindings_check_every_shape(rng):
    x = np.zeros((2, 3, 4), np.float32)
    w, r, b = (np.zeros(s, np.float32) for s in ((4, 20), (5, 20), (20,)))
    with pytest.raises(ValueError, match="h0"):
        _C.lstm_forward(x, w, r, b, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="mask"):
        _C.lstm_forward(x, w, r, b, None, None, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="recurrent_kernel"):
        _C.lstm_forward(x, w, np.zeros((5, 19), np.float32), b)
    out = _C.lstm_forward(x, w, r, b)
    with pytest.raises(ValueError, match="gates"):
        _C.lstm_backward(np.zeros((2, 3, 5), np.float32), None, None, x, w, r, None, out[3][:, :2], out[4], out[5])
    with pytest.raises(TypeError, match="float32"):
        _C.gru_forward(x.astype(np.float64), np.zeros((4, 15)), np.zeros((5, 15)))
