"""Vocabulary statistics as aac-metrics 0.5.5's `vocab` computes them.

The candidates' vocabulary size (distinct tokens over the corpus), the references' (all of
them, and the mean over draws of one reference per item, the number of draws being the
largest reference count), their ratios, and the overlap of the two vocabularies
(precision, recall, F1, Jaccard). The draws use torch's generator seeded with 1234, one
torch.randint per item, as aac-metrics does, so the averages agree exactly.
"""

from __future__ import annotations

import numpy as np
import torch

SEED = 1234


def vocab(candidates: list[str], references: list[list[str]], seed: int = SEED
          ) -> tuple[dict[str, float], np.ndarray]:
    """Corpus statistics keyed as aac-metrics ("vocab.cands", ...) and the per-item
    number of distinct tokens of each candidate."""
    tok_c = [c.split() for c in candidates]
    tok_r = [[r.split() for r in refs] for refs in references]
    cand_vocab = {w for c in tok_c for w in c}
    ref_vocab = {w for refs in tok_r for r in refs for w in r}
    inter = cand_vocab & ref_vocab
    n_cands = float(len(cand_vocab))
    per_item = np.array([len(set(c)) for c in tok_c], dtype=np.float64)
    generator = torch.Generator().manual_seed(seed)
    draws = max(len(refs) for refs in tok_r)
    sizes = []
    for _ in range(draws):
        drawn: set[str] = set()
        for refs in tok_r:
            drawn.update(refs[int(torch.randint(0, len(refs), (), generator=generator))])
        sizes.append(len(drawn))
    mrefs_avg = float(torch.as_tensor(sizes, dtype=torch.float64).mean())
    precision = len(inter) / len(cand_vocab) if cand_vocab else float("nan")
    recall = len(inter) / len(ref_vocab) if ref_vocab else float("nan")
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else float("nan")
    with np.errstate(divide="ignore", invalid="ignore"):
        corpus = {
            "vocab.cands": n_cands,
            "vocab.mrefs_full": float(len(ref_vocab)),
            "vocab.ratio_full": float(np.float64(n_cands) / len(ref_vocab)),
            "vocab.mrefs_avg": mrefs_avg,
            "vocab.ratio_avg": float(np.float64(n_cands) / mrefs_avg),
            "vocab.precision": precision,
            "vocab.recall": recall,
            "vocab.f1": f1,
            "vocab.jaccard": len(inter) / len(union) if (union := cand_vocab | ref_vocab) else float("nan"),
        }
    return corpus, per_item
