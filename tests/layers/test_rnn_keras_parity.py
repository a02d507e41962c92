"""Recurrent layers against real Keras 3 (torch backend): the same weights set with set_weights in
Keras's layout give Keras's outputs. The constants were computed by keras 3 (KERAS_BACKEND=torch)
on the inputs below, masks included (pre- and post-padding rows)."""

import numpy as np
import pytest

from pyminidl import layers

U = 2

X = np.array([[[ 0.3 , -1.04,  0.75],
  [ 0.94, -1.95, -1.3 ],
  [ 0.13, -0.32, -0.02],
  [-0.85,  0.88,  0.78]],

 [[ 0.07,  1.13,  0.47],
  [-0.86,  0.37, -0.96],
  [ 0.88, -0.05, -0.18],
  [-0.68,  1.22, -0.15]]], dtype=np.float32)
MASK = np.array([[True, True, True, False], [False, True, True, True]])
W_LSTM = [np.array([[-0.21, -0.18,  0.27,  0.18,  0.21,  0.22,  1.07, -0.2 ],
 [-0.26, -0.41,  0.31,  0.56, -0.06, -0.42, -0.41,  0.33],
 [ 0.37,  0.27, -0.33,  0.12,  0.06,  0.11,  0.44,  0.11]], dtype=np.float32), np.array([[ 0.34,  0.03,  0.14,  0.32, -0.73, -0.16, -0.24, -0.32],
 [-0.14,  0.75, -0.43,  0.48, -0.84, -0.17,  0.08,  0.29]], dtype=np.float32), np.array([ 0.36,  0.4 , -0.17, -0.23,  0.43, -0.1 , -0.64, -0.57], dtype=np.float32)]
W_GRU = [np.array([[-0.46,  0.25,  0.07,  0.35, -0.21,  0.08],
 [ 0.31, -0.15,  0.23, -0.33, -0.18, -0.19],
 [-0.6 ,  0.24, -0.23,  0.01,  0.24,  0.22]], dtype=np.float32), np.array([[ 0.33, -0.05, -0.21, -0.04, -0.84, -0.72],
 [-0.66, -0.5 ,  0.2 , -0.45, -0.19,  0.65]], dtype=np.float32), np.array([[-0.18,  0.37, -0.47, -0.1 , -0.48, -0.17],
 [ 0.42, -0.86,  0.22,  0.12, -0.3 , -0.72]], dtype=np.float32)]
W_GRU_BEFORE = [np.array([[ 0.04, -0.26,  0.12,  0.01,  0.8 , -0.12],
 [-0.51,  0.09,  0.11,  0.68,  0.42,  0.18],
 [ 0.73, -0.59, -0.32, -0.46, -0.19, -0.69]], dtype=np.float32), np.array([[ 0.32, -0.11, -0.74, -0.51,  0.16,  0.42],
 [ 1.  ,  1.46,  0.21, -0.49, -1.07,  0.13]], dtype=np.float32), np.array([-0.41, -0.21, -0.31, -0.07,  0.53,  0.08], dtype=np.float32)]
W_SIMPLE = [np.array([[-0.08, -0.52],
 [-0.84, -0.24],
 [-0.03,  0.88]], dtype=np.float32), np.array([[ 0.07,  0.49],
 [-0.25, -0.59]], dtype=np.float32), np.array([-0.48, -0.36], dtype=np.float32)]
CASES = {
    'lstm_seq_state': ('LSTM(U, return_sequences=True, return_state=True)', W_LSTM, False, [np.array([[[ 0.21820906,  0.09191702],
  [ 0.24418801,  0.07853004],
  [ 0.12208958,  0.06959318],
  [ 0.03219215, -0.09839676]],

 [[ 0.06429821, -0.10836717],
  [ 0.02274307, -0.13436513],
  [ 0.23332739, -0.03094735],
  [ 0.03167936, -0.17335159]]], dtype=np.float32), np.array([[ 0.03219215, -0.09839676],
 [ 0.03167936, -0.17335159]], dtype=np.float32), np.array([[ 0.19253024, -0.2038627 ],
 [ 0.27035862, -0.38966742]], dtype=np.float32)]),
    'lstm_mask': ('LSTM(U, return_sequences=True)', W_LSTM, True, [np.array([[[ 0.21820906,  0.09191702],
  [ 0.244188  ,  0.07853004],
  [ 0.12208958,  0.06959318],
  [ 0.12208958,  0.06959318]],

 [[ 0.        ,  0.        ],
  [ 0.00925979, -0.10633353],
  [ 0.19599563, -0.01948829],
  [ 0.02811351, -0.16544555]]], dtype=np.float32)]),
    'lstm_back_mask': ('LSTM(U, go_backwards=True)', W_LSTM, True, [np.array([[ 0.2196831 ,  0.11996583],
 [ 0.02224705, -0.11842784]], dtype=np.float32)]),
    'gru': ('GRU(U, return_sequences=True)', W_GRU, False, [np.array([[[-0.18013954, -0.1162161 ],
  [-0.38956434, -0.3079585 ],
  [-0.39208692, -0.38294876],
  [-0.33125758, -0.43756452]],

 [[-0.2683496 , -0.32796717],
  [-0.31956512, -0.5771727 ],
  [-0.43704987, -0.5879831 ],
  [-0.44321677, -0.642309  ]]], dtype=np.float32)]),
    'gru_mask': ('GRU(U)', W_GRU, True, [np.array([[-0.39208692, -0.38294876],
 [-0.3861208 , -0.635947  ]], dtype=np.float32)]),
    'gru_before': ('GRU(U, reset_after=False, return_sequences=True)', W_GRU_BEFORE, False, [np.array([[[ 0.06336305, -0.40234753],
  [ 0.48922056,  0.13058415],
  [ 0.46818197,  0.11246869],
  [ 0.24602827, -0.0258815 ]],

 [[ 0.49065816, -0.02953636],
  [ 0.28655416,  0.264705  ],
  [ 0.5678036 ,  0.20987907],
  [ 0.45267767,  0.3366092 ]]], dtype=np.float32)]),
    'simple_mask': ('SimpleRNN(U, return_sequences=True)', W_SIMPLE, True, [np.array([[[ 0.33380115,  0.37445953],
  [ 0.7824087 , -0.9189399 ],
  [ 0.06341837,  0.50586337],
  [ 0.06341837,  0.50586337]],

 [[ 0.        ,  0.        ],
  [-0.6000338 , -0.68918407],
  [-0.35635662, -0.6917991 ],
  [-0.8611803 , -0.19511901]]], dtype=np.float32)]),
    'bidi_mask': ('Bidirectional(LSTM(U, return_sequences=True))', W_LSTM + W_LSTM, True, [np.array([[[ 0.21820906,  0.09191702,  0.2196831 ,  0.11996583],
  [ 0.244188  ,  0.07853004,  0.25198355,  0.07053272],
  [ 0.12208958,  0.06959318,  0.10557214,  0.01251569],
  [ 0.        ,  0.        ,  0.        ,  0.        ]],

 [[ 0.        ,  0.        ,  0.        ,  0.        ],
  [ 0.00925979, -0.10633353,  0.02224705, -0.11842784],
  [ 0.19599563, -0.01948829,  0.207417  , -0.02550762],
  [ 0.02811351, -0.16544555,  0.01354774, -0.15234417]]], dtype=np.float32)]),
    'bidi_sum_mask': ('Bidirectional(GRU(U), merge_mode="sum")', W_GRU + W_GRU, True, [np.array([[-0.62638104, -0.7025916 ],
 [-0.7833163 , -1.2838485 ]], dtype=np.float32)]),
}


def _make(ctor):
    names = {"U": U, "LSTM": layers.LSTM, "GRU": layers.GRU, "SimpleRNN": layers.SimpleRNN,
             "Bidirectional": layers.Bidirectional}
    return eval(ctor, names)  # the constructor text of each case, as run on Keras


@pytest.mark.parametrize("key", sorted(CASES))
def test_matches_keras(key):
    ctor, weights, use_mask, want = CASES[key]
    layer = _make(ctor)
    layer.build((None,) + X.shape[1:])
    layer.set_weights(weights)
    out = layer(X, mask=MASK) if use_mask else layer(X)
    got = out if isinstance(out, list) else [out]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        np.testing.assert_allclose(g, w, rtol=1e-5, atol=2e-6)


@pytest.mark.parametrize("key", ["lstm_mask", "gru", "simple_mask", "bidi_mask"])
def test_matches_keras_on_the_numpy_backend(key):
    from pyminidl.backend import use_backend

    with use_backend("numpy"):
        test_matches_keras(key)
