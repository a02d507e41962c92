"""Layer naming and config: automatic unique names, dtype names, and the recorded constructor
arguments that ``get_config`` / ``from_config`` round-trip (Keras 3's auto-config)."""

import collections
import inspect
import json

from pyminidl import config


_UIDS = collections.defaultdict(int)


def clear_session():
    """Reset the automatic layer names (the next Dense is "dense" again), as ``keras.backend.clear_session``."""
    _UIDS.clear()


def unique_name(prefix):
    """``prefix``, then ``prefix_1``, ``prefix_2``, ... (Keras's auto-naming)."""
    _UIDS[prefix] += 1
    n = _UIDS[prefix]
    return prefix if n == 1 else f"{prefix}_{n - 1}"


# Keys Keras 3 writes into layer configs that pyminidl has no use for (dropped when unset).
_KERAS_ONLY_KEYS = ("lora_rank", "lora_alpha", "quantization_config", "ragged", "autocast_policy")


def _dtype_name(dtype):
    """'float32' from None (floatx), a string, a NumPy dtype or Keras 3's serialized DTypePolicy dict."""
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return str(getattr(dtype, "name", dtype) or config.floatx())


def _json_able(value):
    try:
        json.dumps(value)
        return True
    except (TypeError, ValueError):
        return False


class ConfigMixin:
    """The constructor arguments a layer is rebuilt from."""

    def __new__(cls, *args, **kwargs):
        obj = super().__new__(cls)
        try:  # Keras 3 records simple __init__ arguments, so a subclass needs no get_config
            params = inspect.signature(cls.__init__).parameters
            bound = inspect.signature(cls.__init__).bind(None, *args, **kwargs)
            auto = {}
            for key, value in list(bound.arguments.items())[1:]:
                kind = params[key].kind
                if kind is inspect.Parameter.VAR_KEYWORD:
                    auto.update(value)
                elif kind is not inspect.Parameter.VAR_POSITIONAL:
                    auto[key] = value
            object.__setattr__(obj, "_auto_config", auto if _json_able(auto) else None)
        except TypeError:
            object.__setattr__(obj, "_auto_config", None)
        return obj

    def get_config(self):
        """The constructor arguments (Keras 3 keys), JSON-serialisable."""
        cfg = {"name": self.name, "trainable": self.trainable, "dtype": self._dtype}
        if type(self).get_config is not ConfigMixin.get_config:
            return cfg  # a subclass's get_config adds its own arguments
        if self._auto_config is None:
            raise NotImplementedError(
                f"Layer {type(self).__name__} does not implement get_config(), and its __init__ arguments "
                "are not JSON-serializable, so they cannot be recorded automatically. Override get_config()."
            )
        cfg.update({k: v for k, v in self._auto_config.items() if k not in cfg})
        return cfg

    @classmethod
    def from_config(cls, config_dict):
        """A new layer from ``get_config``'s output."""
        config_dict = dict(config_dict)
        for key in _KERAS_ONLY_KEYS:  # written by Keras 3, meaningless here while unset
            if key in config_dict and not config_dict[key]:
                del config_dict[key]
        return cls(**config_dict)
