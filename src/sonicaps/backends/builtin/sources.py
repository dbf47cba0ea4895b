"""From YAMNet's frame probabilities to sound sources: one source per thing heard.

YAMNet fires on a class, on its ancestors and on confusable neighbours at once (a cow is
also Roar and Livestock; an airplane is Vehicle + Aircraft + Aircraft engine). So:

1. classes that one writer subject names, and classes of which one is a kind of the other
   in the AudioSet ontology, are merged into one candidate source, named by its most
   specific confident class;
2. each candidate gets class-agnostic features (its peak, how many frames it wins, what it
   has that the stronger candidates do not, how closely it co-fires with them, ...);
3. a verifier of small gradient-boosted trees, fitted on labelled real recordings that the
   benchmark never uses (scripts/fit_source_verifier.py writes data/source_verifier.json),
   says which candidates are real sources. Its thresholds are chosen there, on classes the
   fold never saw, to maximise clips exactly right minus clips with an invented source.
   Broadband-noise classes, and readings weaker than the noise, are never a source.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

import numpy as np

from sonicaps import ontology
from sonicaps.backends.builtin.lexicon import IGNORE, MUSIC, SINGING, SPEECH, Phrase

CANDIDATE_MIN = 0.2  # classes whose clip peak is below this are never looked at
# Broadband noise: YAMNet's readings of a noise floor, never a source by themselves.
# YAMNet's "Snake" is its reading of hiss: on the calibration clips it never named a snake
# (none were there) and fired on fire, trumpets, tabla and noise floors.
NOISE = {"Snake", "Hiss", "White noise", "Pink noise", "Static", "Noise", "Environmental noise",
         "Mains hum", "Hum", "Silence", "Field recording", "Inside, small room",
         "Inside, large room or hall", "Inside, public space", "Outside, urban or manmade",
         "Outside, rural or natural", "Reverberation", "Echo", "Sound effect", "Distortion"}
BROADBAND = {"White noise", "Pink noise", "Noise", "Static", "Hiss"}
GENERIC = {"something", "a device", "objects", "a machine", "an animal", "a vehicle"}
CREATURES = {
    "a dog", "a cat", "a horse", "a cow", "a pig", "a goat", "a sheep", "a rooster",
    "a chicken", "a turkey", "a duck", "a goose", "a lion", "an animal", "birds", "a bird",
    "pigeons", "a crow", "an owl", "a mouse", "insects", "crickets", "a mosquito", "a fly",
    "bees", "frogs", "a snake", "a whale", "a person", "a baby", "a stomach",
}
FEATURES = ("peak", "top3", "mean", "active", "rank", "ratio", "wins", "exclusive", "cofire",
            "own", "apart", "generic", "creature", "music", "unknown", "depth", "n_strong",
            "members")


@dataclass
class Candidate:
    subject: str  # the writer's subject, or "@music"
    label: str  # the most specific confident class: names the source
    index: int  # its column in YAMNet's output
    classes: list[int]
    track: np.ndarray  # per patch, the max over its classes
    features: dict[str, float]
    probability: float = 0.0


@cache
def verifier() -> dict:
    return json.loads(files("sonicaps").joinpath("data/source_verifier.json").read_text())


@cache
def _broadband(names: tuple[str, ...]) -> list[int]:
    return [i for i, n in enumerate(names) if n in BROADBAND]


def _union(groups: list[set[int]], names: list[str]) -> list[set[int]]:
    """Merge groups while a class of one is a kind of a class of another. (Merging sibling
    classes that co-fire, a goose that is also a duck, was tried: on the fit script's
    held-out classes it scored 36.3-37.1 % right minus invented against 37.4 % without.)"""
    merged = True
    while merged:
        merged = False
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                if any(ontology.related(names[i], names[j]) for i in groups[a] for j in groups[b]):
                    groups[a] |= groups.pop(b)
                    merged = True
                    break
            if merged:
                break
    return groups


def candidates(probs: np.ndarray, names: list[str], phrases: list[Phrase],
               in_music: np.ndarray) -> list[Candidate]:
    """Candidate sources of one clip, strongest first, with their features."""
    peak = probs.max(axis=0)
    by_subject: dict[str, set[int]] = {}
    for i in np.flatnonzero(peak >= CANDIDATE_MIN):
        name, subject = names[i], phrases[i].subject
        if name in NOISE or (subject == IGNORE and not in_music[i]):
            continue
        if in_music[i] or subject == MUSIC:
            subject = MUSIC
        elif subject in (SPEECH, SINGING):
            continue  # voices are the voice analysis' job
        by_subject.setdefault(subject, set()).add(int(i))
    noise_idx = _broadband(tuple(names))
    noise = probs[:, noise_idx].max(axis=1) if noise_idx else np.zeros(len(probs))
    music = by_subject.pop(MUSIC, None)
    groups = _union(list(by_subject.values()), names)
    if music:
        groups.append(music)
    out = []
    for g in groups:
        idx = sorted(g)
        track = probs[:, idx].max(axis=1)
        top = max(peak[i] for i in idx)
        confident = [i for i in idx if peak[i] >= 0.6 * top
                     and phrases[i].subject not in (IGNORE, *GENERIC)] or [max(idx, key=lambda i: peak[i])]
        best = max(confident, key=lambda i: (len(ontology.ancestors(names[i])), peak[i]))
        subject = MUSIC if g is music else phrases[best].subject
        if subject == IGNORE or (track.max() < noise.max() and track.mean() < noise.mean()):
            continue  # nothing to name, or weaker than broadband noise: its echo ("a spray")
        out.append(Candidate(subject, names[best], best, idx, track, {}))
    out.sort(key=lambda c: -float(c.track.max()))
    _features(out)
    return out


def _features(cands: list[Candidate]) -> None:
    if not cands:
        return
    tracks = np.stack([c.track for c in cands])  # [n, T]
    best_peak = float(tracks.max())
    winner = tracks.argmax(axis=0)
    n_strong = float((tracks.max(axis=1) >= 0.5).sum())
    for k, c in enumerate(cands):
        t = c.track
        p = float(t.max())
        stronger = tracks[:k]
        excl = float((t - stronger.max(axis=0)).max()) if k else p
        if k and len(t) > 2 and t.std() > 1e-6 and stronger[0].std() > 1e-6:
            cofire = float(np.corrcoef(t, stronger[0])[0, 1])
        else:
            cofire = 0.0
        # Time of its own: patches where it is strong and every stronger candidate is weak,
        # and how far its peak lies from the strongest candidate's.
        on = t >= 0.5 * p
        if k:
            quiet = (stronger < 0.5 * stronger.max(axis=1, keepdims=True)).all(axis=0)
            own = float((on & quiet).mean())
            apart = abs(int(t.argmax()) - int(tracks[0].argmax())) / max(1, len(t))
        else:
            own, apart = float(on.mean()), 0.0
        c.features = {
            "peak": p,
            "top3": float(np.sort(t)[-3:].mean()),
            "mean": float(t.mean()),
            "active": float((t >= max(0.15, 0.5 * p)).mean()),
            "rank": float(min(k, 5)),
            "ratio": p / max(best_peak, 1e-6),
            "wins": float(((winner == k) & (t >= 0.1)).mean()),
            "exclusive": excl,
            "cofire": cofire,
            "own": own,
            "apart": float(apart),
            "generic": float(c.subject in GENERIC),
            "creature": float(c.subject in CREATURES),
            "music": float(c.subject == MUSIC),
            "unknown": float(c.subject.endswith(" sound")),
            "depth": float(len(ontology.ancestors(c.label))),
            "n_strong": n_strong,
            "members": float(len(c.classes)),
        }


def boosted_probability(x: Sequence[float], model: dict) -> float:
    """Probability from exported gradient-boosted trees (what scikit-learn's
    HistGradientBoostingClassifier computes; the fit script checks the two agree)."""
    raw = model["baseline"]
    for t in model["trees"]:
        node = 0
        while not t["leaf"][node]:
            go_left = x[t["feature"][node]] <= t["threshold"][node]
            node = t["left"][node] if go_left else t["right"][node]
        raw += t["value"][node]
    return 1.0 / (1.0 + math.exp(-raw))


def subject_prior(subject: str, model: dict) -> float:
    """How often this subject named a true source among the calibration candidates,
    smoothed towards the base rate (subjects never seen there get the base rate)."""
    right, seen = model["subjects"].get(subject, (0, 0))
    return (right + model["smoothing"] * model["base_rate"]) / (seen + model["smoothing"])


def verify(cands: list[Candidate]) -> list[Candidate]:
    """The candidates the fitted verifier accepts, in strength order (at most max_sources).

    Two models: one for a clip's strongest candidate (is it what the clip holds?), one for
    the others (is it a second source, or a reading of the first?). Each sees the features
    and the subject's record on the calibration clips, and has its own threshold."""
    v = verifier()
    for k, c in enumerate(cands):
        m = v["top" if k == 0 else "secondary"]
        x = [c.features[f] for f in FEATURES] + [subject_prior(c.subject, m)]
        c.probability = round(boosted_probability(x, m), 3)
    kept = [c for k, c in enumerate(cands)
            if c.probability >= v["top" if k == 0 else "secondary"]["accept"]]
    return kept[: v["max_sources"]]
