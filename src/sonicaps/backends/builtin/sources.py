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
# Broadband noise, and "Snake", YAMNet's reading of hiss: a group heard as one of these more
# than as any source is no kind of source either (high-passed noise read Snake 0.8, with
# its parents Animal and Wild animals at 0.25, and had become "An animal calls").
BROADBAND = {"White noise", "Pink noise", "Noise", "Static", "Hiss", "Snake"}
GENERIC = {"something", "a device", "objects", "a machine", "an animal", "a vehicle"}
CREATURES = {
    "a dog", "a cat", "a horse", "a cow", "a pig", "a goat", "a sheep", "a rooster",
    "a chicken", "a turkey", "a duck", "a goose", "a lion", "an animal", "birds", "a bird",
    "pigeons", "a crow", "an owl", "a mouse", "insects", "crickets", "a mosquito", "a fly",
    "bees", "frogs", "a snake", "a whale", "a person", "a baby", "a stomach",
}
FEATURES = ("peak", "top3", "mean", "active", "rank", "ratio", "wins", "exclusive", "cofire",
            "own", "apart", "generic", "creature", "music", "unknown", "depth", "n_strong",
            "members", *("group_" + k for k in (
                "rank", "count", "events", "level", "share", "background", "n", "clip_peak", "split")))


@dataclass
class Candidate:
    subject: str  # the writer's subject, or "@music"
    label: str  # the most specific confident class: names the source
    index: int  # its column in YAMNet's output
    classes: list[int]
    track: np.ndarray  # per patch, the max over its classes
    features: dict[str, float]
    probability: float = 0.0


_override: dict | None = None  # a model being fitted (scripts/fit_source_verifier.py)


@cache
def verifier() -> dict:
    if _override is not None:
        return _override
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
               in_music: np.ndarray, context: dict[str, float] | None = None) -> list[Candidate]:
    """Candidate sources of one clip or group of segments, strongest first, with their
    features; `context` adds the group's place in its clip (segments.py)."""
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
    for c in out:
        c.features.update({f"group_{k}": v for k, v in (context or {}).items()})
        for f in FEATURES:
            c.features.setdefault(f, 0.0)
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


def role(k: int, c: Candidate) -> str:
    """Which verifier model judges a candidate: "top" for a group's strongest reading (is
    it what the group holds?), "secondary" for the others (a second source under the
    first, or a reading of it?). A group is a source of its own (segments.py), so a second
    source in its own segments is judged as a group's strongest reading, with the group's
    place in the clip among the features. (One "top" model for the loudest group only
    gave fewer right captions on the calibration clips: 467 against 521 of 900.)"""
    return "top" if k == 0 else "secondary"


def verify(cands: list[Candidate]) -> list[Candidate]:
    """The candidates (of one group) the fitted verifier accepts, in strength order.

    Two models, each with its own threshold (see role); each sees the features and the
    subject's record on the calibration clips."""
    v = verifier()
    for k, c in enumerate(cands):
        m = v[role(k, c)]
        x = [subject_prior(c.subject, m) if f == "subject_prior" else c.features[f]
             for f in v["features"]]  # in the order the model was fitted with
        c.probability = round(boosted_probability(x, m), 3)
    kept = [c for k, c in enumerate(cands) if c.probability >= v[role(k, c)]["accept"]]
    return kept[: v["max_sources"]]


# Kinds of source to fall back on when a reading names no specific source reliably:
# AudioSet classes (a reading's ancestors in the ontology) and how a caption names them.
BACKOFF = {
    "Animal": Phrase("an animal", "calls", "calling"),
    "Bird": Phrase("a bird", "calls", "calling"),
    "Insect": Phrase("insects", "buzz", "buzzing"),
    "Vehicle": Phrase("a vehicle", "passes by", "passing by"),
    "Engine": Phrase("an engine", "runs", "running"),
    "Mechanisms": Phrase("a machine", "runs", "running"),
    "Tools": Phrase("a machine", "runs", "running"),
    "Human sounds": Phrase("a person", "makes a sound", "making a sound"),
    "Domestic sounds, home sounds": Phrase("something", "clatters", "clattering"),
    "Specific impact sounds": Phrase("something", "is struck", "being struck"),
    "Liquid": Phrase("water", "splashes", "splashing"),
    "Water": Phrase("water", "splashes", "splashing"),
    "Glass": Phrase("glass", "clinks", "clinking"),
    "Wood": Phrase("wood", "knocks", "knocking"),
    "Explosion": Phrase("an explosion", "booms", "booming"),
    "Music": Phrase(MUSIC, "plays", "playing"),
}
KIND_FEATURES = ("k_self", "k_under", "k_share", "k_first", "top_peak", "k_depth", "k_prior")


def backoff_reliability(kind: str, model: dict | None = None) -> float:
    """How often this fallback named the true source on the calibration clips."""
    model = model if model is not None else verifier()
    right, seen = model.get("backoff", {}).get(kind, (0, 0))
    return (right + 2.0 * 0.5) / (seen + 2.0)


def backoff_kinds(name: str) -> list[str]:
    """The fallbacks above a class (or the class itself), most specific first."""
    kinds = [k for k in BACKOFF if k == name or k in ontology.ancestors(name)]
    return sorted(kinds, key=lambda k: -len(ontology.ancestors(k)))


def kind_probability(kind: str, features: dict[str, float], model: dict | None = None) -> float:
    """The probability that naming a group by this kind of source names its true source,
    from YAMNet's readings of the group (the kind model, fitted on calibration clips)."""
    model = model if model is not None else verifier()
    f = {**features, "k_prior": backoff_reliability(kind, model)}
    return boosted_probability([f[k] for k in model["kinds"]["features"]], model["kinds"])


def backoff(rows: Sequence[tuple[str, dict[str, float]]]) -> tuple[Phrase | None, str, float]:
    """The kind of source most likely to name a group's true source (rows: each kind above
    its strongest readings, with its features), if that is likely enough to say: the
    threshold is the fit's, chosen for the same objective as the verifier's."""
    model = verifier()
    scored = [(kind_probability(k, f, model), -len(ontology.ancestors(k)), k) for k, f in rows]
    if not scored:
        return None, "", 0.0
    q, _, kind = max(scored)
    if q < model["kinds"]["accept"]:
        return None, "", q
    return BACKOFF[kind], kind, q
