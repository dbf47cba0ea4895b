"""Does a caption name what is heard, and only that? Clips with known sources, and a scorer.

Clips are made from real recordings with known classes (SceneCaps' catalog, or any
manifest in its format): single-source clips and two-source mixes with known onsets.
The scorer reads a caption's text, not the pipeline's evidence, so any writer (the
built-in one, an LLM) is judged the same way. Used by `benchmarks/caption_faithfulness.py`
and by the fit of the built-in source verifier (`scripts/fit_source_verifier.py`), each on
its own split of the recordings.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import cache
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sonicaps import ontology
from sonicaps.audio import SAMPLE_RATE
from sonicaps.backends.builtin.lexicon import IGNORE, table
from sonicaps.scenes.catalog import Source, classes
from sonicaps.scenes.prepare import load_prepared

CLIP_S = 10.0
FORMATS = ("wav", "flac", "ogg", "mp3")
# Subjects that name a kind of source without naming it ("an animal") name a class of a
# group that allows them only when the class is that kind in the AudioSet ontology (its
# label's or its own words' classes are under it: "a car" makes a revving engine a
# vehicle; "a machine" does not name an explosion). The built-in captioner backs off to
# them, so the judge must not credit a generic word where it is wrong. (Before, the group
# alone decided: "something" named every household sound, "a machine" every gunshot.)
GROUP_GENERIC = {"animals": {"an animal"}, "vehicles": {"a vehicle", "an engine"},
                 "people": {"a person", "people"}, "tools": {"a machine", "a device"},
                 "household": {"a device"}}
GENERIC_KINDS = {"an animal": {"Animal"}, "a vehicle": {"Vehicle"}, "an engine": {"Engine"},
                 "a machine": {"Mechanisms", "Tools"}, "a device": {"Mechanisms", "Tools"},
                 "a person": {"Human sounds"}, "people": {"Human sounds"}}
# Words that name no source at all ("something clatters"): neither credited nor invented.
VAGUE = {("something",), ("object",), ("objects",), ("sound",)}
SPEECH_WORDS = re.compile(r"\b(speak\w*|talk\w*|speech|conversation|says|narrat\w*|whisper\w*|"
                          r"voices?)\b")
# "birds sing" is birdsong, not music: singing counts unless a bird does it.
MUSIC_WORDS = re.compile(r"\b(music\w*|songs?|(?<!birds )(?<!bird )(sings?|singing)|melod\w*|"
                         r"choir)\b")
MUSIC_INSTRUMENT_WORDS = ("piano", "guitar", "violin", "cello", "trumpet", "flute", "saxophone",
                          "organ", "accordion", "harp", "xylophone", "marimba", "drum", "drums",
                          "cymbal", "cymbals", "tabla", "bass", "keyboard", "synthesizer")


@cache
def _music_phrases() -> frozenset[tuple[str, ...]]:
    """'music', an instrument, or 'X music' (one mention, not two)."""
    out = {("music",), ("percussion", "music")}
    for w in MUSIC_INSTRUMENT_WORDS:
        out |= {subject_key(w), subject_key(w) + ("music",)}
    return frozenset(out)


@dataclass(frozen=True)
class Truth:
    """What a benchmark clip holds: classes in onset order."""

    id: str
    classes: tuple[str, ...]
    onsets: tuple[float, ...]
    sources: tuple[str, ...]

    @property
    def speech(self) -> bool:
        return any(classes()[c].group == "speech" for c in self.classes)

    @property
    def music(self) -> bool:
        return any(classes()[c].group == "music" for c in self.classes)


# -- words -----------------------------------------------------------------------------
def subject_key(phrase: str) -> tuple[str, ...]:
    """'A Dogs' -> ('dog',): the form subjects are compared in."""
    words = re.findall(r"[a-z]+", phrase.lower())
    if words and words[0] in ("a", "an", "the", "some"):
        words = words[1:]
    return tuple(w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w
                 for w in words)


@cache
def _phrases() -> dict[tuple[str, ...], str]:
    """Every subject the project's writers and references use, normalised -> as written."""
    out = {}
    subjects = {p.subject for p in table().values() if p.subject != IGNORE
                and not p.subject.startswith("@")}
    subjects |= {"a man", "a woman", "a person", "people", "a child", "children", "music"}
    subjects |= {s for c in classes().values() for s in c.detect if not s.startswith("@")}
    for s in subjects:
        out[subject_key(s)] = s
    for k in VAGUE:
        out.pop(k, None)
    return out


def class_words(cls: str) -> set[tuple[str, ...]]:
    """Normalised subjects that name this class."""
    c = classes()[cls]
    said = {s for s in c.detect if not s.startswith("@")}
    generic = GROUP_GENERIC.get(c.group, set())
    if c.audioset in ontology.parents_by_name():  # else ("Walk, footstep") the group's
        named = [n for n, p in table().items() if p.subject in said] + [c.audioset]
        kinds = set().union(*(ontology.ancestors(n) | {n} for n in named))
        generic = {g for g in generic if GENERIC_KINDS[g] & kinds}
    said |= generic
    words = {subject_key(s) for s in said}
    if c.group == "music":
        words |= _music_phrases()
    return words


# Words after which a noun phrase starts: a subject is only a subject there ("gunshots
# fire", "an explosion booms": the verbs are not sources).
LEADS = {"a", "an", "the", "some", "as", "while", "and", "then", "by", "of", "x",
         "followed", "two", "several", "many", "distant", "loud", "faint", "small", "large"}
LINKS = {"over", "with", "under", "behind", "amid", "beside", "against", "to", "in", "is",
         "are", "no"}


def names_class(subject: str, cls: str) -> bool:
    """Whether a writer's subject ("a goose", or "@music") names this class."""
    if subject == "@music":
        return classes()[cls].group == "music"
    return subject_key(subject) in class_words(cls)


def mentions(caption: str, vocabulary: Iterable[tuple[str, ...]] = ()) -> list[tuple[int, tuple[str, ...]]]:
    """(word position, normalised subject) of each source the caption names, in order.

    Longest subjects first, so "a car horn" is one mention, not a car and a horn; "X music"
    and "a X sound" name X. `vocabulary` adds subjects to the project's own."""
    words = list(subject_key("x " + caption))  # "x": subject_key drops only a leading article
    # word positions that open a sentence or clause ("A duck quacks. There is no music.")
    tokens = re.findall(r"[a-z]+|[.,;:!?]", ("x " + caption).lower())
    opens = {sum(t.isalpha() for t in tokens[:k]) for k, t in enumerate(tokens) if not t.isalpha()}
    found: list[tuple[int, tuple[str, ...]]] = []
    used = [False] * len(words)
    # "wind instrument music", "drum roll music": the words before "music" describe it (one
    # mention of music, not wind and a drum besides), within its clause and up to a word
    # that leads a subject or links it ("a man speaks over music" names a man).
    for i, w in enumerate(words):
        if w == "music":
            j = i
            while j > 1 and words[j - 1] not in LEADS | LINKS and j not in opens:
                j -= 1
            found.append((j, ("music",)))
            used[j:i + 1] = [True] * (i + 1 - j)
    extra = _music_phrases() | set(vocabulary)
    for phrase in sorted(set(_phrases()) | extra, key=len, reverse=True):
        n = len(phrase)
        for i in range(len(words) - n + 1):
            if (tuple(words[i:i + n]) == phrase and not any(used[i:i + n])
                    and (i <= 1 or words[i - 1] in LEADS or phrase[-1] == "music")):
                found.append((i, phrase))
                used[i:i + n] = [True] * n
    for i, w in enumerate(words[:-1]):  # "a hiss sound is heard": the writer's fallback
        if words[i + 1] == "sound" and not used[i] and i and words[i - 1] in ("a", "an"):
            found.append((i, (w,)))
    return sorted(found)


@dataclass
class Judgement:
    named: tuple[bool, ...]  # per true class, in onset order
    ordered: bool  # true classes first named in their onset order
    other: list[str]  # subjects that name no true class
    repeated: bool  # one true source named by more subjects than there are true sources
    speech_hallucinated: bool
    music_hallucinated: bool

    @property
    def fully_right(self) -> bool:
        return (all(self.named) and self.ordered and not self.other and not self.repeated
                and not self.speech_hallucinated and not self.music_hallucinated)


def _assign(found: list[tuple[int, tuple[str, ...]]], vocab: list[set]) -> list[int | None]:
    """Per true class, the word position of the mention that names it, each mention naming
    at most one class ("an animal calls" names one of a dog and a cow, not both): the
    assignment naming the most classes, then in their order, then earliest."""
    options = [[k for k, (_, p) in enumerate(found) if p in v] + [None] for v in vocab]
    best: tuple | None = None
    for combo in itertools.product(*options):
        used = [k for k in combo if k is not None]
        if len(used) != len(set(used)):
            continue
        pos = [found[k][0] for k in used]
        key = (len(used), pos == sorted(pos), -sum(pos))
        if best is None or key > best[0]:
            best = (key, combo)
    assert best is not None
    return [None if k is None else found[k][0] for k in best[1]]


def judge(truth: Truth, caption: str, answer_2: str = "", answer_3: str = "") -> Judgement:
    found = mentions(caption)
    vocab = [class_words(c) for c in truth.classes]
    first = _assign(found, vocab)
    true_mentions = [p for _, p in found if any(p in v for v in vocab)]
    other = [" ".join(p) for _, p in found if not any(p in v for v in vocab)]
    named = tuple(f is not None for f in first)
    seen = [f for f in first if f is not None]
    text = caption.lower()
    speech_said = bool(SPEECH_WORDS.search(text)) or _says_present(answer_2, "speech")
    music_said = bool(MUSIC_WORDS.search(text)) or _says_present(answer_3, "music")
    return Judgement(
        named=named, ordered=all(named) and seen == sorted(seen),
        other=other, repeated=len(true_mentions) > len(truth.classes),
        speech_hallucinated=speech_said and not truth.speech,
        music_hallucinated=music_said and not truth.music)


def _says_present(answer: str, what: str) -> bool:
    """An answer that is not the asker's 'there is no <what>'."""
    a = answer.strip().lower()
    return bool(a) and not re.search(rf"\bno {what}\b|\bnot? .*{what}\b.*(present|detected)", a)


# -- the summary the benchmark prints ------------------------------------------------------
def summarise(truths: Sequence[Truth], judged: Sequence[Judgement]) -> dict:
    single = [(t, j) for t, j in zip(truths, judged, strict=True) if len(t.classes) == 1]
    mixes = [(t, j) for t, j in zip(truths, judged, strict=True) if len(t.classes) == 2]
    no_speech = [j for t, j in zip(truths, judged, strict=True) if not t.speech]
    no_music = [j for t, j in zip(truths, judged, strict=True) if not t.music]
    n_true = sum(len(t.classes) for t in truths)

    def share(xs: list[bool]) -> float:
        return float(np.mean(xs)) if xs else float("nan")

    return {
        "clips": len(truths), "single": len(single), "mixes": len(mixes),
        "recall": sum(sum(j.named) for j in judged) / max(1, n_true),
        "other_class": share([bool(j.other) or j.repeated for _, j in single]),
        "speech_hallucination": share([j.speech_hallucinated for j in no_speech]),
        "music_hallucination": share([j.music_hallucinated for j in no_music]),
        "mixes_both_named": sum(all(j.named) for _, j in mixes),
        "mixes_ordered": sum(j.ordered for _, j in mixes),
        "fully_right": sum(j.fully_right for j in judged),
    }


def per_class(truths: Sequence[Truth], judged: Sequence[Judgement]) -> dict[str, dict]:
    out: dict[str, dict] = {}
    for t, j in zip(truths, judged, strict=True):
        for c, named in zip(t.classes, j.named, strict=True):
            d = out.setdefault(c, {"clips": 0, "named": 0, "other": 0, "single": 0})
            d["clips"] += 1
            d["named"] += named
            if len(t.classes) == 1:
                d["single"] += 1
                d["other"] += bool(j.other) or j.repeated
    return out


# -- making the clips ----------------------------------------------------------------------
def _pink(rng: np.random.Generator, n: int) -> np.ndarray:
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.arange(len(spec))
    spec[1:] /= np.sqrt(f[1:])
    x = np.fft.irfft(spec, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-12)


def _place(rng: np.random.Generator, src: Source, audio: np.ndarray, start: float,
           length: float) -> tuple[np.ndarray, float]:
    """A track of `length` s holding the source from about `start` s; returns it and the onset."""
    n = int(length * SAMPLE_RATE)
    out = np.zeros(n, np.float32)
    at = int(start * SAMPLE_RATE)
    if len(audio) >= n - at:  # long recording: a random excerpt fills the rest
        off = int(rng.integers(0, len(audio) - (n - at) + 1))
        out[at:] = audio[off:off + n - at]
        return out, start
    if src.role == "background" or src.pattern == "loop":
        pos = at
        while pos < n:
            piece = audio[: n - pos]
            out[pos:pos + len(piece)] += piece
            pos += len(audio)
        return out, start
    repeats = 1 if src.pattern == "once" else int(rng.integers(2, 4))
    pos = at
    for _ in range(repeats):
        if pos >= n:
            break
        piece = audio[: n - pos]
        out[pos:pos + len(piece)] += piece
        pos += len(audio) + int(rng.uniform(0.3, 1.5) * SAMPLE_RATE)
    return out, start


def make_clips(pool: Sequence[Source], out_dir: Path, n_single: int, n_mixes: int,
               seed: int = 0, prefix: str = "clip") -> list[Truth]:
    """Write single-source clips (every class in turn) and two-source mixes (different
    classes whose words differ), 44.1 kHz stereo in four formats, with a truth file."""
    rng = np.random.default_rng(seed)
    out_dir.mkdir(parents=True, exist_ok=True)
    by_class: dict[str, list[Source]] = {}
    for s in pool:
        by_class.setdefault(s.cls, []).append(s)
    names = sorted(by_class)
    truths: list[Truth] = []
    cache_audio: dict[str, np.ndarray] = {}

    def audio_of(s: Source) -> np.ndarray:
        if s.id not in cache_audio:
            cache_audio[s.id] = load_prepared(s)
        return cache_audio[s.id]

    plan: list[list[Source]] = []
    order = list(rng.permutation(names))
    for k in range(n_single):
        cls = order[k % len(order)]
        plan.append([by_class[cls][int(rng.integers(len(by_class[cls])))]])
    while len(plan) < n_single + n_mixes:
        a, b = rng.choice(names, size=2, replace=False)
        if class_words(a) & class_words(b) or classes()[a].group == classes()[b].group == "music":
            continue
        plan.append([by_class[c][int(rng.integers(len(by_class[c])))] for c in (a, b)])
    for k, srcs in enumerate(plan):
        mix = np.zeros(int(CLIP_S * SAMPLE_RATE), np.float32)
        onsets = []
        start = float(rng.uniform(0.0, 1.5))
        for m, s in enumerate(srcs):
            if m == 1:  # the second source starts clearly later (known order)
                start = float(rng.uniform(onsets[0] + 2.0, 6.0))
            track, onset = _place(rng, s, audio_of(s), start, CLIP_S)
            gain = 10 ** (rng.uniform(-4.0, 4.0) / 20) if m else 1.0
            mix += track * gain
            onsets.append(round(onset, 2))
        level = rng.uniform(-32.0, -16.0)  # sources come prepared at -20 dBFS active RMS
        mix *= 10 ** ((level + 20.0) / 20)
        if rng.random() < 0.5:  # a microphone / room noise floor
            mix += _pink(rng, len(mix)).astype(np.float32) * 10 ** (rng.uniform(-62, -45) / 20)
        peak = float(np.max(np.abs(mix)))
        if peak > 0.99:
            mix *= 0.99 / peak
        x = soxr.resample(mix, SAMPLE_RATE, 44_100)
        cid = f"{prefix}{k:04d}"
        sf.write(out_dir / f"{cid}.{FORMATS[k % len(FORMATS)]}", np.stack([x, x], axis=1), 44_100)
        truths.append(Truth(cid, tuple(s.cls for s in srcs), tuple(onsets),
                            tuple(s.id for s in srcs)))
    (out_dir.parent / f"{out_dir.name}.truth.jsonl").write_text(
        "".join(json.dumps(asdict(t)) + "\n" for t in truths))
    return truths


def scenecaps_split(root: Path, split: str = "test") -> tuple[list[Path], list[Truth]]:
    """A built SceneCaps folder's audio files of one split and their truths (each class
    once, at its first onset, from the timelines)."""
    import pandas as pd

    splits = pd.read_csv(root / "splits.csv")
    wanted = set(splits.loc[splits["split"] == split, "id"])
    truths = []
    with open(root / "events.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            if rec["id"] in wanted:
                first: dict[str, float] = {}
                for e in sorted(rec["events"], key=lambda e: e["onset"]):
                    first.setdefault(e["class"], e["onset"])
                truths.append(Truth(rec["id"], tuple(first), tuple(first.values()), ()))
    files = sorted(p for p in (root / "audio").iterdir() if p.stem in wanted)
    return files, truths


def clip_id_of(row_id: str) -> str:
    """Pipeline ids are '<stem>_<start>_<end>': the benchmark clip is the stem."""
    return row_id.rsplit("_", 2)[0]


def recorded(pool: Iterable[Source]) -> list[Source]:
    """Real recordings only: no rendered speech or music."""
    return [s for s in pool if not s.generated]
