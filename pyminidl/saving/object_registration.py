"""Registration of custom objects (Keras 3 ``keras.saving.register_keras_serializable`` & co.).

A custom layer, loss, metric, activation, ... is found by name when a config is loaded if it is
registered (``@register_keras_serializable(package="Custom")`` files it as ``"Custom>MyLayer"``),
passed in ``custom_objects``, or active in a ``custom_object_scope``.

Example:
    >>> @register_keras_serializable(package="Custom")
    ... class Scale(pyminidl.layers.Layer): ...
    >>> get_registered_name(Scale)
    'Custom>Scale'
"""

import inspect
import threading

# "package>name" -> object, and object -> "package>name" (what serialization writes as registered_name).
GLOBAL_CUSTOM_OBJECTS = {}
GLOBAL_CUSTOM_NAMES = {}


class _Scopes(threading.local):
    stack = ()


_SCOPES = _Scopes()


class CustomObjectScope:
    """Within the ``with`` block, the names of ``custom_objects`` resolve to their objects.

    Args:
        custom_objects: a dict ``{name: class or function}`` (or several, merged in order).

    Example:
        >>> with CustomObjectScope({"Scale": Scale}):
        ...     model = pyminidl.models.load_model("m.keras")
    """

    def __init__(self, *custom_objects):
        self.custom_objects = {}
        for objects in custom_objects:
            self.custom_objects.update(objects or {})

    def __enter__(self):
        self._saved = _SCOPES.stack
        _SCOPES.stack = _SCOPES.stack + (self.custom_objects,)
        return self

    def __exit__(self, *exc):
        _SCOPES.stack = self._saved


custom_object_scope = CustomObjectScope


def get_custom_objects():
    """The global dict of registered objects (``"package>name"`` -> object); it may be edited."""
    return GLOBAL_CUSTOM_OBJECTS


def register_keras_serializable(package="Custom", name=None):
    """Decorator filing a class or function as ``"package>name"`` (name defaults to ``__name__``).

    Raises:
        ValueError: a class without ``get_config``, or a name already taken by another object.
    """

    def decorator(obj):
        registered = f"{package}>{name or obj.__name__}"
        if inspect.isclass(obj) and not hasattr(obj, "get_config"):
            raise ValueError("Cannot register a class that does not have a get_config() method.")
        GLOBAL_CUSTOM_OBJECTS[registered] = obj
        GLOBAL_CUSTOM_NAMES[obj] = registered
        return obj

    return decorator


def get_registered_name(obj):
    """``"package>name"`` for a registered object, else its ``__name__``."""
    return GLOBAL_CUSTOM_NAMES.get(obj, getattr(obj, "__name__", None))


def get_registered_object(name, custom_objects=None, module_objects=None):
    """The object ``name`` designates, or None: looked up in ``custom_objects``, the active scopes,
    the registered objects, then ``module_objects`` (a family's built-ins)."""
    if custom_objects and name in custom_objects:
        return custom_objects[name]
    for scope in reversed(_SCOPES.stack):
        if name in scope:
            return scope[name]
    if name in GLOBAL_CUSTOM_OBJECTS:
        return GLOBAL_CUSTOM_OBJECTS[name]
    if module_objects and name in module_objects:
        return module_objects[name]
    return None


def active_custom_objects():
    """Every name the active scopes define (merged, innermost last)."""
    out = {}
    for scope in _SCOPES.stack:
        out.update(scope)
    return out


__all__ = ["CustomObjectScope", "custom_object_scope", "get_custom_objects", "get_registered_name",
           "get_registered_object", "register_keras_serializable"]
