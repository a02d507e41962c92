"""The inference forwards (lstm_inference, simple_rnn_inference, gru_inference with and without
reset_after ("gru", "gru_before"): no per-step caches kept) vs the
reference (its training forward's y and final states, float64 from the same float32 inputs): masks,
awkward sizes, batch 1, strided inputs, no bias or states, other activations, several GEMM blocks,
1 vs 2 threads, bad input. (The reference is lstm_forward / simple_rnn_forward, whose gradients the
finite-difference checks of tests/grad cover; the inference ops have no backward.)"""

import numpy as np
import pytest

import pyminidl
from pyminidl.backend._compat import _C
from pyminidl.backend.base import Backend
from pyminidl.testing import assert_close

pytestmark = pytest.mark.skipif(_C is None, reason="the C++ extension is not built")

REF = Backend()
KINDS = {"simple_rnn": 1, "lstm": 4, "gru": 3, "gru_before": 3}
SHAPES = [(1, 1, 1, 1), (3, 7, 5, 17), (17, 5, 3, 1), (5, 2, 33, 7), (64, 3, 4, 9), (1, 4, 65, 33)]


def _masks(rng, n, t):
    lengths = rng.integers(0, t + 1, n)
    post = np.arange(t)[None, :] < lengths[:, None]
    return {"none": None, "post": post, "pre": post[:, ::-1].copy(), "random": rng.random((n, t)) > 0.4}


def _weights(rng, kind, i, u, dtype=np.float32):
    k = KINDS[kind]
    bias = (2, k * u) if kind == "gru" else (k * u,)  # reset_after: input and recurrent biases
    return tuple((rng.standard_normal(s) * 0.5).astype(dtype) for s in ((i, k * u), (u, k * u), bias))


def _infer(be, kind, x, w, r, b, h0, c0, mask, acts=("tanh", "sigmoid")):
    if kind == "lstm":
        return be.lstm_inference(x, w, r, b, h0, c0, mask, *acts)
    if kind.startswith("gru"):
        return be.gru_inference(x, w, r, b, h0, mask, *acts, reset_after=kind == "gru")
    return be.simple_rnn_inference(x, w, r, b, h0, mask, acts[0])


def _f64(*arrays):
    return [None if a is None else a.astype(np.float64) for a in arrays]


@pytest.mark.parametrize("kind", sorted(KINDS))
@pytest.mark.parametrize("shape", SHAPES)
def test_inference_matches_reference(cpu, rng, kind, shape):
    n, t, i, u = shape
    for mask in _masks(rng, n, t).values():
        x = rng.standard_normal((n, t, i)).astype(np.float32)
        w, r, b = _weights(rng, kind, i, u)
        h0, c0 = (rng.standard_normal((n, u)).astype(np.float32) for _ in range(2))
        got = _infer(cpu, kind, x, w, r, b, h0, c0, mask)
        want = _infer(REF, kind, *_f64(x, w, r, b, h0, c0), mask)
        assert len(got) == (3 if kind == "lstm" else 2)
        for g, wnt in zip(got, want):
            assert g.dtype == np.float32
            assert_close(g, wnt, k=i + u)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_inference_equals_the_training_forward_outputs(cpu, rng, kind):
    x = rng.standard_normal((9, 6, 5)).astype(np.float32)
    w, r, b = _weights(rng, kind, 5, 11)
    mask = _masks(rng, 9, 6)["random"]
    got = _infer(cpu, kind, x, w, r, b, None, None, mask)
    if kind == "lstm":
        fwd = cpu.lstm_forward(x, w, r, b, None, None, mask)
    elif kind.startswith("gru"):
        fwd = cpu.gru_forward(x, w, r, b, None, mask, reset_after=kind == "gru")
    else:
        fwd = cpu.simple_rnn_forward(x, w, r, b, None, mask)
    for g, f in zip(got, fwd):
        np.testing.assert_allclose(g, f, rtol=1e-5, atol=1e-5)  # only the pre-activation's summation order differs


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_strided_input_no_bias_no_states_and_empty_sizes(cpu, rng, kind):
    x = rng.standard_normal((6, 10, 4)).astype(np.float32)[:, ::2]
    w, r, _ = _weights(rng, kind, 4, 3)
    got = _infer(cpu, kind, x, w, r, None, None, None, None)
    want = _infer(REF, kind, *_f64(x, w, r), None, None, None, None)
    for g, wnt in zip(got, want):
        assert_close(g, wnt, k=7)
    h0 = rng.standard_normal((6, 3)).astype(np.float32)
    got = _infer(cpu, kind, x[:, :0], w, r, None, h0, h0, None)  # no steps: the initial states come back
    assert got[0].shape == (6, 0, 3)
    np.testing.assert_array_equal(got[1], h0)
    for n, i in ((0, 4), (6, 0)):
        xs = np.zeros((n, 5, i), np.float32)
        ws = w[:i]
        got = _infer(cpu, kind, xs, ws, r, None, None, None, None)
        want = _infer(REF, kind, *_f64(xs, ws, r), None, None, None, None)
        for g, wnt in zip(got, want):
            assert_close(g, wnt, k=3)


@pytest.mark.parametrize("act,ract", [("relu", "hard_sigmoid"), ("linear", "sigmoid"), ("sigmoid", "tanh")])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_other_activations_match_reference(cpu, rng, kind, act, ract):
    x = rng.standard_normal((3, 4, 2)).astype(np.float32)
    w, r, b = _weights(rng, kind, 2, 3)
    got = _infer(cpu, kind, x, w, r, b, None, None, None, (act, ract))
    want = _infer(REF, kind, *_f64(x, w, r, b), None, None, None, (act, ract))
    for g, wnt in zip(got, want):
        assert_close(g, wnt, k=5)


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("kind", sorted(KINDS))
def test_stacked_kernel_spans_several_gemm_blocks(cpu, rng, isa, kind):
    # [W; R] is packed once per call; with the smallest blocks (KC 64, NC 128 or 192) K = 70 + 53
    # spans two KC blocks and the 4 * 53 LSTM columns two NC blocks, on every ISA path.
    pyminidl.config.set_cpu_capability(isa)
    _C._gemm_set_caches((4 * 1024, 32 * 1024, 256 * 1024))
    try:
        n, t, i, u = 19, 4, 70, 53
        x = rng.standard_normal((n, t, i)).astype(np.float32)
        w, r, b = _weights(rng, kind, i, u)
        h0, c0 = (rng.standard_normal((n, u)).astype(np.float32) for _ in range(2))
        mask = _masks(rng, n, t)["random"]
        got = _infer(cpu, kind, x, w, r, b, h0, c0, mask)
    finally:
        _C._gemm_set_caches(None)
    want = _infer(REF, kind, *_f64(x, w, r, b, h0, c0), mask)
    for g, wnt in zip(got, want):
        assert_close(g, wnt, k=i + u)


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_one_and_two_threads_agree_and_runs_repeat_bit_for_bit(cpu, rng, kind):
    n, t, i, u = 64, 5, 6, 16
    x = rng.standard_normal((n, t, i)).astype(np.float32)
    w, r, b = _weights(rng, kind, i, u)
    mask = _masks(rng, n, t)["random"]

    def run(threads):
        pyminidl.config.set_num_threads(threads)
        return _infer(cpu, kind, x, w, r, b, None, None, mask)

    # Each row's step product depends on its own row alone (sgemm_serial_packed_b; edge rows get
    # a full tile's bits), so two threads' row blocks give one thread's bits.
    one, two, again = run(1), run(2), run(2)
    for a, b2, c in zip(one, two, again):
        np.testing.assert_array_equal(a, b2)
        np.testing.assert_array_equal(b2, c)


def test_bindings_check_every_shape():
    x = np.zeros((2, 3, 4), np.float32)
    w, r, b = (np.zeros(s, np.float32) for s in ((4, 20), (5, 20), (20,)))
    with pytest.raises(ValueError, match="lstm_inference.*h0"):
        _C.lstm_inference(x, w, r, b, np.zeros((3, 5), np.float32))
    with pytest.raises(ValueError, match="c0"):
        _C.lstm_inference(x, w, r, b, None, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="mask"):
        _C.lstm_inference(x, w, r, b, None, None, np.ones((2, 4), bool))
    with pytest.raises(ValueError, match="kernel"):
        _C.lstm_inference(x, np.zeros((3, 20), np.float32), r, b)
    with pytest.raises(ValueError, match="bias"):
        _C.simple_rnn_inference(x, w[:, :5], r[:, :5], b)
    with pytest.raises(TypeError, match="float32"):
        _C.simple_rnn_inference(x.astype(np.float64), w[:, :5], r[:, :5])
    with pytest.raises(ValueError, match="gelu"):
        _C.simple_rnn_inference(x, w[:, :5], r[:, :5], None, None, None, "gelu")


@pytest.mark.parametrize("isa", ["baseline", "avx2", "avx512"])
@pytest.mark.parametrize("kind", ["gru", "gru_before"])
def test_gru_on_every_isa_path(cpu, rng, isa, kind):
    # odd sizes, batch 1 and a block of two threads' rows, reversed (go_backwards) and random masks
    pyminidl.config.set_cpu_capability(isa)
    for n, t, i, u in ((1, 3, 7, 17), (65, 4, 3, 5), (7, 5, 1, 33)):
        x = rng.standard_normal((n, t, i)).astype(np.float32)
        w, r, b = _weights(rng, kind, i, u)
        h0 = rng.standard_normal((n, u)).astype(np.float32)
        for name, mask in _masks(rng, n, t).items():
            xs = x[:, ::-1] if name == "pre" else x  # go_backwards: the layer reverses x (a strided view)
            got = _infer(cpu, kind, xs, w, r, b, h0, None, mask)
            want = _infer(REF, kind, *_f64(xs, w, r, b, h0), None, mask)
            for g, wnt in zip(got, want):
                assert_close(g, wnt, k=i + u)


def test_gru_binding_checks_every_shape():
    x = np.zeros((2, 3, 4), np.float32)
    w, r = np.zeros((4, 15), np.float32), np.zeros((5, 15), np.float32)
    with pytest.raises(ValueError, match="gru_inference.*bias.*\\(2, 15\\)"):
        _C.gru_inference(x, w, r, np.zeros(15, np.float32))  # reset_after wants (2, 3U)
    with pytest.raises(ValueError, match="bias.*\\(15,\\)"):
        _C.gru_inference(x, w, r, np.zeros((2, 15), np.float32), reset_after=False)
    with pytest.raises(ValueError, match="recurrent_kernel"):
        _C.gru_inference(x, w, np.zeros((5, 20), np.float32))
    with pytest.raises(ValueError, match="h0"):
        _C.gru_inference(x, w, r, None, np.zeros((2, 4), np.float32))
    with pytest.raises(ValueError, match="mask"):
        _C.gru_inference(x, w, r, None, None, np.ones((3, 3), bool))
    with pytest.raises(TypeError, match="float32"):
        _C.gru_inference(x, w.astype(np.float64), r)
    with pytest.raises(ValueError, match="softmax"):
        _C.gru_inference(x, w, r, None, None, None, "tanh", "softmax")
