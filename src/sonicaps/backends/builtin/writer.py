"""The built-in writer: one AudioCaps-style sentence, deterministic.

Follows the AudioCaps annotation guidelines: present tense, one sentence, sources
joined in their true order by "while", "as", "followed by", "then"; people by gender,
never by name or by what they say; no "this is"/"there is"/"you can hear"; repetition
and loudness words only when the evidence supports them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from sonicaps.backends.builtin.asker import FAINT_DB, LOUD_DB
from sonicaps.clip import Answers, Clip

# More sources than this make an unreadable sentence. Which are named: the MAX_SOURCES
# events the asker scored highest (a faint door before a man speaking must not push the
# man out), in the order they are heard; each retry drops the weakest. Answers read back
# as text carry no scores: there, the first MAX_SOURCES heard.
MAX_SOURCES = 3
OVERLAP = 0.3  # fraction of the shorter event that must overlap to say "while"

_BANNED_OPENINGS = re.compile(
    r"^(the audio|this audio|this clip|the clip|this is|there is|there are|you can hear|"
    r"in this audio|we can hear|it is)\b[^a-z]*(contains|features|has|includes|of)?\s*",
    re.IGNORECASE,
)


def _adverbs(e: dict) -> str:
    words = []
    if e["level_db"] >= LOUD_DB and e["kind"] == "sound":
        words.append("loudly")
    elif e["level_db"] <= FAINT_DB:
        words.append("faintly")
    if e["impulsive"]:
        words.append("twice" if e["count"] == 2 else "repeatedly")
    return (" " + " and ".join(words)) if words else ""


def _clause(e: dict) -> str:
    return f"{e['subject']} {e['verb']}{_adverbs(e)}"


def _gerund(e: dict) -> str:
    return f"{e['subject']} {e['gerund']}{_adverbs(e)}"


def _overlaps(a: dict, b: dict) -> bool:
    inter = min(a["offset"], b["offset"]) - max(a["onset"], b["onset"])
    shorter = max(0.01, min(a["offset"] - a["onset"], b["offset"] - b["onset"]))
    return inter / shorter >= OVERLAP


def sentence(events: Sequence[dict], attempt: int = 0) -> str:
    """Join events (in onset order) into one sentence; attempts vary the wording."""
    if not events:
        return ""
    parts = [_clause(events[0])]
    for k in range(1, len(events)):
        e = events[k]
        if any(_overlaps(e, prev) for prev in events[:k]):
            conj = ("while", "as")[(k + attempt) % 2]
            parts.append(f" {conj} {_clause(e)}")
        elif k == len(events) - 1:
            parts.append(f", followed by {_gerund(e)}" if attempt % 2 == 0
                         else f" and then {_clause(e)}")
        else:
            parts.append(f", then {_clause(e)}")
    text = "".join(parts)
    return text[0].upper() + text[1:]


# "A dog barks from 0.0 s to 4.3 s." : the built-in asker's first answer, one per event.
# "A dog barks from 0.5 s to 3.0 s, twice." (the built-in asker's answer 1 sentences)
_TIMED = re.compile(r"([^.]+?) from (\d+(?:\.\d+)?) s to (\d+(?:\.\d+)?) s(?:, ([a-z0-9 ]+))?\.")


def _repetition(times: str) -> str:
    """The answer's count as the evidence path words it: "twice", else "repeatedly"."""
    times = times.strip()
    return "" if times in ("", "once") else " twice" if times == "twice" else " repeatedly"


def _from_text(answer: str) -> str:
    """A caption from the sound answer's text alone (answers of other askers, or the
    built-in asker's answers read back through a server)."""
    timed = [(float(a), float(b), clause.strip() + _repetition(times))
             for clause, a, b, times in _TIMED.findall(answer)]
    if timed:
        timed = sorted(timed, key=lambda t: t[0])[:MAX_SOURCES]
        text = timed[0][2]
        for k in range(1, len(timed)):
            onset, offset, clause = timed[k]
            clause = clause[:1].lower() + clause[1:]
            overlap = any(_overlaps({"onset": onset, "offset": offset}, {"onset": a, "offset": b})
                          for a, b, _ in timed[:k])
            text += f" while {clause}" if overlap else f", then {clause}"
        return text[:1].upper() + text[1:]
    first = re.split(r"(?<=[.!?])\s+", answer.strip(), maxsplit=1)[0]
    first = _BANNED_OPENINGS.sub("", first).strip().rstrip(".!")
    first = re.sub(r"^(is|are)\s+(an? (recording|sound|clip) of\s+)?", "", first, flags=re.IGNORECASE)
    if re.fullmatch(r"(nearly |almost |mostly )?silen(t|ce)", first, flags=re.IGNORECASE):
        return "Silence"
    return first[:1].upper() + first[1:]


class BuiltinWriter:
    model_id = "builtin-writer-1"

    def write(self, clips: Sequence[Clip], answers: Sequence[Answers], attempt: int) -> list[str]:
        return [self._one(a, attempt) for a in answers]

    def _one(self, answers: Answers, attempt: int) -> str:
        events = answers.evidence.get("events")
        if events is None:
            return _from_text(answers.texts[0])
        if not events:
            quiet = answers.evidence.get("level_db", 0) < -60
            return "Silence" if quiet else "Faint background noise with no clear sound source"
        # Attempt 0 names the strongest sources; each retry drops the weakest one.
        keep = max(1, MAX_SOURCES - attempt)
        strongest = sorted(events, key=lambda e: -e["score"])[:keep]
        ordered = sorted(strongest, key=lambda e: e["onset"])
        return sentence(ordered, attempt)
