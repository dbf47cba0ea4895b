"""The records every stage passes around: a decoded clip and the answers about it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np


@dataclass
class Clip:
    """A 16 kHz mono piece of one source file, ready for the models."""

    id: str  # "<stem>_<start>_<end>", unique within a run
    source: str  # the file it came from
    start_s: float
    end_s: float
    audio: np.ndarray
    labels: tuple[str, ...] | None = None  # given labels (AudioSet names), when known
    last_in_source: bool = False  # marks the source finished, for resuming


@dataclass
class Answers:
    """The three answers for one clip, plus the evidence behind them (JSON-serialisable).

    `evidence` is what a backend measured (detections, timings, scores); writers that
    understand it may use it, others read only `texts`.
    """

    texts: tuple[str, str, str]
    evidence: dict[str, Any] = field(default_factory=dict)
