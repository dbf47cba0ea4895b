"""Caption metrics as one call: the COCO suite (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE,
SPIDEr) with the COCO tokenization, plus SBERT-sim, and the AudioCaps human upper bound."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence

import numpy as np

from sonicaps.metrics.parallel import ForkedWorker, worker_processes

CAPTION_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
                   "spider", "sbert_sim")
# Names that stand for several metrics.
GROUPS = {
    "bleu": ("bleu_1", "bleu_2", "bleu_3", "bleu_4"),
    "coco": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d"),
    "all": CAPTION_METRICS,
}
# Metrics computed on PTB-tokenized text; SBERT-sim embeds the raw captions.
TOKENIZED = frozenset(CAPTION_METRICS) - {"sbert_sim"}


def resolve_metrics(metrics: str | Sequence[str] | None) -> tuple[list[str], bool]:
    """Metric names in canonical order, and whether the user asked for them explicitly."""
    if metrics is None:
        return list(CAPTION_METRICS), False
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    wanted: set[str] = set()
    for name in metrics:
        key = name.lower().replace("-", "_")
        if key in GROUPS:
            wanted.update(GROUPS[key])
        elif key in CAPTION_METRICS:
            wanted.add(key)
        else:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(CAPTION_METRICS)} "
                             f"or the groups {', '.join(GROUPS)}")
    return [m for m in CAPTION_METRICS if m in wanted], True


def _label(index: int, ids: Sequence | None) -> str:
    return f"item {index} (id {ids[index]!r})" if ids is not None else f"item {index}"


def check_inputs(candidates: Sequence[str], references: Sequence[Sequence[str]],
                 ids: Sequence | None = None) -> None:
    """Raise TypeError/ValueError naming the first offending item."""
    if isinstance(candidates, str) or not isinstance(candidates, Sequence):
        raise TypeError(f"candidates must be a list of strings, got {type(candidates).__name__}")
    if isinstance(references, str) or not isinstance(references, Sequence):
        raise TypeError(f"references must be a list of lists of strings, got {type(references).__name__}")
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists: "
                         "there must be one reference list per candidate")
    if not candidates:
        raise ValueError("nothing to score: no candidates")
    for i, (cand, refs) in enumerate(zip(candidates, references, strict=True)):
        if not isinstance(cand, str):
            raise TypeError(f"candidate of {_label(i, ids)} is {type(cand).__name__} {cand!r}, not a string")
        if isinstance(refs, str) or not isinstance(refs, Sequence):
            raise TypeError(f"references of {_label(i, ids)} must be a list of strings, "
                            f"got {type(refs).__name__}")
        if len(refs) == 0:
            raise ValueError(f"{_label(i, ids)} has no references")
        for ref in refs:
            if not isinstance(ref, str):
                raise TypeError(f"a reference of {_label(i, ids)} is {type(ref).__name__} {ref!r}, "
                                "not a string")


@contextlib.contextmanager
def _gc_paused():
    """Scoring allocates millions of small acyclic objects (tokens, tuples, counts) that set
    off Python's cycle collector again and again, also in forked workers, where each pass
    touches (and so copies) pages they share with this process. Paused while scoring."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@_gc_paused()
def score(candidates: Sequence[str], references: Sequence[Sequence[str]],
          metrics: str | Sequence[str] | None = None, *, ids: Sequence | None = None) -> dict:
    """Corpus scores under each metric name, per-item arrays under result["per_item"].

    metrics=None computes every metric that can run here; metrics that cannot (SPICE
    without its CoreNLP jars) are listed with the reason under result["unavailable"]. A
    metric requested by name that cannot run raises. result["models"] names the model
    behind model-based metrics (SBERT-sim), whose numbers are only comparable between
    runs of the same model.
    """
    names, explicit = resolve_metrics(metrics)
    check_inputs(candidates, references, ids)
    candidates, references = list(candidates), [list(r) for r in references]
    corpus: dict[str, float] = {}
    per_item: dict[str, np.ndarray] = {}
    unavailable: dict[str, str] = {}
    models: dict[str, str] = {}

    ngram_names = [n for n in names if n.startswith("bleu_") or n in ("rouge_l", "cider_d", "spider")]
    ngram_corpus: dict[str, float] = {}
    ngram_items: dict[str, np.ndarray] = {}
    if "meteor" in names:
        # METEOR is the slow one. A forked worker tokenizes and, once it has handed the
        # tokens over, computes the n-gram metrics, while this process imports METEOR and
        # loads its resources, then aligns.
        worker = (ForkedWorker(_tokenize_then_count, ngram_names, candidates, references)
                  if ngram_names and worker_processes(len(candidates)) > 1 else None)
        with worker or contextlib.nullcontext():
            from sonicaps.metrics.meteor import default_scorer, meteor

            default_scorer()
            tok_c, tok_r = worker.get() if worker else _tokenize(candidates, references)
            corpus["meteor"], per_item["meteor"] = meteor(tok_c, tok_r)
            ngram_corpus, ngram_items = (worker.get() if worker else
                                         _ngram_metrics(ngram_names, tok_c, tok_r))
    elif TOKENIZED & set(names):
        tok_c, tok_r = _tokenize(candidates, references)
        ngram_corpus, ngram_items = _ngram_metrics(ngram_names, tok_c, tok_r)
    corpus.update(ngram_corpus)
    per_item.update(ngram_items)
    if "spice" in names or "spider" in names:
        from sonicaps.metrics.spice import SpiceUnavailable, spice

        try:
            corpus["spice"], per_item["spice"] = spice(tok_c, tok_r)
        except SpiceUnavailable as e:
            if explicit:
                raise
            unavailable["spice"] = unavailable["spider"] = str(e)
    if "spider" in names and "spice" in corpus:
        corpus["spider"] = (corpus["cider_d"] + corpus["spice"]) / 2
        per_item["spider"] = (per_item["cider_d"] + per_item["spice"]) / 2
    if "sbert_sim" in names:
        from sonicaps.metrics.sbert import MODEL_NAME, sbert_sim

        corpus["sbert_sim"], per_item["sbert_sim"] = sbert_sim(candidates, references)
        models["sbert_sim"] = MODEL_NAME

    result: dict = {n: corpus[n] for n in names if n in corpus}
    result["per_item"] = {n: per_item[n] for n in names if n in per_item}
    if unavailable:
        result["unavailable"] = {n: unavailable[n] for n in names if n in unavailable}
    if models:
        result["models"] = models
    return result


def _tokenize(candidates: list[str], references: list[list[str]]) -> tuple[list[str], list[list[str]]]:
    """Candidates and references as pycocoevalcap tokenizes them: in two runs, as it does,
    since the PTB lexer's result for a caption can depend on the next caption and on being
    the last of its run."""
    from sonicaps.metrics.tokenizer import tokenize

    rest = iter(tokenize([r for refs in references for r in refs]))
    return tokenize(candidates), [[next(rest) for _ in refs] for refs in references]


def _tokenize_then_count(names: list[str], candidates: list[str], references: list[list[str]]
                         ) -> Iterator[tuple]:
    """The tokens, then the n-gram metrics on them (a worker's two answers)."""
    tok_c, tok_r = _tokenize(candidates, references)
    yield tok_c, tok_r
    yield _ngram_metrics(names, tok_c, tok_r)


def _ngram_metrics(names: list[str], tok_c: list[str], tok_r: list[list[str]]
                   ) -> tuple[dict[str, float], dict[str, np.ndarray]]:
    """BLEU, ROUGE-L and CIDEr-D among `names`, on tokenized text: corpus and per-item scores."""
    corpus: dict[str, float] = {}
    per_item: dict[str, np.ndarray] = {}
    ngrams = None
    if any(n.startswith("bleu_") for n in names) or "cider_d" in names or "spider" in names:
        from sonicaps.metrics.ngrams import count_corpus

        ngrams = count_corpus(tok_c, tok_r)  # shared by BLEU and CIDEr-D
    if any(n.startswith("bleu_") for n in names):
        from sonicaps.metrics.bleu import bleu

        bleu_corpus, bleu_items = bleu(tok_c, tok_r, ngrams=ngrams)
        for k in range(4):
            if f"bleu_{k + 1}" in names:
                corpus[f"bleu_{k + 1}"], per_item[f"bleu_{k + 1}"] = bleu_corpus[k], bleu_items[k]
    if "rouge_l" in names:
        from sonicaps.metrics.rouge import rouge_l

        corpus["rouge_l"], per_item["rouge_l"] = rouge_l(tok_c, tok_r)
    if "cider_d" in names or "spider" in names:
        from sonicaps.metrics.cider import cider_d

        corpus["cider_d"], per_item["cider_d"] = cider_d(tok_c, tok_r, ngrams=ngrams)
    return corpus, per_item


def human_upper_bound(references: Sequence[Sequence[str]], metrics: str | Sequence[str] | None = None,
                      *, ids: Sequence | None = None) -> dict:
    """Score human captions as the AudioCaps paper does: each reference in turn is the
    candidate against the others, and the scores of the turns are averaged.

    With unequal reference counts, turn k includes the items that have more than k
    references. Per-item scores average the turns an item took part in.
    """
    check_inputs([""] * len(references), references, ids)
    for i, refs in enumerate(references):
        if len(refs) < 2:
            raise ValueError(f"{_label(i, ids)} has {len(refs)} reference; the human upper bound needs "
                             "at least 2 per item")
    turns = max(len(refs) for refs in references)
    sums: dict[str, float] = {}
    item_sums: dict[str, np.ndarray] = {}
    counts = np.zeros(len(references))
    out: dict = {}
    for k in range(turns):
        items = [i for i, refs in enumerate(references) if len(refs) > k]
        result = score([references[i][k] for i in items],
                       [list(references[i][:k]) + list(references[i][k + 1:]) for i in items],
                       metrics, ids=[ids[i] for i in items] if ids is not None else None)
        counts[items] += 1
        for name, value in result["per_item"].items():
            sums[name] = sums.get(name, 0.0) + result[name]
            item_sums.setdefault(name, np.zeros(len(references)))[items] += value
        out.update({key: result[key] for key in ("unavailable", "models") if key in result})
    corpus = {name: total / turns for name, total in sums.items()}
    return {**corpus, "per_item": {n: s / counts for n, s in item_sums.items()}, "turns": turns, **out}
