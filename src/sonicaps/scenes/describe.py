"""Reference captions from a scene's timeline, following the AudioCaps annotation guidelines.

One sentence, present tense, every source named once, temporal connectives in the true
order ("followed by", "then", "before" for sequences; "while", "as" for overlaps),
distance, loudness and repetition words only when the timeline makes them true, gender
for voices, never what is said. Five captions per scene vary the wording the way five
annotators would.
"""

from __future__ import annotations

import numpy as np

from sonicaps.scenes.catalog import classes
from sonicaps.scenes.design import Event, Scene

OVERLAP_TOLERANCE_S = 0.25  # b starting this close to a's end still reads as "after"
FAR = ("in the distance", "faintly", "from far away")
NEAR = ("loudly", "nearby", "close by")
MANY = ("repeatedly", "several times", "multiple times")


def _pick(rng: np.random.Generator, items):
    return items[int(rng.integers(len(items)))]


def _phrase(rng: np.random.Generator, ev: Event, kind: str) -> str:
    options = getattr(classes()[ev.cls], kind)
    if ev.level != "near":  # "a loud explosion" must not be said of a distant one
        options = [p for p in options if "loud" not in p] or list(options)
    text = options[0] if ev.repeats == 2 else _pick(rng, options)
    text = text.replace("{detail}", ev.detail or "the ground")
    if ev.repeats == 2:
        text += " twice"
    elif ev.repeats > 2:
        text += " " + _pick(rng, MANY)
    if ev.level == "far":
        text += " " + _pick(rng, FAR)
    elif ev.level == "near" and "loud" not in text:
        text += " " + _pick(rng, NEAR)
    return text


def _sequential(a: Event, b: Event) -> bool:
    return b.onset >= a.offset - OVERLAP_TOLERANCE_S


def _joined(rng: np.random.Generator, events: list[Event]) -> tuple[str, bool]:
    """The foreground sources in onset order, as clauses or (one time in four) noun phrases."""
    if rng.random() < 0.25:  # "A dog barking followed by a man speaking": common in AudioCaps
        text = _phrase(rng, events[0], "noun")
        for a, b in zip(events, events[1:], strict=False):
            link = " followed by " if _sequential(a, b) else _pick(rng, (" and ", " with "))
            text += link + _phrase(rng, b, "noun")
        return text, True
    text = _phrase(rng, events[0], "clause")
    used: set[str] = set()
    for a, b in zip(events, events[1:], strict=False):
        if _sequential(a, b) and rng.random() < 0.3:
            link, kind = ", followed by ", "noun"
        else:
            links = (", then ", " and then ", " before ") if _sequential(a, b) else (
                " while ", " as ", " and ")
            link, kind = _pick(rng, [x for x in links if x not in used] or links), "clause"
        used.add(link)
        text += link + _phrase(rng, b, kind)
    return text, False


def _with_background(rng: np.random.Generator, bg: Event, text: str, noun: bool) -> str:
    form = int(rng.integers(3 if noun else 5))  # "rain falls as <noun phrase>" is not English
    if form == 0:
        return f"{text} with {_phrase(rng, bg, 'noun')} in the background"
    if form == 1:
        return f"{text} over the sound of {_phrase(rng, bg, 'noun')}"
    if form == 2:
        return f"amid {_phrase(rng, bg, 'noun')}, {text}"
    link = ("as", "while")[form - 3]
    if f" {link} " in text:  # never "while ... while"
        link = "as" if link == "while" else "while"
    return f"{_phrase(rng, bg, 'clause')} {link} {text}"


def caption(rng: np.random.Generator, scene: Scene) -> str:
    bg = [e for e in scene.events if e.role == "background"]
    fg = [e for e in scene.events if e.role != "background"]
    if not fg:
        text = _phrase(rng, bg[0], _pick(rng, ("clause", "noun")))
    else:
        text, noun = _joined(rng, fg)
        if bg:
            text = _with_background(rng, bg[0], text, noun)
    return text[0].upper() + text[1:]


def describe(scene: Scene, rng: np.random.Generator, n: int = 5) -> list[str]:
    """n captions, distinct where the grammar allows."""
    out: list[str] = []
    for _ in range(20 * n):
        c = caption(rng, scene)
        if c not in out:
            out.append(c)
        if len(out) == n:
            return out
    while len(out) < n:  # a one-source scene may have fewer than n wordings
        out.append(out[len(out) % max(len(out), 1)])
    return out
