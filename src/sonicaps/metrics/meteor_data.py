"""METEOR 1.5 resources, read from the installed pycocoevalcap wheel without Java.

The jar's resources (function words, nonbreaking prefixes, WordNet exceptions and
synsets) and the paraphrase table (61 MB gzip, 5.3 M entries) are turned once into an
index under $SONICAPS_CACHE/meteor/ (default ~/.cache/sonicaps/meteor/), in a folder named
after the sha256 of both sources and written atomically: the small resources as JSON, the
synsets and the table as arrays. A warm process maps the arrays, looks up only the words
of the corpus being scored and pulls out only the paraphrase entries whose words all
occur in it.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import cache
from itertools import repeat
from pathlib import Path

import numpy as np

from sonicaps.sources import cache_dir, write_atomic

try:  # the paraphrase search in C (_meteor.pyx); absent when installed without a compiler
    from sonicaps.metrics import _meteor as _compiled
except ImportError:
    _compiled = None

PYCOCOEVALCAP = "pycocoevalcap==1.2"
JAR = "meteor/meteor-1.5.jar"
PARAPHRASE = "meteor/data/paraphrase-en.gz"
# Resources inside the jar that `-l en` loads.
FUNCTION_WORDS = "function/english.words"
NONBREAKING_PREFIXES = "nonbreaking/english.prefixes"
SYNSETS = "synonym/english.synsets"
EXCEPTIONS = "synonym/english.exceptions"
# Bump when the on-disk index layout changes.
INDEX_VERSION = 2
# Nonbreaking prefix kinds (edu.cmu.meteor.util.Constants.NBP_*).
NBP_ANY, NBP_NUMERIC_ONLY = 1, 2
# java.util.StringTokenizer's default delimiters, mapped to a space.
_JAVA_DELIMS = str.maketrans("\t\n\r\f", "    ")
# Decompressed bytes parsed per step while building (bounds the build's memory).
_CHUNK = 1 << 25


class MeteorResourcesMissing(RuntimeError):
    """pycocoevalcap (which ships the METEOR jar and paraphrase table) is not installed."""


def java_tokens(text: str) -> list[str]:
    """Tokens as java.util.StringTokenizer splits them (only space, tab, CR, LF, FF)."""
    return [t for t in text.translate(_JAVA_DELIMS).split(" ") if t]


def java_lines(text: str) -> list[str]:
    """Lines as BufferedReader.readLine returns them (no trailing empty line)."""
    lines = text.split("\n") if "\r" not in text else re.split("\r\n|\r|\n", text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


@cache
def resource_paths() -> tuple[Path, Path]:
    """(meteor-1.5.jar, paraphrase-en.gz) inside the installed pycocoevalcap package."""
    # pycocoevalcap is a namespace package (no __init__.py): find_spec gives its folders.
    spec = importlib.util.find_spec("pycocoevalcap")
    roots = list(spec.submodule_search_locations or []) if spec is not None else []
    for root in map(Path, roots):
        jar, para = root / JAR, root / PARAPHRASE
        if jar.is_file() and para.is_file():
            return jar, para
    where = f" (looked in {', '.join(roots)})" if roots else ""
    raise MeteorResourcesMissing(
        f"METEOR needs meteor-1.5.jar and paraphrase-en.gz from the pycocoevalcap wheel{where}; "
        f"install it with: pip install {PYCOCOEVALCAP}"
    )


def index_root() -> Path:
    return cache_dir() / "meteor"


def fingerprint(path: Path, root: Path) -> tuple[str, int]:
    """(sha256, size) of a file. The hash is remembered per (size, mtime, inode) in
    root/sources.json so that a warm start does not re-read 67 MB."""
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    memo_path = root / "sources.json"
    try:
        memo = json.loads(memo_path.read_text())
    except (OSError, ValueError):
        memo = {}
    entry = memo.get(str(path))
    if isinstance(entry, dict) and entry.get("stamp") == stamp:
        return entry["sha256"], st.st_size
    from sonicaps.weights import sha256_file  # here: hashlib is needed only when the memo misses

    digest = sha256_file(path)
    memo[str(path)] = {"stamp": stamp, "sha256": digest}
    root.mkdir(parents=True, exist_ok=True)
    write_atomic(memo_path, json.dumps(memo, indent=1).encode())
    return digest, st.st_size


# The header of the .npy files np.save writes (format 1.0): a dict literal.
_NPY_HEADER = re.compile(rb"\{'descr': '([^']+)', 'fortran_order': False, 'shape': \(([0-9, ]*)\), \}")


def map_npy(path: Path) -> np.ndarray:
    """A read-only array mapped from a .npy file that np.save wrote, as
    np.load(path, mmap_mode="r") gives it (a plain array over the map): np.load reads the
    header with ast.literal_eval and builds a memmap, ~0.2 ms a file, and a scoring run maps
    twenty of them. Other headers go through np.load."""
    import mmap

    with open(path, "rb") as f:
        head = f.read(10)
        size = int.from_bytes(head[8:10], "little") if head[:8] == b"\x93NUMPY\x01\x00" else -1
        m = _NPY_HEADER.match(f.read(size)) if size >= 0 else None
        if m is None:
            return np.asarray(np.load(path, mmap_mode="r"))
        shape = tuple(int(x) for x in m.group(2).split(b",") if x.strip())
        count = int(np.prod(shape)) if shape else 1
        if count == 0:  # (mmap cannot map the nothing after the header)
            empty = np.zeros(shape, dtype=m.group(1).decode())
            empty.flags.writeable = False
            return empty
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    array = np.frombuffer(mapped, dtype=m.group(1).decode(), count=count, offset=10 + size)
    return array if len(shape) == 1 else array.reshape(shape)


class SortedWords:
    """Words sorted as UTF-8 in a fixed-width, memory-mapped array, looked up a batch at a
    time: scoring a corpus needs a few thousand of the resources' 150k words, and parsing
    all of them into a dict or list would take longer than the scoring's own lookups."""

    def __init__(self, words: np.ndarray):
        self.words = words
        self._rows = words.view(np.uint8).reshape(len(words), words.itemsize) if len(words) else None

    def find(self, words: list[str]) -> np.ndarray:
        """Position of each word, -1 where it is absent."""
        if not words or not len(self.words):
            return np.full(len(words), -1, dtype=np.int64)
        if _compiled is not None:
            return np.frombuffer(_compiled.find_words(self._rows, words, _utf8), dtype=np.int64)
        encoded = [_utf8(w) for w in words]
        # Fixed-width bytes drop trailing NULs and truncate: such queries cannot be found.
        fits = np.array([len(e) <= self.words.itemsize and b"\0" not in e for e in encoded])
        query = np.array(encoded, dtype=f"S{self.words.itemsize}")
        pos = np.minimum(np.searchsorted(self.words, query), len(self.words) - 1)
        return np.where(fits & (self.words[pos] == query), pos, -1)


def _utf8(word: str) -> bytes:
    try:
        return word.encode("utf-8")
    except UnicodeEncodeError:  # in UTF-16 units, as METEOR's words are: pairs become code points
        units = word.encode("utf-16-le", "surrogatepass")
        return units.decode("utf-16-le", "surrogatepass").encode("utf-8", "surrogatepass")


def _sorted_words(words: list[str]) -> np.ndarray:
    """Words as a sorted fixed-width UTF-8 array (the order of str comparison)."""
    encoded = sorted(w.encode("utf-8") for w in words)
    return np.array(encoded, dtype=f"S{max(map(len, encoded), default=1)}")


class ParaphraseIndex:
    """The paraphrase table as arrays.

    Unique phrases are stored as token ids, grouped by their rarest token (`key_off`,
    CSR over the vocabulary), so a corpus only visits phrases whose rarest word it
    contains. Entries are grouped by their first phrase (`ent_off`, CSR over phrases)
    and keep their record number in the table (`ent_record`), which decides match order.
    """

    def __init__(self, folder: Path):
        def load(name: str) -> np.ndarray:  # a plain view of the map: indexing a memmap is slower
            return map_npy(folder / f"{name}.npy")

        self.folder = folder
        self.vocab = load("vocab")  # UTF-8 words by id
        self.sorted_vocab, self.sorted_vocab_id = SortedWords(load("vocab_sorted")), load("vocab_sorted_id")
        self.key_off, self.phrase_tok, self.phrase_off, self.ent_off, self.ent_record, self.ent_p2 = map(
            load, ("key_off", "phrase_tok", "phrase_off", "ent_off", "ent_record", "ent_p2"))

    def entries_within(self, words: Iterable[str]) -> list[tuple[int, tuple[str, ...], tuple[str, ...]]]:
        """(record, phrase, paraphrase) for every entry whose words are all in `words`."""
        pos = self.sorted_vocab.find(list(words))
        ids = np.sort(self.sorted_vocab_id[pos[pos >= 0]]).astype(np.int64)
        if ids.size == 0:
            return []
        if _compiled is not None:
            found = _compiled.entries_within(self.key_off, self.phrase_off, self.phrase_tok, self.ent_off,
                                             self.ent_p2, ids)
            ents, p1, p2 = (np.frombuffer(a, dtype=np.int64) for a in found)
        else:
            ents, p1, p2 = self._search(ids)
        pids = np.sort(np.concatenate((p1, p2)))
        text = self.phrases(pids[np.diff(pids, prepend=-1) != 0])  # (np.unique would import numpy.ma)
        return [(rec, text[a], text[b]) for rec, a, b in
                zip(np.asarray(self.ent_record[ents]).tolist(), p1.tolist(), p2.tolist(), strict=True)]

    def _search(self, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """_meteor.entries_within in numpy: (entries, phrases, paraphrases)."""
        empty = np.zeros(0, dtype=np.int64)
        known = np.zeros(len(self.vocab), dtype=bool)
        known[ids] = True
        cand = _ranges(self.key_off, ids)
        if cand.size == 0:
            return empty, empty, empty
        lo, hi = np.asarray(self.phrase_off[cand]), np.asarray(self.phrase_off[cand + 1])
        ok = np.logical_and.reduceat(known[self.phrase_tok[_spans(lo, hi)]], _starts(lo, hi))
        phrases = cand[ok]
        good = np.zeros(len(self.phrase_off) - 1, dtype=bool)
        good[phrases] = True
        ents = _ranges(self.ent_off, phrases)
        p1 = np.repeat(phrases, np.asarray(self.ent_off[phrases + 1] - self.ent_off[phrases]))
        p2 = np.asarray(self.ent_p2[ents])
        keep = good[p2]
        return ents[keep], p1[keep], p2[keep]

    def phrases(self, pids: np.ndarray) -> dict[int, tuple[str, ...]]:
        """The words of these phrases, gathered in one pass (thousands per corpus)."""
        lo, hi = np.asarray(self.phrase_off[pids]), np.asarray(self.phrase_off[pids + 1])
        toks = self.phrase_tok[_spans(lo, hi)]
        distinct, where = np.unique(toks, return_inverse=True)
        text = [w.decode("utf-8") for w in self.vocab[distinct].tolist()]
        words = [text[i] for i in where.tolist()]
        ends = np.cumsum(hi - lo).tolist()
        return {pid: tuple(words[end - n:end])
                for pid, n, end in zip(pids.tolist(), (hi - lo).tolist(), ends, strict=True)}


def _ranges(off: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """Concatenation of range(off[r], off[r + 1]) for each row r."""
    return _spans(np.asarray(off[rows]), np.asarray(off[rows + 1]))


def _spans(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Concatenation of range(lo[k], hi[k]) for each k, without a Python loop."""
    lengths = hi - lo
    total = int(lengths.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    steps = np.ones(total, dtype=np.int64)
    starts = _starts(lo, hi)
    nonempty = lengths > 0
    steps[starts[nonempty]] = lo[nonempty] - np.concatenate(([0], (hi - 1)[nonempty][:-1]))
    return np.cumsum(steps)


def _starts(lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Where each span starts in that concatenation."""
    return np.concatenate(([0], np.cumsum(hi - lo)[:-1])).astype(np.int64)


@dataclass(frozen=True)
class MeteorResources:
    """Everything edu.cmu.meteor loads for `-l en`, ready for lookups."""

    function_words: frozenset[str]
    nonbreaking: dict[str, int]  # prefix -> NBP_ANY or NBP_NUMERIC_ONLY
    exceptions: dict[str, list[str]]  # irregular form -> base forms (WordNet exceptions)
    syn_words: SortedWords  # words that have synsets
    syn_ids: bytes  # their synset ids (space-separated, as in the jar), concatenated
    syn_ids_off: np.ndarray  # where each word's ids start in syn_ids, and the end
    paraphrases: ParaphraseIndex
    _synsets: dict[str, str | None] = field(default_factory=dict)  # words looked up so far

    def synset_ids(self, word: str) -> str | None:
        """The synset ids of a word (space-separated), None if it has none."""
        if word not in self._synsets:
            self.look_up_synsets([word])
        return self._synsets[word]

    def look_up_synsets(self, words: Iterable[str]) -> None:
        """Look these words up in one batch, for the synset_ids calls that follow."""
        new = [w for w in set(words) if w not in self._synsets]
        off = self.syn_ids_off
        for word, i in zip(new, self.syn_words.find(new).tolist(), strict=True):
            self._synsets[word] = None if i < 0 else self.syn_ids[off[i]:off[i + 1]].decode("utf-8")


def _read_jar(jar: Path) -> tuple[frozenset[str], dict[str, int], dict[str, list[str]]]:
    import zipfile  # the build's modules are imported when an index is built, not at start-up

    with zipfile.ZipFile(jar) as z:
        words = java_lines(z.read(FUNCTION_WORDS).decode("utf-8"))
        prefixes = java_lines(z.read(NONBREAKING_PREFIXES).decode("utf-8"))
        exceptions = java_lines(z.read(EXCEPTIONS).decode("utf-8"))
    nonbreaking: dict[str, int] = {}
    for line in prefixes:
        toks = java_tokens(line)
        if not toks or toks[0].startswith("#"):
            continue
        nonbreaking[toks[0]] = NBP_NUMERIC_ONLY if len(toks) > 1 and toks[1] == "#NUMERIC_ONLY#" else NBP_ANY
    # Line pairs: a base form, then its irregular forms.
    exc: dict[str, list[str]] = {}
    for base, forms in zip(exceptions[0::2], exceptions[1::2], strict=False):
        for form in java_tokens(forms):
            exc.setdefault(form, []).append(base)
    return frozenset(words), nonbreaking, exc


def _build_synonyms(jar: Path, folder: Path) -> None:
    import zipfile

    with zipfile.ZipFile(jar) as z:
        lines = java_lines(z.read(SYNSETS).decode("utf-8"))
    # Line pairs: a word, then its synset ids; a later pair for the same word wins.
    syn = dict(zip(lines[0::2], lines[1::2], strict=False))
    words = _sorted_words(list(syn))
    ids = [syn[w.decode("utf-8")].encode("utf-8") for w in words.tolist()]
    np.save(folder / "syn_words.npy", words)
    np.save(folder / "syn_ids_off.npy", np.cumsum([0] + [len(i) for i in ids], dtype=np.int64))
    (folder / "syn_ids.bin").write_bytes(b"".join(ids))
    function_words, nonbreaking, exceptions = _read_jar(jar)
    (folder / "jar.json").write_text(json.dumps({"function_words": sorted(function_words),
                                                 "nonbreaking": nonbreaking, "exceptions": exceptions}))


def _table_lines(source: Path):
    """Complete 3-line records of the paraphrase table, a chunk at a time, as bytes."""
    import gzip

    pending = b""
    with gzip.open(source, "rb") as f:
        while data := f.read(_CHUNK):
            if b"\r" in data:  # readLine would split there: records would not line up
                raise ValueError(f"{source}: carriage returns are not supported")
            lines = (pending + data).split(b"\n")
            n = (len(lines) - 1) // 3 * 3  # the last piece may be an unfinished line
            pending = b"\n".join(lines[n:])
            yield lines[:n]
    lines = pending.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    if len(lines) % 3:
        raise ValueError(f"{source}: truncated last record")
    if lines:
        yield lines


def _build_paraphrases(source: Path, folder: Path) -> None:
    """Parse paraphrase-en.gz (records: probability, phrase, paraphrase) into the index."""
    phrase_id: dict[bytes, int] = {}
    entry_p1, entry_p2 = array("i"), array("i")
    prev, prev_id = None, -1
    for lines in _table_lines(source):
        for row in lines[1::3]:  # the table is sorted by phrase: mostly repeats
            if row != prev:
                prev, prev_id = row, phrase_id.setdefault(row, len(phrase_id))
            entry_p1.append(prev_id)
        entry_p2.extend(_ids(lines[2::3], phrase_id))
    word_id: dict[bytes, int] = {}
    tok, lengths = array("i"), array("i")
    phrases = list(phrase_id)  # in id order
    del phrase_id  # frees the table before the arrays are built
    for lo in range(0, len(phrases), 1 << 18):
        batch = phrases[lo:lo + (1 << 18)]
        joined = b" ".join(batch)
        # Phrases are single-space separated, so a split on b" " is what StringTokenizer does.
        if (any(c in joined for c in (b"\t", b"\r", b"\f", b"  ")) or joined[:1] == b" "
                or joined[-1:] == b" " or not batch[0] or not batch[-1]):
            raise ValueError(f"{source}: phrases are not single-space separated")
        tok.extend(_ids(joined.split(b" "), word_id))
        lengths.extend(map(len, map(bytes.split, batch, repeat(b" "))))
    del phrases
    vocab = list(word_id)  # UTF-8, in id order
    if len(vocab) >= 2**16:
        raise ValueError(f"{source}: unexpected vocabulary")
    tok_a, len_a = np.frombuffer(tok, dtype=np.int32).astype(np.int64), np.frombuffer(lengths, dtype=np.int32)
    off = np.concatenate(([0], np.cumsum(len_a))).astype(np.int64)
    # Key each phrase by its rarest token (ties: lowest id), and order phrases by key.
    n_words = len(vocab)
    freq = np.bincount(tok_a, minlength=n_words).astype(np.int64)
    key = np.minimum.reduceat(freq[tok_a] * n_words + tok_a, off[:-1]) % n_words
    order = np.argsort(key, kind="stable")
    new_id = np.empty_like(order)
    new_id[order] = np.arange(len(order))
    p1 = new_id[np.frombuffer(entry_p1, dtype=np.int32)]
    p2 = new_id[np.frombuffer(entry_p2, dtype=np.int32)]
    by_p1 = np.argsort(p1, kind="stable")  # keeps table order within a phrase
    save = {
        "key_off": np.searchsorted(key[order], np.arange(n_words + 1)),
        "phrase_tok": tok_a[_ranges(off, order)].astype(np.uint16),
        "phrase_off": np.concatenate(([0], np.cumsum(len_a[order]))),
        "ent_off": np.searchsorted(p1[by_p1], np.arange(len(order) + 1)),
        "ent_record": by_p1.astype(np.int32),
        "ent_p2": p2[by_p1].astype(np.int32),
    }
    vocab_arr = np.array(vocab, dtype=f"S{max(map(len, vocab), default=1)}")
    by_word = np.argsort(vocab_arr, kind="stable")
    save.update(vocab=vocab_arr, vocab_sorted=vocab_arr[by_word], vocab_sorted_id=by_word.astype(np.int32))
    for name, arr in save.items():
        np.save(folder / f"{name}.npy", arr)


def _ids(keys: list[bytes], table: dict[bytes, int]) -> list[int]:
    """Ids of keys in table, adding unseen keys in order of appearance."""
    ids = list(map(table.get, keys))
    for i, known in enumerate(ids):
        if known is None:
            ids[i] = table.setdefault(keys[i], len(table))
    return ids


@cache
def load_resources() -> MeteorResources:
    """All resources; the index is built on first use (under a minute) and reused."""
    jar, source = resource_paths()
    root = index_root()
    jar_sha, jar_size = fingerprint(jar, root)
    para_sha, para_size = fingerprint(source, root)
    folder = root / f"index-v{INDEX_VERSION}-{jar_sha[:12]}-{para_sha[:12]}"
    manifest = {"version": INDEX_VERSION, "jar_sha256": jar_sha, "jar_size": jar_size,
                "paraphrase_sha256": para_sha, "paraphrase_size": para_size}
    if not _is_current(folder, manifest):
        _build(jar, source, root, folder, manifest)
    small = json.loads((folder / "jar.json").read_bytes())
    return MeteorResources(
        frozenset(small["function_words"]), small["nonbreaking"], small["exceptions"],
        SortedWords(map_npy(folder / "syn_words.npy")),
        (folder / "syn_ids.bin").read_bytes(),
        map_npy(folder / "syn_ids_off.npy"),
        ParaphraseIndex(folder),
    )


def _is_current(folder: Path, manifest: dict) -> bool:
    try:
        return json.loads((folder / "manifest.json").read_text()) == manifest
    except (OSError, ValueError):
        return False


def _build(jar: Path, source: Path, root: Path, folder: Path, manifest: dict) -> None:
    """Build in a private folder, then rename it into place (a rename is atomic)."""
    import shutil
    import tempfile

    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=root, prefix=".build-"))
    try:
        _build_synonyms(jar, tmp)
        _build_paraphrases(source, tmp)
        (tmp / "manifest.json").write_text(json.dumps(manifest))
        if _is_current(folder, manifest):
            return  # another process finished the same build first
        shutil.rmtree(folder, ignore_errors=True)  # a stale or partial folder
        try:
            os.replace(tmp, folder)
        except OSError:
            if not _is_current(folder, manifest):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
