"""A stand-in for SPICE, shared by make.py (patched into aac-metrics) and the parity tests
(patched into sonicaps).

SPICE needs Stanford CoreNLP 3.6.0, which cannot be had here, so neither aac-metrics nor
sonicaps can run it. SPIDEr, SPIDEr-max and SPIDEr-FL only combine SPICE's per-item
F-scores with CIDEr-D and the fluency detector; replacing SPICE on both sides by the same
deterministic function checks everything around it. This one is unigram-set F1 against the
union of the references: a number in [0, 1] that varies between items as SPICE does.
"""

from __future__ import annotations


def spice_items(candidates: list[str], references: list[list[str]]) -> list[float]:
    scores = []
    for cand, refs in zip(candidates, references, strict=True):
        c = set(cand.split())
        r = {w for ref in refs for w in ref.split()}
        hit = len(c & r)
        scores.append(0.0 if hit == 0 else 2 * hit / (len(c) + len(r)))
    return scores
