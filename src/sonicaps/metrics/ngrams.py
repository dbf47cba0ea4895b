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


def count_corpus(candidates: list[str], references: list[list[str]], n: int = MAX_N) -> CorpusNgrams:
    """Count every sentence once, in numpy: words get integer ids, and a k-gram's id is the
    rank of (id of its first k-1 words, id of its last word) among all k-grams, so no
    n-gram string is ever built and the cost is a few sorts over the corpus."""
    sentences = list(candidates) + [r for refs in references for r in refs]
    ref_item = np.repeat(np.arange(len(references)), [len(refs) for refs in references])
    tokens = [text.split() for text in sentences]
    lengths = np.fromiter(map(len, tokens), dtype=np.int64, count=len(tokens))
    words = list(chain.from_iterable(tokens))
    vocab = {w: i for i, w in enumerate(dict.fromkeys(words))}
    word = np.fromiter(map(vocab.__getitem__, words), dtype=np.int64, count=len(words))
    position_sentence = np.repeat(np.arange(len(sentences), dtype=np.int64), lengths)
    vocab_size = max(len(vocab), 1)

    row_sentence, row_gram = [position_sentence], [word]
    first_id = [0]  # first n-gram id of each order
    offset, previous = len(vocab), word  # previous[i]: id of the (k-1)-gram starting at word i
    for k in range(2, n + 1):
        first_id.append(offset)
        m = max(len(word) - k + 1, 0)
        starts = np.flatnonzero(position_sentence[:m] == position_sentence[k - 1 : k - 1 + m])
        unique, local = np.unique(previous[starts] * vocab_size + word[starts + k - 1], return_inverse=True)
        row_sentence.append(position_sentence[starts])
        row_gram.append(local + offset)
        offset += len(unique)
        previous = np.full(len(word), -1, dtype=np.int64)
        previous[starts] = local
    grams = offset
    keys, count = np.unique(np.concatenate(row_sentence) * grams + np.concatenate(row_gram),
                            return_counts=True)
    gram = keys % grams
    # Ids are allotted order by order, so an id's order follows from where it falls.
    order = np.searchsorted(np.array(first_id), gram, side="right") - 1
    return CorpusNgrams(len(candidates), ref_item, keys // grams, gram, count.astype(np.float64), order,
                        grams)


def lookup(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    """values[keys == q] for each query, 0 where a query is absent (keys unique)."""
    if len(keys) == 0:
        return np.zeros(len(queries))
    sort = np.argsort(keys)
    keys, values = keys[sort], values[sort]
    pos = np.minimum(np.searchsorted(keys, queries), len(keys) - 1)
    return np.where(keys[pos] == queries, values[pos], 0.0)
