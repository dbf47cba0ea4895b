"""Run the reference COCO caption evaluation (pycocoevalcap 1.2, Java) on a corpus.

Parity tests and benchmarks/metrics_speed.py compare sonicaps against these numbers.
Needs `java` on PATH and the pycocoevalcap wheel (scripts/setup.sh installs both).
"""

from __future__ import annotations

import contextlib
import io
import shutil

import numpy as np


def java_available() -> bool:
    return shutil.which("java") is not None


def reference_tokenize(captions: list[str]) -> list[str]:
    """pycocoevalcap's PTBTokenizer + punctuation removal, one output string per caption."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    out = PTBTokenizer().tokenize({i: [{"caption": c}] for i, c in enumerate(captions)})
    return [out[i][0] for i in range(len(captions))]


def reference_scores(
    candidates: list[str],
    references: list[list[str]],
    metrics: tuple[str, ...] = ("bleu", "meteor", "rouge_l", "cider_d"),
    tokenized: bool = False,
) -> dict:
    """Corpus scores and per-item arrays, keyed like sonicaps.metrics.score."""
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    gts = {i: [{"caption": r} for r in refs] for i, refs in enumerate(references)}
    res = {i: [{"caption": c}] for i, c in enumerate(candidates)}
    if tokenized:
        gts = {i: [d["caption"] for d in v] for i, v in gts.items()}
        res = {i: [d["caption"] for d in v] for i, v in res.items()}
    else:
        tok = PTBTokenizer()
        gts, res = tok.tokenize(gts), tok.tokenize(res)
    out: dict = {"per_item": {}}
    quiet = contextlib.redirect_stdout(io.StringIO())
    if "bleu" in metrics:
        from pycocoevalcap.bleu.bleu import Bleu

        with quiet:
            corpus, per_item = Bleu(4).compute_score(gts, res)
        for n in range(4):
            out[f"bleu_{n + 1}"] = corpus[n]
            out["per_item"][f"bleu_{n + 1}"] = np.asarray(per_item[n], dtype=float)
    if "meteor" in metrics:
        from pycocoevalcap.meteor.meteor import Meteor

        scorer = Meteor()
        corpus, per_item = scorer.compute_score(gts, res)
        del scorer
        out["meteor"], out["per_item"]["meteor"] = corpus, np.asarray(per_item, dtype=float)
    if "rouge_l" in metrics:
        from pycocoevalcap.rouge.rouge import Rouge

        corpus, per_item = Rouge().compute_score(gts, res)
        out["rouge_l"], out["per_item"]["rouge_l"] = corpus, np.asarray(per_item, dtype=float)
    if "cider_d" in metrics:
        from pycocoevalcap.cider.cider import Cider

        corpus, per_item = Cider().compute_score(gts, res)
        out["cider_d"], out["per_item"]["cider_d"] = corpus, np.asarray(per_item, dtype=float)
    return out
