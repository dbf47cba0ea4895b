"""BLEU-1..4 exactly as the COCO caption evaluation (pycocoevalcap's BleuScorer) computes it.

The COCO definition differs from sacrebleu/nltk in ways that move scores by ~1e-3: the
reference length is the closest one (ties go to the shorter), every precision is
(correct + 1e-15) / (guess + 1e-9) instead of a smoothing method, the corpus score comes
from clipped counts summed over all items, and the brevity penalty applies per item for
the per-item scores and once on summed lengths for the corpus score.
"""

from __future__ import annotations

import math

import numpy as np

from sonicaps.metrics.ngrams import MAX_N, CorpusNgrams, count_corpus, lookup

# The reference implementation's guards against division by zero; they shape the
# scores of empty and very short candidates, so they are part of the definition.
TINY = 1e-15
SMALL = 1e-9


def bleu(candidates: list[str], references: list[list[str]], n: int = MAX_N,
         ngrams: CorpusNgrams | None = None) -> tuple[list[float], np.ndarray]:
    """Corpus BLEU-1..n and per-item scores (shape (n, items)) on tokenized strings."""
    c = ngrams if ngrams is not None else count_corpus(candidates, references, n)
    items = c.items
    if items == 0:
        return [0.0] * n, np.zeros((n, 0))
    is_ref, row_item = c.is_ref, c.row_item
    # Clipping: each candidate n-gram counts at most its largest count in one reference.
    ref_key = row_item[is_ref] * c.n_grams + c.gram[is_ref]
    sort = np.argsort(ref_key)
    ref_key, ref_count = ref_key[sort], c.count[is_ref][sort]
    starts = np.flatnonzero(np.diff(ref_key, prepend=-1))
    ref_max = np.maximum.reduceat(ref_count, starts) if len(starts) else ref_count
    cand = ~is_ref
    cand_key = row_item[cand] * c.n_grams + c.gram[cand]
    clipped = np.minimum(c.count[cand], lookup(ref_key[starts], ref_max, cand_key))
    correct = np.bincount(row_item[cand] * n + c.order[cand], weights=clipped,
                          minlength=items * n).reshape(items, n)

    lengths = c.lengths()
    testlen, ref_lens = lengths[:items], lengths[items:]
    # Closest reference length, ties to the shorter: minimise (|difference|, length).
    big = float(ref_lens.max(initial=0) + testlen.max(initial=0) + 1)
    closeness = np.abs(ref_lens - testlen[c.ref_item]) * big + ref_lens
    first_ref = np.concatenate(([0], np.cumsum(np.bincount(c.ref_item, minlength=items))[:-1]))
    reflen = np.minimum.reduceat(closeness, first_ref) % big
    guess = np.maximum(0.0, testlen[:, None] - np.arange(n)[None, :])

    per_item = _combine(correct, guess, testlen, reflen)
    corpus = _combine(correct.sum(axis=0, keepdims=True), guess.sum(axis=0, keepdims=True),
                      testlen.sum(keepdims=True), reflen.sum(keepdims=True))
    return [float(x) for x in corpus[:, 0]], per_item


def _combine(correct: np.ndarray, guess: np.ndarray, testlen: np.ndarray, reflen: np.ndarray) -> np.ndarray:
    """Geometric means of the first k precisions times the brevity penalty; shape (n, rows).

    The products are numpy's (the same sequence of float64 multiplications as the
    reference's loop); the roots and the penalty go through Python's float ** and math.exp,
    as the reference's do: numpy's vectorised pow and exp may round the last bit otherwise."""
    n = correct.shape[1]
    products = np.cumprod((correct + TINY) / (guess + SMALL), axis=1)
    roots = [1.0 / (k + 1) for k in range(n)] * len(products)
    scores = np.array([p ** e for p, e in zip(products.ravel().tolist(), roots, strict=True)]).reshape(-1, n)
    ratio = ((testlen + TINY) / (reflen + SMALL)).tolist()
    penalty = np.array([math.exp(1 - 1 / r) if r < 1 else 1.0 for r in ratio])
    return (scores * penalty[:, None]).T
