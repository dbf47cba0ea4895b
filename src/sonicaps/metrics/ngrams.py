"""Every sentence of a corpus counted into 1..4-grams once, as one flat table.

BLEU and CIDEr-D both start from n-gram counts of the candidates and references. The
reference implementations keep a Python dictionary per sentence and loop over it; here
the counts go into arrays (sentence, n-gram id, count) and both metrics are array
arithmetic over them, which is ~10x faster and costs 16 bytes per distinct n-gram of a
sentence instead of a dictionary per sentence.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from itertools import chain

import numpy as np

MAX_N = 4


def ngram_counts(words: list[str], n: int = MAX_N) -> Counter:
    """Counts of all 1..n-grams; keys are the n-gram's words joined by one space.

    Space-joined strings hash faster than tuples and Counter counts them in C; the
    order of an n-gram is its number of spaces.
    """
    grams = [words]
    for k in range(2, n + 1):
        grams.append(map(" ".join, zip(*(words[i:] for i in range(k)), strict=False)))
    return Counter(chain.from_iterable(grams))


@dataclass
class CorpusNgrams:
    """Candidates are sentences 0..items-1; the references follow, item by item."""

    items: int
    ref_item: np.ndarray  # int64: the item of each reference, non-decreasing
    sentence: np.ndarray  # int64 per row: sentence index
    gram: np.ndarray  # int64 per row: n-gram id
    count: np.ndarray  # float64 per row: occurrences of the n-gram in the sentence
    order: np.ndarray  # int64 per row: n - 1
    n_grams: int  # number of distinct n-grams in the corpus

    @property
    def is_ref(self) -> np.ndarray:
        return self.sentence >= self.items

    @property
    def row_item(self) -> np.ndarray:
        return np.where(self.is_ref, self.ref_item[np.maximum(self.sentence - self.items, 0)], self.sentence)

    def lengths(self) -> np.ndarray:
        """Words per sentence (unigram occurrences)."""
        sentences = self.items + len(self.ref_item)
        return np.bincount(self.sentence, weights=self.count * (self.order == 0), minlength=sentences)


def count_corpus(candidates: list[str], references: list[list[str]], n: int = MAX_N,
                 chunk: int = 20_000) -> CorpusNgrams:
    """Count every sentence once; n-gram ids are assigned chunk by chunk with C-level set
    and dict operations, so no per-n-gram work runs in the interpreter."""
    sentences = list(candidates) + [r for refs in references for r in refs]
    vocab: dict[str, int] = {}
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for start in range(0, len(sentences), chunk):
        keys: list[str] = []
        values: list[int] = []
        lengths: list[int] = []
        for text in sentences[start : start + chunk]:
            counts = ngram_counts(text.split(), n)
            keys.extend(counts)
            values.extend(counts.values())
            lengths.append(len(counts))
        new = dict.fromkeys(keys).keys() - vocab.keys()
        vocab.update(zip(new, range(len(vocab), len(vocab) + len(new)), strict=True))
        parts.append((
            np.repeat(np.arange(start, start + len(lengths), dtype=np.int64), lengths),
            np.fromiter(map(vocab.__getitem__, keys), dtype=np.int64, count=len(keys)),
            np.array(values, dtype=np.float64),
        ))
    gram_order = np.zeros(len(vocab), dtype=np.int64)
    gram_order[list(vocab.values())] = [g.count(" ") for g in vocab]
    if parts:
        sentence, gram, count = (np.concatenate(column) for column in zip(*parts, strict=True))
    else:
        sentence, gram, count = np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    ref_item = np.repeat(np.arange(len(references)), [len(refs) for refs in references])
    return CorpusNgrams(len(candidates), ref_item, sentence, gram, count, gram_order[gram], len(vocab))


def lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == q] for each query, 0 where a query is absent (keys unique)."""
    if len(keys) == 0:
        return np.zeros(len(queries))
    sort = np.argsort(keys)
    keys, values = keys[sort], values[sort]
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[pos] == queries, values[pos], 0.0)
