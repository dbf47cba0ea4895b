"""BLEU-1..n exactly as the COCO caption evaluation (pycocoevalcap's BleuScorer) computes it.

The COCO definition differs from sacrebleu/nltk in ways that move scores by ~1e-3: the
reference length is the closest one (ties go to the shorter), every precision is
(correct + 1e-15) / (guess + 1e-9) instead of a smoothing method, the corpus score comes
from clipped counts summed over all items, and the brevity penalty applies per item for
the per-item scores and once on summed lengths for the corpus score. Computed in C
(_coco.pyx) or, without the extension, by _bleu_python; both repeat the reference's
floating point operations, so the scores are bit-identical to it.
"""

from __future__ import annotations

import math

import numpy as np

from sonicaps.metrics.ngrams import MAX_N, CorpusNgrams, compiled, count_corpus

# The reference implementation's guards against division by zero; they shape the
# scores of empty and very short candidates, so they are part of the definition.
TINY = 1e-15
SMALL = 1e-9


def bleu(candidates: list[str], references: list[list[str]], n: int = MAX_N,
         ngrams: CorpusNgrams | None = None) -> tuple[list[float], np.ndarray]:
    """Corpus BLEU-1..n and per-item scores (shape (n, items)) on tokenized strings.
    ngrams: the corpus' n-gram table, if already counted (it must hold n-grams up to n)."""
    c = ngrams if ngrams is not None else count_corpus(candidates, references, n)
    if c.n < n:
        raise ValueError(f"BLEU-{n} needs {n}-grams; the table holds 1..{c.n}")
    per_item = np.zeros((n, c.items))
    if c.items == 0:
        return [0.0] * n, per_item
    if c.compiled:
        return compiled.bleu(c.table, c.items, c.ref_off, n, per_item), per_item
    return _bleu_python(c, n, per_item), per_item


def _bleu_python(c: CorpusNgrams, n: int, per_item: np.ndarray) -> list[float]:
    """_coco.bleu in Python."""
    table, items, ref_off = c.python_table(), c.items, c.ref_off.tolist()
    total_correct, total_guess, total_testlen, total_reflen = [0] * n, [0] * n, 0, 0
    for i in range(items):
        testlen, counts = table[i]
        refs = table[items + ref_off[i]:items + ref_off[i + 1]]
        reflen = min((abs(length - testlen), length) for length, _ in refs)[1]
        most: dict[tuple[str, ...], int] = {}
        for _, ref_counts in refs:
            for gram, count in ref_counts.items():
                if count > most.get(gram, 0):
                    most[gram] = count
        correct = [0] * n
        for gram, count in counts.items():
            if len(gram) <= n:
                correct[len(gram) - 1] += min(most.get(gram, 0), count)
        guess = [max(0, testlen - k) for k in range(n)]
        per_item[:, i] = _scores(correct, guess, testlen, reflen)
        total_correct = [a + b for a, b in zip(total_correct, correct, strict=True)]
        total_guess = [a + b for a, b in zip(total_guess, guess, strict=True)]
        total_testlen += testlen
        total_reflen += reflen
    return _scores(total_correct, total_guess, total_testlen, total_reflen)


def _scores(correct: list[int], guess: list[int], testlen: int, reflen: int) -> list[float]:
    """Geometric means of the first k precisions, times the brevity penalty."""
    out, product = [], 1.0
    for k, (right, tried) in enumerate(zip(correct, guess, strict=True)):
        product *= (right + TINY) / (tried + SMALL)
        out.append(product ** (1.0 / (k + 1)))
    ratio = (testlen + TINY) / (reflen + SMALL)
    if ratio < 1:
        penalty = math.exp(1 - 1 / ratio)
        out = [x * penalty for x in out]
    return out
