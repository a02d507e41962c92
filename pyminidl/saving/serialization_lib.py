"""Objects <-> JSON-able configs with one lookup rule for every family (Keras 3 ``serialization_lib``).

Every family (activations, initializers, regularizers, losses, metrics, optimizers, schedules,
layers and models) files its built-ins in a ``Family``; its ``get`` / ``serialize`` / ``deserialize``
run through ``serialize_keras_object`` / ``deserialize_keras_object``, so a name resolves the same
way everywhere: ``custom_objects``, then the active ``custom_object_scope``, then objects registered
with ``register_keras_serializable``, then the family's built-ins. A name found nowhere is refused:
loading a config never imports a module or evaluates text, so it cannot run code from a file.

Example:
    >>> cfg = serialize_keras_object(pyminidl.layers.Dense(3))
    >>> cfg["class_name"], cfg["module"]
    ('Dense', 'keras.layers')
    >>> layer = deserialize_keras_object(cfg, family=family("layers"))
"""

import inspect

import numpy as np

from pyminidl.saving.object_registration import (GLOBAL_CUSTOM_NAMES, CustomObjectScope,
                                                 get_registered_object)

_FAMILIES = {}
_FAMILY_OF = {}  # id(built-in object) -> (family, module written in configs)
_HINT = ("A custom object must be passed in `custom_objects`, active in a `custom_object_scope`, or decorated "
         "with `@pyminidl.saving.register_keras_serializable()`.")


class Family:
    """The built-in objects of one family and how its lookups are worded.

    Args:
        name: the family ("layers").
        module: the module Keras writes in configs ("keras.layers").
        kind: the word used in errors ("layer").
        unknown: the first sentence of the unknown-name error (``{kind}`` and ``{name}`` filled in).
        normalize: maps a name not found as written to another try (e.g. ``str.lower``), or None.
    """

    def __init__(self, name, module, kind, unknown="Unknown {kind}: {name!r}.", normalize=None):
        self.name, self.module, self.kind = name, module, kind
        self.unknown, self.normalize = unknown, normalize
        self.objects = {}
        self.listed = []  # the names an error lists, in registration order

    def register(self, objects, aliases=None, module=None):
        """File ``objects`` (an iterable of classes/functions, by ``__name__``) and ``aliases`` ({name: obj})."""
        for obj in objects:
            self.objects[obj.__name__] = obj
            self.listed.append(obj.__name__)
            _FAMILY_OF[id(obj)] = (self, module or self.module)
        for alias, obj in (aliases or {}).items():
            self.objects[alias] = obj
            self.listed.append(alias)
            _FAMILY_OF.setdefault(id(obj), (self, module or self.module))

    def builtin_name(self, obj):
        """The name ``obj`` is filed under (its ``__name__`` when that is registered), else None."""
        name = getattr(obj, "__name__", None)
        if self.objects.get(name) is obj:
            return name
        return next((n for n, o in self.objects.items() if o is obj), None)

    def retrieve(self, name, custom_objects=None, registered_name=None):
        """The class or function ``name`` designates.

        Raises:
            ValueError: a name found nowhere (the message lists the built-ins and suggests ``custom_objects``).
        """
        obj = None
        if registered_name and registered_name != name:
            obj = get_registered_object(registered_name, custom_objects)
        if obj is None and isinstance(name, str):
            obj = get_registered_object(name, custom_objects, self.objects)
            if obj is None and self.normalize is not None:
                obj = get_registered_object(self.normalize(name), custom_objects, self.objects)
        if obj is None:
            valid = ", ".join(repr(n) for n in self.listed)
            raise ValueError(f"{self.unknown.format(kind=self.kind, name=name)} Valid names: {valid}. {_HINT}")
        return obj


def family(name, module=None, kind=None, **kwargs):
    """The ``Family`` called ``name`` (created on first use with ``module``, ``kind``, ...)."""
    fam = _FAMILIES.get(name)
    if fam is None:
        fam = _FAMILIES[name] = Family(name, module or f"keras.{name}", kind or name.rstrip("s"), **kwargs)
    return fam


def _module_of(obj):
    entry = _FAMILY_OF.get(id(obj))
    return entry[1] if entry is not None else getattr(obj, "__module__", None)


def serialize_keras_object(obj):
    """A JSON-able description of ``obj`` (Keras 3 layout: module, class_name, config, registered_name).

    Plain values, lists and dicts are returned as they are (recursively); a function becomes
    ``{"class_name": "function", "config": name}``; an object with ``get_config`` its config plus
    ``build_config`` / ``compile_config`` when it has them.

    Raises:
        TypeError: an object that cannot be described (no ``get_config``).
    """
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, (list, tuple)):
        return [serialize_keras_object(o) for o in obj]
    if isinstance(obj, dict):
        return {k: serialize_keras_object(v) for k, v in obj.items()}
    if isinstance(obj, np.ndarray):
        return {"class_name": "__numpy__", "config": {"value": obj.tolist(), "dtype": obj.dtype.name}}
    registered = GLOBAL_CUSTOM_NAMES.get(obj if inspect.isroutine(obj) else type(obj))
    if inspect.isroutine(obj):
        entry = _FAMILY_OF.get(id(obj))
        name = (entry[0].builtin_name(obj) if entry else None) or obj.__name__
        return {"module": _module_of(obj), "class_name": "function", "config": name,
                "registered_name": registered or name}
    if not hasattr(obj, "get_config"):
        raise TypeError(f"Cannot serialize {obj!r}: it has no get_config() method.")
    out = {"module": _module_of(type(obj)), "class_name": type(obj).__name__, "config": obj.get_config(),
           "registered_name": registered}
    for key, getter in (("build_config", "get_build_config"), ("compile_config", "get_compile_config")):
        extra = getattr(obj, getter, None)
        value = extra() if extra is not None else None
        if value:
            out[key] = serialize_keras_object(value)
    return out


def deserialize_keras_object(config, custom_objects=None, family=None):
    """The object ``config`` describes (inverse of ``serialize_keras_object``).

    A string is a name (the class or function it designates is returned); a dict with
    ``class_name`` is rebuilt with ``from_config`` inside a ``custom_object_scope(custom_objects)``,
    so nested names (a custom activation inside a layer config) resolve too.

    Args:
        config: a name, a dict, a list of them, or None.
        custom_objects: ``{name: class or function}`` consulted first.
        family: the ``Family`` whose built-ins are eligible (None: only custom/registered objects).

    Raises:
        ValueError: an unknown name, or a dict without ``class_name``.
        TypeError: a config its class cannot be rebuilt from.
    """
    fam = family or _ANY
    if config is None or isinstance(config, (bool, int, float)):
        return config
    if isinstance(config, str):
        return fam.retrieve(config, custom_objects)
    if isinstance(config, (list, tuple)):
        return [deserialize_keras_object(c, custom_objects, family) for c in config]
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise ValueError(f"Invalid {fam.kind} config: expected a dict with a 'class_name' string. "
                         f"Received: {config!r}")
    class_name, inner = config["class_name"], config.get("config")
    if class_name == "__numpy__":
        return np.asarray(inner["value"], dtype=np.dtype(inner["dtype"]))
    if class_name == "function":
        return fam.retrieve(inner, custom_objects, config.get("registered_name"))
    cls = fam.retrieve(class_name, custom_objects, config.get("registered_name"))
    if not inspect.isclass(cls):
        return cls
    with CustomObjectScope(custom_objects or {}):
        obj = _from_config(cls, class_name, inner)
        if config.get("build_config") and hasattr(obj, "build_from_config"):
            obj.build_from_config(config["build_config"])
        if config.get("compile_config") and hasattr(obj, "compile_from_config"):
            obj.compile_from_config(config["compile_config"])
    return obj


def deserialize_instance(config, custom_objects, family):
    """``deserialize_keras_object``, a class found by name instantiated with its defaults ("adam")."""
    obj = deserialize_keras_object(config, custom_objects, family)
    return obj() if inspect.isclass(obj) else obj


def get_object(identifier, family, base, callables=True):
    """A family's ``get``: None stays None, an instance of ``base`` is returned, a name or config is
    deserialized (a class found by name is instantiated with its defaults), a ``base`` subclass is
    instantiated, and a plain callable is returned when ``callables``.

    Raises:
        ValueError: an identifier none of these rules takes.
    """
    if identifier is None or isinstance(identifier, base):
        return identifier
    if isinstance(identifier, (str, dict)):
        return deserialize_instance(identifier, None, family)
    if inspect.isclass(identifier) and issubclass(identifier, base):
        return identifier()
    if callables and callable(identifier):
        return identifier
    raise ValueError(f"Could not interpret {family.kind} identifier: {identifier!r}")


def _from_config(cls, class_name, inner):
    if inner is not None and not isinstance(inner, dict):
        raise TypeError(f"The config of {class_name!r} must be a dict. Received: {inner!r}")
    try:
        return cls.from_config(dict(inner or {}))
    except TypeError as e:
        raise TypeError(f"{class_name}.from_config() could not rebuild the object from its config: {e}. "
                        f"Config: {inner!r}") from e


_ANY = Family("custom", None, "object")


class ConfigMixin:
    """``from_config(cls(**config))`` and a ``repr`` from ``get_config``: what simple configurable
    objects (initializers, regularizers) share."""

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"


__all__ = ["ConfigMixin", "Family", "deserialize_keras_object", "deserialize_instance", "family", "get_object", "serialize_keras_object"]
