"""AudioCaps-style caption corpora for parity tests and the metrics benchmark.

Captions are built from sound-scene phrases with the quirks real caption sets have:
capitals, commas and full stops, clitics ("it's", "don't", "can't"), possessives, numbers,
hyphenated words, parentheses, unicode quotes, repeated words, and a few empty or
punctuation-only captions. Candidates share phrases with their references so that every
metric lands between its extremes.
"""

from __future__ import annotations

import random

SUBJECTS = [
    "a dog", "dogs", "a man", "a woman", "a small child", "people", "a crowd", "birds", "a bird",
    "a cat", "an engine", "a car", "cars", "a truck", "a train", "a motorcycle", "the wind", "rain",
    "water", "a baby", "a sheep", "a goat", "chickens", "a rooster", "a duck", "a helicopter",
    "an airplane", "a jet", "a bell", "a clock", "an alarm", "a phone", "a vehicle", "a horse",
    "a frog", "insects", "bees", "a cow", "pigeons", "a siren", "a drill", "a toilet", "a sink",
]
VERBS = [
    "barks", "bark", "speaks", "talks", "laughs", "cries", "chirp", "chirps", "meows", "idles",
    "revs", "passes by", "honks", "blows", "falls", "runs", "splashes", "bleats", "crows", "quacks",
    "hums", "buzzes", "rings", "ticks", "beeps", "whistles", "moos", "croaks", "coos", "wails",
    "flushes", "drips", "accelerates", "roars", "sings", "screams", "whispers", "giggles",
]
ADVERBS = [
    "loudly", "softly", "in the distance", "nearby", "repeatedly", "twice", "three times",
    "continuously", "quickly", "slowly", "over and over", "in the background", "outside",
    "at high speed", "for a while", "intermittently", "then stops", "while moving away",
]
JOINERS = [", ", " and ", " while ", " as ", " then ", ", followed by ", " before ", " after ",
           ". ", " with ", ", and then "]
QUIRKS = [
    "it's raining", "there's a lot of noise", "someone's dog barks", "a man's voice", "don't stop",
    "can't hear", "the wind won't stop", "they're talking", "we'll see", "i'm here", "you've got",
    "5 gunshots", "2 men talk", "10 seconds of silence", "a 3.5-second beep", "beep-beep",
    "high-pitched whine", "a man (speaking)", "a car [distant]", "{static}", "“quoted” speech",
    "‘single’ quotes", "a dog’s bark", "o'clock", "u.s. police siren", "50% louder", "rock & roll",
    "on/off switch", "tick-tock", "a--dash", "well... okay", "what?!", "wow!", "yes; no", "a: b",
    "TV plays", "CAPITAL LETTERS", "McDonald's drive-thru", "cannot", "gonna", "wanna",
    "the man said \"hello\"", "`backtick`", "a 1950s car", "#1 hit", "$5 bill", "e-mail ding",
    "ok - fine", "wind-blown", "mid-1990s", "rain , rain", "rain rain rain rain",
]
FILLERS = ["", "", "", "", " ", ".", "!!!", "...", " , ", "-", "( )", "?"]


def caption(rng: random.Random, quirk_rate: float = 0.25) -> str:
    parts = []
    for _ in range(rng.choice([1, 1, 2, 2, 3])):
        part = f"{rng.choice(SUBJECTS)} {rng.choice(VERBS)}"
        if rng.random() < 0.6:
            part += f" {rng.choice(ADVERBS)}"
        if rng.random() < quirk_rate:
            part += f" {rng.choice(QUIRKS)}"
        parts.append(part)
    text = parts[0]
    for part in parts[1:]:
        text += rng.choice(JOINERS) + part
    if rng.random() < 0.7:
        text = text[0].upper() + text[1:]
    if rng.random() < 0.5:
        text += "."
    if rng.random() < 0.05:
        text = text.upper()
    return text


def variant(rng: random.Random, text: str) -> str:
    """A candidate that shares some words with a reference: drop, swap and replace a few."""
    words = text.split()
    out = []
    for word in words:
        r = rng.random()
        if r < 0.1:
            continue
        if r < 0.2:
            out.append(rng.choice(VERBS + ADVERBS[:4]))
        else:
            out.append(word)
        if rng.random() < 0.05:
            out.append(word)
    return " ".join(out)


def corpus(n: int, seed: int = 0, refs_per_item: int = 5) -> tuple[list[str], list[list[str]]]:
    """n candidates with refs_per_item references each (AudioCaps test: 5)."""
    rng = random.Random(seed)
    candidates, references = [], []
    for _ in range(n):
        refs = [caption(rng) for _ in range(refs_per_item)]
        r = rng.random()
        if r < 0.03:
            cand = rng.choice(FILLERS)
        elif r < 0.5:
            cand = variant(rng, rng.choice(refs))
        elif r < 0.55:
            cand = rng.choice(refs)
        else:
            cand = caption(rng)
        if rng.random() < 0.02:
            refs[rng.randrange(len(refs))] = rng.choice(FILLERS)
        candidates.append(cand)
        references.append(refs)
    return candidates, references
