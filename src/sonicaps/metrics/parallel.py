"""How many processes the metrics fork. Items score independently, so a large corpus is
split over forked workers, which inherit the loaded resources instead of loading them again."""

from __future__ import annotations

import multiprocessing
import os

PARALLEL_MIN_ITEMS = 400  # below this, forking a worker costs more than it saves


def worker_processes(items: int) -> int:
    """Processes worth forking for this many items: up to 2 cores, none where fork is missing
    (Windows, macOS default) or the corpus is too small to pay for a worker."""
    if items < PARALLEL_MIN_ITEMS or "fork" not in multiprocessing.get_all_start_methods():
        return 1
    return min(2, os.cpu_count() or 1)
