"""Wrappers: Bidirectional (an RNN run both ways, outputs merged) and TimeDistributed (a layer
applied to every time step, as one call on the steps folded into the batch)."""

from pyminidl.backend import get_backend
from pyminidl.layers._serialization import deserialize, serialize
from pyminidl.layers.base import FORWARD_OPTIONS, Layer

_MERGE_MODES = ("sum", "mul", "ave", "concat", None)


def _serialized_copy(layer, **changes):
    config = serialize(layer)
    config.pop("build_config", None)
    config["config"].update(changes)
    return deserialize(config)


def _strip(name, prefix):
    return name[len(prefix):] if name.startswith(prefix) else name


class Bidirectional(Layer):
    """Runs a recurrent layer forwards and a copy of it backwards and merges the outputs.

    Args:
        layer: an RNN (SimpleRNN, LSTM, GRU or RNN(cell)); it is copied from its config.
        merge_mode: "concat" (default), "sum", "mul", "ave", or None (a list of both outputs).
        backward_layer: the backward RNN (default: a copy of ``layer`` with go_backwards flipped).

    Input ``(batch, timesteps, features)``; with return_sequences the backward output is flipped
    back into time order before merging; with return_state the forward then backward states follow.
    Call argument ``initial_state``: the forward layer's states then the backward layer's (Keras 3
    splits the list in half).

    Example:
        >>> Bidirectional(LSTM(4))(np.zeros((2, 3, 5), "float32")).shape
        (2, 8)
    """

    supports_masking = True

    def __init__(self, layer, merge_mode="concat", weights=None, backward_layer=None, **kwargs):
        if not isinstance(layer, Layer) or not hasattr(layer, "return_sequences"):
            raise ValueError(f"Please initialize `Bidirectional` layer with a recurrent `keras.layers.Layer` instance. "
                             f"Received: {layer}")
        if merge_mode not in _MERGE_MODES:
            raise ValueError(f"Invalid merge mode. Received: {merge_mode}. Merge mode should be one of "
                             '{"sum", "mul", "ave", "concat", None}')
        super().__init__(**kwargs)
        self.forward_layer = _serialized_copy(layer, name=f"forward_{_strip(layer.name, 'forward_')}")
        if backward_layer is None:
            backward_layer = _serialized_copy(layer, name=f"backward_{_strip(layer.name, 'backward_')}",
                                              go_backwards=not layer.go_backwards)
        self.backward_layer = backward_layer
        for sub in (self.forward_layer, self.backward_layer):  # masked steps of returned sequences are zeros
            sub.zero_output_for_mask = sub.return_sequences
        self.merge_mode = merge_mode
        self.return_sequences = layer.return_sequences
        self.return_state = layer.return_state
        self._initial_weights = weights

    def build(self, input_shape):
        self.forward_layer._maybe_build(tuple(input_shape))
        self.backward_layer._maybe_build(tuple(input_shape))
        self.built = True
        if self._initial_weights is not None:
            self.set_weights(self._initial_weights)
            self._initial_weights = None

    def compute_output_shape(self, input_shape):
        shape = self.forward_layer.compute_output_shape(input_shape)
        states = []
        if self.return_state:
            shape, states = shape[0], list(shape[1:]) * 2
        shape = tuple(shape)
        if self.merge_mode == "concat":
            out = shape[:-1] + (2 * shape[-1],)
        elif self.merge_mode is None:
            out = [shape, shape]
        else:
            out = shape
        if not self.return_state:
            return out
        return (out if isinstance(out, list) else [out]) + states

    def compute_mask(self, inputs, mask=None):
        out = mask if self.return_sequences else None
        outs = [out, out] if self.merge_mode is None else [out]
        if self.return_state:
            return outs + [None] * (2 * self.forward_layer._n_states())
        return outs if self.merge_mode is None else out

    def forward(self, x, training=False, mask=None, initial_state=None):
        """Both directions, merged; ``backward(dy)`` splits dy by merge_mode and sums the two dx.

        ``initial_state`` (as Keras 3): a list split in half, the forward layer's states then the
        backward layer's; backward then returns ``(dx, [d forward states..., d backward states...])``."""
        kw = {} if mask is None else {"mask": mask}
        fkw, bkw = dict(kw), dict(kw)
        if initial_state is not None:
            fkw["initial_state"], bkw["initial_state"] = self._split_states(initial_state)
        fy, fback = self.forward_layer._forward_full(x, training, **fkw)
        by, bback = self.backward_layer._forward_full(x, training, **bkw)
        fstates, bstates = [], []
        if self.return_state:
            fy, fstates, by, bstates = fy[0], list(fy[1:]), by[0], list(by[1:])
        if self.return_sequences:
            by = by[:, ::-1]
        out = self._merge(fy, by)
        result = (tuple(out) if isinstance(out, list) else (out,)) + tuple(fstates + bstates) \
            if self.return_state else (tuple(out) if isinstance(out, list) else out)

        def backward(d):
            d = list(d) if isinstance(d, (tuple, list)) else [d]
            n_out = 2 if self.merge_mode is None else 1
            douts, dstates = d[:n_out], d[n_out:]
            dfy, dby = self._unmerge(douts, fy, by)
            if self.return_sequences and dby is not None:
                dby = dby[:, ::-1]
            k = len(fstates)
            gf = tuple([dfy] + list(dstates[:k])) if self.return_state else dfy
            gb = tuple([dby] + list(dstates[k:])) if self.return_state else dby
            dx_f, dx_b = fback(gf), bback(gb)
            if initial_state is not None:
                (dx_f, ds_f), (dx_b, ds_b) = dx_f, dx_b
                return (None if dx_f is None else dx_f + dx_b), list(ds_f) + list(ds_b)
            return None if dx_f is None else dx_f + dx_b

        return result, backward

    def _split_states(self, initial_state):
        """(forward states, backward states): the first and second half of ``initial_state``."""
        states = list(initial_state) if isinstance(initial_state, (list, tuple)) else [initial_state]
        want = self.forward_layer._n_states() + self.backward_layer._n_states()
        if len(states) != want:
            raise ValueError(f"Layer {self.name!r} (Bidirectional) expects initial_state as {want} arrays: the "
                             f"{self.forward_layer._n_states()} states of the forward layer, then the "
                             f"{self.backward_layer._n_states()} of the backward layer. Received: {len(states)} arrays")
        half = len(states) // 2
        return states[:half], states[half:]

    def _merge(self, fy, by):
        mode = self.merge_mode
        if mode == "concat":
            return get_backend().xp.concatenate([fy, by], axis=-1)
        if mode == "sum":
            return fy + by
        if mode == "ave":
            return (fy + by) / 2
        if mode == "mul":
            return fy * by
        return [fy, by]

    def _unmerge(self, douts, fy, by):
        """(d forward output, d backward output) from the merged output's gradient."""
        mode, d = self.merge_mode, douts[0]
        if mode is None:
            return douts[0], douts[1]
        if d is None:
            return None, None
        if mode == "concat":
            u = fy.shape[-1]
            return d[..., :u], d[..., u:]
        if mode == "sum":
            return d, d
        if mode == "ave":
            return d / 2, d / 2
        return d * by, d * fy  # mul: d(f b)/df = b

    def reset_states(self):
        self.forward_layer.reset_states()
        self.backward_layer.reset_states()

    def get_config(self):
        cfg = super().get_config()
        cfg.update({"merge_mode": self.merge_mode, "layer": serialize(self.forward_layer),
                    "backward_layer": serialize(self.backward_layer)})
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        config_dict = dict(config_dict)
        config_dict["layer"] = deserialize(config_dict["layer"])
        if config_dict.get("backward_layer") is not None:
            config_dict["backward_layer"] = deserialize(config_dict["backward_layer"])
        return cls(**config_dict)


class TimeDistributed(Layer):
    """Applies ``layer`` to every time step: ``(batch, timesteps, ...)`` -> ``(batch, timesteps, ...)``,
    as one call on ``(batch * timesteps, ...)``.

    Args:
        layer: the layer applied per step (Dense, Conv2D, ...).

    Example:
        >>> TimeDistributed(Dense(4))(np.zeros((2, 3, 5), "float32")).shape
        (2, 3, 4)
    """

    supports_masking = True

    def __init__(self, layer, **kwargs):
        if not isinstance(layer, Layer):
            raise ValueError(f"Please initialize `TimeDistributed` layer with a `keras.layers.Layer` instance. "
                             f"Received: {layer}")
        super().__init__(**kwargs)
        self.layer = layer

    def _inner_shape(self, input_shape):
        if len(input_shape) < 3:
            raise ValueError("`TimeDistributed` Layer should be passed an `input_shape` with at least 3 dimensions, "
                             f"received: {tuple(input_shape)}")
        return (None,) + tuple(input_shape[2:])

    def build(self, input_shape):
        self.layer._maybe_build(self._inner_shape(input_shape))
        self.built = True

    def compute_output_shape(self, input_shape):
        inner = self.layer.compute_output_shape(self._inner_shape(input_shape))
        return (input_shape[0], input_shape[1]) + tuple(inner[1:])

    def forward(self, x, training=False, mask=None):
        if x.ndim < 3:
            raise ValueError(f"Layer {self.name!r} (TimeDistributed) expects an input with at least 3 dimensions "
                             f"(batch, timesteps, ...). Received: shape={tuple(x.shape)}")
        n, t = x.shape[:2]
        y, back = self.layer._forward_full(x.reshape((n * t,) + tuple(x.shape[2:])), training)
        y = y.reshape((n, t) + tuple(y.shape[1:]))

        def backward(dy):
            dx = back(dy.reshape((n * t,) + tuple(dy.shape[2:])))
            return None if dx is None else dx.reshape(x.shape)

        return y, backward

    def get_config(self):
        cfg = super().get_config()
        cfg["layer"] = serialize(self.layer)
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        config_dict = dict(config_dict)
        config_dict["layer"] = deserialize(config_dict["layer"])
        return cls(**config_dict)
