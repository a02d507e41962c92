"""Recurrent layers: SimpleRNN, LSTM, GRU (whole-sequence fused backend ops), their cells, RNN(cell).

Each recurrent layer owns a cell (``layer.cell``) holding Keras's weights: ``kernel`` (I, k*units),
``recurrent_kernel`` (units, k*units) and ``bias``; gates LSTM i, f, c, o and GRU z, r, h. The
layer runs the sequence in one backend call forward (``<kind>_forward``) and one backward
(backpropagation through time), so Python runs once per layer, not once per step.

Masks follow Keras: a masked step carries the state and repeats the previous output.

Example:
    >>> lstm = LSTM(32, return_sequences=True)
    >>> lstm(np.zeros((4, 10, 8), "float32")).shape
    (4, 10, 32)
"""

import numbers

from pyminidl import activations as activations_module
from pyminidl import initializers, ops, random as pmd_random, regularizers
from pyminidl.backend import get_backend
from pyminidl.backend.base import ACTIVATIONS, RNN_ACTIVATIONS
from pyminidl.layers._serialization import deserialize, serialize
from pyminidl.layers.base import FORWARD_OPTIONS, InputSpec, Layer


def _positive_int(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"Received an invalid value for argument `{what}`, expected a positive integer. "
                         f"Received: {what}={value!r}")
    return int(value)


def _rate(value, what):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"Received an invalid value for argument `{what}`, expected a float between 0 and 1. "
                         f"Received: {what}={value!r}")
    return float(value)


def _act_name(value, what, layer):
    """The activation's name, one of the activation kernels' (backend.base.ACTIVATIONS). The fused
    recurrent kernels take RNN_ACTIVATIONS (derivative from the output); cells with others run
    step by step (``_Cell.fused``)."""
    name = "linear" if value is None else value if isinstance(value, str) else getattr(value, "__name__", None)
    if name not in ACTIVATIONS:
        raise ValueError(f"{layer} supports `{what}` in {ACTIVATIONS} (the activation kernels). "
                         f"Received: {what}={value!r}")
    return name


@ops._op()
def _part(x, key):
    """x[key] (a static index) as a differentiable op: the step path's gate columns and bias rows."""
    xp = get_backend().xp

    def backward(dy):
        dx = xp.zeros_like(x)
        dx[key] = dy
        return (dx,)

    return x[key], backward


class _Cell(Layer):
    """Shared by the cells: weights, dropout rates and the config of one recurrent step."""

    _gates = 1
    _kind = None

    def __init__(self, units, activation="tanh", use_bias=True, kernel_initializer="glorot_uniform",
                 recurrent_initializer="orthogonal", bias_initializer="zeros", kernel_regularizer=None,
                 recurrent_regularizer=None, bias_regularizer=None, kernel_constraint=None,
                 recurrent_constraint=None, bias_constraint=None, dropout=0.0, recurrent_dropout=0.0, seed=None,
                 **kwargs):
        super().__init__(**kwargs)
        self.units = _positive_int(units, "units")
        self.activation = _act_name(activation, "activation", type(self).__name__)
        self.use_bias = bool(use_bias)
        self.kernel_initializer = initializers.get(kernel_initializer)
        self.recurrent_initializer = initializers.get(recurrent_initializer)
        self.bias_initializer = initializers.get(bias_initializer)
        self.kernel_regularizer = regularizers.get(kernel_regularizer)
        self.recurrent_regularizer = regularizers.get(recurrent_regularizer)
        self.bias_regularizer = regularizers.get(bias_regularizer)
        self.kernel_constraint, self.recurrent_constraint = kernel_constraint, recurrent_constraint
        self.bias_constraint = bias_constraint
        self.dropout = _rate(dropout, "dropout")
        self.recurrent_dropout = _rate(recurrent_dropout, "recurrent_dropout")
        self.seed = seed
        self._rng = None if seed is None else pmd_random.make_rng(seed)
        self.kernel = self.recurrent_kernel = self.bias = None
        self._step_masks = None  # (input masks, recurrent masks) of the sequence the step path runs

    def fused(self, training):
        """Whether a sequence runs as one fused backend call; otherwise it runs ``call`` per step on a tape:
        recurrent dropout in training (a mask on h_{t-1} inside the recurrence, as Keras 3's
        implementation 1) and activations outside RNN_ACTIVATIONS (derivative not from the output)."""
        acts = (self.activation, getattr(self, "recurrent_activation", "sigmoid"))
        return all(a in RNN_ACTIVATIONS for a in acts) and not (training and self.recurrent_dropout > 0.0)

    def draw_step_masks(self, n, features, dtype, training):
        """Keras 3's dropout masks for one sequence (drawn once per call, shared by its steps): with
        recurrent dropout one (n, features) input mask and one (n, units) state mask per gate
        (one for SimpleRNN), each 0 or 1 / (1 - rate), from the backend's per-thread Philox."""
        be, count = get_backend(), 1 if self._kind == "simple_rnn" else self._gates

        def draw(rate, width):
            if not training or rate == 0.0:
                return None
            return [be.dropout_forward(be.xp.ones((n, width), dtype=dtype), rate, self._next_seed())[1]
                    for _ in range(count)]

        self._step_masks = (draw(self.dropout, features), draw(self.recurrent_dropout, self.units))

    def _masked(self, inputs, h_tm1):
        """Per gate: (x * input mask, h_{t-1} * state mask), unmasked where no mask was drawn."""
        dm, rm = self._step_masks or (None, None)
        count = 1 if self._kind == "simple_rnn" else self._gates
        xs = [inputs if dm is None else ops.multiply(inputs, m) for m in (dm or [None] * count)]
        hs = [h_tm1 if rm is None else ops.multiply(h_tm1, m) for m in (rm or [None] * count)]
        return xs, hs

    def _gate(self, x, h, g, bias=None):
        """x W_g + h R_g (+ bias_g): gate g's pre-activation (columns g * units ... (g + 1) * units)."""
        cols = (slice(None), slice(g * self.units, (g + 1) * self.units))
        z = ops.add(ops.matmul(x, _part(self.kernel, cols)), ops.matmul(h, _part(self.recurrent_kernel, cols)))
        return z if bias is None else ops.add(z, _part(bias, (Ellipsis, cols[1])))

    @property
    def state_size(self):
        return self.units

    def _bias_shape(self):
        return (self._gates * self.units,)

    def _bias_init(self):
        return self.bias_initializer

    def build(self, input_shape):
        k = self._gates * self.units
        self.kernel = self.add_weight("kernel", (input_shape[-1], k), self.kernel_initializer,
                                      regularizer=self.kernel_regularizer, constraint=self.kernel_constraint)
        self.recurrent_kernel = self.add_weight("recurrent_kernel", (self.units, k), self.recurrent_initializer,
                                                regularizer=self.recurrent_regularizer,
                                                constraint=self.recurrent_constraint)
        if self.use_bias:
            self.bias = self.add_weight("bias", self._bias_shape(), self._bias_init(),
                                        regularizer=self.bias_regularizer, constraint=self.bias_constraint)
        self.built = True

    def _next_seed(self):
        rng = self._rng if self._rng is not None else pmd_random.global_rng()
        return int(rng.integers(0, 2**63 - 1))

    def get_config(self):
        cfg = super().get_config()
        cfg.update({
            "units": self.units, "activation": self.activation, "use_bias": self.use_bias,
            "kernel_initializer": initializers.serialize(self.kernel_initializer),
            "recurrent_initializer": initializers.serialize(self.recurrent_initializer),
            "bias_initializer": initializers.serialize(self.bias_initializer),
            "kernel_regularizer": regularizers.serialize(self.kernel_regularizer),
            "recurrent_regularizer": regularizers.serialize(self.recurrent_regularizer),
            "bias_regularizer": regularizers.serialize(self.bias_regularizer),
            "kernel_constraint": None, "recurrent_constraint": None, "bias_constraint": None,
            "dropout": self.dropout, "recurrent_dropout": self.recurrent_dropout, "seed": self.seed,
        })
        return cfg


class SimpleRNNCell(_Cell):
    """One step of a fully connected RNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Args: as SimpleRNN (units, activation, use_bias, initializers, regularizers, constraints, dropout,
        recurrent_dropout, seed).
    """

    _kind = "simple_rnn"

    def call(self, inputs, states, training=False):
        """One step with pyminidl.ops (the step path; see ``fused``): returns (h, [h])."""
        (x,), (h,) = self._masked(inputs, states[0])
        out = activations_module.get(self.activation)(self._gate(x, h, 0, self.bias))
        return out, [out]


class LSTMCell(_Cell):
    """One LSTM step (gates i, f, c, o in Keras's layout).

    Args: as LSTM; ``unit_forget_bias`` starts the forget gate's bias at 1 (Jozefowicz et al. 2015).
    """

    _gates = 4
    _kind = "lstm"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True,
                 unit_forget_bias=True, **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = _act_name(recurrent_activation, "recurrent_activation", "LSTMCell")
        self.unit_forget_bias = bool(unit_forget_bias)

    @property
    def state_size(self):
        return [self.units, self.units]

    def call(self, inputs, states, training=False):
        """One step with pyminidl.ops (Keras 3's implementation 1): returns (h, [h, c])."""
        xs, hs = self._masked(inputs, states[0])
        act, ract = activations_module.get(self.activation), activations_module.get(self.recurrent_activation)
        i, f, g, o = (self._gate(xs[k], hs[k], k, self.bias) for k in range(4))
        c = ops.add(ops.multiply(ract(f), states[1]), ops.multiply(ract(i), act(g)))
        h = ops.multiply(ract(o), act(c))
        return h, [h, c]

    def _bias_init(self):
        if not self.unit_forget_bias:
            return self.bias_initializer
        base, units = self.bias_initializer, self.units

        def init(shape, dtype=None):
            xp = get_backend().xp
            parts = [xp.asarray(base((units,), dtype=dtype)), xp.ones((units,), dtype=dtype),
                     xp.asarray(base((2 * units,), dtype=dtype))]
            return xp.concatenate([p.reshape(-1) for p in parts])

        return init

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"recurrent_activation": self.recurrent_activation, "unit_forget_bias": self.unit_forget_bias})
        return cfg


class GRUCell(_Cell):
    """One GRU step (gates z, r, h); ``reset_after=True`` (Keras's default) applies the reset gate after
    the recurrent product and keeps two biases, shape (2, 3 * units)."""

    _gates = 3
    _kind = "gru"

    def __init__(self, units, activation="tanh", recurrent_activation="sigmoid", use_bias=True, reset_after=True,
                 **kwargs):
        super().__init__(units, activation=activation, use_bias=use_bias, **kwargs)
        self.recurrent_activation = _act_name(recurrent_activation, "recurrent_activation", "GRUCell")
        self.reset_after = bool(reset_after)

    def _bias_shape(self):
        return (2, 3 * self.units) if self.reset_after else (3 * self.units,)

    def call(self, inputs, states, training=False):
        """One step with pyminidl.ops (Keras 3's implementation 1): returns (h, [h])."""
        h_tm1, u = states[0], self.units
        xs, hs = self._masked(inputs, h_tm1)
        act, ract = activations_module.get(self.activation), activations_module.get(self.recurrent_activation)
        b_in = b_rec = None
        if self.bias is not None:
            b_in, b_rec = (_part(self.bias, 0), _part(self.bias, 1)) if self.reset_after else (self.bias, None)

        def part(w, k, at=slice(None)):
            return _part(w, (at, slice(k * u, (k + 1) * u)))

        def x_part(k):
            z = ops.matmul(xs[k], part(self.kernel, k))
            return z if b_in is None else ops.add(z, part(b_in, k, Ellipsis))

        def h_part(h, k):
            z = ops.matmul(h, part(self.recurrent_kernel, k))
            return z if b_rec is None else ops.add(z, part(b_rec, k, Ellipsis))

        z = ract(ops.add(x_part(0), h_part(hs[0], 0)))
        r = ract(ops.add(x_part(1), h_part(hs[1], 1)))
        rec_h = ops.multiply(r, h_part(hs[2], 2)) if self.reset_after else h_part(ops.multiply(r, hs[2]), 2)
        hh = act(ops.add(x_part(2), rec_h))
        h = ops.add(ops.multiply(z, h_tm1), ops.multiply(ops.subtract(1.0, z), hh))
        return h, [h]

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"recurrent_activation": self.recurrent_activation, "reset_after": self.reset_after})
        return cfg


# ---------------------------------------------------------------- the cells' whole-sequence ops
# _sequence(x, states, mask) -> (y (N, T, U), final states, backward(dy, dstates, need_dx) -> (dx, dstates0)):
# one fused backend call each way; weight gradients go to the cell.

def _accumulate(cell, dk, dr, db):
    cell.accumulate_grad("kernel", dk)  # dL/dW = x^T dz over every step
    cell.accumulate_grad("recurrent_kernel", dr)  # dL/dR = h_{t-1}^T dz over every step
    if db is not None:
        cell.accumulate_grad("bias", db)


def _simple_rnn_sequence(cell, x, states, mask):
    be, k, r, b = get_backend(), cell.kernel, cell.recurrent_kernel, cell.bias
    y, h, gates, hprev = be.simple_rnn_forward(x, k, r, b, states[0], mask, cell.activation)

    def backward(dy, dstates, need_dx):
        dx, dk, dr, db, dh0 = be.simple_rnn_backward(dy, dstates[0], x, k, r, mask, gates, hprev, b is not None,
                                                     cell.activation, need_dx)
        _accumulate(cell, dk, dr, db)
        return dx, [dh0]

    return y, [h], backward


def _lstm_sequence(cell, x, states, mask):
    be, k, r, b = get_backend(), cell.kernel, cell.recurrent_kernel, cell.bias
    acts = (cell.activation, cell.recurrent_activation)
    y, h, c, gates, hprev, cprev = be.lstm_forward(x, k, r, b, states[0], states[1], mask, *acts)

    def backward(dy, dstates, need_dx):
        dx, dk, dr, db, dh0, dc0 = be.lstm_backward(dy, dstates[0], dstates[1], x, k, r, mask, gates, hprev, cprev,
                                                    b is not None, *acts, need_dx)
        _accumulate(cell, dk, dr, db)
        return dx, [dh0, dc0]

    return y, [h, c], backward


def _gru_sequence(cell, x, states, mask):
    be, k, r, b = get_backend(), cell.kernel, cell.recurrent_kernel, cell.bias
    acts = (cell.activation, cell.recurrent_activation)
    y, h, gates, hprev, extra = be.gru_forward(x, k, r, b, states[0], mask, *acts, cell.reset_after)

    def backward(dy, dstates, need_dx):
        dx, dk, dr, db, dh0 = be.gru_backward(dy, dstates[0], x, k, r, mask, gates, hprev, extra, b is not None,
                                              *acts, cell.reset_after, need_dx)
        _accumulate(cell, dk, dr, db)
        return dx, [dh0]

    return y, [h], backward


_SEQUENCES = {"simple_rnn": _simple_rnn_sequence, "lstm": _lstm_sequence, "gru": _gru_sequence}


# Inference (RNN._infer: predict, evaluate): the same (y, final states, backward) from the backend's
# *_inference ops, which keep no per-step caches; the backward is never run.

def _no_backward(dy, dstates, need_dx):
    raise RuntimeError("The inference forward of a recurrent layer keeps no caches for a backward; "
                       "run forward(x, training) to differentiate.")


def _simple_rnn_inference(cell, x, states, mask):
    y, h = get_backend().simple_rnn_inference(x, cell.kernel, cell.recurrent_kernel, cell.bias, states[0], mask,
                                              cell.activation)
    return y, [h], _no_backward


def _lstm_inference(cell, x, states, mask):
    y, h, c = get_backend().lstm_inference(x, cell.kernel, cell.recurrent_kernel, cell.bias, states[0], states[1],
                                           mask, cell.activation, cell.recurrent_activation)
    return y, [h, c], _no_backward


def _gru_inference(cell, x, states, mask):
    y, h = get_backend().gru_inference(x, cell.kernel, cell.recurrent_kernel, cell.bias, states[0], mask,
                                       cell.activation, cell.recurrent_activation, cell.reset_after)
    return y, [h], _no_backward


_INFERENCE = {"simple_rnn": _simple_rnn_inference, "lstm": _lstm_inference, "gru": _gru_inference}


@ops._op()
def _time_step(x, t):
    """x[:, t] as a differentiable op (custom cells' step loop)."""
    xp = get_backend().xp

    def backward(dy):
        dx = xp.zeros_like(x)
        dx[:, t] = dy
        return (dx,)

    return x[:, t], backward


@ops._op()
def _reverse_time(x):
    """x[:, ::-1] as a differentiable op."""
    return x[:, ::-1], lambda dy: (dy[:, ::-1],)


class RNN(Layer):
    """A recurrent layer running ``cell`` over the time axis (Keras 3 ``keras.layers.RNN``).

    Input ``(batch, timesteps, features)``; output ``(batch, units)``, or ``(batch, timesteps, units)``
    with ``return_sequences``; with ``return_state`` a list ``[output, *final_states]``.

    Args:
        cell: a SimpleRNNCell, LSTMCell or GRUCell (run as one fused backend call per sequence, or step
            by step where ``cell.fused(training)`` says so), or a custom cell (its ``call`` per step).
        return_sequences: return every step's output, not only the last.
        return_state: also return the final states.
        go_backwards: process the sequence in reverse (the returned sequence is in that order too).
        stateful: the final states of a batch are the initial states of the next (fixed batch size;
            ``reset_states()`` zeroes them).
        unroll: accepted for Keras compatibility (the fused kernels loop in C++).
        zero_output_for_mask: masked steps of the returned sequence are zeros (as Bidirectional sets).

    Call arguments: ``mask`` (batch, timesteps) bool, ``training``, ``initial_state`` (a list of
    (batch, units) arrays).

    Example:
        >>> RNN(LSTMCell(4))(np.zeros((2, 3, 5), "float32")).shape
        (2, 4)
    """

    supports_masking = True

    def __init__(self, cell, return_sequences=False, return_state=False, go_backwards=False, stateful=False,
                 unroll=False, zero_output_for_mask=False, **kwargs):
        if not isinstance(cell, Layer) or not hasattr(cell, "state_size"):
            raise ValueError("Argument `cell` should have a `call` method and a `state_size` attribute (a Layer). "
                             f"Received: cell={cell!r}")
        super().__init__(**kwargs)
        self.cell = cell
        self.return_sequences, self.return_state = bool(return_sequences), bool(return_state)
        self.go_backwards, self.stateful, self.unroll = bool(go_backwards), bool(stateful), bool(unroll)
        self.zero_output_for_mask = bool(zero_output_for_mask)
        self.input_spec = InputSpec(ndim=3)
        self.states = None

    @property
    def units(self):
        return getattr(self.cell, "units", None) or self._state_sizes()[0]

    def _state_sizes(self):
        size = self.cell.state_size
        return [int(v) for v in size] if isinstance(size, (list, tuple)) else [int(size)]

    def _n_states(self):
        return len(self._state_sizes())

    def build(self, input_shape):
        if input_shape[-1] is None:
            raise ValueError(f"The last dimension of the input to {type(self).__name__} layer {self.name!r} must be "
                             f"defined. Received: input_shape={tuple(input_shape)}")
        self.cell._maybe_build((input_shape[0], input_shape[-1]))
        for var in self.cell._weights_list:  # Keras's paths: "lstm/lstm_cell/kernel" (unique per layer)
            if not var.path.startswith(self.name + "/"):
                var.path = f"{self.name}/{var.path}"
        self.input_spec = InputSpec(ndim=3, axes={-1: input_shape[-1]})
        self.built = True

    def compute_output_shape(self, input_shape):
        n, t = input_shape[0], input_shape[1]
        out = (n, t, self.units) if self.return_sequences else (n, self.units)
        if self.return_state:
            return [out] + [(n, size) for size in self._state_sizes()]
        return out

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        return [out] + [None] * self._n_states() if self.return_state else out

    def reset_states(self, states=None):
        """Zero the states of a stateful layer (or set them to ``states``, a list of (batch, units) arrays)."""
        if states is not None:
            self.states = [get_backend().asarray(s, dtype=self.dtype).copy() for s in states]
        elif self.states is not None:
            self.states = [s * 0 for s in self.states]

    def reset_state(self):
        self.reset_states()

    def forward(self, x, training=False, mask=None, initial_state=None):
        """Run the sequence; returns ``(y, backward)`` (y a tuple ``(out, *states)`` with return_state).

        ``backward(dy)`` takes a tuple of gradients with ``return_state`` (None for outputs that got
        none) and returns dx, or ``(dx, [dh0, ...])`` when ``initial_state`` was given."""
        be = get_backend()
        if not isinstance(self.cell, _Cell) or not self.cell.fused(training):  # call() per step, on a tape
            keywords = {k: v for k, v in (("mask", mask), ("initial_state", initial_state)) if v is not None}
            return Layer.forward(self, x, training, **keywords)
        states = self._initial_states(x, initial_state)
        mask = self._bool_mask(mask, x)
        if self.go_backwards:
            x = x[:, ::-1]
            mask = None if mask is None else mask[:, ::-1]
        x_in, drop_back = self._input_dropout(x, training)
        run = (_INFERENCE.get(self.cell._kind) if self.__dict__.get("_inferring") else None) or \
            _SEQUENCES[self.cell._kind]
        y, final, seq_back = run(self.cell, be.xp.ascontiguousarray(x_in), states,
                                 None if mask is None else be.xp.ascontiguousarray(mask))
        if self.stateful:
            self.states = [s.copy() for s in final]
        zero_masked = self.zero_output_for_mask and mask is not None and x.shape[1] > 0
        out = y if self.return_sequences else y[:, -1]
        if zero_masked:  # Keras zeroes the masked steps of the returned output (and a masked last step)
            out = out * (mask[..., None] if self.return_sequences else mask[:, -1, None])
        result = tuple([out] + final) if self.return_state else out
        steps, need_dx = x.shape[1], FORWARD_OPTIONS.need_dx or initial_state is not None

        def backward(d):
            dout, dfinal = (d[0], list(d[1:])) if self.return_state else (d, [None] * len(final))
            dy = self._sequence_grad(be, dout, y, steps, mask if zero_masked else None)
            dx, dstates0 = seq_back(dy, dfinal, need_dx)
            if dx is not None:
                dx = drop_back(dx)[:, ::-1] if self.go_backwards else drop_back(dx)
            return (dx, dstates0) if initial_state is not None else dx

        return result, backward

    def _infer(self, x, **kwargs):
        """As Layer._infer (predict, evaluate), on the cell's inference op: no backward follows, so no
        per-step caches are kept."""
        self.__dict__["_inferring"] = True
        try:
            return super()._infer(x, **kwargs)
        finally:
            self.__dict__.pop("_inferring", None)

    def call(self, x, training=None, mask=None, initial_state=None):
        """The step loop of a custom cell (or of a built-in one off its fused path), written with
        pyminidl.ops (Keras's rnn loop, masks included). Returns the output, or ``[output, *states]``
        with return_state; a stateful layer keeps the final states for the next call."""
        n, steps = x.shape[0], x.shape[1]
        mask = self._bool_mask(mask, x)
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            self._check_initial_states(x, states)
        elif self.stateful:
            states = self._initial_states(x, None)
        else:
            states = [ops.zeros((n, size), dtype=x.dtype) for size in self._state_sizes()]
        if self.go_backwards:
            x = _reverse_time(x)
            mask = None if mask is None else mask[:, ::-1]
        builtin = isinstance(self.cell, _Cell)
        if builtin:
            self.cell.draw_step_masks(n, x.shape[2], x.dtype, bool(training))
        try:
            outputs, states = self._step_loop(x, mask, states, steps)
        finally:
            if builtin:
                self.cell._step_masks = None
        if not outputs:
            raise ValueError(f"Layer {self.name!r} received an input with 0 timesteps. Received: shape={x.shape}")
        if self.stateful:
            self.states = [ops._plain(s).copy() for s in states]
        out = ops.stack(outputs, axis=1) if self.return_sequences else outputs[-1]
        if self.zero_output_for_mask and mask is not None:  # as the fused path: masked steps read zeros
            m = mask[..., None] if self.return_sequences else mask[:, -1, None]
            out = ops.where(m, out, ops.zeros_like(out))
        return [out] + list(states) if self.return_state else out

    def _step_loop(self, x, mask, states, steps):
        outputs, prev = [], None
        for t in range(steps):
            out, new = self.cell.call(_time_step(x, t), states)
            new = list(new) if isinstance(new, (list, tuple)) else [new]
            if mask is not None:  # a masked step keeps the states and repeats the previous output
                m = mask[:, t, None]
                out = ops.where(m, out, ops.zeros_like(out) if prev is None else prev)
                new = [ops.where(m, a, b) for a, b in zip(new, states)]
            states, prev = new, out
            outputs.append(out)
        return outputs, states

    def _check_initial_states(self, x, states):
        n, sizes = x.shape[0], self._state_sizes()
        want = [(n, size) for size in sizes]
        got = [tuple(getattr(s, "shape", ())) for s in states]
        if got != want:
            raise ValueError(f"Layer {self.name!r} ({type(self).__name__}) expects initial_state as {len(sizes)} "
                             f"array(s) of shapes {want} for an input of shape {tuple(x.shape)}. Received: "
                             f"shapes={got}")

    def _initial_states(self, x, initial_state):
        """The states entering the first step: ``initial_state``, a stateful layer's last states, or None (zeros)."""
        n, k = x.shape[0], self._n_states()
        if initial_state is not None:
            states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
            be = get_backend()
            states = [be.asarray(s, dtype=x.dtype) for s in states]
            self._check_initial_states(x, states)
            return states
        if not self.stateful:
            return [None] * k
        if self.states is not None and self.states[0].shape[0] != n:
            raise ValueError(f"Layer {self.name!r} is stateful with batch size {self.states[0].shape[0]}, but received "
                             f"an input of shape {tuple(x.shape)} (batch size {n}). A stateful layer needs the same "
                             "batch size on every call; call reset_states() after changing it is not enough: "
                             "rebuild the layer.")
        if self.states is None:
            self.states = [get_backend().xp.zeros((n, size), dtype=x.dtype) for size in self._state_sizes()]
        return list(self.states)

    def _bool_mask(self, mask, x):
        if mask is None:
            return None
        xp = get_backend().xp
        mask = xp.asarray(mask)
        if tuple(mask.shape) != tuple(x.shape[:2]):
            raise ValueError(f"Layer {self.name!r} expects a mask of shape (batch, timesteps) = {tuple(x.shape[:2])}. "
                             f"Received: mask.shape={tuple(mask.shape)}")
        return mask.astype(bool, copy=False)

    def _input_dropout(self, x, training):
        """Keras's input dropout: one mask per sample and feature, shared by every step."""
        cell = self.cell
        if not training or cell.dropout == 0.0:
            return x, lambda dx: dx
        be = get_backend()
        y, keep = be.dropout_forward(x, cell.dropout, cell._next_seed(), (x.shape[0], 1, x.shape[2]))
        return y, lambda dx: be.dropout_backward(dx, keep)  # dL/dx = dy * mask

    def _sequence_grad(self, be, dout, y, steps, zero_mask):
        """The gradient of every step's output, from the returned output's gradient (None: zeros)."""
        if dout is None:
            return be.xp.zeros_like(y)
        if self.return_sequences:
            return dout * zero_mask[..., None] if zero_mask is not None else be.xp.ascontiguousarray(dout)
        dy = be.xp.zeros_like(y)
        if steps:
            dy[:, -1] = dout if zero_mask is None else dout * zero_mask[:, -1, None]
        return dy

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"return_sequences": self.return_sequences, "return_state": self.return_state,
                    "go_backwards": self.go_backwards, "stateful": self.stateful, "unroll": self.unroll,
                    "zero_output_for_mask": self.zero_output_for_mask})
        if type(self) is RNN:
            cfg["cell"] = serialize(self.cell)
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        config_dict = dict(config_dict)
        if cls is RNN:
            config_dict["cell"] = deserialize(config_dict["cell"])
        return super().from_config(config_dict)


_RNN_KEYS = ("return_sequences", "return_state", "go_backwards", "stateful", "unroll", "zero_output_for_mask")
_LAYER_KEYS = ("name", "trainable", "dtype", "input_shape", "input_dim", "batch_input_shape", "batch_size",
               "activity_regularizer", "autocast", "input_length")


class _FusedRNN(RNN):
    """SimpleRNN / LSTM / GRU: the cell's arguments and the layer's in one constructor (Keras 3)."""

    _cell_class = None

    def __init__(self, units, **kwargs):
        layer_kw = {k: kwargs.pop(k) for k in _RNN_KEYS + _LAYER_KEYS if k in kwargs}
        layer_kw.pop("input_length", None)  # tf.keras's argument; the time axis is read from the input
        if layer_kw.get("activity_regularizer") is not None and layer_kw.get("return_state"):
            raise ValueError(f"{type(self).__name__}: activity_regularizer applies to a single output; it cannot be "
                             "combined with return_state=True.")
        cell_kw = {k: kwargs.pop(k) for k in list(kwargs)}
        cell = self._cell_class(units, name=f"{type(self).__name__.lower()}_cell".replace("simplernn", "simple_rnn"),
                                dtype=layer_kw.get("dtype"), **cell_kw)
        super().__init__(cell, **layer_kw)

    def __getattr__(self, name):  # the cell's arguments read as the layer's (lstm.units, lstm.activation, ...)
        cell = self.__dict__.get("cell")
        if cell is not None and not name.startswith("_") and hasattr(cell, name):
            return getattr(cell, name)
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def get_config(self):
        cfg = super().get_config()
        cell_cfg = self.cell.get_config()
        for key in ("name", "trainable", "dtype"):
            cell_cfg.pop(key, None)
        cfg.update(cell_cfg)
        return cfg


class SimpleRNN(_FusedRNN):
    """Fully connected RNN: ``h_t = activation(x_t @ kernel + h_{t-1} @ recurrent_kernel + bias)``.

    Args:
        units: size of the state and output.
        activation: "tanh" (default) or any name of the activation kernels (None: "linear"). "tanh",
            "sigmoid", "relu", "hard_sigmoid" and "linear" run in the fused kernels; the others (their
            derivative needs the pre-activation, which the fused kernels overwrite) run step by step.
        use_bias, kernel_initializer ("glorot_uniform"), recurrent_initializer ("orthogonal"),
        bias_initializer ("zeros"), *_regularizer, *_constraint: as Keras.
        dropout: input dropout rate (one mask per sample and feature for every step).
        recurrent_dropout: rate on h_{t-1} (one mask per gate, drawn once per call; the sequence then runs
            step by step, as Keras 3's implementation 1).
        return_sequences, return_state, go_backwards, stateful, unroll: see RNN.

    Example:
        >>> SimpleRNN(4)(np.zeros((2, 3, 5), "float32")).shape
        (2, 4)
    """

    _cell_class = SimpleRNNCell


class LSTM(_FusedRNN):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), Keras's layout: gates i, f, c, o.

    Args:
        units: size of the states and output.
        activation: for the candidate and the output ("tanh").
        recurrent_activation: for the gates ("sigmoid").
        unit_forget_bias: start the forget gate's bias at 1 (default True).
        Others as SimpleRNN.

    Example:
        >>> lstm = LSTM(32)
        >>> lstm.build((None, 10, 32)); lstm.count_params()  # 4 * 32 * (32 + 32 + 1)
        8320
    """

    _cell_class = LSTMCell


class GRU(_FusedRNN):
    """Gated recurrent unit (Cho et al. 2014), Keras's layout: gates z, r, h.

    Args:
        units: size of the state and output.
        reset_after: apply the reset gate after the recurrent product (Keras's default True; bias
            (2, 3 * units)); False: before it (bias (3 * units,)).
        Others as LSTM.

    Example:
        >>> GRU(4)(np.zeros((2, 3, 5), "float32")).shape
        (2, 4)
    """

    _cell_class = GRUCell
