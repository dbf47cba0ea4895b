"""Words for sound classes: who makes the sound and what it does (data/lexicon.tsv).

A hand-written table because caption style needs a subject and a verb ("a dog barks"),
which no ontology provides. Classes outside the table fall back to a neutral phrase.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

IGNORE = "-"
SPEECH, SINGING, MUSIC = "@speech", "@singing", "@music"


@dataclass(frozen=True)
class Phrase:
    subject: str  # "a dog"; IGNORE or a special "@..." marker
    verb: str  # third person present, agreeing with the subject: "barks", "clap"
    gerund: str  # "barking"

    def clause(self) -> str:
        return f"{self.subject} {self.verb}"

    def gerund_phrase(self) -> str:
        return f"{self.subject} {self.gerund}"


def gerund(verb_phrase: str) -> str:
    """'barks loudly' -> 'barking loudly' (regular English spelling rules)."""
    head, _, rest = verb_phrase.partition(" ")
    if head in ("is", "are"):
        return "being " + rest if rest else "being"
    w = head
    if w.endswith("ies") and len(w) > 4:
        w = w[:-3] + "y"
    elif re.search(r"(ss|sh|ch|x|z)es$", w):
        w = w[:-2]
    elif w.endswith("s") and not w.endswith("ss"):
        w = w[:-1]
    if w.endswith("ie"):
        w = w[:-2] + "y"
    elif w.endswith("e") and not w.endswith(("ee", "ye", "oe")) and len(w) > 2:
        w = w[:-1]
    ing = w + "ing"
    return f"{ing} {rest}".strip()


@cache
def table() -> dict[str, Phrase]:
    text = files("sonicaps").joinpath("data/lexicon.tsv").read_text(encoding="utf-8")
    out: dict[str, Phrase] = {}
    for n, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.startswith("#"):
            continue
        cols = line.split("\t")
        if len(cols) not in (3, 4):
            raise ValueError(f"lexicon.tsv line {n}: expected 3 or 4 tab-separated columns")
        label, subject, verb = cols[:3]
        ger = cols[3] if len(cols) == 4 else gerund(verb) if verb != IGNORE else IGNORE
        out[label] = Phrase(subject, verb, ger)
    return out


def phrase_for(label: str) -> Phrase:
    """The phrase for a class; unknown classes read as '<label> sounds'."""
    p = table().get(label)
    if p is not None:
        return p
    name = label.split(",")[0].split("(")[0].strip().lower()
    return Phrase(f"a {name} sound", "is heard", "being heard")


def short_name(label: str) -> str:
    """'Violin, fiddle' -> 'violin'; 'Keyboard (musical)' -> 'keyboard'."""
    return label.split(",")[0].split("(")[0].strip().lower()
