"""Progbar: Keras 3's progress bar (``verbose=1``) and per-epoch line (``verbose=2``).

The text matches Keras 3's ``keras.utils.Progbar``: a 20-character bar of ``━``, the step
count right-aligned to the target's width, the ETA while running (elapsed time once done),
the time per step in s/ms/us, and each metric as ``name: value`` with 4 decimals (values
below 1e-3 in scientific notation). Two deliberate differences, both about terminals:

- ANSI colours (green done part, white rest, bold counts) are written only to a terminal,
  where they are what shows the progress; in a log file they would be escape-code noise.
  Without colours, a ``╺`` marks the head of a running bar so the progress stays visible.
- When stdout is not a terminal, ``verbose=1`` writes only the final line of each bar
  (Keras re-prints the bar every 0.05 s on its own line, flooding logs and CI output).
"""

import math
import os
import sys
import time

from pyminidl.distribution import _state as _dist_state

_BOLD, _GREEN, _WHITE, _RESET = "\x1b[1m", "\x1b[32m", "\x1b[37m", "\x1b[0m"


def _is_interactive():
    stdout = sys.stdout
    return bool(
        (hasattr(stdout, "isatty") and stdout.isatty())
        or "ipykernel" in sys.modules
        or "PYCHARM_HOSTED" in os.environ
    )


def _print(message):
    # Under a distribution only rank 0 prints (the bar, callback messages).
    if not _dist_state.is_chief():
        return
    # sys.stdout is looked up on every call so that redirection (and pytest's capsys) works.
    sys.stdout.write(message)
    sys.stdout.flush()


def format_time(time_per_unit, unit_name):
    """Keras's duration text: `` 3s/step``, `` 12ms/step`` or `` 850us/step``."""
    if time_per_unit >= 1 or time_per_unit == 0:
        return f" {time_per_unit:.0f}s/{unit_name}"
    if time_per_unit >= 1e-3:
        return f" {time_per_unit * 1e3:.0f}ms/{unit_name}"
    return f" {time_per_unit * 1e6:.0f}us/{unit_name}"


def format_value(value):
    """A metric value as Keras prints it: 4 decimals, scientific below 1e-3 in magnitude."""
    return f"{value:.4f}" if abs(value) > 1e-3 else f"{value:.4e}"


def format_eta(eta):
    """Seconds left as ``1:02:03``, ``2:03`` or ``5s``."""
    if eta > 3600:
        return "%d:%02d:%02d" % (eta // 3600, (eta % 3600) // 60, eta % 60)
    if eta > 60:
        return "%d:%02d" % (eta // 60, eta % 60)
    return "%ds" % eta


class Progbar:
    """Displays a progress bar (Keras 3's ``keras.utils.Progbar``).

    Metrics not listed in ``stateful_metrics`` are averaged over the steps seen so far
    (weighted by the steps each update covers); the final update shows the values given.

    Args:
        target: Total number of steps expected, None if unknown.
        width: Bar width in characters.
        verbose: 0 (silent), 1 (progress bar) or 2 (one line when finished).
        interval: Minimum time in seconds between two redraws of the bar.
        stateful_metrics: Names of metrics displayed as given, never averaged.
        unit_name: Name of one step in the time-per-step text.

    Example:
        >>> bar = Progbar(target=10)
        >>> for i in range(10):
        ...     bar.update(i + 1, [("loss", 0.5)])
    """

    def __init__(self, target, width=20, verbose=1, interval=0.05, stateful_metrics=None, unit_name="step"):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.interval = interval
        self.unit_name = unit_name
        self.stateful_metrics = set(stateful_metrics or ())
        self._dynamic_display = _is_interactive()
        self._color = self._dynamic_display and "NO_COLOR" not in os.environ
        self._seen_so_far = 0
        self._values = {}
        self._values_order = []
        self._start = time.time()
        self._last_update = 0.0
        self._time_after_first_step = None
        self._prev_total_width = 0

    def update(self, current, values=None, finalize=None):
        """Record step ``current`` (1-based) with ``values`` [(name, value)] and redraw.

        Args:
            current: Index of the current step.
            values: List of ``(name, value_for_last_step)`` tuples.
            finalize: Whether this is the last update; defaults to ``current >= target``.
        """
        if finalize is None:
            finalize = self.target is not None and current >= self.target
        self._accumulate(values or (), current, finalize)
        self._seen_so_far = current
        now = time.time()
        time_per_unit = self._estimate_step_duration(current, now)
        if self.verbose == 1:
            if not finalize and (not self._dynamic_display or now - self._last_update < self.interval):
                return
            self._draw_bar(current, now, time_per_unit, finalize)
        elif self.verbose == 2 and finalize:
            self._draw_line(current, now, time_per_unit)
        self._last_update = now

    def add(self, n, values=None):
        """Advance by ``n`` steps."""
        self.update(self._seen_so_far + n, values)

    def _accumulate(self, values, current, finalize):
        for name, value in values:
            if name not in self._values:
                self._values_order.append(name)
            if name in self.stateful_metrics or finalize:
                self._values[name] = [value, 1]
                continue
            # Weight by the steps this update covers, so sparse updates still average right.
            base = max(current - self._seen_so_far, 1)
            total = self._values.get(name)
            if total is None:
                self._values[name] = [value * base, base]
            else:
                total[0] += value * base
                total[1] += base

    def _metrics_text(self):
        parts = []
        for name in self._values_order:
            total, count = self._values[name]
            parts.append(f" - {name}: {format_value(total / max(1, count))}")
        return "".join(parts)

    def _bar_text(self, current, finalize):
        """The count and bar, plain and as displayed (with colours on a terminal)."""
        if self.target is None or self.target <= 0:
            text = "%7d/Unknown" % current
            return text, text
        digits = int(math.log10(self.target)) + 1
        count = f"%{digits}d/%d" % (current, self.target)
        done = min(int(self.width * current / self.target), self.width)
        rest = self.width - done
        if self._color:
            shown = f"{_BOLD}{count}{_RESET} "
            if done:
                shown += f"{_GREEN}{'━' * done}{_RESET}"
            shown += f"{_WHITE}{'━' * rest}{_RESET}"
            return f"{count} {'━' * self.width}", shown
        head = "╺" + "━" * (rest - 1) if rest and not finalize else "━" * rest
        text = f"{count} {'━' * done}{head}"
        return text, text

    def _draw_bar(self, current, now, time_per_unit, finalize):
        plain_bar, bar = self._bar_text(current, finalize)
        if self.target is not None and self.target > 0 and not finalize:
            when = format_eta(time_per_unit * (self.target - current))
        else:
            when = f"{now - self._start:.0f}s"
        info = format_time(time_per_unit, self.unit_name) + self._metrics_text()
        shown_when = f" {_BOLD}{when}{_RESET}" if self._color else f" {when}"
        total_width = len(plain_bar) + 1 + len(when) + len(info)
        message = bar + shown_when + info
        if self._dynamic_display:
            message = "\r" + message + " " * max(self._prev_total_width - total_width, 0)
        if finalize:
            message += "\n"
        _print(message)
        self._prev_total_width = total_width

    def _draw_line(self, current, now, time_per_unit):
        if self.target is None or self.target <= 0:
            count = f"{current}/Unknown"
        else:
            digits = int(math.log10(self.target)) + 1
            count = f"%{digits}d/%d" % (current, self.target)
        info = f"{count} - {now - self._start:.0f}s -{format_time(time_per_unit, self.unit_name)}"
        _print(info + self._metrics_text() + "\n")

    def _estimate_step_duration(self, current, now):
        # The first step (allocation, warm-up) is left out of the estimate once there are more.
        if not current:
            return 0.0
        if self._time_after_first_step is not None and current > 1:
            per_unit = (now - self._time_after_first_step) / (current - 1)
        else:
            per_unit = (now - self._start) / current
        if current == 1:
            self._time_after_first_step = now
        return per_unit
