"""METEOR 1.5 as pycocoevalcap 1.2 runs it (`meteor-1.5.jar - - -stdio -l en -norm`), without Java.

A port of the jar's code paths that these options reach, down to the details that decide
the numbers:

- Input: pycocoevalcap drops "|||" from the candidate and turns each pair of spaces into
  one (a single pass); the jar splits the SCORE line on "|||", so a reference holding
  "|||" becomes two, and trims each part (Java trim: chars <= U+0020).
- `-norm`: edu.cmu.meteor.util.Normalizer (Moses-style punctuation splitting, quote and
  dash folding, contractions split English-style, nonbreaking prefixes), then lowercase,
  then java.util.StringTokenizer (space, tab, CR, LF, FF only).
- Matching, in module order exact, stem, synonym, paraphrase. Words are compared by Java
  String.hashCode (so a hash collision counts as an exact match). Stems come from the
  Snowball English stemmer bundled in the jar, which predates the Snowball release on
  PyPI (that one stems 205 of the 174 k resource words differently), so it is ported
  here. Synonyms: the word's WordNet synsets, plus those of its base forms (exception
  list, else a suffix-stripping `morph`). Paraphrases: table entries (phrase ->
  paraphrase) searched from the reference side, then from the candidate side.
- Alignment: matches covering words that nothing else covers are fixed; the rest go
  through edu.cmu.meteor.aligner.Aligner's beam search (beam 40) with its quirks: the
  search weighs exact matches 1 and others 0.5 but keeps the running totals in ints, so a
  one-word stem/synonym match adds nothing; ties go to fewer chunks, then to a smaller
  "distance" that the jar adds to the parent path rather than the new one; sorting is
  stable (Collections.sort).
- Score: the "rank" task parameters for English (alpha 0.85, beta 0.2, gamma 0.6,
  delta 0.75; module weights 1, 0.6, 0.8, 0.6), function words weighted by 1 - delta.
  With several references the first one with the strictly highest score wins. The corpus
  score recomputes the formula on summed statistics, where a candidate that matches its
  reference entirely in one chunk adds no chunk.
"""

from __future__ import annotations

import contextlib
import logging
import math
import multiprocessing
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from sonicaps.metrics import parallel
from sonicaps.metrics.meteor_data import (
    NBP_ANY,
    NBP_NUMERIC_ONLY,
    MeteorResources,
    SortedWords,
    java_tokens,
    load_resources,
)

try:  # the aligner in C (_align.pyx); absent when sonicaps was installed without a compiler
    from sonicaps.metrics._align import align as _compiled_align
except ImportError:
    _compiled_align = None

log = logging.getLogger(__name__)

# Parameters of the default ("rank") task for English: alpha, beta, gamma, delta.
ALPHA, BETA, GAMMA, DELTA = 0.85, 0.20, 0.60, 0.75
# Module weights in the score, in module order: exact, stem, synonym, paraphrase.
MODULE_WEIGHTS = (1.0, 0.6, 0.8, 0.6)
# Module ids, which index the per-module statistics.
EXACT, STEM, SYNONYM, PARAPHRASE = range(4)
N_MODULES = 4
# Partial alignments the aligner keeps per step (Constants.DEFAULT_BEAM_SIZE).
BEAM_SIZE = 40
# Items scored per block: bounds the per-text caches on very large corpora.
BLOCK_ITEMS = 20000

# --- Normalizer (edu.cmu.meteor.util.Normalizer, English, punctuation kept) ---------------

# Letters the normalizer knows (Latin-1, Latin Extended-A, Cyrillic, phonetic extensions).
_ALPHA = ("A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e"
          "\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f")
_ALNUM = "0-9" + _ALPHA
# Java's \s: space, tab, LF, VT, FF, CR.
_SEP_OTHER = re.compile(f"([^{_ALNUM} \t\n\x0b\f\r.'`,\\-\u2018\u2019])")
_MULTI_DOT = re.compile(r"\.([.]+)")
_MULTI_DOT2 = re.compile(r"DOTMULTI\.([^.])")
_COMMAS = (re.compile(r"([^0-9]),([^0-9])"), re.compile(r"([0-9]),([^0-9])"),
           re.compile(r"([^0-9]),([0-9])"))
_QUOTE = re.compile("[`\u2018\u2019]")
_QUOTE2 = re.compile("[\u201c\u201d]|''")
_RM_DASH = re.compile(f"([{_ALNUM}.])-([{_ALNUM}])")
_CONTRACTIONS = (
    (re.compile(f"([^{_ALPHA}])'([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([^{_ALPHA}0-9])'([{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])'([^{_ALPHA}])"), r"\1 ' \2"),
    (re.compile(f"([{_ALPHA}])'([{_ALPHA}])"), r"\1 '\2"),
    (re.compile(r"([0-9])'(s)"), r"\1 '\2"),
)
_NBP_LETTER = re.compile(f"[{_ALPHA}]")
_WHITE = re.compile("[ \u2000-\u200a\u202f\u205f\u3000\u00a0]+")
# String.trim() removes every char <= U+0020.
_JAVA_SPACE = "".join(map(chr, range(33)))
# Already normalized text: normalizing only collapses its spaces.
_PLAIN = re.compile("[a-z0-9 ]*")
# Printable ASCII words separated by single spaces (what PTB tokenization gives) ...
_SPACED_ASCII = re.compile("[!-~]+(?: [!-~]+)*")
# ... normalize word by word unless a word ends with one of these: only there can the
# normalizer's patterns reach across a space (they consume the space after ' ` , . and
# look at the word after a final "."), so only there does a word's neighbour matter.
_LINKING_ENDS = frozenset(",'`.")
# Supplementary characters, which Java strings hold as two UTF-16 units.
_ASTRAL = re.compile("[\U00010000-\U0010ffff]")


def normalize(line: str, nonbreaking: dict[str, int]) -> str:
    """Normalizer.normalizeLine(line, LANG_EN, keepPunctuation=true)."""
    s = _SEP_OTHER.sub(r" \1 ", f" {line} ")
    s = _MULTI_DOT.sub(r" DOTMULTI\1", s)
    while "DOTMULTI." in s:
        s = _MULTI_DOT2.sub(r"DOTDOTMULTI \1", s).replace("DOTMULTI.", "DOTDOTMULTI")
    for pattern in _COMMAS:
        s = pattern.sub(r"\1 , \2", s)
    s = _QUOTE2.sub(' " ', _QUOTE.sub("'", s))
    s = s.replace("\u2013", "-").replace("--", "-")
    s = _RM_DASH.sub(r"\1 \2", s)
    for pattern, repl in _CONTRACTIONS:
        s = pattern.sub(repl, s)
    words = java_tokens(s)
    out = []
    for i, word in enumerate(words):
        if len(word) > 1 and word.endswith("."):
            pre = word[:-1]
            kind = nonbreaking.get(pre)
            following = words[i + 1][:1] if i + 1 < len(words) else ""
            if "." in pre and _NBP_LETTER.search(pre):
                word = word.replace(".", "")  # U.S. -> US
            elif not (kind == NBP_ANY or "a" <= following <= "z"
                      or (kind == NBP_NUMERIC_ONLY and "0" <= following <= "9")):
                word = pre + " ."
        out.append(word)
    s = " ".join(out) + " "
    while "DOTDOTMULTI" in s:
        s = s.replace("DOTDOTMULTI", "DOTMULTI.")
    s = s.replace("DOTMULTI", ".")
    return _WHITE.sub(" ", s).strip(_JAVA_SPACE)


def _utf16(word: str) -> str:
    """The word as Java sees it: supplementary characters as two surrogate units, so that
    lengths, the stemmer and String.hashCode agree with the jar."""
    if word.isascii() or not _ASTRAL.search(word):
        return word

    def pair(m: re.Match) -> str:
        c = ord(m.group()) - 0x10000
        return chr(0xD800 + (c >> 10)) + chr(0xDC00 + (c & 0x3FF))

    return _ASTRAL.sub(pair, word)


def java_hash(word: str) -> int:
    """String.hashCode of a word in UTF-16 units (see _utf16)."""
    h = 0
    for c in word:
        h = (31 * h + ord(c)) & 0xFFFFFFFF
    return h


# --- Snowball English stemmer, as org.tartarus.snowball.ext.englishStemmer in the jar -----

_V = frozenset("aeiouy")
_V_WXY = _V | frozenset("wxY")
_VALID_LI = frozenset("cdeghkmnrt")
_REGION_PREFIXES = ("gener", "commun", "arsen")
_EXCEPTION1 = {"skis": "ski", "skies": "sky", "dying": "die", "lying": "lie", "tying": "tie",
               "idly": "idl", "gently": "gentl", "ugly": "ugli", "early": "earli", "only": "onli",
               "singly": "singl", "sky": "sky", "news": "news", "howe": "howe", "atlas": "atlas",
               "cosmos": "cosmos", "bias": "bias", "andes": "andes"}
_EXCEPTION2 = frozenset(("inning", "outing", "canning", "herring", "earring", "proceed", "exceed",
                         "succeed"))
_STEP1A = ("sses", "ied", "ies", "us", "ss", "s")
_STEP1B = ("eedly", "ingly", "edly", "eed", "ing", "ed")
_DOUBLES = frozenset(("bb", "dd", "ff", "gg", "mm", "nn", "pp", "rr", "tt"))
# Suffix -> replacement, longest suffix first (Snowball `among` picks the longest match).
_STEP2 = sorted({"tional": "tion", "enci": "ence", "anci": "ance", "abli": "able", "entli": "ent",
                 "izer": "ize", "ization": "ize", "ational": "ate", "ation": "ate", "ator": "ate",
                 "alism": "al", "aliti": "al", "alli": "al", "fulness": "ful", "ousli": "ous",
                 "ousness": "ous", "iveness": "ive", "iviti": "ive", "biliti": "ble", "bli": "ble",
                 "ogi": "og", "fulli": "ful", "lessli": "less", "li": ""}.items(), key=lambda kv: -len(kv[0]))
_STEP3 = sorted({"tional": "tion", "ational": "ate", "alize": "al", "icate": "ic", "iciti": "ic",
                 "ical": "ic", "ful": "", "ness": "", "ative": ""}.items(), key=lambda kv: -len(kv[0]))
_STEP4 = sorted(("al", "ance", "ence", "er", "ic", "able", "ible", "ant", "ement", "ment", "ent", "ism",
                 "ate", "iti", "ous", "ive", "ize", "ion"), key=len, reverse=True)


def _ends_short_syllable(w: str, end: int) -> bool:
    if end >= 3 and w[end - 1] not in _V_WXY and w[end - 2] in _V and w[end - 3] not in _V:
        return True
    return end == 2 and w[1] not in _V and w[0] in _V


def _regions(w: str) -> tuple[int, int]:
    n = len(w)

    def after_vowel_consonant(i: int) -> int | None:
        while i < n and w[i] not in _V:
            i += 1
        while i < n and w[i] in _V:
            i += 1
        return i + 1 if i < n else None

    p1 = next((len(p) for p in _REGION_PREFIXES if w.startswith(p)), None)
    if p1 is None:
        p1 = after_vowel_consonant(0)
        if p1 is None:
            return n, n
    p2 = after_vowel_consonant(p1)
    return p1, n if p2 is None else p2


def stem(word: str) -> str:
    """Porter2 ("english") as of the Snowball snapshot bundled in meteor-1.5.jar."""
    if word in _EXCEPTION1:
        return _EXCEPTION1[word]
    if len(word) < 3:
        return word
    w = list(word[1:] if word[0] == "'" else word)
    y_found = False
    for i, c in enumerate(w):
        if c == "y" and (i == 0 or w[i - 1] in _V):
            w[i], y_found = "Y", True
    w = "".join(w)
    p1, p2 = _regions(w)
    for suffix in ("'s'", "'s", "'"):
        if w.endswith(suffix):
            w = w[:-len(suffix)]
            break
    suffix = next((s for s in _STEP1A if w.endswith(s)), None)
    if suffix == "sses":
        w = w[:-2]
    elif suffix in ("ied", "ies"):
        w = w[:-3] + ("i" if len(w) > 4 else "ie")
    elif suffix == "s" and any(c in _V for c in w[:-2]):
        w = w[:-1]
    if w not in _EXCEPTION2:
        w = _stem_steps(w, p1, p2)
    return w.replace("Y", "y") if y_found else w


def _stem_steps(w: str, p1: int, p2: int) -> str:
    suffix = next((s for s in _STEP1B if w.endswith(s)), None)
    if suffix in ("eed", "eedly"):
        if len(w) - len(suffix) >= p1:
            w = w[:-len(suffix)] + "ee"
    elif suffix is not None:
        base = w[:-len(suffix)]
        if any(c in _V for c in base):
            w = base
            if w.endswith(("at", "bl", "iz")):
                w += "e"
            elif w[-2:] in _DOUBLES:
                w = w[:-1]
            elif len(w) == p1 and _ends_short_syllable(w, len(w)):
                w += "e"
    if len(w) >= 3 and w[-1] in "yY" and w[-2] not in _V:
        w = w[:-1] + "i"
    for suffix, repl in _STEP2:
        if w.endswith(suffix):
            start = len(w) - len(suffix)
            if start >= p1:
                if suffix == "ogi":
                    if w[start - 1:start] == "l":
                        w = w[:start] + repl
                elif suffix == "li":
                    if start >= 1 and w[start - 1] in _VALID_LI:
                        w = w[:start]
                else:
                    w = w[:start] + repl
            break
    for suffix, repl in _STEP3:
        if w.endswith(suffix):
            start = len(w) - len(suffix)
            if start >= p1 and (suffix != "ative" or start >= p2):
                w = w[:start] + repl
            break
    for suffix in _STEP4:
        if w.endswith(suffix):
            start = len(w) - len(suffix)
            if start >= p2 and (suffix != "ion" or w[start - 1:start] in ("s", "t")):
                w = w[:start]
            break
    if w.endswith("e"):
        start = len(w) - 1
        if start >= p2 or (start >= p1 and not _ends_short_syllable(w, start)):
            w = w[:start]
    elif w.endswith("l"):
        start = len(w) - 1
        if start >= p2 and w[start - 1:start] == "l":
            w = w[:start]
    return w


# WordNet morphology fallback (SynonymDictionary.morph): suffix -> replacement, in order.
_MORPH = (("s", ""), ("ses", "s"), ("xes", "x"), ("zes", "z"), ("ches", "ch"), ("shes", "sh"),
          ("men", "man"), ("ies", "y"), ("s", ""), ("ies", "y"), ("es", "e"), ("es", ""), ("ed", "e"),
          ("ed", ""), ("ing", "e"), ("ing", ""), ("er", ""), ("est", ""), ("er", "e"), ("est", "e"))


# --- Statistics and score -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MeteorStats:
    """METEOR's sufficient statistics (edu.cmu.meteor.scorer.MeteorStats, word mode) for
    one candidate against one reference, or summed over a corpus. Per-module tuples are
    in module order: exact, stem, synonym, paraphrase."""

    test_length: int
    ref_length: int
    test_function_words: int
    ref_function_words: int
    test_content: tuple[int, ...]
    ref_content: tuple[int, ...]
    test_function: tuple[int, ...]
    ref_function: tuple[int, ...]
    chunks: int
    test_word_matches: int
    ref_word_matches: int

    @property
    def score(self) -> float:
        """MeteorScorer.computeMetrics."""
        d = DELTA
        test_len = d * (self.test_length - self.test_function_words) + (1.0 - d) * self.test_function_words
        ref_len = d * (self.ref_length - self.ref_function_words) + (1.0 - d) * self.ref_function_words
        # Same operation order as the jar, so the doubles agree to the last bit.
        test_w = ref_w = 0.0
        for i, w in enumerate(MODULE_WEIGHTS):
            test_w += self.test_content[i] * w * d
            ref_w += self.ref_content[i] * w * d
        for i, w in enumerate(MODULE_WEIGHTS):
            test_w += self.test_function[i] * w * (1.0 - d)
            ref_w += self.ref_function[i] * w * (1.0 - d)
        precision, recall = _div(test_w, test_len), _div(ref_w, ref_len)
        f_mean = _div(1.0, _div(1.0 - ALPHA, precision) + _div(ALPHA, recall))
        if self._whole_match():
            frag = 0.0
        else:
            frag = _div(self.chunks, (self.test_word_matches + self.ref_word_matches) / 2)
        score = f_mean * (1.0 - GAMMA * math.pow(frag, BETA))
        return 0.0 if math.isnan(score) else max(score, 0.0)

    def _whole_match(self) -> bool:
        """Every word matched, in one chunk: no fragmentation penalty."""
        return (sum(self.test_content) + sum(self.test_function) == self.test_length
                and sum(self.ref_content) + sum(self.ref_function) == self.ref_length
                and self.chunks == 1)


def _div(a: float, b: float) -> float:
    """a / b with Java's IEEE semantics instead of ZeroDivisionError."""
    if b == 0.0:
        if a == 0.0 or math.isnan(a):
            return math.nan
        return math.copysign(math.inf, a) * math.copysign(1.0, b)
    return a / b


def aggregate(stats: Iterable[MeteorStats]) -> MeteorStats:
    """Corpus statistics as MeteorStats.addStats sums them: whole-match items add no chunk."""
    stats = list(stats)
    if not stats:
        raise ValueError("nothing to aggregate")

    def total(name: str) -> int:
        return sum(getattr(s, name) for s in stats)

    def per_module(name: str) -> tuple[int, ...]:
        return tuple(map(sum, zip(*(getattr(s, name) for s in stats), strict=True)))

    return MeteorStats(
        total("test_length"), total("ref_length"), total("test_function_words"), total("ref_function_words"),
        per_module("test_content"), per_module("ref_content"), per_module("test_function"),
        per_module("ref_function"), sum(s.chunks for s in stats if not s._whole_match()),
        total("test_word_matches"), total("ref_word_matches"),
    )


def corpus_score(stats: Iterable[MeteorStats]) -> float:
    """The jar's corpus METEOR: the formula on summed statistics (not a mean of items)."""
    return aggregate(stats).score


# --- Alignment ----------------------------------------------------------------------------

# A match: (ref start, ref length, test start, test length, module, search score,
#           ref word bits, test word bits, |ref start - test start|).
_Match = tuple[int, int, int, int, int, int, int, int, int]
# A partial alignment (PartialAlignment), mutated in place as in the jar:
# [-(matches1 + matches2), chunks, distance, idx, lastMatchEnd, test bits, ref bits, chosen].
_RANK = itemgetter(0, 1, 2)


def _match(start: int, length: int, mstart: int, mlength: int, module: int) -> _Match:
    # The search adds (int)(count * weight) with weight 1 for exact, 0.5 for the others.
    gain = mlength + length if module == EXACT else mlength // 2 + length // 2
    return (start, length, mstart, mlength, module, gain, ((1 << length) - 1) << start,
            ((1 << mlength) - 1) << mstart, abs(start - mstart))


def _word_match(j: int, i: int, module: int) -> _Match:
    """_match for one word on each side (exact, stem, synonym), the common case."""
    return (j, 1, i, 1, module, 2 if module == EXACT else 0, 1 << j, 1 << i, abs(j - i))


@dataclass(slots=True)
class _Sentence:
    """A normalized sentence with what the matchers need, computed once."""

    hashes: list[int]
    function: list[bool]
    stems: list[int]  # stem hashes
    synsets: list[tuple[int, frozenset[int]]]  # (position, synsets) for words that have some
    synset_ids: list[tuple[int, ...]]  # each word's synsets, sorted (for the compiled aligner)
    para_from: dict[tuple[str, ...], list[tuple[int, int, int]]]  # paraphrase -> (pos, len, record)
    para_at: list[tuple[tuple[str, ...], int]]  # (phrase, pos) for phrases that are some paraphrase
    # Lookups by value, needed on the candidate side of the Python aligner only (see lookups).
    by_hash: dict[int, list[int]] | None = None  # word hash -> positions
    by_stem: dict[int, list[int]] | None = None  # stem hash -> positions
    synset_pos: dict[int, list[int]] | None = None  # synset -> positions

    def lookups(self) -> _Sentence:
        if self.by_hash is None:
            self.by_hash, self.by_stem, self.synset_pos = {}, {}, {}
            for i, (h, s) in enumerate(zip(self.hashes, self.stems, strict=True)):
                self.by_hash.setdefault(h, []).append(i)
                self.by_stem.setdefault(s, []).append(i)
            for i, syn in self.synsets:
                for sid in syn:
                    self.synset_pos.setdefault(sid, []).append(i)
        return self


@dataclass(slots=True)
class _PhraseNode:
    """A node of the trie over the paraphrase table's phrases (both sides) in the corpus."""

    next: dict[str, _PhraseNode]  # next word -> node
    entries: list[tuple[int, tuple[str, ...]]]  # (record, paraphrase) for the phrase ending here
    target: tuple[str, ...] | None  # the phrase ending here, if it is some entry's paraphrase


def _resolve(stage: list[list[_Match]], fixed: list[_Match | None], test_bits: int,
             ref_bits: int) -> list[_Match | None]:
    """Aligner.resolve: beam search over the ambiguous matches, left to right in the
    reference. Returns the chosen match at each reference start position."""
    paths: list[list] = [[0, 0, 0, 0, -1, test_bits, ref_bits, None]]
    for current, matches in enumerate(stage):
        if len(paths) > 1:
            paths.sort(key=_RANK)
            del paths[BEAM_SIZE:]
        next_paths: list[list] = []
        keep = next_paths.append
        bit = 1 << current
        for path in paths:
            if path[6] & bit:
                if current < path[3]:
                    keep(path)  # inside a match
                elif (m := fixed[path[3]]) is not None:
                    path[0] -= m[5]
                    if path[4] != -1 and m[2] != path[4]:
                        path[1] += 1
                    path[3], path[4] = m[0] + m[1], m[2] + m[3]
                    path[2] += m[8]
                    keep(path)
            else:
                last = path[4]
                for m in matches:
                    if path[6] & m[6] or path[5] & m[7]:
                        continue
                    keep([path[0] - m[5], path[1] + 1 if last != -1 and m[2] != last else path[1], path[2],
                          m[0] + m[1], m[2] + m[3], path[5] | m[7], path[6] | m[6], (m, path[7])])
                    path[2] += m[8]  # the jar adds the distance to the parent path
                if last != -1:
                    path[1] += 1
                    path[4] = -1
                path[3] += 1
                keep(path)
        paths = next_paths or [paths[0]]
    # Complete paths: close the open chunk, best first.
    if len(paths) > 1:
        paths.sort(key=_RANK)
        del paths[BEAM_SIZE:]
    for path in paths:
        if path[4] != -1:
            path[1] += 1
    paths.sort(key=_RANK)
    chosen = list(fixed)
    node = paths[0][7]
    while node is not None:
        m, node = node
        chosen[m[0]] = m
    return chosen


class WordTable:
    """Every resource word's (hash, stem hash, synsets, function word, sorted synsets),
    computed once per machine and kept beside the METEOR index: stemming and the synonym
    lookups cost ~0.1 ms a word, which dominated corpora with wide vocabularies. Words
    outside the resources (and words outside the Basic Multilingual Plane) are computed as
    they come."""

    VERSION = 1

    def __init__(self, folder: Path):
        def load(name: str) -> np.ndarray:
            return np.asarray(np.load(folder / f"{name}.npy", mmap_mode="r"))

        self.words = SortedWords(load("words"))
        self.hash, self.stem_hash, self.function = load("hash"), load("stem_hash"), load("function")
        self.syn_off, self.syn = load("syn_off"), load("syn")

    def fill(self, words: set[str], into: dict[str, tuple]) -> list[str]:
        """Put the table's entries for these words into `into`; the words it lacks."""
        order = list(words)
        pos = self.words.find(order).tolist()
        found = [i for i in pos if i >= 0]
        if found:
            idx = np.array(found)
            hashes, stems = self.hash[idx].tolist(), self.stem_hash[idx].tolist()
            function = self.function[idx].tolist()
            lo, hi = self.syn_off[idx].tolist(), self.syn_off[idx + 1].tolist()
            syn = self.syn[int(min(lo)):int(max(hi))].tolist()
            base = int(min(lo))
            k = 0
            for word, i in zip(order, pos, strict=True):
                if i >= 0:
                    ids = tuple(syn[lo[k] - base:hi[k] - base])
                    into[word] = (hashes[k], stems[k], frozenset(ids), function[k], ids)
                    k += 1
        return [w for w, i in zip(order, pos, strict=True) if i < 0]


def word_table(res: MeteorResources) -> WordTable:
    """The table beside this index, built on first use."""
    folder = res.paraphrases.folder / f"words-v{WordTable.VERSION}"
    table = _tables.get(folder)
    if table is None:
        if not (folder / "syn.npy").exists():
            _build_word_table(res, folder)
        table = _tables[folder] = WordTable(folder)
    return table


_tables: dict[Path, WordTable] = {}


def _build_word_table(res: MeteorResources, folder: Path) -> None:
    """The resource words (paraphrase vocabulary, synonym words, WordNet exceptions), each
    prepared as MeteorScorer._word does; built in a private folder, then renamed."""
    log.info("METEOR: preparing the resource words once (about a minute)")
    words = {w.decode("utf-8") for w in res.paraphrases.vocab.tolist()}
    words.update(w.decode("utf-8") for w in res.syn_words.words.tolist())
    words.update(res.exceptions)
    # In UTF-8 order, the order SortedWords searches.
    words = sorted((w for w in words if w and all(ord(c) <= 0xFFFF for c in w)), key=lambda w: w.encode())
    scorer = MeteorScorer.__new__(MeteorScorer)  # the per-word code path, without a table
    scorer.res, scorer._words = res, {}
    res.look_up_synsets(scorer._synset_queries(words))
    infos = [scorer._word(w) for w in words]
    encoded = [w.encode() for w in words]
    syn_lens = [len(info[4]) for info in infos]
    arrays = {
        "words": np.array(encoded, dtype=f"S{max(map(len, encoded))}"),
        "hash": np.array([info[0] for info in infos], dtype=np.int64),
        "stem_hash": np.array([info[1] for info in infos], dtype=np.int64),
        "function": np.array([info[3] for info in infos], dtype=bool),
        "syn_off": np.concatenate(([0], np.cumsum(syn_lens))).astype(np.int64),
        "syn": np.array([x for info in infos for x in info[4]], dtype=np.int64),
    }
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=".words-"))
    try:
        for name, array in arrays.items():
            np.save(tmp / f"{name}.npy", array)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / "syn.npy").exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


class MeteorScorer:
    """Scores candidates against references like the jar, with caches for repeated use.

    Call `prepare` once with every text that will be scored (`meteor` does this for its
    corpus): it loads the paraphrase entries for their words, and each later call that
    brings new words queries the index again. `item_stats` then gives the statistics of
    the best reference for one candidate, and `corpus_score` combines any selection of
    them, e.g. for a human upper bound over reference subsets.
    """

    def __init__(self, resources: MeteorResources | None = None):
        self.res = resources if resources is not None else load_resources()
        if _compiled_align is None:
            log.warning("METEOR's compiled aligner is not built (sonicaps was installed without a C "
                        "compiler): aligning in Python, about twice as slow")
        # word -> (hash, stem hash, synsets, function word, sorted synsets)
        self._words: dict[str, tuple] = {}
        self._table = word_table(self.res)
        self._tokens: dict[str, list[str]] = {}
        self._word_tokens: dict[str, list[str]] = {}
        self._vocab: set[str] = set()
        self._phrases: dict[str, _PhraseNode] = {}  # trie of paraphrase phrases, by first word

    def tokens(self, text: str) -> list[str]:
        """The words the jar aligns: normalized, lowercased, split, in UTF-16 units."""
        toks = self._tokens.get(text)
        if toks is None:
            words = text.split(" ")
            if _PLAIN.fullmatch(text):
                toks = [w for w in words if w]
            elif _SPACED_ASCII.fullmatch(text) and not any(w[-1] in _LINKING_ENDS for w in words):
                toks = [t for w in words for t in self._normalized_word(w)]
            else:
                toks = self._normalized(text)
            self._tokens[text] = toks
        return toks

    def _normalized(self, text: str) -> list[str]:
        return [_utf16(w) for w in java_tokens(normalize(text, self.res.nonbreaking).lower())]

    def _normalized_word(self, word: str) -> list[str]:
        """One word's share of a normalized line (see _LINKING_ENDS), memoized: corpora
        repeat their words far more than their sentences."""
        toks = self._word_tokens.get(word)
        if toks is None:
            toks = self._word_tokens[word] = self._normalized(word)
        return toks

    def prepare(self, texts: Iterable[str]) -> None:
        """Tokenize these texts, look up their new words (stems, synsets), and load the
        paraphrase entries whose words all occur in them."""
        new = {w for text in texts for w in self.tokens(text)} - self._vocab
        if not new:
            return
        self._vocab |= new
        rest = self._table.fill(new, self._words)
        self.res.look_up_synsets(self._synset_queries(rest))
        for word in rest:
            self._word(word)
        para: dict[tuple[str, ...], list[tuple[int, tuple[str, ...]]]] = {}
        for record, phrase, paraphrase in self.res.paraphrases.entries_within(self._vocab):
            para.setdefault(phrase, []).append((record, paraphrase))
        targets = {p for entries in para.values() for _, p in entries}
        self._phrases = {}
        for phrase in (*para, *targets):
            level = self._phrases
            for w in phrase:
                node = level.get(w)
                if node is None:
                    node = level[w] = _PhraseNode({}, [], None)
                level = node.next
            node.entries = para.get(phrase, [])
            node.target = phrase if phrase in targets else None

    def item_stats(self, candidate: str, references: Sequence[str]) -> MeteorStats:
        """Statistics against the best reference, as one pycocoevalcap SCORE line gives them."""
        test, refs = _score_line(candidate, references)
        self.prepare([test, *refs])
        return self._best(test, refs)

    def forget_texts(self) -> None:
        """Drop the per-text token caches (words, resources and paraphrases stay loaded)."""
        self._tokens.clear()
        self._word_tokens.clear()

    def _best(self, test: str, refs: list[str]) -> MeteorStats:
        """MeteorScorer.getMeteorStats(test, references): the first best-scoring reference."""
        t = self._sentence(self.tokens(test))
        best, best_score = None, -1.0
        for ref in refs:
            stats = self._align(t, self._sentence(self.tokens(ref)))
            if (score := stats.score) > best_score:
                best, best_score = stats, score
        return best

    def _word(self, word: str) -> tuple:
        info = self._words.get(word)
        if info is None:
            synsets = self._synsets(word)
            info = self._words[word] = (java_hash(word), java_hash(stem(word)), synsets,
                                        word.lower() in self.res.function_words, tuple(sorted(synsets)))
        return info

    def _synsets(self, word: str) -> frozenset[int]:
        """SynonymDictionary.getSynSets + getStemSynSets."""
        res = self.res
        bases = res.exceptions.get(word)
        if bases is None:
            bases = [self._morph(word)]
        ids = [res.synset_ids(w) for w in (word, *bases)]
        return frozenset(int(i) for s in ids if s for i in java_tokens(s))

    def _morph(self, word: str) -> str:
        if word.endswith("ss") or len(word) <= 2:
            return word
        # The jar strips "ful" into a base it then overwrites, but still appends "ful".
        end = "ful" if word.endswith("ful") else ""
        for base in _morph_bases(word):
            if self.res.synset_ids(base) is not None:
                return base + end
        return ""

    def _synset_queries(self, words: Iterable[str]) -> Iterable[str]:
        """Every word _synsets may look up for these words, to look them up in one batch."""
        for word in words:
            yield word
            bases = self.res.exceptions.get(word)
            if bases is None and not (word.endswith("ss") or len(word) <= 2):
                bases = _morph_bases(word)
                if word.endswith("ful"):
                    bases += [base + "ful" for base in bases]
            yield from bases or ()

    def _sentence(self, toks: list[str]) -> _Sentence:
        words = self._words
        infos = [words.get(w) or self._word(w) for w in toks]
        para_from: dict[tuple[str, ...], list[tuple[int, int, int]]] = {}
        para_at: list[tuple[tuple[str, ...], int]] = []
        n, trie = len(toks), self._phrases
        for i in range(n):  # every phrase of the table that starts at i: by position, then length
            level, end = trie, i
            while end < n and (node := level.get(toks[end])) is not None:
                end += 1
                for record, paraphrase in node.entries:
                    para_from.setdefault(paraphrase, []).append((i, end - i, record))
                if node.target is not None:
                    para_at.append((node.target, i))
                level = node.next
        columns = map(list, zip(*infos, strict=True)) if infos else ([], [], [], [], [])
        hashes, stems, synsets, function, synset_ids = columns
        return _Sentence(hashes, function, stems, [(i, x) for i, x in enumerate(synsets) if x], synset_ids,
                         para_from, para_at)

    def _align(self, t: _Sentence, r: _Sentence) -> MeteorStats:
        """Aligner.align(test, reference) and MeteorScorer.getMeteorStats(alignment), in C
        where the extension is built and both sentences fit its 64-word masks."""
        if _compiled_align is not None:
            para = []
            if t.hashes != r.hashes:
                para = [(i, k, j, m) for i, k, _, j, m in _paraphrase_hits(r, t)]
                para += [(j, m, i, k) for i, k, _, j, m in _paraphrase_hits(t, r)]
            out = _compiled_align(t.hashes, t.stems, t.function, t.synset_ids,
                                  r.hashes, r.stems, r.function, r.synset_ids, para)
            if out is not None:
                tfw, rfw, c, chunks, tm, rm = out
                return MeteorStats(len(t.hashes), len(r.hashes), tfw, rfw, c[0:4], c[4:8], c[8:12], c[12:16],
                                   chunks, tm, rm)
        return self._align_python(t, r)

    def _align_python(self, t: _Sentence, r: _Sentence) -> MeteorStats:
        """The aligner in Python: the readable reference, and the path for long sentences."""
        t.lookups()
        n1, n2 = len(t.hashes), len(r.hashes)
        stage: list[list[_Match]] = [[] for _ in range(n2)]
        cover1, cover2 = [0] * n1, [0] * n2

        def add(m: _Match) -> None:
            stage[m[0]].append(m)
            for x in range(m[2], m[2] + m[3]):
                cover1[x] += 1
            for x in range(m[0], m[0] + m[1]):
                cover2[x] += 1

        def add_word(j: int, i: int, module: int) -> None:
            stage[j].append(_word_match(j, i, module))
            cover1[i] += 1
            cover2[j] += 1

        th, rh = t.hashes, r.hashes
        for j, h in enumerate(rh):
            for i in t.by_hash.get(h, ()):
                add_word(j, i, EXACT)
        # Identical sentences need exact matches only (avoids beam search errors).
        if th != rh:
            for j, s in enumerate(r.stems):
                for i in t.by_stem.get(s, ()):
                    if th[i] != rh[j]:
                        add_word(j, i, STEM)
            synset_pos = t.synset_pos
            for j, sj in r.synsets:
                if common := sj.intersection(synset_pos):  # some synset shared with a candidate word
                    for i in sorted({i for sid in common for i in synset_pos[sid]}):
                        if th[i] != rh[j]:
                            add_word(j, i, SYNONYM)
            # Reference phrases first, then candidate phrases; each in the jar's loop order.
            for i, k, _, j, m in _paraphrase_hits(r, t):
                add(_match(i, k, j, m, PARAPHRASE))
            for i, k, _, j, m in _paraphrase_hits(t, r):
                add(_match(j, m, i, k, PARAPHRASE))
        # One-to-one matches that overlap nothing are certain.
        fixed: list[_Match | None] = [None] * n2
        test_bits = ref_bits = 0
        for j, matches in enumerate(stage):
            if len(matches) == 1:
                m = matches[0]
                if (all(cover2[x] == 1 for x in range(m[0], m[0] + m[1]))
                        and all(cover1[x] == 1 for x in range(m[2], m[2] + m[3]))):
                    fixed[j] = m
                    test_bits |= m[7]
                    ref_bits |= m[6]
        # Without ambiguous matches the search would keep exactly the certain ones.
        ambiguous = any(matches and fixed[j] is None for j, matches in enumerate(stage))
        chosen = _resolve(stage, fixed, test_bits, ref_bits) if ambiguous else fixed
        counts = [[0] * N_MODULES for _ in range(4)]  # test content, ref content, test fn, ref fn
        for m in chosen:
            if m is not None:
                for x in range(m[2], m[2] + m[3]):
                    counts[2 if t.function[x] else 0][m[4]] += 1
                for x in range(m[0], m[0] + m[1]):
                    counts[3 if r.function[x] else 1][m[4]] += 1
        # Aligner.getCountAndChunks
        chunks, idx, last_end, test_matches, ref_matches = 0, 0, -1, 0, 0
        while idx < n2:
            m = chosen[idx]
            if m is None:
                if last_end != -1:
                    chunks += 1
                    last_end = -1
                idx += 1
            else:
                test_matches += m[3]
                ref_matches += m[1]
                if last_end != -1 and m[2] != last_end:
                    chunks += 1
                idx, last_end = m[0] + m[1], m[2] + m[3]
        if last_end != -1:
            chunks += 1
        return MeteorStats(n1, n2, sum(t.function), sum(r.function), tuple(counts[0]), tuple(counts[1]),
                           tuple(counts[2]), tuple(counts[3]), chunks, test_matches, ref_matches)


def _morph_bases(word: str) -> list[str]:
    """The base forms the jar's morph tries for a word, in its order (first with synsets wins)."""
    return [word[:len(word) - len(suffix)] + repl for suffix, repl in _MORPH if word.endswith(suffix)]


def _paraphrase_hits(source: _Sentence, target: _Sentence) -> list[tuple[int, int, int, int, int]]:
    """(source pos, length, record, target pos, length) for each phrase of `source` whose
    paraphrase occurs in `target`, in ParaphraseMatcher's loop order: source position,
    then ParaphraseTransducer.getPaths order (length, table order), then target position."""
    return sorted((i, k, rec, j, len(g))
                  for g, j in target.para_at for i, k, rec in source.para_from.get(g, ()))


def _score_line(candidate: str, references: Sequence[str]) -> tuple[str, list[str]]:
    """(test, references) as the jar reads them from pycocoevalcap's SCORE line."""
    hyp = candidate.replace("|||", "").replace("  ", " ")
    parts = " ||| ".join(("SCORE", " ||| ".join(references), hyp)).split("|||")
    while parts and parts[-1] == "":  # String.split drops trailing empty strings
        parts.pop()
    return parts[-1].strip(_JAVA_SPACE), [p.strip(_JAVA_SPACE) for p in parts[1:-1]]


_default: MeteorScorer | None = None


def default_scorer() -> MeteorScorer:
    """A process-wide scorer, so resources load once and repeated calls reuse its caches."""
    global _default
    if _default is None:
        _default = MeteorScorer()
    return _default


def _score_lines(lines: list[tuple[str, list[str]]]) -> list[MeteorStats]:
    """Stats of each (test, references) line, with the words already prepared (see meteor)."""
    scorer = default_scorer()
    return [scorer._best(test, refs) for test, refs in lines]


def meteor(candidates: list[str], references: list[list[str]],
           workers: int | None = None) -> tuple[float, np.ndarray]:
    """Corpus METEOR and per-item scores, on PTB-tokenized strings, as pycocoevalcap computes them.

    Items are independent, so on corpora of parallel.PARALLEL_MIN_ITEMS
    or more the items are split over `workers` processes (default: up to 2 cores). What the
    items share (normalized tokens, paraphrase entries, per-word stems and synsets) is
    computed once, then the workers are forked, so they inherit it and start in
    milliseconds; where fork is unavailable (Windows, macOS default) scoring stays in this
    process. Blocks of BLOCK_ITEMS bound the memory the token cache takes.
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        raise ValueError("nothing to score: no candidates")
    scorer = default_scorer()
    workers = workers if workers is not None else parallel.worker_processes(len(candidates))
    fork = "fork" in multiprocessing.get_all_start_methods()
    stats: list[MeteorStats] = []
    for start in range(0, len(candidates), BLOCK_ITEMS):
        end = start + BLOCK_ITEMS
        lines = [_score_line(c, refs) for c, refs in
                 zip(candidates[start:end], references[start:end], strict=True)]
        try:
            scorer.prepare(text for test, refs in lines for text in (test, *refs))
            if workers > 1 and len(lines) >= parallel.PARALLEL_MIN_ITEMS and fork:
                stats += _score_forked(lines, workers)
            else:
                stats += _score_lines(lines)
        finally:
            scorer.forget_texts()
    return corpus_score(stats), np.array([s.score for s in stats], dtype=float)


def _score_forked(lines: list[tuple[str, list[str]]], workers: int) -> list[MeteorStats]:
    step = -(-len(lines) // workers)
    chunks = [lines[i : i + step] for i in range(0, len(lines), step)]
    with contextlib.ExitStack() as stack:
        others = [stack.enter_context(parallel.ForkedWorker(_score_lines, chunk)) for chunk in chunks[1:]]
        stats = _score_lines(chunks[0])
        for other in others:
            stats.extend(other.get())
    return stats
