"""The three seams where backends plug in: ask, write, check.

Each works on a batch (a list) and returns one result per clip in the same order, so
a backend can batch its model calls however it likes. A backend that cannot handle
one clip raises; the pipeline then retries the clips one by one and records the bad
one as a failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from sonicaps.clip import Answers, Clip


class BadOutput(ValueError):
    """A backend returned something unusable (wrong count, empty text, NaN score)."""


@runtime_checkable
class Asker(Protocol):
    model_id: str  # recorded with every row

    def ask(self, clips: Sequence[Clip], questions: Sequence[str]) -> list[Answers]:
        """Answer every question about every clip."""
        ...


@runtime_checkable
class Writer(Protocol):
    """A writer that hands some clips to another writer may also expose `fallbacks`, a dict
    (clip id, caption) -> which writer wrote it and why; the row's `writer` column says so."""

    model_id: str

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        """One caption per clip; `attempt` (0, 1, ...) asks for a different try."""
        ...


@runtime_checkable
class Scorer(Protocol):
    model_id: str

    def score(self, clips: Sequence[Clip], answers: Sequence[Answers],
              texts: Sequence[str]) -> np.ndarray:
        """Agreement of texts[i] with clip i, higher is better (cosine-like, in [-1, 1])."""
        ...
