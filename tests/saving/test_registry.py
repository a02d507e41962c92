"""One serialization registry for every family, and no import cycle between pyminidl's modules."""

import ast
import inspect
import pathlib
import subprocess
import sys

import pytest

import pyminidl
from pyminidl import activations, initializers, layers, losses, metrics, optimizers, regularizers
from pyminidl.optimizers import schedules
from pyminidl.saving import (custom_object_scope, deserialize_keras_object, get_registered_name,
                             get_registered_object, register_keras_serializable, serialize_keras_object)


def test_every_family_round_trips_through_the_one_lib():
    objects = [(initializers, initializers.HeNormal(seed=3)), (regularizers, regularizers.L1L2(0.1, 0.2)),
               (losses, losses.SparseCategoricalCrossentropy(from_logits=True)),
               (metrics, metrics.TopKCategoricalAccuracy(k=2)), (optimizers, optimizers.RMSprop(0.01, rho=0.8)),
               (schedules, schedules.ExponentialDecay(0.1, 10, 0.5)), (layers, layers.Dense(3))]
    for module, obj in objects:
        config = module.serialize(obj)
        assert config == serialize_keras_object(obj)
        assert config["module"].startswith("keras.") and config["class_name"] == type(obj).__name__
        clone = module.deserialize(config)
        assert type(clone) is type(obj) and clone.get_config() == obj.get_config()
    assert activations.deserialize({"class_name": "function", "config": "gelu"}) is activations.gelu


def test_loss_and_metric_classes_are_plain_definitions():
    for cls in (losses.SparseCategoricalCrossentropy, losses.Huber, metrics.SparseCategoricalAccuracy,
                metrics.BinaryAccuracy):
        assert inspect.getsource(cls).startswith(f"class {cls.__name__}(")
    assert losses.Huber(3.0).delta == 3.0 and losses.BinaryCrossentropy(from_logits=True).from_logits
    assert metrics.BinaryAccuracy(threshold=0.2).threshold == 0.2


def test_registration_scope_and_custom_objects_resolve_in_every_family():
    @register_keras_serializable(package="Reg")
    def halve(x):
        return x * 0.5

    assert get_registered_name(halve) == "Reg>halve" and get_registered_object("Reg>halve") is halve
    assert activations.get("Reg>halve") is halve
    assert activations.serialize(halve) == "Reg>halve"

    def double(x):
        return x * 2.0

    with pytest.raises(ValueError, match="custom_objects"):
        activations.get("double")
    with custom_object_scope({"double": double}):
        assert layers.Dense(2, activation="double").activation is double
    assert deserialize_keras_object("double", custom_objects={"double": double}) is double
    with pytest.raises(ValueError, match=r"Unknown layer: 'Nope'.*Valid names: 'Activation', .*'Dense'"):
        layers.deserialize({"class_name": "Nope", "config": {}})
    with pytest.raises(ValueError, match="register_keras_serializable"):
        losses.get("nope")


def test_sequential_resolves_through_the_layers_family():
    model = pyminidl.Sequential([pyminidl.Input((3,)), layers.Dense(2)])
    clone = layers.deserialize(layers.serialize(model))
    assert type(clone) is pyminidl.Sequential and clone.layers[0].kernel.shape == (3, 2)


def _module_files():
    root = pathlib.Path(pyminidl.__file__).parent
    out = {}
    for path in root.rglob("*.py"):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        if parts[-1] != "__main__":
            out[".".join(parts)] = path
    return out


def _named_modules(stmt, package, modules):
    """The pyminidl modules an import statement names (``from pkg import sub`` names the module ``pkg.sub``)."""
    if isinstance(stmt, ast.Import):
        return {a.name for a in stmt.names}
    base = stmt.module or ""
    if stmt.level:
        base = ".".join(package.split(".")[: len(package.split(".")) - stmt.level + 1] + [base]).strip(".")
    return {f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base for alias in stmt.names}


def _executed_modules(found, name, modules):
    """``found`` with the packages whose __init__ importing them runs first, unless it is one of module
    ``name``'s own packages (already being imported); pyminidl modules only, the root package aside."""
    own = {name.rsplit(".", k)[0] for k in range(name.count(".") + 1)}
    found = set(found)
    for module in list(found):
        parts = module.split(".")
        found.update(".".join(parts[:k]) for k in range(2, len(parts)))
    return {m for m in found if m in modules and m not in own and m != "pyminidl"}


def _package_of(path, name):
    return name if path.name == "__init__.py" else name.rpartition(".")[0]


def _top_level_imports(path, name, modules):
    """The pyminidl modules ``path`` imports when it is executed (not inside functions)."""
    package = _package_of(path, name)
    found = set()
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        for stmt in ast.walk(node):
            if isinstance(stmt, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                break
            if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                found |= _named_modules(stmt, package, modules)
    return _executed_modules(found, name, modules)


def _function_level_imports(path, name, modules):
    """``[(line, function, module)]``: the pyminidl modules ``path`` imports inside its functions."""
    package = _package_of(path, name)
    out = []
    for fn in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for stmt in ast.walk(fn):
                if isinstance(stmt, (ast.Import, ast.ImportFrom)):
                    targets = _executed_modules(_named_modules(stmt, package, modules), name, modules)
                    out.extend((stmt.lineno, fn.name, target) for target in sorted(targets))
    return out


def _reaches(graph, start, goal):
    seen, todo = set(), [start]
    while todo:
        node = todo.pop()
        if node == goal:
            return True
        if node not in seen:
            seen.add(node)
            todo.extend(graph.get(node, ()))
    return False


def test_the_import_graph_has_no_cycle():
    """Module-level imports between pyminidl's modules form a DAG: the modules each one executes, and the
    packages those live in (their __init__ runs first), the root package aside (it imports everything for
    the public namespace and runs before any of its modules)."""
    modules = _module_files()
    graph = {name: _top_level_imports(path, name, modules) for name, path in modules.items() if name != "pyminidl"}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError("import cycle: " + " -> ".join(stack[stack.index(nxt):] + [nxt]))
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


def test_no_function_level_import_dodges_a_cycle():
    """An import inside a function that closes a cycle of the whole import graph (module- and function-level
    imports together) hides the cycle instead of breaking it: the test above would fail were it at module
    level. Modules that need each other are restructured (the lower one does not import the higher)."""
    modules = _module_files()
    graph = {name: set(_top_level_imports(path, name, modules)) for name, path in modules.items()
             if name != "pyminidl"}
    lazy = [(name, line, fn, target) for name, path in sorted(modules.items()) if name != "pyminidl"
            for line, fn, target in _function_level_imports(path, name, modules)]
    for name, _, _, target in lazy:
        graph[name].add(target)
    dodges = [f"{name}:{line} ({fn}) imports {target}, which leads back to {name}"
              for name, line, fn, target in lazy if _reaches(graph, target, name)]
    assert not dodges, "function-level imports closing an import cycle:\n" + "\n".join(dodges)


@pytest.mark.parametrize("name", ["pyminidl.callbacks", "pyminidl.training.trainer", "pyminidl.models",
                                  "pyminidl.saving"])
def test_module_imports_first_in_a_fresh_interpreter(name, tmp_path):
    # cwd outside the repository: its source folder would shadow the installed package
    out = subprocess.run([sys.executable, "-c", f"import {name}"], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert out.returncode == 0, out.stderr
