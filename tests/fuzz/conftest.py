"""Counts fuzz cases per entry point and prints them at the end of the run."""

import time

from fuzzlib import CASES

_START = time.perf_counter()


def pytest_terminal_summary(terminalreporter):
    if not CASES:
        return
    total = sum(c["accepted"] + c["rejected"] for c in CASES.values())
    terminalreporter.section("fuzzing of the _C entry points")
    for name in sorted(CASES):
        c = CASES[name]
        terminalreporter.write_line(
            f"{name:32s} cases={c['accepted'] + c['rejected']:6d}  "
            f"matched-reference={c['accepted']:6d}  clean-errors={c['rejected']:6d}  "
            f"hostile={sum(c['faults'].values()) - c['faults']['valid']:6d}  crashes=0"
        )
    terminalreporter.write_line(f"total cases: {total} in {time.perf_counter() - _START:.1f}s")
