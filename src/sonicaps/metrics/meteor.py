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
import math
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from operator import itemgetter
from pathlib import Path

import numpy as np

from sonicaps.metrics import _regex, parallel
from sonicaps.metrics.meteor_data import (
    NBP_ANY,
    NBP_NUMERIC_ONLY,
    MeteorResources,
    SortedWords,
    _spans,
    java_tokens,
    load_resources,
    map_npy,
)

try:  # the per-pair work in C (_meteor.pyx); absent when sonicaps was installed without a compiler
    from sonicaps.metrics import _meteor as _compiled
except ImportError:
    _compiled = None


def _log():
    import logging  # here, not at the top: ~9 ms of start-up, needed for warnings only

    return logging.getLogger(__name__)


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
# Below this many items, forking a worker for the alignments costs more than it saves (the
# compiled scorer aligns ~1000 items in ~10 ms; the Python one ~30x slower).
PARALLEL_MIN_ITEMS = 5000 if _compiled is not None else parallel.PARALLEL_MIN_ITEMS

# --- Normalizer (edu.cmu.meteor.util.Normalizer, English, punctuation kept) ---------------

# Letters the normalizer knows (Latin-1, Latin Extended-A, Cyrillic, phonetic extensions).
_ALPHA = ("A-Za-z\u0160\u017d\u0161\u017e\u0178\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017e"
          "\u0400-\u04ff\u0500-\u0527\ua640-\ua66e\ua67e-\ua697\u1d00-\u1d7f")
_ALNUM = "0-9" + _ALPHA
# Java's \s: space, tab, LF, VT, FF, CR.
_SEP_OTHER = _regex.compile(f"([^{_ALNUM} \t\n\x0b\f\r.'`,\\-\u2018\u2019])")
_MULTI_DOT = _regex.compile(r"\.([.]+)")
_MULTI_DOT2 = _regex.compile(r"DOTMULTI\.([^.])")
_COMMAS = (_regex.compile(r"([^0-9]),([^0-9])"), _regex.compile(r"([0-9]),([^0-9])"),
           _regex.compile(r"([^0-9]),([0-9])"))
_QUOTE = _regex.compile("[`\u2018\u2019]")
_QUOTE2 = _regex.compile("[\u201c\u201d]|''")
_RM_DASH = _regex.compile(f"([{_ALNUM}.])-([{_ALNUM}])")
_CONTRACTIONS = (
    (_regex.compile(f"([^{_ALPHA}])'([^{_ALPHA}])"), r"\1 ' \2"),
    (_regex.compile(f"([^{_ALPHA}0-9])'([{_ALPHA}])"), r"\1 ' \2"),
    (_regex.compile(f"([{_ALPHA}])'([^{_ALPHA}])"), r"\1 ' \2"),
    (_regex.compile(f"([{_ALPHA}])'([{_ALPHA}])"), r"\1 '\2"),
    (_regex.compile(r"([0-9])'(s)"), r"\1 '\2"),
)
_NBP_LETTER = _regex.compile(f"[{_ALPHA}]")
_WHITE = _regex.compile("[ \u2000-\u200a\u202f\u205f\u3000\u00a0]+")
# String.trim() removes every char <= U+0020.
_JAVA_SPACE = "".join(map(chr, range(33)))
# Already normalized text: normalizing only collapses its spaces.
_PLAIN = _regex.compile("[a-z0-9 ]*")
# Printable ASCII words separated by single spaces (what PTB tokenization gives) ...
_SPACED_ASCII = _regex.compile("[!-~]+(?: [!-~]+)*")
# ... normalize word by word unless a word ends with one of these: only there can the
# normalizer's patterns reach across a space (they consume the space after ' ` , . and
# look at the word after a final "."), so only there does a word's neighbour matter.
_LINKING_ENDS = frozenset(",'`.")
# Supplementary characters, which Java strings hold as two UTF-16 units.
_ASTRAL = _regex.compile("[\U00010000-\U0010ffff]")


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
    def row(self) -> tuple[int, ...]:
        """The statistics as one flat row of N_STATS ints (the compiled scorer's layout)."""
        return (self.test_length, self.ref_length, self.test_function_words, self.ref_function_words,
                *self.test_content, *self.ref_content, *self.test_function, *self.ref_function,
                self.chunks, self.test_word_matches, self.ref_word_matches)

    @classmethod
    def from_row(cls, row: Sequence[int]) -> MeteorStats:
        r = [int(x) for x in row]
        return cls(r[0], r[1], r[2], r[3], tuple(r[4:8]), tuple(r[8:12]), tuple(r[12:16]), tuple(r[16:20]),
                   r[20], r[21], r[22])

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


# A statistics row: MeteorStats.row's 23 ints.
N_STATS = 23
# What the compiled scorer needs besides the corpus: alpha, beta, gamma, delta, module weights.
_PARAMS = (ALPHA, BETA, GAMMA, DELTA, *MODULE_WEIGHTS)
# A trie with only its root (see MeteorScorer._flat).
_EMPTY_TRIE = tuple(np.array(a, dtype=np.int8 if i == 6 else np.int32)
                    for i, a in enumerate(([0, 0], [], [], [0, 0], [], [], [0], [0])))


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
    return MeteorStats.from_row(_sum_rows([s.row for s in stats], [s._whole_match() for s in stats]))


def _sum_rows(rows: Iterable[Sequence[int]], whole: Iterable[bool]) -> list[int]:
    sums = [0] * N_STATS
    for row, skip_chunks in zip(rows, whole, strict=True):
        for i, x in enumerate(row):
            if i != 20 or not skip_chunks:
                sums[i] += x
    return sums


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
    """A normalized sentence with what the Python aligner needs."""

    hashes: list[int]
    function: list[bool]
    stems: list[int]  # stem hashes
    synsets: list[tuple[int, frozenset[int]]]  # (position, synsets) for words that have some
    para_from: dict[int, list[tuple[int, int, int]]]  # paraphrase (trie node) -> (pos, len, record)
    para_at: list[tuple[int, int, int]]  # (phrase node, pos, length) for phrases that are some paraphrase
    by_hash: dict[int, list[int]]  # word hash -> positions
    by_stem: dict[int, list[int]]  # stem hash -> positions
    synset_pos: dict[int, list[int]]  # synset -> positions


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
    """Every resource word's hash, stem hash, function-word flag and sorted synsets,
    computed once per machine and kept beside the METEOR index: stemming and the synonym
    lookups cost ~0.1 ms a word, which dominated corpora with wide vocabularies. Words
    outside the resources (and words outside the Basic Multilingual Plane) are computed as
    they come."""

    VERSION = 1

    def __init__(self, folder: Path):
        def load(name: str) -> np.ndarray:
            return map_npy(folder / f"{name}.npy")

        self.words = SortedWords(load("words"))
        self.hash, self.stem_hash, self.function = load("hash"), load("stem_hash"), load("function")
        self.syn_off, self.syn = load("syn_off"), load("syn")


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
    prepared as MeteorScorer._compute_word does; built in a private folder, then renamed."""
    import shutil
    import tempfile

    _log().info("METEOR: preparing the resource words once (about a minute)")
    words = {w.decode("utf-8") for w in res.paraphrases.vocab.tolist()}
    words.update(w.decode("utf-8") for w in res.syn_words.words.tolist())
    words.update(res.exceptions)
    # In UTF-8 order, the order SortedWords searches.
    words = sorted((w for w in words if w and all(ord(c) <= 0xFFFF for c in w)), key=lambda w: w.encode())
    scorer = MeteorScorer.__new__(MeteorScorer)  # the per-word code path, without a table
    scorer.res = res
    res.look_up_synsets(scorer._synset_queries(words))
    infos = [scorer._compute_word(w) for w in words]
    encoded = [w.encode() for w in words]
    syn_lens = [len(info[2]) for info in infos]
    arrays = {
        "words": np.array(encoded, dtype=f"S{max(map(len, encoded))}"),
        "hash": np.array([info[0] for info in infos], dtype=np.int64),
        "stem_hash": np.array([info[1] for info in infos], dtype=np.int64),
        "function": np.array([info[3] for info in infos], dtype=bool),
        "syn_off": np.concatenate(([0], np.cumsum(syn_lens))).astype(np.int64),
        "syn": np.array([x for info in infos for x in info[2]], dtype=np.int64),
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
    corpus): it gives each new word an id in the word tables (hash, stem hash, function
    word, synsets) and loads the paraphrase entries whose words all occur in the texts;
    each later call that brings new words queries the index again. `score_lines` then
    scores SCORE lines in C (in Python without the extension, or for sentences over 64
    words), `item_stats` gives one line's statistics, and `corpus_score` combines any
    selection of them, e.g. for a human upper bound over reference subsets.
    """

    def __init__(self, resources: MeteorResources | None = None):
        self.res = resources if resources is not None else load_resources()
        if _compiled is None:
            _log().warning("METEOR's compiled scorer is not built (sonicaps was installed without a C "
                        "compiler): scoring in Python, several times slower")
        self._table = word_table(self.res)
        # Word tables, by word id: String.hashCode of the word and of its stem (uint32), whether
        # it is a function word, and its sorted synset ids (CSR: syn[syn_off[i]:syn_off[i + 1]]).
        self._ids: dict[str, int] = {}
        self._hash = np.zeros(0, dtype=np.uint32)
        self._stem = np.zeros(0, dtype=np.uint32)
        self._function = np.zeros(0, dtype=np.int8)
        self._syn_off = np.zeros(1, dtype=np.int64)
        self._syn = np.zeros(0, dtype=np.int64)
        self._info: dict[str, tuple] = {}  # word -> (hash, stem hash, synsets, function word), Python path
        self._tokens: dict[str, list[str]] = {}
        self._word_tokens: dict[str, list[str]] = {}
        # A word of the texts (what the PTB tokenizer left between spaces) -> the ids of its
        # tokens, for texts whose words normalize on their own (compiled path).
        self._word_ids = _compiled.WordIds() if _compiled is not None else None
        # The trie of the paraphrase table's phrases (both sides) among the prepared words, as
        # arrays for the compiled scorer (_meteor.score_lines documents them) or as Python
        # lists: per node its children (word -> node), entries (record, paraphrase node) and
        # whether it ends a phrase that is some entry's paraphrase; node 0 is the root.
        self._flat: tuple[np.ndarray, ...] = _EMPTY_TRIE
        self._trie: tuple[list[dict[str, int]], list[list[tuple[int, int]]], list[bool]] | None = None
        # Paraphrase vocabulary id -> word id, for the words the scorer has (-1: none).
        self._para_ids = np.full(len(self.res.paraphrases.vocab), -1, dtype=np.int32)

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
        """Tokenize these texts, give their new words ids (hashes, stems, synsets), and load
        the paraphrase entries whose words all occur in the prepared texts."""
        ids = self._ids
        if _compiled is not None:  # texts as their words, each word's tokens computed once
            texts = texts if isinstance(texts, list) else list(texts)
            unknown, whole = self._word_ids.unknown(texts)
            word_tokens = {w: [w] if _PLAIN.fullmatch(w) else self._normalized_word(w) for w in unknown}
            found = [*word_tokens.values(), *(self.tokens(texts[i]) for i in whole)]
        else:
            found = [self.tokens(text) for text in texts]
        new = list({w for toks in found for w in toks if w not in ids})
        if new:
            self._add_words(new)
        if _compiled is None:
            if new:
                self._trie = self._build_trie()
            return
        for w, toks in word_tokens.items():
            self._word_ids.add(w, tuple([ids[t] for t in toks]))
        if new:
            para = self.res.paraphrases
            found = _compiled.paraphrase_trie(para.key_off, para.phrase_off, para.phrase_tok, para.ent_off,
                                              para.ent_record, para.ent_p2, self._para_ids)
            self._flat = tuple(np.frombuffer(a, dtype=np.int8 if a.typecode == "b" else np.int32)
                               for a in found)
            self._trie = None

    def _build_trie(self) -> tuple[list[dict[str, int]], list[list[tuple[int, int]]], list[bool]]:
        """The phrase trie as Python lists, from the paraphrase entries among the words."""
        para: dict[tuple[str, ...], list[tuple[int, tuple[str, ...]]]] = {}
        for record, phrase, paraphrase in self.res.paraphrases.entries_within(self._ids.keys()):
            para.setdefault(phrase, []).append((record, paraphrase))
        targets = {p for entries in para.values() for _, p in entries}
        children: list[dict[str, int]] = [{}]
        node_of: dict[tuple[str, ...], int] = {}
        for phrase in (*para, *targets):
            node = 0
            for w in phrase:
                nxt = children[node].get(w)
                if nxt is None:
                    nxt = children[node][w] = len(children)
                    children.append({})
                node = nxt
            node_of[phrase] = node
        entries: list[list[tuple[int, int]]] = [[] for _ in children]
        for phrase, found in para.items():
            entries[node_of[phrase]] = [(record, node_of[p]) for record, p in found]
        is_target = [False] * len(children)
        for p in targets:
            is_target[node_of[p]] = True
        return children, entries, is_target

    def _python_trie(self) -> tuple[list[dict[str, int]], list[list[tuple[int, int]]], list[bool]]:
        """The trie as Python lists; where the compiled scorer built it, derived from its arrays."""
        if self._trie is None:
            child_off, child_word, child_node, ent_off, ent_record, ent_target, is_target, _ = (
                a.tolist() for a in self._flat)
            words, nodes = list(self._ids), range(len(is_target))
            self._trie = ([{words[child_word[k]]: child_node[k]
                            for k in range(child_off[n], child_off[n + 1])} for n in nodes],
                          [[(ent_record[e], ent_target[e]) for e in range(ent_off[n], ent_off[n + 1])]
                           for n in nodes],
                          [bool(x) for x in is_target])
        return self._trie

    def _add_words(self, words: list[str]) -> None:
        """Give these words ids: their rows of the word table, computed for words it lacks."""
        table = self._table
        pos = table.words.find(words)
        idx = pos[pos >= 0]
        lo, hi = table.syn_off[idx], table.syn_off[idx + 1]
        found = [w for w, p in zip(words, pos.tolist(), strict=True) if p >= 0]
        rest = [w for w, p in zip(words, pos.tolist(), strict=True) if p < 0]
        self.res.look_up_synsets(self._synset_queries(rest))
        infos = [self._compute_word(w) for w in rest]
        hashes = [table.hash[idx].astype(np.uint32), np.array([i[0] for i in infos], dtype=np.uint32)]
        stems = [table.stem_hash[idx].astype(np.uint32), np.array([i[1] for i in infos], dtype=np.uint32)]
        function = [table.function[idx].astype(np.int8), np.array([i[3] for i in infos], dtype=np.int8)]
        syn_lens = np.concatenate((hi - lo, [len(i[2]) for i in infos])).astype(np.int64)
        syn = [table.syn[_spans(lo, hi)], np.array([x for i in infos for x in i[2]], dtype=np.int64)]
        for word in (*found, *rest):
            self._ids[word] = len(self._ids)
        para = self.res.paraphrases
        where = para.sorted_vocab.find(words)
        known = where >= 0
        self._para_ids[para.sorted_vocab_id[where[known]]] = [self._ids[w] for w, k in
                                                              zip(words, known.tolist(), strict=True) if k]
        self._hash = np.concatenate((self._hash, *hashes))
        self._stem = np.concatenate((self._stem, *stems))
        self._function = np.concatenate((self._function, *function))
        self._syn_off = np.concatenate((self._syn_off, self._syn_off[-1] + np.cumsum(syn_lens)))
        self._syn = np.concatenate((self._syn, *syn))

    def item_stats(self, candidate: str, references: Sequence[str]) -> MeteorStats:
        """Statistics against the best reference, as one pycocoevalcap SCORE line gives them."""
        test, refs = _score_line(candidate, references)
        self.prepare([test, *refs])
        rows, _ = self.score_lines([(test, refs)])
        return MeteorStats.from_row(rows[0])

    def forget_texts(self) -> None:
        """Drop the per-text token caches (words, resources and paraphrases stay loaded)."""
        self._tokens.clear()
        self._word_tokens.clear()

    def score_lines(self, lines: Sequence[tuple[str, list[str]]], pairs: bool = False
                    ) -> tuple[np.ndarray, np.ndarray]:
        """Statistics rows (lines x N_STATS, int32) and scores of the best reference of each
        (test, references) line, whose words are prepared. With pairs=True, every
        reference's instead (rows in line order, then reference order)."""
        n_pairs = sum(len(refs) for _, refs in lines)
        rows = np.zeros((n_pairs if pairs else len(lines), N_STATS), dtype=np.int32)
        scores = np.zeros(len(rows))
        python = range(len(lines))
        if _compiled is not None and lines:
            sent_off, sent_words, line_off, line_sent = self._sentences(lines)
            best_rows, best_scores = (np.zeros((len(lines), N_STATS), dtype=np.int32), np.zeros(len(lines)))
            words = (self._hash, self._stem, self._function, self._syn_off, self._syn)
            python = _compiled.score_lines(
                words, self._flat, _PARAMS, sent_off, sent_words, line_off, line_sent,
                best_rows, best_scores, rows if pairs else None, scores if pairs else None)
            if not pairs:
                rows, scores = best_rows, best_scores
        if python:  # without the extension, and lines with a sentence over 64 words
            starts = np.cumsum([0] + [len(refs) for _, refs in lines]).tolist()
            for i in python:
                test, refs = lines[i]
                found = self._python_stats(test, refs)
                if pairs:
                    for k, stats in enumerate(found):
                        rows[starts[i] + k], scores[starts[i] + k] = stats.row, stats.score
                else:
                    best = _best(found)
                    rows[i], scores[i] = best.row, best.score
        return rows, scores

    def _sentences(self, lines: Sequence[tuple[str, list[str]]]) -> tuple[np.ndarray, ...]:
        """The lines as the compiled scorer takes them: each distinct text once, as word ids."""
        index: dict[str, int] = {}
        line_off, line_sent = [0], []
        for test, refs in lines:
            line_sent.append(index.setdefault(test, len(index)))
            line_sent.extend([index.setdefault(ref, len(index)) for ref in refs])
            line_off.append(len(line_sent))
        ids = self._ids
        sent_off, sent_words = self._word_ids.sentences(
            list(index), lambda text: tuple([ids[w] for w in self.tokens(text)]))
        return (np.frombuffer(sent_off, dtype=np.int64), np.frombuffer(sent_words, dtype=np.int32),
                np.array(line_off, dtype=np.int64), np.array(line_sent, dtype=np.int64))

    def _python_stats(self, test: str, refs: list[str]) -> list[MeteorStats]:
        """Statistics of each reference of a line, in Python (the readable reference)."""
        t = self._sentence(self.tokens(test))
        return [self._align(t, self._sentence(self.tokens(ref))) for ref in refs]

    def _compute_word(self, word: str) -> tuple:
        """(hash, stem hash, sorted synsets, function word) of a word, from the resources."""
        return (java_hash(word), java_hash(stem(word)), tuple(sorted(self._synsets(word))),
                word.lower() in self.res.function_words)

    def _word_info(self, word: str) -> tuple:
        """(hash, stem hash, synsets, function word) from the word tables (the Python path)."""
        info = self._info.get(word)
        if info is None:
            i = self._ids[word]
            synsets = frozenset(self._syn[self._syn_off[i]:self._syn_off[i + 1]].tolist())
            info = (int(self._hash[i]), int(self._stem[i]), synsets, bool(self._function[i]))
            self._info[word] = info
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
        infos = [self._word_info(w) for w in toks]
        para_from: dict[int, list[tuple[int, int, int]]] = {}
        para_at: list[tuple[int, int, int]] = []
        n, (children, entries, is_target) = len(toks), self._python_trie()
        for i in range(n):  # every phrase of the table that starts at i: by position, then length
            node, end = 0, i
            while end < n and (node := children[node].get(toks[end])) is not None:
                end += 1
                for record, paraphrase in entries[node]:
                    para_from.setdefault(paraphrase, []).append((i, end - i, record))
                if is_target[node]:
                    para_at.append((node, i, end - i))
        hashes = [info[0] for info in infos]
        stems = [info[1] for info in infos]
        by_hash: dict[int, list[int]] = {}
        by_stem: dict[int, list[int]] = {}
        synset_pos: dict[int, list[int]] = {}
        for i, (h, s) in enumerate(zip(hashes, stems, strict=True)):
            by_hash.setdefault(h, []).append(i)
            by_stem.setdefault(s, []).append(i)
        synsets = [(i, info[2]) for i, info in enumerate(infos) if info[2]]
        for i, syn in synsets:
            for sid in syn:
                synset_pos.setdefault(sid, []).append(i)
        return _Sentence(hashes, [info[3] for info in infos], stems, synsets, para_from, para_at,
                         by_hash, by_stem, synset_pos)

    def _align(self, t: _Sentence, r: _Sentence) -> MeteorStats:
        """Aligner.align(test, reference) and MeteorScorer.getMeteorStats(alignment)."""
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


def _best(stats: list[MeteorStats]) -> MeteorStats:
    """MeteorScorer.getMeteorStats(test, references): the first best-scoring reference."""
    best, best_score = stats[0], -1.0
    for s in stats:
        if (score := s.score) > best_score:
            best, best_score = s, score
    return best


def _morph_bases(word: str) -> list[str]:
    """The base forms the jar's morph tries for a word, in its order (first with synsets wins)."""
    return [word[:len(word) - len(suffix)] + repl for suffix, repl in _MORPH if word.endswith(suffix)]


def _paraphrase_hits(source: _Sentence, target: _Sentence) -> list[tuple[int, int, int, int, int]]:
    """(source pos, length, record, target pos, length) for each phrase of `source` whose
    paraphrase occurs in `target`, in ParaphraseMatcher's loop order: source position,
    then ParaphraseTransducer.getPaths order (length, table order), then target position."""
    return sorted((i, k, rec, j, m)
                  for g, j, m in target.para_at for i, k, rec in source.para_from.get(g, ()))


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


def _score_block(lines: list[tuple[str, list[str]]]) -> tuple[np.ndarray, np.ndarray]:
    """default_scorer().score_lines, for lines whose words are prepared (see meteor)."""
    return default_scorer().score_lines(lines)


def meteor(candidates: list[str], references: list[list[str]],
           workers: int | None = None) -> tuple[float, np.ndarray]:
    """Corpus METEOR and per-item scores, on PTB-tokenized strings, as pycocoevalcap computes them.

    Items are independent, so on corpora of PARALLEL_MIN_ITEMS or more the items are split
    over `workers` processes (default: up to 2 cores). What the items share (normalized
    tokens, paraphrase entries, word tables) is computed once, then the workers are forked,
    so they inherit it and start in milliseconds; where fork is unavailable (Windows, macOS
    default) scoring stays in this process. Blocks of BLOCK_ITEMS bound the memory the
    token cache takes.
    """
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    if not candidates:
        raise ValueError("nothing to score: no candidates")
    scorer = default_scorer()
    if workers is None:
        workers = parallel.worker_processes(len(candidates)) if len(candidates) >= PARALLEL_MIN_ITEMS else 1
    fork = hasattr(os, "fork")
    rows, scores = [], []
    for start in range(0, len(candidates), BLOCK_ITEMS):
        end = start + BLOCK_ITEMS
        lines = [_score_line(c, refs) for c, refs in
                 zip(candidates[start:end], references[start:end], strict=True)]
        try:
            scorer.prepare(text for test, refs in lines for text in (test, *refs))
            if workers > 1 and len(lines) >= workers and fork:
                block_rows, block_scores = _score_forked(lines, workers)
            else:
                block_rows, block_scores = _score_block(lines)
        finally:
            scorer.forget_texts()
        rows.append(block_rows)
        scores.append(block_scores)
    rows, scores = np.concatenate(rows), np.concatenate(scores)
    if _compiled is not None:
        total = _compiled.corpus_stats(rows)
    else:
        total = _sum_rows(rows.tolist(), [MeteorStats.from_row(r)._whole_match() for r in rows])
    return MeteorStats.from_row(total).score, scores


def _score_forked(lines: list[tuple[str, list[str]]], workers: int) -> tuple[np.ndarray, np.ndarray]:
    step = -(-len(lines) // workers)
    chunks = [lines[i : i + step] for i in range(0, len(lines), step)]
    with contextlib.ExitStack() as stack:
        others = [stack.enter_context(parallel.ForkedWorker(_score_block, chunk)) for chunk in chunks[1:]]
        found = [_score_block(chunks[0])] + [other.get() for other in others]
    return np.concatenate([r for r, _ in found]), np.concatenate([s for _, s in found])
