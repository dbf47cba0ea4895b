"""CIDEr-D as the COCO caption evaluation computes it.

Details that decide the numbers: idf comes from the references of the corpus being
scored (document frequency counts an item once over the union of its references'
n-grams, idf = log(N) - log(max(1, df)) with N the number of items), so the same caption
scores differently in a different corpus; candidate tf-idf weights are clipped at the
reference's; the Gaussian length penalty (sigma 6) uses the number of *bigrams*, not
words, as the reference implementation does; scores average over n = 1..4 and over
references, times 10.

Computed in C (_coco.pyx) or, without the extension, by _cider_python; both sum in the
reference's order and take its logarithms from numpy, so the scores are bit-identical to
pycocoevalcap's.
"""

from __future__ import annotations

import math

import numpy as np

from sonicaps.metrics.ngrams import MAX_N, CorpusNgrams, compiled, count_corpus

SIGMA = 6.0


def cider_d(candidates: list[str], references: list[list[str]], n: int = MAX_N, sigma: float = SIGMA,
            ngrams: CorpusNgrams | None = None) -> tuple[float, np.ndarray]:
    """Corpus CIDEr-D (mean of items, as the reference) and per-item scores.
    ngrams: the corpus' n-gram table, if already counted (it must hold n-grams up to n)."""
    c = ngrams if ngrams is not None else count_corpus(candidates, references, n)
    if c.n < n:
        raise ValueError(f"CIDEr-D over 1..{n}-grams needs them; the table holds 1..{c.n}")
    if c.items == 0:
        return 0.0, np.zeros(0)
    ref_len = np.log(float(c.items))
    if c.compiled and n < 8:
        df = np.zeros(c.table.n_grams, dtype=np.int32)
        compiled.doc_freq(c.table, c.items, c.ref_off, n, df)
        scores = np.zeros(c.items)
        compiled.cider_d(c.table, c.items, c.ref_off, n, sigma, ref_len, df, _log_table(df), scores)
    else:
        if c.compiled:
            c = count_corpus(candidates, references, n, python=True)
        scores = _cider_python(c, n, sigma, ref_len)
    return float(np.mean(scores)), scores


def _log_table(df: np.ndarray) -> np.ndarray:
    """np.log(max(1.0, d)) at each document frequency d that occurs, each computed as the
    reference computes it (a numpy scalar; numpy's log may differ from the C library's)."""
    table = np.zeros(int(df.max(initial=0)) + 1)
    present = np.zeros(len(table), dtype=bool)
    present[df] = True
    for d in np.flatnonzero(present).tolist():
        table[d] = np.log(max(1.0, float(d)))
    return table


def _cider_python(c: CorpusNgrams, n: int, sigma: float, ref_len: float) -> np.ndarray:
    """_coco.cider_d in Python: CiderScorer.compute_cider's arithmetic, in its order."""
    table, items, ref_off = c.python_table(), c.items, c.ref_off.tolist()
    df: dict[tuple[str, ...], int] = {}
    for i in range(items):
        grams = {g for _, counts in table[items + ref_off[i]:items + ref_off[i + 1]] for g in counts
                 if len(g) <= n}
        for g in grams:
            df[g] = df.get(g, 0) + 1
    logs: dict[int, float] = {}

    def vector(counts: dict[tuple[str, ...], int]) -> tuple[list[dict], list[float], int]:
        vec: list[dict[tuple[str, ...], float]] = [{} for _ in range(n)]
        norm, bigrams = [0.0] * n, 0
        for gram, count in counts.items():
            k = len(gram) - 1
            if k >= n:
                continue
            d = df.get(gram, 0)
            log_df = logs.get(d)
            if log_df is None:
                log_df = logs[d] = np.log(max(1.0, float(d)))
            vec[k][gram] = w = float(count) * (ref_len - log_df)
            norm[k] += math.pow(w, 2.0)
            if k == 1:
                bigrams += count
        return vec, [math.sqrt(x) for x in norm], bigrams

    scores = np.zeros(items)
    for i in range(items):
        vec, norm, bigrams = vector(table[i][1])
        score = [0.0] * n
        refs = table[items + ref_off[i]:items + ref_off[i + 1]]
        for _, ref_counts in refs:
            ref_vec, ref_norm, ref_bigrams = vector(ref_counts)
            delta = float(bigrams - ref_bigrams)
            penalty = math.e ** (-(delta ** 2) / (2 * sigma ** 2))
            for k in range(n):
                val = 0.0
                for gram, weight in vec[k].items():
                    ref_weight = ref_vec[k].get(gram, 0.0)
                    val += min(weight, ref_weight) * ref_weight
                if norm[k] != 0 and ref_norm[k] != 0:
                    val /= norm[k] * ref_norm[k]
                score[k] += val * penalty
        scores[i] = np.mean(np.array(score)) / len(refs) * 10.0
    return scores
