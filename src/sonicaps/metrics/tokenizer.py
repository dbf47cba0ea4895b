"""The tokenization pycocoevalcap 1.2 applies before every caption metric, without Java.

pycocoevalcap joins the captions with '\\n', runs Stanford CoreNLP 3.4.1's PTBTokenizer
(`-preserveLines -lowerCase`, default options otherwise: PTB escaping of brackets and quotes,
no americanizing, "gonna" split), splits the output by line and drops the tokens in
PUNCTUATIONS. That tokenizer is a JFlex lexer: at each position the rule with the longest match
wins (the trailing context of `r1/r2` counts towards the length), ties go to the earlier rule.
ptb_rules restates its rules as Python regular expressions, in the same order, and this module
picks the longest match the same way. The rules and character classes were recovered by probing
the 3.4.1 jar, construct by construct, and checked by fuzzing against it.

Speed: captions are split at spaces and each piece's output is memoized (bounded), so repeated
words cost a dict lookup. A new piece is lexed: characters are mapped to class codes first, as
JFlex does, so the rules compile into small patterns, each compiled only when first needed.
Captions with a construct that can span a space (SGML tag, phone number, "1 1/2", ". . .") or a
line break are lexed whole.

Context across captions: as in the reference, a caption's last token can depend on the caption
after it, since two rules look past the line break: a one-letter "X." before "The", "It", "A",
... becomes "X" + ".", and "no."/"fig."/... stays one token only before a digit. And the last
caption of the list sits at the end of the input, where rules that need a following character
cannot fire (there "'99" becomes "99"). `tokenize` emulates both, so it matches a reference
run over the same list.

Line breaks inside a caption: pycocoevalcap only replaces '\\n', but the Java lexer also ends a
line at '\\r', '\\x0b', '\\x0c', '\\u2028' and '\\u2029' ('\\x85' is an ellipsis to it). Such a
caption takes several output lines and every later caption of the reference batch is shifted
(the reference's alignment breaks). We give the caption what the reference gives it when it is
alone, its tokens before the first break, and do not shift the later captions. Likewise, an
SGML tag whose quoted attribute runs on into the next caption (a single Java token holding the
line break): the first caption gets the part before the break, the next one is lexed as usual.

Known exotic differences (not met in caption data): rarely, the lower-casing of a capital
Greek sigma among digits, soft hyphens or other format characters (Java picks final sigma by
its word-break rules, approximated here), and characters whose Unicode properties changed
after Java 7 / JDK 17.
"""

from __future__ import annotations

import bisect
import contextlib
import functools
import itertools
import json
import re
import sys
import unicodedata
import zlib
from pathlib import Path

from sonicaps.metrics import _regex
from sonicaps.sources import cache_dir, write_atomic

try:  # the loop over captions in C (_coco.pyx); absent when installed without a compiler
    from sonicaps.metrics import _coco as _compiled
except ImportError:
    _compiled = None

# Tokens pycocoevalcap drops after tokenizing (upper-case brackets never match lower-cased text).
PUNCTUATIONS = frozenset(["''", "'", "``", "`", "-LRB-", "-RRB-", "-LCB-", "-RCB-",
                          ".", "?", "!", ",", ":", "-", "--", "...", ";"])

def _tables_cache() -> Path | None:
    """Where ptb_rules.tables() are cached for these rules and this Python (whose regex parser
    the derivation uses), or None when the rules' source cannot be read."""
    try:
        source = Path(__file__).with_name("ptb_rules.py").read_bytes()
    except OSError:
        return None
    # (zlib's checksum, not hashlib's: a cache key, and hashlib costs start-up time)
    key = f"{zlib.crc32(source + sys.version.encode()):08x}{len(source):08x}"
    return cache_dir() / "ptb" / f"lexer-tables-{key}.json"


def _lexer_tables() -> dict:
    """ptb_rules.tables(), from the cache when it holds them, else derived and cached
    (derived each time where the cache cannot be written)."""
    path = _tables_cache()
    if path is not None:
        with contextlib.suppress(OSError, ValueError):
            return json.loads(path.read_bytes())
    from sonicaps.metrics import ptb_rules

    tables = ptb_rules.tables()
    if path is not None:
        with contextlib.suppress(OSError):
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, json.dumps(tables).encode())
    return tables


_TABLES = _lexer_tables()
# The rules in class codes: (token regex, context regex or None, action), and per rule the
# class codes it can start with, so a scan only tries rules that can start there.
_RULES = [tuple(rule) for rule in _TABLES["rules"]]
_FIRST = [frozenset(codes) for codes in _TABLES["first"]]
# Each run of BMP code points that no rule tells apart: its first code point and class code.
_RUN_STARTS, _RUN_CODES = _TABLES["run_starts"], _TABLES["run_codes"]
# Per rule, its compiled pattern (token in group 1, then the context), compiled when first
# needed; per class code, the rules that can start with it. Both are bounded by the classes.
_PATTERNS: list[re.Pattern | None] = [None] * len(_RULES)
_CANDIDATES: dict[str, tuple[int, ...]] = {}
# Class codes of the BMP characters met so far (at most 65536 entries). Characters outside the
# BMP are first replaced by a surrogate: no rule names either, so they share a class.
_CHAR_CODES: dict[int, str] = {}
_ASTRAL = _regex.compile("[\U00010000-\U0010ffff]")


def _mapped(text: str) -> str:
    """text with every character replaced by its class code (same length)."""
    if text.isascii():
        return text
    text = _ASTRAL.sub("\ud800", text)
    for char in set(text):
        if ord(char) not in _CHAR_CODES:
            _CHAR_CODES[ord(char)] = chr(_RUN_CODES[bisect.bisect_right(_RUN_STARTS, ord(char)) - 1])
    return text.translate(_CHAR_CODES)


def _candidates(code: str) -> tuple[int, ...]:
    """The rules that can start with a class code (compiling them on first use)."""
    found = _CANDIDATES[code] = tuple(i for i, first in enumerate(_FIRST) if ord(code) in first)
    for i in found:
        if _PATTERNS[i] is None:
            tok, ctx, _ = _RULES[i]
            _PATTERNS[i] = _regex.compile(f"({tok}){ctx or ''}", re.DOTALL)
    return found


# Normalizations of the default options: LaTeX quotes, "&amp;" -> "&", fractions, currency.
_QUOTE_MAPS = [(_regex.compile("[\x91\u2018\u201b\u2039]"), "`"), (_regex.compile("[\x92\u2019\u203a]"), "'"),
               (_regex.compile("[\x93\u201c\xab]"), "``"), (_regex.compile("[\x94\u201d\xbb]"), "''")]
_DOUBLE_QUOTE = _regex.compile('"|&quot;')
_AMP = _regex.compile("(?ai:&amp;)")
_FRACTIONS = {"\xbc": "1/4", "\xbd": "1/2", "\xbe": "3/4", "\u2153": "1/3", "\u2154": "2/3"}
_CURRENCY = _regex.compile("[\x80\xa4\u20a0\u20ac]")


def _latex_quotes(tok: str, opening: bool) -> str:
    """The lexer's latexQuotes: ASCII quotes by guessed side, typographic ones by their shape."""
    tok = tok.replace("&apos;", "`" if opening else "'").replace("'", "`" if opening else "'")
    tok = _DOUBLE_QUOTE.sub("``" if opening else "''", tok)
    for pattern, repl in _QUOTE_MAPS:
        tok = pattern.sub(repl, tok)
    return tok


def _apply(action: str, tok: str) -> str:
    """Token text after a rule's normalization (default ptb3Escaping options of 3.4.1)."""
    if action == "keep":
        return tok
    if action == "soft":
        return tok.replace("\xad", "") or "-"
    if action[0] == "=":
        return action[1:]
    if action == "amp":
        return _AMP.sub("&", tok)
    if action == "quote<":
        return _latex_quotes(tok, True)
    if action == "quote>":
        return _latex_quotes(tok, False)
    if action == "nbsp":
        return tok.replace(" ", "\xa0")
    if action in ("phone", "paren"):
        if action == "phone":
            tok = tok.replace(" ", "\xa0")
        return tok.replace("(", "-LRB-").replace(")", "-RRB-")
    if action == "dash":
        return "--" if 3 <= len(tok) <= 4 else tok
    if action == "frac":
        return _FRACTIONS.get(tok, tok)
    if action == "currency":
        return _CURRENCY.sub("$", tok.replace("\xa2", "cents").replace("\xa3", "#"))
    raise AssertionError(action)


def _lex(text: str, start: int, end: int) -> list[str]:
    """Raw tokens (original case) of the lexer starting in text[start:end], up to a line break.

    text continues past end with what the lexer would see next (the trailing contexts).
    """
    mapped = _mapped(text)
    out = []
    pos = start
    while pos < end:
        longest = tok_end = -1
        for i in _CANDIDATES.get(mapped[pos]) or _candidates(mapped[pos]):
            m = _PATTERNS[i].match(mapped, pos)
            if m is not None and m.end() > longest:  # longest match, earliest rule on ties
                longest, tok_end, rule = m.end(), m.end(1), i
        action = _RULES[rule][2]
        if action == "skip":
            pos = tok_end
            continue
        if action == "nl":
            break
        tok = text[pos:tok_end]
        if action in ("push2", "push3"):
            tok_end -= int(action[-1])
            out.append(text[pos:tok_end])
        elif action in ("dup", "acronym"):
            out.append(tok[:-1] if action == "acronym" and len(tok) == 2 else tok)
            tok_end -= 1  # the period is lexed again, as its own token
        else:
            out.append(_apply(action, tok))
        pos = tok_end
    return out


# --- Lower-casing: Java's String.toLowerCase(Locale.ENGLISH), applied per token. It differs
# from str.lower() only for capital sigma, which becomes final sigma when a cased letter
# precedes it and none follows within the same word (Java's word-break rules, approximated:
# fuzzing leaves about one difference in 100,000 strings made of sigmas, marks and joiners).
# Characters that join two letters into one word (the typographic apostrophe does not).
_WORD_JOINERS = "-_\u2010\u2011\u2013\u2014.'"


def _ideographic(c: str) -> bool:
    """Ideographs and kana, which Java's word breaks keep out of other words."""
    return "\u2e80" <= c <= "\u9fff" or "\uf900" <= c <= "\ufaff"


def _letterish(c: str) -> bool:
    """Letters and combining marks, which continue a word."""
    return not _ideographic(c) and (c.isalpha() or unicodedata.category(c) in ("Mn", "Mc", "Me", "Lm"))


def _cased(c: str) -> bool:
    """Java's notion of a cased letter (lower, upper or title case, modifiers included)."""
    return c.islower() or c.isupper() or unicodedata.category(c) == "Lt"


def _joins(tok: str, j: int) -> bool:
    """Whether the joiner tok[j] (hyphen, period, apostrophe) sits between two letters: marks
    before it belong to the letter they follow; format characters after it are skipped, except
    a soft hyphen after anything but a period."""
    before, after = j - 1, j + 1
    while before >= 0 and unicodedata.category(tok[before]) in ("Mn", "Mc", "Me"):
        before -= 1
    while (after < len(tok) and unicodedata.category(tok[after]) == "Cf"
           and (tok[after] != "\xad" or tok[j] == ".")):
        after += 1
    return (before >= 0 and after < len(tok) and tok[before].isalpha() and tok[after].isalpha()
            and not _ideographic(tok[before]) and not _ideographic(tok[after]))


def _cased_neighbour(tok: str, k: int, step: int) -> bool:
    """Whether a cased letter sits next to tok[k] in direction step, within one word (format
    characters and combining marks do not break a word)."""
    j = k + step
    while 0 <= j < len(tok):
        c = tok[j]
        if _letterish(c) or c.isnumeric() and not _ideographic(c):
            if _cased(c):
                return True
        elif unicodedata.category(c) != "Cf" and not (c in _WORD_JOINERS and _joins(tok, j)):
            return False
        j += step
    return False


def _java_lower(tok: str) -> str:
    """tok.lower(), with Java's choice between final and medial sigma."""
    if "\u03a3" not in tok:
        return tok.lower()
    return "".join(
        ("\u03c2" if _cased_neighbour(tok, k, -1) and not _cased_neighbour(tok, k, 1) else "\u03c3")
        if c == "\u03a3" else c.lower()
        for k, c in enumerate(tok))


# --- Driving the lexer over captions.
# Captions that must be lexed whole: a token may span a space (SGML tag, phone number,
# "1 1/2", ". . ."), a space may run on into other blanks (the lexer skips the run as one, so
# the next piece would start inside it), or the lexer may end the line early. (Written to
# start with a character class, which the regex engine scans for quickly.)
_BLANKS = "\t\xa0\u2000-\u200a\u3000"  # the lexer's spaces other than ' '
_SCAN_WHOLE = _regex.compile(rf"[\d).<\r\x0b\x0c\u2028\u2029{_BLANKS}]"
                         rf"(?:(?<=[<\r\x0b\x0c\u2028\u2029])|(?<=[\d)]) \d|(?<=\.) \.|(?<= [{_BLANKS}]))")
# A piece's tokens depend on more than the character after it only when they end in a
# one-letter "X." (the next word may make it "X" + "."), in "no" + "." and the like (a digit
# next makes it "no."), in "PTY" + "." (" Ltd" next makes it "PTY."), or when "X." is followed
# by blanks; captions with such a piece are lexed whole.
_ONE_LETTER_DOT = _regex.compile("[A-Za-z]\\.")
_BEFORE_NEXT = frozenset(["ca", "fig", "figs", "prop", "no", "nos", "art", "pp", "op", "pty", "pte"])
_DOT_THEN_SPACE = _regex.compile(f"[A-Za-z]\\.[\\x85{_BLANKS}]+$")
# A piece of ASCII letters, maybe with one final punctuation mark, is a WORD token (and the mark,
# dropped), unless the letters are an assimilation or the mark a period that they keep.
_SIMPLE = _regex.compile("([A-Za-z]+)[,;:!?.]?")
_ASSIMILATIONS = frozenset(["cannot", "gonna", "gotta", "lemme", "gimme", "wanna"])
# Bounded memos of a space-free piece's output (lower-cased, punctuation dropped): _MIDDLE for
# pieces followed by a space, _LAST for the last piece, keyed with the character after it
# ('\n', or '' at the end of the input). _CONTEXTUAL marks pieces that need the full context.
_CACHE_SIZE = 1 << 16
_MIDDLE: dict[str, object] = {}
_LAST: dict[str, object] = {}
_CONTEXTUAL = object()
# How much text after a caption to keep for rules whose context crosses the line break: any
# whitespace, then this many characters (the longest such context is a word of at most 12
# letters and one more character, or an SGML tag).
_TAIL_CHARS = 256
_LEADING_SPACE = _regex.compile(f"[ {_BLANKS}\r\n\x0b\x0c\x85\u2028\u2029]*")


def _finish(tokens: list[str]) -> str:
    """What pycocoevalcap makes of the lexer's output line."""
    line = " ".join(_java_lower(t) for t in tokens).split("\n")[0].rstrip()
    return " ".join(w for w in line.split(" ") if w not in PUNCTUATIONS)


def _piece_output(piece: str, following: str) -> object:
    """Output of a piece, or _CONTEXTUAL if the caption must be lexed whole.

    That is when the piece's tokens depend on more than the next character, or when its last
    token ends in whitespace that pycocoevalcap's rstrip may remove at the end of the line.
    """
    simple = _SIMPLE.fullmatch(piece)
    if simple and simple[1].lower() not in _ASSIMILATIONS and not (piece[-1] == "." and _keeps_period(piece)):
        return simple[1].lower()
    tokens = _lex(piece + following, 0, len(piece))
    if tokens and (_ONE_LETTER_DOT.fullmatch(tokens[-1]) or tokens[-1] == "." and len(tokens) > 1
                   and tokens[-2].lower() in _BEFORE_NEXT or tokens[-1][-1].isspace()
                   or _DOT_THEN_SPACE.search(piece)):
        return _CONTEXTUAL
    return _finish(tokens)


@functools.cache
def _dotted() -> re.Pattern:
    """The words that keep their final period, compiled when first needed."""
    return _regex.compile(_TABLES["dotted"])


def _keeps_period(word: str) -> bool:
    """Whether word (ASCII letters and a period) is an abbreviation token."""
    return _dotted().fullmatch(word) is not None


def _memo(cache: dict[str, object], key: str, piece: str, following: str) -> object:
    value = _piece_output(piece, following)
    if len(cache) >= _CACHE_SIZE:
        cache.clear()
    cache[key] = value
    return value


def _tail(texts: list[str], i: int) -> str:
    """The input after caption i, as far as any rule's context can reach into it."""
    tail = ""
    for text in texts[i + 1:]:
        tail += "\n" + text
        if len(tail) - _LEADING_SPACE.match(tail).end() >= _TAIL_CHARS:
            break
    return tail


def _whole(texts: list[str], i: int) -> str:
    """Output for caption i, lexed whole with the text after it as context."""
    return _finish(_lex(texts[i] + _tail(texts, i), 0, len(texts[i])))


def tokenize(captions: list[str]) -> list[str]:
    """Each caption as pycocoevalcap's PTB tokenizer + punctuation removal leaves it:
    tokens joined by one space.

    Equals a reference run over the same list, including the reference's ways of letting a
    neighbour matter (see the module docstring); a caption's line breaks other than '\\n' end it.
    """
    texts = [c.replace("\n", " ") for c in captions]
    if _compiled is not None:  # the same loop in C for ASCII captions (_coco.ptb_tokenize)
        return _compiled.ptb_tokenize(
            texts, _MIDDLE, _LAST, lambda piece: _memo(_MIDDLE, piece, piece, " "),
            lambda piece, following: _memo(_LAST, piece + following, piece, following), _CONTEXTUAL,
            lambda i: _caption(texts, i, _SCAN_WHOLE.search(texts[i]) is not None),
            lambda i: _whole(texts, i))
    # One search over all captions for those that must be lexed whole ('\0' matches nothing).
    starts = list(itertools.accumulate((len(t) + 1 for t in texts), initial=0))
    whole = {bisect.bisect_right(starts, m.start()) - 1 for m in _SCAN_WHOLE.finditer("\0".join(texts))}
    return [_caption(texts, i, i in whole) for i in range(len(texts))]


def _caption(texts: list[str], i: int, whole: bool) -> str:
    """Caption i's output: lexed whole, or piece by piece from the memos."""
    if whole:
        return _whole(texts, i)
    text = texts[i]
    pieces = text.split(" ")
    last = pieces.pop()
    following = "\n" if i + 1 < len(texts) else ""
    values = list(map(_MIDDLE.get, pieces))
    if None in values:
        values = [_memo(_MIDDLE, piece, piece, " ") if v is None else v
                  for piece, v in zip(pieces, values, strict=True)]
    value = _LAST.get(last + following)
    values.append(_memo(_LAST, last + following, last, following) if value is None else value)
    return _whole(texts, i) if _CONTEXTUAL in values else " ".join(filter(None, values))
