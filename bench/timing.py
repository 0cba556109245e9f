"""Wall-clock timing shared by the benchmarks."""

from __future__ import annotations

import time
from collections.abc import Callable


def timed(function: Callable[[], object], repeats: int) -> list[float]:
    """Call ``function`` ``repeats`` times and return each call's wall-clock time in seconds."""
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return times
