"""BERTScore with several references, as aac-metrics 0.5.5 computes it.

aac-metrics pairs each candidate with each of its references, scores the pairs with
torchmetrics' bert_score (roberta-large, last hidden layer, no idf, no baseline rescaling,
at most 64 tokens), keeps the best reference per item (max of precision, recall and F1
separately), replaces NaN by 0 and averages items. sonicaps calls the same torchmetrics
function with the same arguments, so the numbers agree by construction; torchmetrics
batches the model on CPU or GPU.
"""

from __future__ import annotations

import os
from functools import lru_cache

import numpy as np
import torch

from sonicaps.metrics.models import DEFAULT_BERT_SCORE, device, from_hub

MAX_LENGTH = 64


@lru_cache(maxsize=2)
def load_model(spec: str = DEFAULT_BERT_SCORE, device_name: str | None = None):
    from transformers import AutoModel, AutoTokenizer

    def load(local: bool):
        return (AutoModel.from_pretrained(spec, local_files_only=local),
                AutoTokenizer.from_pretrained(spec, local_files_only=local))

    model, tokenizer = load(True) if os.path.isdir(spec) else from_hub("bert_score", spec, load)
    return model.eval().to(device(device_name)), tokenizer


def bert_score(candidates: list[str], references: list[list[str]], spec: str = DEFAULT_BERT_SCORE,
               device_name: str | None = None, batch_size: int = 32
               ) -> dict[str, tuple[float, np.ndarray]]:
    """{"bert_score.precision" | ".recall" | ".f1": (corpus, per-item)}."""
    from torchmetrics.functional.text.bert import bert_score as tm_bert_score
    from transformers import logging as hf_logging

    model, tokenizer = load_model(spec, device_name)
    sizes = [len(refs) for refs in references]
    pairs_c = [c for c, n in zip(candidates, sizes, strict=True) for _ in range(n)]
    pairs_r = [r for refs in references for r in refs]
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        raw = tm_bert_score(preds=pairs_c, target=pairs_r, model=model, user_tokenizer=tokenizer,
                            device=device(device_name), batch_size=batch_size, num_threads=0,
                            max_length=MAX_LENGTH, idf=False)
    finally:
        hf_logging.set_verbosity(verbosity)
    bounds = np.cumsum([0] + sizes)
    out = {}
    for key in ("precision", "recall", "f1"):
        values = torch.as_tensor(raw[key], dtype=torch.float32).reshape(-1)
        best = torch.stack([values[a:b].max() for a, b in zip(bounds[:-1], bounds[1:], strict=True)])
        best = best.masked_fill(best.isnan(), 0.0)
        out[f"bert_score.{key}"] = (float(best.mean()), best.double().numpy())
    return out
