"""plot_model: a model's graph as Graphviz DOT text, rendered to PNG/SVG/PDF when Graphviz is installed.

Keras 3 needs pydot and Graphviz; here the DOT text is written directly (always), and Graphviz's
``dot`` program, when it is on the PATH, renders the picture. A message says which files were written.

Example:
    >>> pyminidl.utils.plot_model(model, "model.png", show_shapes=True)
    Wrote model.dot (Graphviz DOT text) and model.png (rendered by Graphviz's dot).
"""

import html
import os
import shutil
import subprocess

_RENDERED = ("png", "svg", "pdf", "jpg", "jpeg", "gif", "ps")


def _shape_text(tensors):
    shapes = ["(" + ", ".join(str(d) for d in t.shape) + ")" for t in tensors]
    return shapes[0] if len(shapes) == 1 else "[" + ", ".join(shapes) + "]"


def _layer_io(layer):
    """(input shapes, output shapes, output dtype) as text, from the layer's first graph call ("?" when it
    has none: a subclassed model's layers)."""
    nodes = layer._inbound_nodes
    if not nodes:
        return "?", "?", layer.dtype
    node = nodes[0]
    ins = _shape_text(node.input_tensors or node.outputs)
    return ins, _shape_text(node.outputs), node.outputs[0].dtype


def _label(layer, opts):
    rows = []
    name = html.escape(type(layer).__name__)
    head = f"<b>{html.escape(layer.name)}</b> ({name})" if opts["show_layer_names"] else f"<b>{name}</b>"
    rows.append(head)
    if opts["show_layer_activations"] and getattr(layer, "activation", None) is not None:
        act = getattr(layer.activation, "__name__", str(layer.activation))
        rows.append(f"Activation: {html.escape(act)}")
    ins, outs, dtype = _layer_io(layer)
    if opts["show_dtype"]:
        rows.append(f"Output dtype: {html.escape(str(dtype))}")
    if opts["show_shapes"]:
        rows.append(f"Input shape: {html.escape(ins)}")
        rows.append(f"Output shape: {html.escape(outs)}")
    if opts["show_trainable"] and layer.weights:
        rows.append(f"Trainable: {'Y' if layer.trainable else 'N'}")
    cells = "".join(f"<tr><td>{r}</td></tr>" for r in rows)
    return f'<<table border="0" cellborder="1" cellspacing="0" cellpadding="6">{cells}</table>>'


def _node_id(layer, opts):
    """A stable DOT id per layer: numbered in drawing order, so the same model gives the same text."""
    ids = opts["ids"]
    return ids.setdefault(id(layer), f"layer_{len(ids)}")


def _graph_edges(model):
    """(producer, consumer) layer pairs of a model's graph: its nodes' inputs for a functional model, the
    stack for Sequential, none for a subclassed model (its connections live in Python code)."""
    steps = getattr(model, "_steps", None)
    if steps is not None:
        edges = []
        for step in steps:
            for t in step.node.input_tensors:
                pair = (t._keras_history.operation, step.layer)
                if all(pair[0] is not a or pair[1] is not b for a, b in edges):
                    edges.append(pair)
        return edges
    if hasattr(model, "_input_layer"):
        chain = _all_layers(model)
        return list(zip(chain[:-1], chain[1:]))
    return []


def _all_layers(model):
    layers = list(model.layers)
    first = getattr(model, "_input_layer", None)
    if first is not None and all(l is not first for l in layers):
        layers.insert(0, first)
    return layers


def _ends(layer, opts, first):
    """The DOT nodes an edge into (``first``) or out of a layer attaches to: a nested model expanded
    attaches at its own first / last layers."""
    if not (opts["expand_nested"] and hasattr(layer, "layers") and layer.layers):
        return [_node_id(layer, opts)]
    inner = [l for l in _all_layers(layer) if type(l).__name__ != "InputLayer"]
    if not inner:
        return [_node_id(layer, opts)]
    edges = _graph_edges(layer)
    consumers = {id(b) for a, b in edges if type(a).__name__ != "InputLayer"}
    producers = {id(a) for a, _ in edges}
    picked = [l for l in inner if (id(l) not in consumers if first else id(l) not in producers)] or inner[:1]
    return [e for l in picked for e in _ends(l, opts, first)]


def _dot_body(model, opts, indent="  "):
    lines = []
    for layer in _all_layers(model):
        if opts["expand_nested"] and hasattr(layer, "layers") and layer.layers:
            lines.append(f'{indent}subgraph "cluster_{_node_id(layer, opts)}" {{')
            lines.append(f'{indent}  label="{html.escape(layer.name)} ({type(layer).__name__})"; style="dashed";')
            lines += _dot_body(layer, opts, indent + "  ")
            lines.append(f"{indent}}}")
        else:
            lines.append(f'{indent}"{_node_id(layer, opts)}" [label={_label(layer, opts)}];')
    for a, b in _graph_edges(model):
        for src in _ends(a, opts, first=False):
            for dst in _ends(b, opts, first=True):
                lines.append(f'{indent}"{src}" -> "{dst}";')
    return lines


def model_to_dot_text(model, show_shapes=False, show_dtype=False, show_layer_names=True, rankdir="TB",
                      expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False):
    """The model's graph as Graphviz DOT text (one box per layer, an arrow per connection).

    Raises:
        ValueError: ``rankdir`` other than "TB", "LR", "BT" or "RL".
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"`rankdir` must be one of 'TB', 'LR', 'BT', 'RL'. Received: rankdir={rankdir!r}")
    opts = dict(show_shapes=show_shapes, show_dtype=show_dtype, show_layer_names=show_layer_names,
                expand_nested=expand_nested, show_layer_activations=show_layer_activations,
                show_trainable=show_trainable, ids={})
    head = [f'digraph "{html.escape(model.name)}" {{',
            f'  graph [rankdir="{rankdir}", concentrate=true, dpi={int(dpi)}];',
            '  node [shape=plaintext, fontname="Helvetica"];']
    return "\n".join(head + _dot_body(model, opts) + ["}"]) + "\n"


def plot_model(model, to_file="model.png", show_shapes=False, show_dtype=False, show_layer_names=True,
               rankdir="TB", expand_nested=False, dpi=200, show_layer_activations=False, show_trainable=False,
               **kwargs):
    """Draw ``model``'s graph: always writes the DOT text, and the picture when Graphviz's ``dot`` is installed.

    Args:
        model: a Sequential, functional or subclassed model.
        to_file: the picture's path; its extension (.png, .svg, .pdf; none means .png) picks the format.
            A ``.dot`` path writes the DOT text only. The DOT text goes beside the picture (``model.dot``).
        show_shapes: add each layer's input and output shapes.
        show_dtype: add each layer's output dtype.
        show_layer_names: head each box with the layer's name (else only its class).
        rankdir: "TB" (top to bottom), "LR", "BT" or "RL".
        expand_nested: draw a nested model's layers inside a dashed box.
        dpi: the picture's resolution.
        show_layer_activations: add the activation of layers that have one.
        show_trainable: add whether each layer with weights is trainable.

    Returns:
        The paths written (the DOT file first).

    Raises:
        ValueError: a bad ``rankdir``; RuntimeError: ``dot`` failed (its error text is included).

    Example:
        >>> plot_model(model, "model.png", show_shapes=True)
    """
    if kwargs:
        raise TypeError(f"plot_model() got unexpected keyword arguments: {sorted(kwargs)}")
    text = model_to_dot_text(model, show_shapes, show_dtype, show_layer_names, rankdir, expand_nested, dpi,
                             show_layer_activations, show_trainable)
    root, ext = os.path.splitext(os.fspath(to_file))
    ext = ext[1:].lower() or "png"
    dot_path = root + ".dot"
    with open(dot_path, "w", encoding="utf-8") as f:
        f.write(text)
    if ext == "dot":
        print(f"Wrote {dot_path} (Graphviz DOT text).")
        return [dot_path]
    picture = root + "." + ext
    dot = shutil.which("dot")
    if dot is None or ext not in _RENDERED:
        why = ("Graphviz's `dot` is not on the PATH (install Graphviz, e.g. `apt install graphviz`)"
               if dot is None else f"'{ext}' is not a format this function renders")
        print(f"Wrote {dot_path} (Graphviz DOT text); {picture} was not written: {why}. "
              f"Render it with: dot -T{ext} {dot_path} -o {picture}")
        return [dot_path]
    done = subprocess.run([dot, f"-T{ext}", dot_path, "-o", picture], capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"Graphviz's dot failed to render {picture}: {done.stderr.strip()}")
    print(f"Wrote {dot_path} (Graphviz DOT text) and {picture} (rendered by Graphviz's dot).")
    return [dot_path, picture]


__all__ = ["model_to_dot_text", "plot_model"]
