"""CIDEr-D as the COCO caption evaluation computes it.

Details that decide the numbers: idf comes from the references of the corpus being
scored (document frequency counts an item once over the union of its references'
n-grams, idf = log(N) - log(max(1, df)) with N the number of items), so the same caption
scores differently in a different corpus; candidate tf-idf weights are clipped at the
reference's; the Gaussian length penalty (sigma 6) uses the number of *bigrams*, not
words, as the reference implementation does; scores average over n = 1..4 and over
references, times 10.

The reference loops over n-grams in Python dictionaries, twice per reference. Here every
sentence is counted once into one flat (sentence, n-gram, count) table and the rest is
array arithmetic: ~10x faster, and memory is the table (16 bytes per n-gram occurrence)
rather than a dictionary per sentence.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from sonicaps.metrics.bleu import ngram_counts

MAX_N = 4
SIGMA = 6.0


@dataclass
class NgramTable:
    """One row per (sentence, distinct n-gram) with its count; n-gram ids index `order`."""

    sentence: np.ndarray  # int32 sentence index
    gram: np.ndarray  # int32 n-gram id
    count: np.ndarray  # float64 occurrences in the sentence
    order: np.ndarray  # int8 per n-gram id: n - 1


def ngram_table(sentences: list[str], n: int = MAX_N, chunk: int = 20_000) -> NgramTable:
    """Count every sentence once; n-gram ids are assigned chunk by chunk with C-level set
    and dict operations, so the per-n-gram work never runs in the Python interpreter."""
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
            np.repeat(np.arange(start, start + len(lengths), dtype=np.int32), lengths),
            np.fromiter(map(vocab.__getitem__, keys), dtype=np.int32, count=len(keys)),
            np.array(values, dtype=np.float64),
        ))
    order = np.zeros(len(vocab), dtype=np.int8)
    order[list(vocab.values())] = [g.count(" ") for g in vocab]
    if not parts:
        return NgramTable(np.zeros(0, np.int32), np.zeros(0, np.int32), np.zeros(0), order)
    sentence, gram, count = (np.concatenate(column) for column in zip(*parts, strict=True))
    return NgramTable(sentence, gram, count, order)


def cider_d(
    candidates: list[str], references: list[list[str]], n: int = MAX_N, sigma: float = SIGMA
) -> tuple[float, np.ndarray]:
    """Corpus CIDEr-D (mean of items, as the reference) and per-item scores."""
    items = len(candidates)
    if items == 0:
        return 0.0, np.zeros(0)
    n_refs = np.array([len(refs) for refs in references], dtype=np.int64)
    ref_item = np.repeat(np.arange(items), n_refs)
    table = ngram_table(candidates + [r for refs in references for r in refs], n)
    sentences = items + len(ref_item)
    grams = len(table.order)
    # The item each row belongs to: candidates are sentences 0..items-1, references follow.
    row_item = np.where(table.sentence < items, table.sentence, ref_item[table.sentence - items])
    is_ref = table.sentence >= items
    row_order = table.order[table.gram].astype(np.int64)

    # Document frequency: an n-gram counts once per item, over the union of its references.
    keys = np.sort(row_item[is_ref].astype(np.int64) * grams + table.gram[is_ref])
    keys = keys[np.concatenate(([True], keys[1:] != keys[:-1]))] if len(keys) else keys
    df = np.bincount(keys % grams, minlength=grams).astype(np.float64)
    idf = math.log(float(items)) - np.log(np.maximum(1.0, df))
    weight = table.count * idf[table.gram]

    slot = table.sentence.astype(np.int64) * n + row_order
    norm = np.sqrt(np.bincount(slot, weights=weight * weight, minlength=sentences * n)).reshape(sentences, n)
    bigrams = np.bincount(table.sentence, weights=table.count * (row_order == 1), minlength=sentences)

    # Candidate weight of each reference row's n-gram (0 when the candidate lacks it).
    cand_key = row_item[~is_ref].astype(np.int64) * grams + table.gram[~is_ref]
    sort = np.argsort(cand_key)
    cand_key, cand_weight = cand_key[sort], weight[~is_ref][sort]
    ref_key = row_item[is_ref].astype(np.int64) * grams + table.gram[is_ref]
    pos = np.minimum(np.searchsorted(cand_key, ref_key), max(len(cand_key) - 1, 0))
    found = cand_key[pos] == ref_key if len(cand_key) else np.zeros(len(ref_key), dtype=bool)
    ref_weight = weight[is_ref]
    clipped = np.where(found, np.minimum(cand_weight[pos] if len(cand_key) else 0.0, ref_weight), 0.0)
    ref_index = table.sentence[is_ref].astype(np.int64) - items
    sim = np.bincount(ref_index * n + row_order[is_ref], weights=clipped * ref_weight,
                      minlength=len(ref_item) * n).reshape(len(ref_item), n)

    denom = norm[ref_item] * norm[items:]
    sim = np.divide(sim, denom, out=sim, where=denom != 0)
    delta = bigrams[ref_item] - bigrams[items:]
    sim *= (math.e ** (-(delta**2) / (2 * sigma**2)))[:, None]
    per_item_order = np.zeros((items, n))
    np.add.at(per_item_order, ref_item, sim)
    scores = per_item_order.mean(axis=1) / n_refs * 10.0
    return float(np.mean(scores)), scores
