"""Forked workers for the metrics. Items score independently, so a large corpus is split
over processes forked from this one, which inherit the loaded resources instead of loading
them again.

A worker is a plain forked process with a pipe, not a ProcessPoolExecutor: the metrics make
one call per worker, and the executor's import and start-up (its manager thread and queues)
took ~20 ms of a 0.4 s scoring run. multiprocessing itself is imported only when a worker
starts (~15 ms of a scoring run that does not fork).
"""

from __future__ import annotations

import os
import traceback
from collections.abc import Callable, Iterator
from typing import Any

PARALLEL_MIN_ITEMS = 400  # below this, forking a worker costs more than it saves


def worker_processes(items: int) -> int:
    """Processes worth forking for this many items: up to 2, and only on cores that are idle.
    None where fork is missing (Windows), for a corpus too small to pay for a worker, or
    when the machine is busy: on a machine whose run queue already fills its cores a forked
    worker gets no core of its own, and its start-up, the copied pages and the hand-overs
    between processes (each wait for a time slice) made scoring slower, not faster
    (benchmarks/metrics_speed.py, load average ~13 on 2 cores). SONICAPS_WORKERS=n
    overrides the choice."""
    forced = os.environ.get("SONICAPS_WORKERS")
    if not hasattr(os, "fork"):
        return 1
    if forced:
        return max(1, int(forced))
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    if items < PARALLEL_MIN_ITEMS or load > cores - 1:
        return 1
    return min(2, cores)


class ForkedWorker:
    """Runs fn(*args) in a forked child; fn returns one value, or yields several, which
    `get` hands over one at a time as they come. An exception in the child is raised by
    `get`; a child that dies without answering raises ChildProcessError. Use as a context
    manager: leaving it stops a child that is still working."""

    def __init__(self, fn: Callable[..., Any], *args: Any):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._conn, child_end = ctx.Pipe(duplex=False)
        self._proc = ctx.Process(target=_serve, args=(child_end, fn, args), daemon=True)
        self._proc.start()
        child_end.close()

    def get(self) -> Any:
        try:
            ok, value = self._conn.recv()
        except EOFError:
            self._proc.join()
            raise ChildProcessError(f"a metrics worker ended without an answer "
                                    f"(exit code {self._proc.exitcode})") from None
        if not ok:
            raise value
        return value

    def __enter__(self) -> ForkedWorker:
        return self

    def __exit__(self, *exc: object) -> None:
        self._conn.close()
        if self._proc.is_alive():
            self._proc.terminate()
        self._proc.join()


def _serve(conn: Any, fn: Callable[..., Any], args: tuple) -> None:
    try:
        out = fn(*args)
        for value in out if isinstance(out, Iterator) else (out,):
            conn.send((True, value))
    except BaseException as e:  # handed to the parent, which raises it
        try:
            conn.send((False, e))
        except Exception:  # an exception that cannot be pickled: its text
            conn.send((False, RuntimeError(traceback.format_exc())))
    finally:
        conn.close()
