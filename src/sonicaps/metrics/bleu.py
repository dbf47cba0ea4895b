"""BLEU-1..4 exactly as the COCO caption evaluation (pycocoevalcap's BleuScorer) computes it.

The COCO definition differs from sacrebleu/nltk in ways that move scores by ~1e-3: the
reference length is the closest one (ties go to the shorter), every precision is
(correct + 1e-15) / (guess + 1e-9) instead of a smoothing method, the corpus score comes
from clipped counts summed over all items, and the brevity penalty applies per item for
the per-item scores and once on summed lengths for the corpus score.
"""

from __future__ import annotations

import math
from collections import Counter
from itertools import chain

import numpy as np

MAX_N = 4
# The reference implementation's guards against division by zero; they shape the
# scores of empty and very short candidates, so they are part of the definition.
TINY = 1e-15
SMALL = 1e-9


def ngram_counts(words: list[str], n: int = MAX_N) -> Counter:
    """Counts of all 1..n-grams; keys are the n-gram's words joined by one space.

    Space-joined strings hash faster than tuples and Counter counts them in C; the
    order of an n-gram is its number of spaces.
    """
    grams = [words]
    for k in range(2, n + 1):
        grams.append(map(" ".join, zip(*(words[i:] for i in range(k)), strict=False)))
    return Counter(chain.from_iterable(grams))


def bleu(candidates: list[str], references: list[list[str]],
         n: int = MAX_N) -> tuple[list[float], np.ndarray]:
    """Corpus BLEU-1..n and per-item scores (shape (n, items)) on tokenized strings."""
    correct_total = [0] * n
    guess_total = [0] * n
    testlen_total = reflen_total = 0
    per_item = np.zeros((n, len(candidates)))
    for item, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
        ref_max: dict[str, int] = {}
        ref_lens = []
        for ref in refs:
            words = ref.split()
            ref_lens.append(len(words))
            for gram, count in ngram_counts(words, n).items():
                if count > ref_max.get(gram, 0):
                    ref_max[gram] = count
        words = cand.split()
        testlen = len(words)
        reflen = min((abs(length - testlen), length) for length in ref_lens)[1]
        correct = [0] * n
        for gram, count in ngram_counts(words, n).items():
            correct[gram.count(" ")] += min(ref_max.get(gram, 0), count)
        guess = [max(0, testlen - k) for k in range(n)]
        testlen_total += testlen
        reflen_total += reflen
        for k in range(n):
            correct_total[k] += correct[k]
            guess_total[k] += guess[k]
        per_item[:, item] = _combine(correct, guess, testlen, reflen)
    return _combine(correct_total, guess_total, testlen_total, reflen_total), per_item


def _combine(correct: list[int], guess: list[int], testlen: int, reflen: int) -> list[float]:
    """Geometric means of the first k precisions, times the brevity penalty."""
    scores = []
    product = 1.0
    for k in range(len(correct)):
        product *= (float(correct[k]) + TINY) / (float(guess[k]) + SMALL)
        scores.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + TINY) / (reflen + SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        scores = [s * penalty for s in scores]
    return scores
