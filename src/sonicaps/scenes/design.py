"""Random scene designs: which sources play when, how loud, how often.

A design is the ground truth: the mixer renders exactly it, the caption grammar describes
exactly it, and events.jsonl stores it. Everything is drawn from one numpy Generator, so a
seed fixes the scene.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from sonicaps.scenes.catalog import Source, classes

DURATION_S = 10.0
MAX_ONCE_S = 6.0  # longer "once" sources are cropped to 3-6 s
LEVELS_DB = {"far": (-15.0, -11.0), "normal": (-7.0, -3.0), "near": (0.0, 3.0)}
LEVEL_P = {"far": 0.2, "normal": 0.6, "near": 0.2}
BACKGROUND_DB = (-16.0, -10.0)
SEQUENCE_RATE = {"footsteps": (1.6, 2.2), "tabla": (3.0, 5.0)}  # hits per second
SOLO_GROUPS = {"speech", "music"}  # drawn on their own, not as sound events


@dataclass
class Event:
    """One source in a scene. hits are (time in scene, offset in source, duration), seconds."""

    cls: str
    source: str
    role: str  # "foreground" | "background"
    level: str  # "far" | "normal" | "near" | "background"
    gain_db: float  # relative to the prepared source's loudness
    repeats: int  # separate occurrences (1 for sequences and loops)
    detail: str
    hits: list[tuple[float, float, float]] = field(default_factory=list)

    @property
    def onset(self) -> float:
        return self.hits[0][0]

    @property
    def offset(self) -> float:
        return max(t + d for t, _, d in self.hits)


@dataclass
class Scene:
    id: str
    split: str
    seed: int
    events: list[Event]  # background first, then by onset
    band_hz: float  # the low-pass cutoff applied to the whole mix
    loudness_dbfs: float  # target active RMS of the mix


@dataclass
class Pool:
    """The sources one split may use, grouped the way scenes draw them."""

    background: list[Source]
    sounds: dict[str, list[Source]]  # class -> foreground sources
    speech: dict[str, list[Source]]
    music: dict[str, list[Source]]

    @classmethod
    def of(cls, sources: Sequence[Source], split: str) -> Pool:
        groups = {name: c.group for name, c in classes().items()}
        pool = cls([], {}, {}, {})
        for s in sources:
            if s.split != split:
                continue
            if s.role == "background":
                pool.background.append(s)
            else:
                g = groups[s.cls]
                target = pool.speech if g == "speech" else pool.music if g == "music" else pool.sounds
                target.setdefault(s.cls, []).append(s)
        return pool


def _choice(rng: np.random.Generator, items: Sequence):
    return items[int(rng.integers(len(items)))]


def _place(rng: np.random.Generator, src: Source, length: float) -> tuple[list, int]:
    """hits relative to the event's start, and the number of occurrences."""
    if src.pattern == "loop":
        dur = float(rng.uniform(3.0, 7.0))
        return [(0.0, float(rng.uniform(0, length)), dur)], 1
    if src.pattern == "sequence":
        lo, hi = SEQUENCE_RATE.get(src.cls, (2.0, 3.0))
        step = 1.0 / float(rng.uniform(lo, hi))
        n = int(rng.integers(5, 10))
        times = np.cumsum(np.r_[0.0, step * rng.uniform(0.85, 1.15, n - 1)])
        return [(float(t), 0.0, min(length, step * 1.5)) for t in times], 1
    if length > MAX_ONCE_S:
        dur = float(rng.uniform(3.0, MAX_ONCE_S))
        return [(0.0, float(rng.uniform(0, length - dur)), dur)], 1
    if src.pattern == "repeat" and length < 2.5:
        k = int(rng.choice([1, 2, 3, 4], p=[0.35, 0.3, 0.2, 0.15]))
        hits, t = [], 0.0
        for _ in range(k):
            hits.append((t, 0.0, length))
            t += length + float(rng.uniform(0.15, 0.8))
        while hits[-1][0] + length > DURATION_S - 0.5 and len(hits) > 1:
            hits.pop()
        return hits, len(hits)
    return [(0.0, 0.0, length)], 1


def design_scene(rng: np.random.Generator, pool: Pool, length: Callable[[Source], float],
                 scene_id: str, split: str, seed: int) -> Scene:
    """length(source) gives a prepared source's duration in seconds."""
    events: list[Event] = []
    if pool.background and rng.random() < 0.55:
        bg_class = _choice(rng, sorted({b.cls for b in pool.background}))  # classes equally likely
        src = _choice(rng, [b for b in pool.background if b.cls == bg_class])
        events.append(Event(src.cls, src.id, "background", "background",
                            float(rng.uniform(*BACKGROUND_DB)), 1, src.detail,
                            [(0.0, float(rng.uniform(0, length(src))), DURATION_S)]))
    n_sounds = int(rng.choice([0, 1, 2, 3], p=[0.1, 0.4, 0.35, 0.15]))
    speech = bool(pool.speech) and rng.random() < 0.3
    music = bool(pool.music) and rng.random() < 0.2
    n_sounds = min(n_sounds, 3 - speech - music, len(pool.sounds))
    if n_sounds + speech + music == 0:
        n_sounds = 1
    picked = list(rng.choice(sorted(pool.sounds), size=n_sounds, replace=False))
    if speech:
        picked.append(_choice(rng, sorted(pool.speech)))
    if music:
        picked.append(_choice(rng, sorted(pool.music)))
    bg_class = events[0].cls if events else None
    for cls in picked:
        if cls == bg_class:
            continue
        group = pool.speech if cls in pool.speech else pool.music if cls in pool.music else pool.sounds
        src = _choice(rng, group[cls])
        hits, repeats = _place(rng, src, length(src))
        span = max(t + d for t, _, d in hits)
        start = float(rng.uniform(0.0, max(DURATION_S - span, 0.0)))
        hits = [(round(start + t, 3), round(o, 3), round(min(d, DURATION_S - start - t), 3))
                for t, o, d in hits if start + t < DURATION_S - 0.1]
        level = str(rng.choice(list(LEVEL_P), p=list(LEVEL_P.values())))
        events.append(Event(cls, src.id, "foreground", level,
                            float(rng.uniform(*LEVELS_DB[level])), repeats, src.detail, hits))
    events[int(bool(bg_class)):] = sorted(events[int(bool(bg_class)):], key=lambda e: e.onset)
    return Scene(scene_id, split, seed, events, band_hz=float(rng.uniform(4500.0, 5400.0)),
                 loudness_dbfs=float(rng.uniform(-30.0, -20.0)))
