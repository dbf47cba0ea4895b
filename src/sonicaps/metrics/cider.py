"""CIDEr-D as the COCO caption evaluation computes it.

Details that decide the numbers: idf comes from the references of the corpus being
scored (document frequency counts an item once over the union of its references'
n-grams, idf = log(N) - log(max(1, df)) with N the number of items), so the same caption
scores differently in a different corpus; candidate tf-idf weights are clipped at the
reference's; the Gaussian length penalty (sigma 6) uses the number of *bigrams*, not
words, as the reference implementation does; scores average over n = 1..4 and over
references, times 10.

Computed from the corpus n-gram table (ngrams.py) with array arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from sonicaps.metrics.ngrams import MAX_N, CorpusNgrams, count_corpus, lookup

SIGMA = 6.0


def cider_d(candidates: list[str], references: list[list[str]], n: int = MAX_N, sigma: float = SIGMA,
            ngrams: CorpusNgrams | None = None) -> tuple[float, np.ndarray]:
    """Corpus CIDEr-D (mean of items, as the reference) and per-item scores."""
    c = ngrams if ngrams is not None else count_corpus(candidates, references, n)
    items, refs = c.items, len(c.ref_item)
    if items == 0:
        return 0.0, np.zeros(0)
    sentences = items + refs
    is_ref, row_item = c.is_ref, c.row_item

    # Document frequency: an n-gram counts once per item, over the union of its references.
    keys = np.sort(row_item[is_ref] * c.n_grams + c.gram[is_ref])
    keys = keys[np.diff(keys, prepend=-1) != 0]  # sort + diff: np.unique's hashing is slower here
    df = np.bincount(keys % c.n_grams, minlength=c.n_grams).astype(np.float64)
    idf = math.log(float(items)) - np.log(np.maximum(1.0, df))
    weight = c.count * idf[c.gram]

    slot = c.sentence * n + c.order
    norm = np.sqrt(np.bincount(slot, weights=weight * weight, minlength=sentences * n)).reshape(sentences, n)
    bigrams = np.bincount(c.sentence, weights=c.count * (c.order == 1), minlength=sentences)

    # Each reference n-gram meets the candidate's weight for it (0 when absent), clipped.
    cand = ~is_ref
    cand_weight = lookup(row_item[cand] * c.n_grams + c.gram[cand], weight[cand],
                         row_item[is_ref] * c.n_grams + c.gram[is_ref])
    ref_weight = weight[is_ref]
    sim = np.bincount((c.sentence[is_ref] - items) * n + c.order[is_ref],
                      weights=np.minimum(cand_weight, ref_weight) * ref_weight,
                      minlength=refs * n).reshape(refs, n).astype(np.float64)  # float even when empty

    denom = norm[c.ref_item] * norm[items:]
    sim = np.divide(sim, denom, out=sim, where=denom != 0)
    delta = bigrams[c.ref_item] - bigrams[items:]
    sim *= (math.e ** (-(delta**2) / (2 * sigma**2)))[:, None]
    per_item_order = np.stack([np.bincount(c.ref_item, weights=sim[:, k], minlength=items)
                               for k in range(n)], axis=1)
    scores = per_item_order.mean(axis=1) / np.bincount(c.ref_item, minlength=items) * 10.0
    return float(np.mean(scores)), scores
