"""Activation functions (Keras 3 names and arguments), callable on arrays and differentiable.

Each function records on a GradientTape like any op of ``pyminidl.ops``. ``get`` turns a
string, a function or None into a function; layers ask ``_resolve`` for a fused
``(y, backward)`` pair, which runs a backend kernel for every named activation.

Example:
    >>> from pyminidl import activations
    >>> activations.relu(np.array([-1.0, 2.0, 9.0]), max_value=6.0)
    array([0., 2., 6.])
"""

from pyminidl import ops
from pyminidl.backend import get_backend
from pyminidl.backend.base import ACTIVATIONS
from pyminidl.saving import object_registration, serialization_lib


def linear(x):
    """y = x."""
    return x


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    """Keras relu: ``max_value`` caps it, ``threshold`` shifts the kink, ``negative_slope`` leaks below it."""
    return ops._activation("relu", x, negative_slope=negative_slope, max_value=max_value, threshold=threshold)


def relu6(x):
    """y = min(max(x, 0), 6)."""
    return ops._activation("relu", x, max_value=6.0)


def leaky_relu(x, negative_slope=0.2):
    """y = x if x >= 0 else negative_slope * x."""
    return ops._activation("leaky_relu", x, negative_slope=negative_slope)


def elu(x, alpha=1.0):
    """y = x if x > 0 else alpha * (exp(x) - 1)."""
    return ops._activation("elu", x, alpha=alpha)


def selu(x):
    """Scaled ELU with the self-normalising constants."""
    return ops._activation("selu", x)


def gelu(x, approximate=False):
    """Gaussian error linear unit (exact erf form unless ``approximate``)."""
    return ops._activation("gelu", x, approximate=approximate)


def _simple(name, doc):
    def fn(x):
        return ops._activation(name, x)

    fn.__name__ = fn.__qualname__ = name
    fn.__doc__ = doc
    return fn


sigmoid = _simple("sigmoid", "y = 1 / (1 + exp(-x)).")
hard_sigmoid = _simple("hard_sigmoid", "y = clip(x / 6 + 0.5, 0, 1).")
tanh = _simple("tanh", "y = tanh(x).")
softplus = _simple("softplus", "y = log(1 + exp(x)).")
softsign = _simple("softsign", "y = x / (1 + |x|).")
silu = _simple("silu", "y = x * sigmoid(x).")
swish = _simple("swish", "y = x * sigmoid(x) (the same as silu).")
exponential = _simple("exponential", "y = exp(x).")
step = _simple("step", "Heaviside step: 1 if x > 0 else 0 (the classic perceptron; zero gradient).")


def softmax(x, axis=-1):
    """y = exp(x) / sum(exp(x)) along ``axis``."""
    return ops.softmax(x, axis=axis)


def log_softmax(x, axis=-1):
    """y = x - log(sum(exp(x))) along ``axis``."""
    return ops.log_softmax(x, axis=axis)


_FUNCTIONS = {
    "linear": linear, "relu": relu, "relu6": relu6, "leaky_relu": leaky_relu, "elu": elu,
    "selu": selu, "gelu": gelu, "sigmoid": sigmoid, "hard_sigmoid": hard_sigmoid, "tanh": tanh,
    "softplus": softplus, "softsign": softsign, "silu": silu, "swish": swish,
    "exponential": exponential, "step": step, "softmax": softmax, "log_softmax": log_softmax,
}
# Every name the backend implements is valid; relu6 maps onto relu(max_value=6).
for _name in sorted(set(ACTIVATIONS) - set(_FUNCTIONS)):
    _FUNCTIONS[_name] = _simple(_name, f"The backend's {_name} activation.")
_NAMES = tuple(sorted(_FUNCTIONS))
_NAME_OF = {fn: name for name, fn in _FUNCTIONS.items()}
_NAME_OF[ops.relu] = "relu"
_NAME_OF[ops.sigmoid] = "sigmoid"
_NAME_OF[ops.tanh] = "tanh"
_NAME_OF[ops.softmax] = "softmax"
_NAME_OF[ops.log_softmax] = "log_softmax"
_FAMILY = serialization_lib.family("activations", kind="activation function",
                                   unknown="Could not interpret activation function identifier: {name!r}.")
_FAMILY.register(_FUNCTIONS.values())


def get(identifier):
    """The activation function for ``identifier`` (a name, a function, a config dict, or None -> linear).

    Raises:
        ValueError: an unknown name.
    """
    if identifier is None:
        return linear
    if isinstance(identifier, (str, dict)):
        return deserialize(identifier)
    if callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret activation function identifier: {identifier!r}. "
                     f"Expected one of {', '.join(_NAMES)}, a callable, or None.")


def serialize(activation):
    """The name of a built-in or registered activation (what ``get`` takes back, as Keras 3 writes it
    in layer configs); a custom function's ``__name__`` otherwise."""
    if activation is None:
        return "linear"
    if isinstance(activation, str):
        get(activation)
        return activation
    name = _NAME_OF.get(activation)
    if name is not None:
        return name
    registered = object_registration.GLOBAL_CUSTOM_NAMES.get(activation)
    return registered or getattr(activation, "__name__", repr(activation))


def deserialize(config, custom_objects=None):
    """Inverse of ``serialize``: a name, or Keras 3's ``{"class_name": "function", "config": name}``."""
    return serialization_lib.deserialize_keras_object(config, custom_objects, _FAMILY)


def _name_of(identifier):
    """The built-in name of ``identifier`` (string or function), or None for a custom one."""
    if identifier is None:
        return "linear"
    return _NAME_OF.get(get(identifier))


def _resolve(identifier):
    """``(name, forward)`` where ``forward(x) -> (y, backward)`` for ``identifier``.

    Built-in names run one backend call each way (softmax and log_softmax through their own
    pair); a custom callable is differentiated by running it on a private GradientTape.
    """
    name = _name_of(identifier)
    if name == "linear":
        return name, lambda x: (x, lambda dy: dy)
    if name in ("softmax", "log_softmax"):
        return name, lambda x: _softmax_pair(name, x)
    if name == "relu6":
        return name, lambda x: _backend_pair("relu", x, {"max_value": 6.0})
    if name is not None:
        return name, lambda x: _backend_pair(name, x, {})
    fn = get(identifier)
    return None, lambda x: _tape_pair(fn, x)


# What each backward reads: the output alone, nothing, or the input and output; the rest read x.
_BACKWARD_READS_Y = frozenset(("sigmoid", "tanh", "exponential"))
_BACKWARD_READS_XY = frozenset(("elu", "selu"))


def _backend_pair(name, x, params):
    be = get_backend()
    y = be.activation_forward(name, x, **params)
    # the closure keeps only what the backward reads, so training holds one array per activation
    if name in _BACKWARD_READS_Y:
        return y, lambda dy: be.activation_backward(name, dy, None, y, **params)
    if name == "step":
        return y, lambda dy: be.activation_backward(name, dy, None, None, **params)
    if name in _BACKWARD_READS_XY:
        return y, lambda dy: be.activation_backward(name, dy, x, y, **params)
    return y, lambda dy: be.activation_backward(name, dy, x, None, **params)


def _softmax_pair(name, x):
    be = get_backend()
    if name == "softmax":
        y = be.softmax_forward(x, axis=-1)
        return y, lambda dy: be.softmax_backward(dy, y, axis=-1)
    y = be.log_softmax_forward(x, axis=-1)
    return y, lambda dy: be.log_softmax_backward(dy, y, axis=-1)


def _tape_pair(fn, x):
    with ops._suspend_tapes(), ops.GradientTape(persistent=True) as tape:
        tape.watch(x)
        y = ops._as_tensor(fn(x))

    def backward(dy):
        if not tape._tracks(y):
            raise ValueError(f"The activation {fn!r} is not differentiable: its output is not connected to its "
                             "input through pyminidl.ops. Write it with pyminidl.ops / pyminidl.activations.")
        return tape.gradient(y, x, output_gradients=dy)

    return y, backward


__all__ = list(_FUNCTIONS) + ["get", "serialize", "deserialize"]
