"""sonicaps.metrics.tokenizer against the real pycocoevalcap tokenizer (Stanford PTBTokenizer, Java).

Each test tokenizes a batch with both and wants identical strings for every caption. The
reference is slow to start (a JVM per call), so every test makes as few calls as it can.
"""

from __future__ import annotations

import json
import os
import random

import pytest

from sonicaps.metrics.tokenizer import tokenize

# The awkward cases, in one batch. Order matters where the reference lets a neighbour matter:
# a one-letter "X." before a caption that starts with "The", "no." before one that starts with
# a digit, and the last caption (end of input, where "'99" loses its apostrophe).
TRICKY = [
    # case, clitics, assimilations
    "A Dog Barks LOUDLY.", "it's raining", "IT'S RAINING", "don't stop", "can't hear", "won't",
    "cannot", "CANNOT", "gonna", "wanna", "gotta lemme gimme", "gonna's", "gonna1", "gonna_",
    "they're here, we'll see, I'm sure, you've got it, I'd go", "ain't isn't shan't",
    "'tis 'twas", "y'all", "rock'n'roll", "'em", "'cause", "o'clock", "O'Malley", "ol' dog",
    "the dogs' bowls", "James's car", "somethin' else", "nor'easter", "c'mon", "cont'd",
    # unicode quotes and apostrophes
    "“quoted” speech", "‘single’ quotes", "a dog’s bark", "it’s loud", "don’t", "don‘t",
    "«guillemets»", "„low“ quotes", "‚single low‘", '"hello" he said', "''double''", "``tex''",
    "`backtick`", "&quot;x&quot; &apos;s", "it&apos;s",
    # hyphens, dashes, slashes
    "beep-beep", "high-pitched whine", "tick-tock", "wind-blown", "mid-1990s", "e-mail ding",
    "a--dash", "a---b a----b a-----b", "ok - fine", "-5 degrees", "a‐b non‑breaking", "x—y x–y",
    "on/off switch", "a/b/c", "1/2 3/4", "10/20/2020", "and/or",
    # numbers
    "3.5 1,000 50% 10s 1950s $5 #1", "a 3.5-second beep", "5 gunshots", "2 men talk",
    "1 1/2 cups", "20 100 1000", "(555) 123-4567", "555-1234", "5:30 pm", "2nd 3rd 1st",
    "'90s music", "the '99 season", "5km 5-km", "+5 -.5 .5", "½ ¼ ⅓ ⅔ ⅕", "x² H₂O",
    "£5 €5 ¢50 ¥5 ₹5", "US$5 A$", "1.5.6", "10-20 1990-91",
    # abbreviations and periods
    "U.S. police siren", "the u.s. army", "Mr. Smith and Dr. Who", "St. Louis", "e.g. this",
    "i.e., that", "etc.", "etc. etc.", "a.m. p.m.", "No. 5", "no.", "5 rooms", "fig. 3",
    "Inc. Co. Ltd.", "Jan. Sept.", "Mass. mass.", "vs. v.", "a.k.a. x", "Ph.D.", "pty. ltd",
    "PTY. LTD", "I like vitamin C.", "a b.", "The end", "plan b. It works", "x. the", "A. b",
    "dog.", "dog.,", "sound.wav, file.mp3 x.txt", "www.example.com", "http://x.org/a?b=c",
    "me@mail.com", "@user #tag", "c++ c# f#",
    # other punctuation
    "rock & roll", "AT&T at&t", "well... okay", "what?!", "wow!!!", "yes; no: maybe",
    "a…b", "(speaking) [distant] {static} <b>", "< a >", "<a href='x y'>link</a>", "<1>",
    ":) :-( ;) :P ^_^ (^-^)", "*stars* **", "= == +", "%", "~ | \\ ^", "@@ ## __", "a_b",
    "¡hola! ¿que?", "§ © ® ™ ° ±", "• · †",
    # whitespace, invisible and unusual characters
    "", " ", "   ", "\t", "...", "!!!", " , ", "-", "( )", "?", ".", "'", '"',
    "tabs\tand  double  spaces", "non\xa0breaking\u2009thin\u3000ideographic", "zero\u200bwidth",
    "soft\xadhyphen", "del\x7fchar", "nul\x00char", "nel\x85char", "bom\ufeffchar",
    "trailing space ", " leading space", "a \xa0x.com after blanks", "\xa0x.com first",
    "one-letter M.\x85 There", "b.\t It goes", "(x-x) o_o x_x",
    # model outputs
    "a dog <unk> barks", "[UNK] speaks", "birds chirp </s> <pad> <pad>", "<|endoftext|>",
    "a a a a dog dog barks barks barks", "<s> a man speaks </s>",
    # non-ASCII text
    "café naïve résumé", "Straße ß İstanbul", "ΟΔΟΣ ΣΟΦΟΣ", "狗叫声", "собака лает",
    "कुत्ता भौंकता", "كلب ينبح", "e\u0301 a\u0308", "ﬁ ǅ ＡＢＣ １２", "dog 🐶 barks 😀", "👍🏽",
    # last: end of input
    "the '99 season ends :)",
]

# Line breaks the Java lexer sees besides '\n' (which pycocoevalcap replaces by a space). The
# reference splits such a caption over several lines, so each is checked alone.
LINE_BREAKS = ["a dog\rbarks loudly", "\rstarts with a return", "ends with a return\r",
               "a dog\u2028barks", "form\x0cfeed and vertical\x0btab", "<a b='x\ry'> z\u2029w"]

WORDS = ("a dog barks man woman speaks car engine idles bird chirps rain falls loudly softly in the "
         "distance background while then and with wind blows people talk child laughs water "
         "splashes siren wails music plays door slams phone rings clock ticks it there he she they "
         "no fig etc mr dr st vs us tv ok x b i a e").split()
CAPITALIZED = ["The", "A", "An", "It", "He", "She", "They", "This", "There", "But", "I", "You",
               "Mr.", "Now", "One", "So", "We", "What", "When", "While", "Their", "Who"]
CLITICS = ["'s", "'re", "'ve", "'ll", "'m", "'d", "n't", "’s", "n’t", "'S", "N'T", "'", "’", "s'"]
PUNCT = list(".,!?;:'\"()[]{}/&%$#@*+=~<>|\\^_`-") + [
    "...", "?!", "--", "…", "“", "”", "‘", "’", "—", "–", "«", "»", "„", "‚", "·", "°", "€", "£",
    "½", "²", "¡", "¿"]
NUMBERS = ["0", "1", "5", "10", "12", "100", "1,000", "3.5", ".5", "50%", "10s", "1950s", "'90s",
           "2nd", "$5", "#1", "5:30", "1/2", "1-2", "10-20", "-5", "5km", "mp3", "555-1234"]
ABBREVIATIONS = ["U.S.", "u.s.", "e.g.", "i.e.", "a.m.", "etc.", "Mr.", "Dr.", "St.", "No.",
                 "no.", "fig.", "vs.", "Inc.", "Jan.", "Mass.", "x.", "b.", "A.", "pty."]
UNICODE = ["café", "naïve", "Straße", "Σ", "狗", "собака", "कुत्ता", "🐶", "e\u0301", "\xad",
           "\u200b", "\x85", "\u2010", "\xa0", "\u3000", "\x7f"]
SPACES = [" "] * 12 + ["  ", "\t", "\xa0", "\u2009", " \t "]


def random_caption(rng: random.Random) -> str:
    """Words, clitics, numbers, abbreviations, quotes, brackets and odd spacing, at random."""
    parts = []
    for _ in range(rng.choice([0, 1, 2, 4, 6, 9, 12, 16])):
        r = rng.random()
        if r < 0.5:
            word = rng.choice(WORDS)
        elif r < 0.58:
            word = rng.choice(CAPITALIZED)
        elif r < 0.66:
            word = rng.choice(NUMBERS)
        elif r < 0.72:
            word = rng.choice(ABBREVIATIONS)
        elif r < 0.78:
            word = rng.choice(UNICODE)
        elif r < 0.86:
            word = rng.choice(WORDS) + rng.choice(CLITICS)
        elif r < 0.92:
            word = rng.choice(WORDS) + rng.choice("-‐_/'’.&") + rng.choice(WORDS)
        else:
            word = "".join(rng.choice(PUNCT + WORDS) for _ in range(rng.randint(1, 4)))
        if rng.random() < 0.15:
            word = word.capitalize()
        if rng.random() < 0.03:
            word = word.upper()
        if rng.random() < 0.2:
            word += rng.choice(PUNCT)
        if rng.random() < 0.08:
            word = rng.choice(PUNCT) + word
        parts += [word, rng.choice(SPACES)]
    text = "".join(parts)
    if rng.random() < 0.5:
        text = text.strip()
    if rng.random() < 0.3:
        text += rng.choice([".", "!", "?", "...", " ."])
    return text


@pytest.fixture(scope="module")
def reference():
    """pycocoevalcap's tokenizer (Java); CI must have java, elsewhere a missing java skips."""
    from coco_reference import java_available, reference_tokenize

    if not java_available():
        if os.environ.get("CI"):
            pytest.fail("java is missing: scripts/setup.sh installs default-jre-headless")
        pytest.skip("java is missing (run scripts/setup.sh): the reference tokenizer cannot run")
    return reference_tokenize


def assert_same(captions: list[str], expected: list[str], got: list[str]) -> None:
    assert len(got) == len(captions)
    bad = [(c, e, g) for c, e, g in zip(captions, expected, got, strict=True) if e != g]
    if bad:
        lines = [f"{len(bad)} of {len(captions)} captions differ; first ones:"]
        for caption, exp, mine in bad[:15]:
            lines.append(f"  caption   {caption!r}\n  reference {exp!r}\n  sonicaps  {mine!r}")
        pytest.fail("\n".join(lines))


def test_semicolons_are_dropped_like_other_punctuation():
    """';' is one of the marks pycocoevalcap drops, alone or attached to a word, a number
    or a clitic. Expected strings recorded from the reference (pycocoevalcap 1.2's Java
    tokenizer); no Java needed here, so this runs everywhere, fast."""
    captions = ["A dog barks ; a man speaks", "rain falls;wind blows", "5; 6 dogs", "the dog's; the cat's",
                "yes; no: maybe", "a;b;c"]
    assert tokenize(captions) == ["a dog barks a man speaks", "rain falls wind blows", "5 6 dogs",
                                  "the dog 's the cat 's", "yes no maybe", "a b c"]


def test_tricky_captions(reference):
    assert_same(TRICKY, reference(TRICKY), tokenize(TRICKY))


def test_line_breaks_other_than_newline(reference):
    """The reference gives such a caption, alone, the tokens before its first line break."""
    for caption in LINE_BREAKS:
        assert_same([caption], reference([caption]), tokenize([caption]))


def test_large_generated_corpus(reference):
    from corpora import corpus

    candidates, references = corpus(300, seed=11)
    rng = random.Random(2024)
    captions = candidates + [r for refs in references for r in refs]
    captions += [random_caption(rng) for _ in range(5000)]
    assert_same(captions, reference(captions), tokenize(captions))


def test_lexer_tables_cache_is_rebuilt_when_damaged(tmp_path, monkeypatch):
    from sonicaps.metrics import ptb_rules, tokenizer

    monkeypatch.setattr(tokenizer, "cache_dir", lambda: tmp_path)
    derived = ptb_rules.tables()
    assert tokenizer._lexer_tables() == derived  # derived, then cached
    (cached,) = (tmp_path / "ptb").iterdir()
    assert tokenizer._lexer_tables() == derived  # read back
    cached.write_text('{"rules": [')  # a damaged file is derived again and replaced
    assert tokenizer._lexer_tables() == derived
    assert json.loads(cached.read_text()) == derived


def test_without_the_extension_the_tokens_are_the_same(monkeypatch):
    """Where the C loop over captions is not built, the Python one gives the same tokens
    (the reference tests above run whichever is built)."""
    from corpora import corpus

    from sonicaps.metrics import tokenizer

    if tokenizer._compiled is None:
        pytest.skip("the C extension is not built: nothing to compare")
    candidates, references = corpus(200, seed=12)
    rng = random.Random(7)
    captions = TRICKY + candidates + [r for refs in references for r in refs]
    captions += [random_caption(rng) for _ in range(3000)]
    compiled = tokenize(captions)
    monkeypatch.setattr(tokenizer, "_compiled", None)
    tokenizer._MIDDLE.clear()
    tokenizer._LAST.clear()
    assert_same(captions, compiled, tokenize(captions))


def test_patterns_made_from_cached_engine_code_equal_re_compile(tmp_path, monkeypatch):
    """sonicaps.metrics._regex keeps the regex engine's code of the metrics' fixed patterns
    on disk (compiling them took ~15 ms a run); a pattern made from it must equal
    re.compile's (Pattern equality compares the pattern, the flags and the engine code)."""
    import re

    from sonicaps.metrics import _regex, meteor, tokenizer

    monkeypatch.setattr("sonicaps.sources.cache_dir", lambda: tmp_path)
    monkeypatch.setattr(_regex, "_cache", None)
    patterns = [(f"({tok}){ctx or ''}", re.DOTALL) for tok, ctx, _ in tokenizer._RULES]
    patterns += [(tokenizer._TABLES["dotted"], 0)]
    patterns += [(p.pattern, p.flags & ~re.UNICODE) for module in (tokenizer, meteor)
                 for p in vars(module).values() if isinstance(p, re.Pattern)]
    first = [_regex.compile(p, f) for p, f in patterns]  # compiled, and cached on disk
    monkeypatch.setattr(_regex, "_cache", None)
    again = [_regex.compile(p, f) for p, f in patterns]  # made from the file
    assert _regex._cache and len(_regex._cache) == len(set(patterns))
    for (pattern, flags), a, b in zip(patterns, first, again, strict=True):
        assert a == b == re.compile(pattern, flags), pattern
    # A damaged file is ignored (and rewritten).
    _regex._path().write_bytes(b"\x00damaged")
    monkeypatch.setattr(_regex, "_cache", None)
    assert _regex.compile("(a)b") == re.compile("(a)b")
