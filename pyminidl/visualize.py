"""Seeing inside a model: training curves, convolution filters and feature maps (matplotlib).

pyminidl's own module (Keras has no counterpart); matplotlib is an optional extra:
``pip install "pyminidl[plot]"``. Every function draws on a fresh ``matplotlib.figure.Figure``
with the Agg canvas, so it never touches pyplot's global state or needs a display; it returns the
figure and, when ``to_file`` is given, also saves it (PNG, or any format matplotlib infers from
the file name).

Example:
    >>> history = model.fit(x, y, validation_split=0.2, epochs=10, verbose=0)
    >>> pyminidl.visualize.plot_history(history, to_file="curves.png")
    >>> pyminidl.visualize.plot_filters(model.layers[0], to_file="filters.png")
    >>> pyminidl.visualize.plot_feature_maps(model, x[0], to_file="maps.png")
"""

import math

import numpy as np

_EXTRA = 'pip install "pyminidl[plot]"'


def _new_figure(width, height):
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError(f"pyminidl.visualize needs matplotlib, an optional extra: {_EXTRA}") from exc
    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _finish(figure, to_file):
    if to_file is not None:
        figure.savefig(to_file, dpi=100)
    return figure


def _grid(count):
    cols = int(math.ceil(math.sqrt(count)))
    return int(math.ceil(count / cols)), cols


def _draw_tiles(figure, tiles, titles, cmap):
    rows, cols = _grid(len(tiles))
    axes = figure.subplots(rows, cols, squeeze=False)
    for ax in axes.flat:
        ax.set_axis_off()
    for ax, tile, title in zip(axes.flat, tiles, titles):
        ax.imshow(tile, cmap=None if tile.ndim == 3 else cmap, interpolation="nearest")
        ax.set_title(title, fontsize=7)


def _rescaled(a):
    """``a`` mapped to [0, 1] (a constant array to 0.5), so every tile uses its full colour range."""
    a = np.asarray(a, dtype=np.float64)
    lo, hi = a.min(), a.max()
    return np.full_like(a, 0.5) if hi - lo < 1e-12 else (a - lo) / (hi - lo)


def plot_history(history, metrics=None, to_file=None):
    """One panel per metric of a History: the training curve and, when logged, the validation one.

    Args:
        history: a ``History`` (what ``fit`` returns) or its ``history`` dict.
        metrics: names to draw (default: every name without the ``val_`` prefix).
        to_file: where to save the figure (optional).

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        ValueError: an empty history, or a metric it does not hold.
    """
    logs = getattr(history, "history", history)
    if not isinstance(logs, dict) or not logs:
        raise ValueError(f"plot_history needs a History or a non-empty dict of per-epoch values. Received: {history!r}")
    names = list(metrics) if metrics is not None else [k for k in logs if not k.startswith("val_")]
    missing = [n for n in names if n not in logs]
    if missing or not names:
        raise ValueError(f"plot_history: no values for {missing or names}. The history holds: {sorted(logs)}")
    figure = _new_figure(4.0 * len(names), 3.2)
    for ax, name in zip(figure.subplots(1, len(names), squeeze=False)[0], names):
        epochs = np.arange(1, len(logs[name]) + 1)
        ax.plot(epochs, logs[name], marker="o", label=name)
        if f"val_{name}" in logs:
            ax.plot(np.arange(1, len(logs[f"val_{name}"]) + 1), logs[f"val_{name}"], marker="o", label=f"val_{name}")
        ax.set_xlabel("epoch")
        ax.set_title(name)
        ax.legend()
    return _finish(figure, to_file)


def _kernel_of(layer):
    """The 4-D kernel ``(kh, kw, in, filters)`` of a 2-D convolution layer, as a host array."""
    from pyminidl.backend import get_backend

    for name in ("kernel", "depthwise_kernel"):
        value = getattr(layer, name, None)
        if value is not None and getattr(value, "ndim", None) == 4:
            return np.asarray(get_backend().to_numpy(value))
    shapes = [tuple(w.shape) for w in getattr(layer, "weights", [])]
    raise ValueError(f"plot_filters needs a built 2-D convolution layer with a (kh, kw, in, filters) kernel. "
                     f"Received: layer {getattr(layer, 'name', layer)!r} with weight shapes {shapes}")


def plot_filters(layer, to_file=None, max_filters=64, channel=None):
    """Each filter of a 2-D convolution layer as one tile of a grid.

    A filter with 3 input channels is drawn in colour (RGB); otherwise one input channel
    (``channel``) or, by default, the mean over the input channels, in grey.

    Args:
        layer: a built Conv2D-like layer (kernel ``(kh, kw, in, filters)``).
        to_file: where to save the figure (optional).
        max_filters: at most this many filters, the first ones.
        channel: the input channel to draw (default: RGB for 3 channels, else the mean).

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        ValueError: the layer has no 4-D kernel, or ``channel`` is out of range.
    """
    kernel = _kernel_of(layer)
    kh, kw, cin, filters = kernel.shape
    if channel is not None and not 0 <= int(channel) < cin:
        raise ValueError(f"plot_filters: channel={channel} is out of range for a kernel with {cin} input channels "
                         f"(layer {layer.name!r}, kernel shape {kernel.shape})")
    count = max(1, min(int(max_filters), filters))
    tiles = []
    for f in range(count):
        w = kernel[:, :, :, f]
        tiles.append(_rescaled(w if channel is None and cin == 3 else
                               w[:, :, int(channel)] if channel is not None else w.mean(axis=2)))
    rows, cols = _grid(count)
    figure = _new_figure(1.2 * cols + 0.5, 1.2 * rows + 0.6)
    _draw_tiles(figure, tiles, [str(f) for f in range(count)], "gray")
    figure.suptitle(f"{layer.name}: {count} of {filters} filters ({kh}x{kw}x{cin})")
    return _finish(figure, to_file)


def _resolve_layers(model, layers):
    if layers is None:
        return None
    picked = []
    for item in layers if isinstance(layers, (list, tuple)) else [layers]:
        if isinstance(item, str):
            picked.append(model.get_layer(name=item))
        elif isinstance(item, int):
            picked.append(model.get_layer(index=item))
        else:
            picked.append(item)
    return picked


def _intermediate_outputs(model, x):
    """``[(layer, output)]`` for every layer of ``model`` on the batch ``x``, in inference mode."""
    from pyminidl.models.sequential import Sequential

    if isinstance(model, Sequential):
        x = model._prepare(model._adjust_input_rank(x))
        outputs = []
        for layer in model.layers:
            x = layer._infer(x)
            outputs.append((layer, x))
        return outputs
    layers = [layer for layer in model.layers if getattr(layer, "_inbound_nodes", None)]
    from pyminidl.models import Model

    probe = Model(model.inputs, [layer.output for layer in layers])
    values = probe.predict(x, verbose=0)
    return list(zip(layers, values if isinstance(values, (list, tuple)) else [values]))


def plot_feature_maps(model, x, layers=None, to_file=None, max_maps=32):
    """The feature maps a model produces for one input: one row of tiles per layer.

    Args:
        model: a Sequential or functional model.
        x: one input, with or without its batch axis (e.g. ``(28, 28, 1)`` or ``(1, 28, 28, 1)``).
        layers: layer names, indices or layers to show (default: every layer with a 4-D output,
            ``(batch, height, width, channels)``).
        to_file: where to save the figure (optional).
        max_maps: at most this many channels per layer, the first ones.

    Returns:
        The ``matplotlib.figure.Figure``.

    Raises:
        ValueError: no chosen layer has a 4-D output.
    """
    from pyminidl.backend import get_backend

    x = np.asarray(x)
    want = len(model.input_shape) if getattr(model, "input_shape", None) is not None else 4
    if x.ndim == want - 1:
        x = x[None]
    picked = _resolve_layers(model, layers)
    shown = [(layer, np.asarray(get_backend().to_numpy(y))) for layer, y in _intermediate_outputs(model, x[:1])
             if (picked is None or any(layer is p for p in picked))]
    shown = [(layer, y) for layer, y in shown if y.ndim == 4]
    if not shown:
        raise ValueError("plot_feature_maps: no chosen layer has a 4-D (batch, height, width, channels) output. "
                         f"Layers: {[layer.name for layer in model.layers]}")
    cols = min(int(max_maps), max(y.shape[-1] for _, y in shown))
    figure = _new_figure(1.1 * cols + 0.5, 1.3 * len(shown) + 0.4)
    rows = figure.subfigures(len(shown), 1, squeeze=False)[:, 0]
    for sub, (layer, y) in zip(rows, shown):
        maps = [_rescaled(y[0, :, :, c]) for c in range(min(cols, y.shape[-1]))]
        axes = sub.subplots(1, cols, squeeze=False)[0]
        for ax in axes:
            ax.set_axis_off()
        for ax, tile in zip(axes, maps):
            ax.imshow(tile, cmap="viridis", interpolation="nearest")
        sub.suptitle(f"{layer.name} {tuple(y.shape[1:])}", fontsize=8)
    return _finish(figure, to_file)
