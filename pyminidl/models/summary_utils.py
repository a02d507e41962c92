"""model.summary(): Keras 3's table, rendered in plain text without rich.

Keras 3 draws the table with rich (box.HEAVY_HEAD, show_lines=True, a fixed width of
min(88, terminal columns - 4)); this module reproduces rich's column-width arithmetic
(padding of 1 each side, then ``ratio_reduce`` to fit) so the text is the same.
"""

import math
import re
import shutil


def count_params(weights):
    return int(sum(math.prod(w.shape) for w in weights))


def weight_memory_size(weights):
    """Bytes held by ``weights`` (each array once)."""
    unique = {id(w): w for w in weights}.values()
    return float(sum(math.prod(w.shape) * w.dtype.itemsize for w in unique))


def readable_memory_size(size):
    """1234.0 -> '1.21 KB' (powers of 1024, two decimals, as Keras)."""
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if size / 1024 < 1:
            return f"{size:.2f} {unit}"
        size /= 1024
    return f"{size:.2f} PB"


def _ratio_reduce(total, ratios, maximums, values):
    """rich.ratio_reduce: take ``total`` away from ``values`` in proportion to ``ratios``."""
    ratios = [r if m else 0 for r, m in zip(ratios, maximums)]
    total_ratio = sum(ratios)
    if not total_ratio:
        return list(values)
    remaining, out = total, []
    for ratio, maximum, value in zip(ratios, maximums, values):
        if ratio and total_ratio > 0:
            distributed = min(maximum, round(ratio * remaining / total_ratio))
            out.append(value - distributed)
            remaining -= distributed
            total_ratio -= ratio
        else:
            out.append(value)
    return out


def _column_widths(line_length, positions):
    widths, current = [], 0
    for pos in positions:
        width = int(pos * line_length) - current
        if width < 4:
            raise ValueError("Insufficient console width to print summary.")
        widths.append(width)
        current += width
    n = len(widths)
    max_width = line_length - (n + 1)  # the vertical borders
    cells = [min(w + 2, max_width) for w in widths]  # padding of one space each side
    if sum(cells) > max_width:
        cells = _ratio_reduce(sum(cells) - max_width, [1] * n, cells, cells)
    return [c - 2 for c in cells]


_WORD = re.compile(r"\s*\S+\s*")


def _wrap(text, width):
    """rich's word wrap: break before a word that does not fit; cut an over-long line with an ellipsis."""
    breaks, offset = [], 0
    for match in _WORD.finditer(text):
        word = match.group(0)
        if width - offset >= len(word.rstrip()):
            offset += len(word)
        else:
            if match.start():
                breaks.append(match.start())
            offset = len(word)
    lines = [text[i:j].rstrip() for i, j in zip([0] + breaks, breaks + [len(text)])]
    return [line[: width - 1] + "…" if len(line) > width else line for line in lines]


def _justify(text, width, how):
    if how == "right":
        return text.rjust(width)
    if how == "center":  # rich: the odd space goes to the right (str.center differs)
        left = (width - len(text)) // 2
        return " " * left + text.ljust(width - left)
    return text.ljust(width)


def _render_row(cells, widths, aligns, bar, bottom=False):
    wrapped = [_wrap(str(c), w) for c, w in zip(cells, widths)]
    height = max(len(w) for w in wrapped)
    if bottom:  # rich sets header cells on the bottom line of a tall header row
        wrapped = [[""] * (height - len(lines)) + lines for lines in wrapped]
    out = []
    for i in range(height):
        parts = [" " + _justify(lines[i] if i < len(lines) else "", w, a) + " "
                 for lines, w, a in zip(wrapped, widths, aligns)]
        out.append(bar + bar.join(parts) + bar)
    return out


def _rule(widths, left, fill, mid, right):
    return left + mid.join(fill * (w + 2) for w in widths) + right


def render_table(header, rows, widths, aligns):
    """The rich HEAVY_HEAD table with a line between rows."""
    lines = [_rule(widths, "┏", "━", "┳", "┓")]
    lines += _render_row(header, widths, aligns, "┃", bottom=True)
    lines.append(_rule(widths, "┡", "━", "╇", "┩"))
    for i, row in enumerate(rows):
        if i:
            lines.append(_rule(widths, "├", "─", "┼", "┤"))
        lines += _render_row(row, widths, aligns, "│")
    lines.append(_rule(widths, "└", "─", "┴", "┘"))
    return lines


def _shape_text(shape):
    return "(" + ", ".join(str(s) for s in shape) + ")"


def _format_shape(layer):
    """Keras 3: the outputs of the layer's latest graph call, else the shape computed from its build shape."""
    nodes = layer._inbound_nodes
    if nodes:
        outputs = nodes[-1].outputs
        shapes = [t.shape for t in outputs]
    else:
        shape = layer._summary_output_shape()
        if shape is None:
            return "?"
        shapes = [shape] if _is_one_shape(shape) else list(shape)
    if len(shapes) == 1:
        return _shape_text(shapes[0])
    return "[" + ", ".join(_shape_text(s) for s in shapes) + "]"


def _is_one_shape(shape):
    return all(s is None or isinstance(s, int) for s in shape)


def _graph_nodes(model):
    """The ids of a functional model's nodes when its layers are not one chain (None when they are, or
    for Sequential and subclassed models): then the summary has a "Connected to" column."""
    node_ids = getattr(model, "_node_ids", None)
    if node_ids is None:
        return None
    steps = model._steps
    read = [i for s in steps for i in s.arg_ids + s.kw_ids if i is not None]
    chain = (len(model.inputs) == 1 and len(model.outputs) == 1 and len(read) == len(set(read))
             and all(len(s.node.input_tensors) == 1 for s in steps)
             and len({id(s.layer) for s in steps}) == len(steps))
    return None if chain else node_ids


def _connections(layer, node_ids):
    parts = []
    for node in layer._inbound_nodes:
        if id(node) not in node_ids:
            continue  # a call of this layer in another model
        for t in node.input_tensors:
            op, node_index, tensor_index = t._keras_history
            parts.append(f"{op.name}[{node_index}][{tensor_index}]")
    return ", ".join(parts) or "-"


def _layer_rows(layer, show_trainable, expand_nested, level=0, node_ids=None):
    prefix = "   " * level + "└ " if level else ""
    if not layer.built:
        params = "0 (unbuilt)"
    else:
        params = f"{layer.count_params():,}"
    row = [f"{prefix}{layer.name} ({type(layer).__name__})", _format_shape(layer), params]
    if node_ids is not None:
        row.append(_connections(layer, node_ids))
    if show_trainable:
        row.append(("Y" if layer.trainable else "N") if layer.weights else "-")
    rows = [row]
    if expand_nested and getattr(layer, "layers", None):
        for sub in layer.layers:
            rows += _layer_rows(sub, show_trainable, expand_nested, level + 1, node_ids)
    return rows


def _layer_range(layers, layer_range):
    if layer_range is None:
        return 0, len(layers)
    if len(layer_range) != 2 or not all(isinstance(s, str) for s in layer_range):
        raise ValueError(f"layer_range must be a list or tuple of 2 strings. Received: {layer_range}")
    lower = [i for i, l in enumerate(layers) if re.match(layer_range[0], l.name)]
    upper = [i for i, l in enumerate(layers) if re.match(layer_range[1], l.name)]
    if not lower or not upper:
        raise ValueError(f"Passed layer_names do not match the layer names in the model. Received: {layer_range}")
    if min(lower) > max(upper):
        return min(upper), max(lower) + 1
    return min(lower), max(upper) + 1


def _optimizer_line(model):
    opt = getattr(model, "optimizer", None)
    slots = list(getattr(opt, "variables", None) or []) if opt is not None else []
    if opt is None or not (slots or int(getattr(opt, "iterations", 0) or 0)):
        return None
    # Keras counts the iteration counter (int64) and the learning rate (float32) too.
    return count_params(slots) + 2, weight_memory_size(slots) + 12


def summary_text(model, line_length=None, positions=None, show_trainable=False, layer_range=None,
                 expand_nested=False):
    """The whole summary as one string (ending in a newline), as Keras 3 prints it."""
    node_ids = _graph_nodes(model)
    if node_ids is None:
        default_length = 88
        positions = list(positions or [0.45, 0.80, 1.0])
        header = ["Layer (type)", "Output Shape", "Param #"]
        aligns = ["left", "left", "right"]
    else:
        default_length = 108
        positions = list(positions or [0.3, 0.56, 0.74, 1.0])
        header = ["Layer (type)", "Output Shape", "Param #", "Connected to"]
        aligns = ["left", "left", "right", "left"]
    if show_trainable:
        default_length += 12
        positions = [p * 0.90 for p in positions] + [1.0]
        header.append("Trainable")
        aligns.append("center")
    line_length = line_length or min(default_length, shutil.get_terminal_size().columns - 4)
    widths = _column_widths(line_length, positions)
    layers = model.layers
    lo, hi = _layer_range(layers, layer_range)
    rows = []
    for layer in layers[lo:hi]:
        rows += _layer_rows(layer, show_trainable, expand_nested, node_ids=node_ids)
    trainable, non_trainable = model.trainable_weights, model.non_trainable_weights
    t_count, t_size = count_params(trainable), weight_memory_size(trainable)
    n_count, n_size = count_params(non_trainable), weight_memory_size(non_trainable)
    opt = _optimizer_line(model)
    total_count = t_count + n_count + (opt[0] if opt else 0)
    total_size = t_size + n_size + (opt[1] if opt else 0)
    lines = [f'Model: "{model.name}"']
    lines += render_table(header, rows, widths, aligns)
    lines.append(f" Total params: {total_count:,} ({readable_memory_size(total_size)})")
    lines.append(f" Trainable params: {t_count:,} ({readable_memory_size(t_size)})")
    lines.append(f" Non-trainable params: {n_count:,} ({readable_memory_size(n_size)})")
    if opt:
        lines.append(f" Optimizer params: {opt[0]:,} ({readable_memory_size(opt[1])})")
    return "\n".join(lines) + "\n"
