"""ROUGE-L as the COCO caption evaluation computes it (not the rouge-score package).

COCO's variant uses beta = 1.2 and combines the best precision and the best recall over
the references, taken separately (they may come from different references); rouge-score
uses beta = 1 and the best F, which moves scores by ~4e-3. Tokens are split on single
spaces as the reference does, so an empty caption is one empty token. In C (_coco.pyx),
or with rapidfuzz's LCS where the extension is not built; same numbers.
"""

from __future__ import annotations

import numpy as np

from sonicaps.metrics.ngrams import CorpusNgrams, compiled, layout

BETA = 1.2


def rouge_l(candidates: list[str], references: list[list[str]], python: bool = False,
            ngrams: CorpusNgrams | None = None) -> tuple[float, np.ndarray]:
    """Corpus ROUGE-L (mean of items, as the reference) and per-item scores. ngrams: the
    corpus' n-gram table, whose words it reuses; python=True: the pure-Python path even
    where the extension is built (for tests)."""
    scores = np.zeros(len(candidates))
    if compiled is not None and not python:
        if ngrams is not None and ngrams.words is not None:
            words, ref_off = ngrams.words, ngrams.ref_off
        else:
            sentences, ref_off = layout(candidates, references)
            words = compiled.words(sentences)
        compiled.rouge_l(words, len(candidates), ref_off, BETA, scores)
    else:
        _rouge_python(candidates, references, scores)
    return float(np.mean(scores)) if len(scores) else 0.0, scores


def _rouge_python(candidates: list[str], references: list[list[str]], scores: np.ndarray) -> None:
    from rapidfuzz.distance import LCSseq

    for item, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
        cand_tokens = cand.split(" ")
        best_precision = best_recall = 0.0
        for ref in refs:
            ref_tokens = ref.split(" ")
            lcs = LCSseq.similarity(ref_tokens, cand_tokens)
            best_precision = max(best_precision, lcs / len(cand_tokens))
            best_recall = max(best_recall, lcs / len(ref_tokens))
        if best_precision != 0 and best_recall != 0:
            scores[item] = ((1 + BETA**2) * best_precision * best_recall) / (
                best_recall + BETA**2 * best_precision
            )
