"""Segment, then label, then group: the sound events of a clip as the unit of decision.

Whole-clip decisions (the strongest class over all of a clip's patches) name one source
and read a second one as a confusion of the first. So a clip is first cut into events
where its level rises above its own noise floor (a per-clip background model: a low
percentile of the frame levels), each event is labelled from the YAMNet patches that
hold it, the stretches between events form one background segment, and segments whose
class-score vectors look alike are grouped: a group is one source (a looped recording
stays one source; a horse and a rooster 3 s apart stay two), with its onset, offset,
number of occurrences and level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sonicaps.audio import SAMPLE_RATE
from sonicaps.backends.builtin.yamnet import PATCH_HOP_S, PATCH_S

FRAME_S = 0.01  # level frames: 25-ms windows every 10 ms
WINDOW_S = 0.025
FLOOR_PERCENTILE = 10  # the clip's background level: its quietest tenth
ABOVE_FLOOR_DB = 10.0  # an event is this far above the background ...
MIN_EVENT_DB = -60.0  # ... and at least this loud (a -60 dBFS noise floor is no event)
BRIDGE_S = 0.3  # gaps shorter than this stay inside one event
MIN_EVENT_S = 0.08
# A clip with no event above its floor but at least this loud (RMS dBFS) is one steady
# event: the writer's "faintly" starts below it (asker.FAINT_DB).
STEADY_DB = -45.0


@dataclass
class Segment:
    onset: float
    offset: float
    patches: np.ndarray  # YAMNet patches that hold it
    level_db: float  # RMS over the segment
    background: bool = False  # the stretches between events
    split: bool = False  # starts where a new class rose inside an event (split_at)

    @property
    def duration(self) -> float:
        return self.offset - self.onset


def frame_levels(audio: np.ndarray) -> np.ndarray:
    """RMS level in dBFS of 25-ms frames every 10 ms."""
    hop, win = int(FRAME_S * SAMPLE_RATE), int(WINDOW_S * SAMPLE_RATE)
    if len(audio) < win:
        audio = np.pad(audio, (0, win - len(audio)))
    frames = np.lib.stride_tricks.sliding_window_view(audio, win)[::hop]
    power = np.mean(np.square(frames, dtype=np.float64), axis=1)
    return 10 * np.log10(np.maximum(power, 1e-12))


def level_db(audio: np.ndarray, onset: float, offset: float) -> float:
    seg = audio[int(onset * SAMPLE_RATE):max(int(offset * SAMPLE_RATE), int(onset * SAMPLE_RATE) + 1)]
    rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if len(seg) else 0.0
    return round(20 * np.log10(max(rms, 1e-10)), 1)


def _runs(active: np.ndarray, bridge: int) -> list[tuple[int, int]]:
    idx = np.flatnonzero(active)
    if len(idx) == 0:
        return []
    runs = [[int(idx[0]), int(idx[0]) + 1]]
    for i in idx[1:]:
        if i - runs[-1][1] <= bridge:
            runs[-1][1] = int(i) + 1
        else:
            runs.append([int(i), int(i) + 1])
    return [(a, b) for a, b in runs]


def patches_of(onset: float, offset: float, n_patches: int) -> np.ndarray:
    """Patches that hold most of a stretch: those covering at least half of it, or half of
    their own length (a short event lies whole inside two overlapping patches)."""
    starts = np.arange(n_patches) * PATCH_HOP_S
    overlap = np.minimum(starts + PATCH_S, offset) - np.maximum(starts, onset)
    need = 0.5 * min(PATCH_S, max(offset - onset, 1e-3))
    idx = np.flatnonzero(overlap >= need - 1e-9)
    if len(idx) == 0:
        idx = np.array([int(np.clip(np.argmax(overlap), 0, n_patches - 1))])
    return idx


def segment(audio: np.ndarray, n_patches: int) -> list[Segment]:
    """Events above the clip's background, then one background segment (the patches that
    hold no event), in time order."""
    db = frame_levels(audio)
    duration = len(audio) / SAMPLE_RATE
    floor = float(np.percentile(db, FLOOR_PERCENTILE))
    active = db >= max(floor + ABOVE_FLOOR_DB, MIN_EVENT_DB)
    events = []
    for a, b in _runs(active, int(BRIDGE_S / FRAME_S)):
        onset, offset = a * FRAME_S, min(duration, b * FRAME_S + WINDOW_S)
        if offset - onset >= MIN_EVENT_S:
            events.append(Segment(round(onset, 2), round(offset, 2),
                                  patches_of(onset, offset, n_patches), level_db(audio, onset, offset)))
    if not events and level_db(audio, 0.0, duration) >= STEADY_DB:
        # No rise above the clip's own floor, yet plainly audible: a steady sound fills
        # the clip (a fire crackling throughout), one event, not a noise floor.
        return [Segment(0.0, round(duration, 2), np.arange(n_patches),
                        level_db(audio, 0.0, duration))]
    # The background: patches mostly outside every event (a loop with no gaps is all of it).
    starts = np.arange(n_patches) * PATCH_HOP_S
    inside = np.zeros(n_patches)
    for e in events:
        inside += np.clip(np.minimum(starts + PATCH_S, e.offset) - np.maximum(starts, e.onset),
                          0, None)
    quiet = np.flatnonzero(inside <= 0.5 * PATCH_S)
    out = list(events)
    if len(quiet):
        on, off = float(starts[quiet[0]]), float(min(duration, starts[quiet[-1]] + PATCH_S))
        calm = db[~active] if (~active).any() else db
        out.append(Segment(round(on, 2), round(off, 2), quiet,
                           round(float(10 * np.log10(np.mean(10 ** (calm / 10)))), 1),
                           background=True))
    return sorted(out, key=lambda s: s.onset)


def split_at(audio: np.ndarray, segments: list[Segment], times: list[float], n_patches: int,
             min_part_s: float) -> list[tuple[Segment, Segment | None]]:
    """Cut event segments at these times (a new source starting under one that goes on,
    with no pause to cut at): each part at least `min_part_s` long. Returns every segment
    with the part it continues (None for the first part and for unsplit segments)."""
    out: list[tuple[Segment, Segment | None]] = []
    for s in segments:
        cuts = sorted(t for t in times if not s.background
                      and s.onset + min_part_s <= t <= s.offset - min_part_s)
        kept: list[float] = []
        for t in cuts:
            if not kept or t - kept[-1] >= min_part_s:
                kept.append(t)
        if not kept:
            out.append((s, None))
            continue
        bounds = [s.onset, *kept, s.offset]
        prev = None
        for k, (a, b) in enumerate(zip(bounds[:-1], bounds[1:], strict=True)):
            a, b = round(a, 2), round(b, 2)
            part = Segment(a, b, patches_of(a, b, n_patches), level_db(audio, a, b), split=k > 0)
            out.append((part, prev))
            prev = part
    return out


@dataclass
class Group:
    """Segments heard as one source."""

    segments: list[Segment]
    vector: np.ndarray  # mean of its segments' vectors (for grouping)

    @property
    def patches(self) -> np.ndarray:
        return np.unique(np.concatenate([s.patches for s in self.segments]))

    @property
    def events(self) -> list[Segment]:
        return [s for s in self.segments if not s.background]

    @property
    def onset(self) -> float:
        return min(s.onset for s in (self.events or self.segments))

    @property
    def offset(self) -> float:
        return max(s.offset for s in (self.events or self.segments))

    @property
    def split(self) -> bool:
        """Its first event starts where a new class rose inside an event (split_at)."""
        ev = self.events
        return bool(ev) and min(ev, key=lambda s: s.onset).split


def _unit(v: np.ndarray) -> np.ndarray:
    return v / max(float(np.linalg.norm(v)), 1e-9)


def group(segments: list[Segment], vectors: list[np.ndarray], threshold: float) -> list[Group]:
    """Merge the most alike pair of groups while their cosine is at least `threshold`
    (average linkage over the segments' vectors); groups in onset order."""
    groups = [Group([s], _unit(v)) for s, v in zip(segments, vectors, strict=True)]
    members = [[_unit(v)] for v in vectors]
    while len(groups) > 1:
        best, pair = threshold, None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                sim = float(np.mean([x @ y for x in members[a] for y in members[b]]))
                if sim >= best:
                    best, pair = sim, (a, b)
        if pair is None:
            break
        a, b = pair
        groups[a] = Group(sorted(groups[a].segments + groups[b].segments, key=lambda s: s.onset),
                          _unit(groups[a].vector + groups[b].vector))
        members[a] += members.pop(b)
        groups.pop(b)
    return sorted(groups, key=lambda g: g.onset)

