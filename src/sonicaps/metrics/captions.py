"""Caption metrics as one call: the COCO suite (BLEU, METEOR, ROUGE-L, CIDEr-D, SPICE,
SPIDEr) with the COCO tokenization, plus SBERT-sim, and the AudioCaps human upper bound."""

from __future__ import annotations

import contextlib
import gc
import re
from collections.abc import Iterator, Sequence

import numpy as np

from sonicaps.metrics.models import MetricModels
from sonicaps.metrics.parallel import ForkedWorker, worker_processes

# Every metric aac-metrics 0.5.5 offers, in its order of output; "bleu_<n>" works for any n.
CAPTION_METRICS = ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d", "spice",
                   "spider", "spider_fl", "spider_max", "fer", "sbert_sim", "fense", "bert_score", "clap_sim",
                   "mace", "vocab")
# aac-metrics 0.5.5's named sets (aac_metrics.functional.evaluate.METRICS_SETS).
SETS = {
    "default": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "spider"),
    "dcase2020": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "spider"),
    "dcase2023": ("meteor", "spider_fl"),
    "dcase2024": ("meteor", "spider_fl", "fense", "vocab"),
    "all": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "fense", "spider_fl", "vocab",
            "bert_score", "mace"),
}
# sonicaps' shorthands.
GROUPS = {
    "bleu": ("bleu_1", "bleu_2", "bleu_3", "bleu_4"),
    "coco": ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d"),
}
# Scores a metric's result carries besides its own, as aac-metrics returns them.
INCLUDES = {
    "spider": ("cider_d", "spice"),
    "spider_fl": ("cider_d", "spice", "spider", "fer"),
    "fense": ("sbert_sim", "fer"),
    "mace": ("clap_sim",),
}
NEEDS_SPICE = frozenset({"spice", "spider", "spider_fl", "spider_max"})
NEEDS_FER = frozenset({"fer", "fense", "spider_fl", "mace"})
# FER thresholds and penalties: FENSE and SPIDEr-FL (0.9, 0.9), MACE (0.97, 0.3).
FENSE_THRESHOLD, FENSE_PENALTY = 0.9, 0.9
MACE_THRESHOLD, MACE_PENALTY = 0.97, 0.3
_BLEU_N = re.compile(r"^bleu_([1-9][0-9]*)$")


def _order(name: str) -> tuple[int, int]:
    if (m := _BLEU_N.match(name)) and int(m.group(1)) > 4:
        return CAPTION_METRICS.index("bleu_4"), int(m.group(1))
    return CAPTION_METRICS.index(name), 0


def resolve_metrics(metrics: str | Sequence[str] | None) -> tuple[list[str], set[str]]:
    """Metric names in output order (with the scores each includes), and the names the
    user asked for one by one (a set or the default asks for none by name)."""
    if metrics is None:
        metrics = ["default"]
    if isinstance(metrics, str):
        metrics = [m.strip() for m in metrics.split(",") if m.strip()]
    wanted: set[str] = set()
    named: set[str] = set()
    for name in metrics:
        key = name.lower().replace("-", "_")
        if key in SETS or key in GROUPS:
            wanted.update(SETS.get(key) or GROUPS[key])
        elif key in CAPTION_METRICS or _BLEU_N.match(key):
            wanted.add(key)
            named.add(key)
        else:
            raise ValueError(f"unknown metric {name!r}; choose from {', '.join(CAPTION_METRICS)}, bleu_<n>, "
                             f"or the sets {', '.join([*SETS, *GROUPS])}")
    for name in list(wanted):
        wanted.update(INCLUDES.get(name, ()))
    return sorted(wanted, key=_order), named


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
        several = not isinstance(cand, str) and isinstance(cand, Sequence)
        if several and (not cand or not all(isinstance(c, str) for c in cand)):
            raise TypeError(f"candidates of {_label(i, ids)} must be a non-empty list of strings, "
                            f"got {cand!r}")
        if not several and not isinstance(cand, str):
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
def score(candidates: Sequence[str] | Sequence[Sequence[str]], references: Sequence[Sequence[str]],
          metrics: str | Sequence[str] | None = None, *, ids: Sequence | None = None,
          models: MetricModels | None = None) -> dict:
    """Corpus scores under each metric name, per-item arrays under result["per_item"].

    Captions are PTB-tokenized first and every metric scores the tokens, as aac-metrics'
    evaluate() does by default. metrics: names, aac-metrics' sets (default, dcase2020,
    dcase2023, dcase2024, all) or sonicaps' groups (bleu, coco); None is "default". A
    metric of a set that cannot run here (SPICE without its CoreNLP jars, a model that
    cannot be loaded) is listed with the reason under result["unavailable"]; one asked for
    by name raises. result["models"] names the model behind each model-based metric, whose
    numbers are only comparable between runs of the same model. `models` chooses them
    (MetricModels' defaults are aac-metrics'). Several candidates per item (lists) are
    scored by spider_max only.
    """
    names, named = resolve_metrics(metrics)
    check_inputs(candidates, references, ids)
    models = models or MetricModels()
    several = any(not isinstance(c, str) for c in candidates)
    if several and set(names) - {"spider_max"}:
        raise ValueError("several candidates per item are scored by spider_max only; "
                         f"asked for {', '.join(n for n in names if n != 'spider_max')}")
    if several:
        mult = [list(c) if not isinstance(c, str) else [c] for c in candidates]
        counts = {len(c) for c in mult}
        if len(counts) != 1:
            raise ValueError("spider_max needs the same number of candidates per item, "
                             f"found {sorted(counts)}")
        candidates = [c for cands in mult for c in cands]  # tokenized in one run, as aac-metrics
    candidates, references = list(candidates), [list(r) for r in references]
    out = _Scores(names, named)

    ngram_names = [n for n in names if _BLEU_N.match(n) or n in ("rouge_l", "cider_d", "spider")]
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
            out.add("meteor", *meteor(tok_c, tok_r))
            ngram_corpus, ngram_items = (worker.get() if worker else
                                         _ngram_metrics(ngram_names, tok_c, tok_r))
    else:
        tok_c, tok_r = _tokenize(candidates, references)
        ngram_corpus, ngram_items = _ngram_metrics(ngram_names, tok_c, tok_r)
    for name, value in ngram_corpus.items():
        out.add(name, value, ngram_items[name])
    if "spider_max" in names:
        width = len(tok_c) // len(tok_r)
        _spider_max(out, [tok_c[i * width:(i + 1) * width] for i in range(len(tok_r))], tok_r)
    if NEEDS_SPICE & set(names) - {"spider_max"}:
        from sonicaps.metrics.spice import SpiceUnavailable, spice

        try:
            out.add("spice", *spice(tok_c, tok_r))
        except SpiceUnavailable as e:
            out.unavailable(NEEDS_SPICE & set(names) - {"spider_max"}, e)
    if "spider" in names and "spice" in out.corpus:
        out.add("spider", (out.corpus["cider_d"] + out.corpus["spice"]) / 2,
                (out.items["cider_d"] + out.items["spice"]) / 2)
    if NEEDS_FER & set(names):
        _model_metrics(out, tok_c, tok_r, models, names)
    if "sbert_sim" in names and "sbert_sim" not in out.corpus:
        _sbert(out, tok_c, tok_r, models)
    if "bert_score" in names:
        from sonicaps.metrics.bertscore import bert_score

        with out.model("bert_score", {"bert_score"}, models.bert_score):
            for key, (value, items) in bert_score(tok_c, tok_r, models.bert_score, models.device,
                                                  models.batch_size).items():
                out.add(key, value, items)
    if "clap_sim" in names and "clap_sim" not in out.corpus:
        _clap(out, tok_c, tok_r, models, {"clap_sim"})
    if "vocab" in names:
        from sonicaps.metrics.vocab import vocab

        corpus, items = vocab(tok_c, tok_r)
        for key, value in corpus.items():
            out.add(key, value, items if key == "vocab.cands" else None)
    return out.result()


class _Scores:
    """Scores as they are computed, in the order of the requested names at the end."""

    def __init__(self, names: list[str], named: set[str]):
        self.names, self.named = names, named
        self.corpus: dict[str, float] = {}
        self.items: dict[str, np.ndarray] = {}
        self.missing: dict[str, str] = {}
        self.models: dict[str, str] = {}

    def add(self, name: str, corpus: float, items: np.ndarray | None = None) -> None:
        self.corpus[name] = float(corpus)
        if items is not None:
            self.items[name] = np.asarray(items, dtype=np.float64)

    def unavailable(self, names: set[str], error: Exception) -> None:
        """Record why these metrics cannot run, or raise when one was asked for by name."""
        if names & self.named:
            raise error
        self.missing.update({n: str(error) for n in names})

    @contextlib.contextmanager
    def model(self, metric: str, dependents: set[str], description: str):
        from sonicaps.metrics.models import ModelUnavailable

        try:
            yield
            self.models.setdefault(metric, description)
        except ModelUnavailable as e:
            self.unavailable(dependents & set(self.names), e)

    def result(self) -> dict:
        def base(key: str) -> str:
            return key.split(".")[0]

        order = {n: i for i, n in enumerate(self.names)}
        keys = sorted((k for k in self.corpus if base(k) in order), key=lambda k: order[base(k)])
        result: dict = {k: self.corpus[k] for k in keys}
        result["per_item"] = {k: self.items[k] for k in keys if k in self.items}
        for k in ("spider_max", "cider_d_max", "spice_max"):  # spider_max's own outputs
            if k in self.corpus and k not in result:
                result[k] = self.corpus[k]
                result["per_item"][k] = self.items[k]
        if self.missing:
            result["unavailable"] = {n: self.missing[n] for n in self.names if n in self.missing}
        if self.models:
            result["models"] = {n: self.models[n] for n in self.names if n in self.models}
        return result


def _spider_max(out: _Scores, mult: list[list[str]], tok_r: list[list[str]]) -> None:
    """SPIDEr of each candidate column, and per item the candidate with the highest (the
    first of equals, as torch.argmax), its CIDEr-D and SPICE; corpus = mean of items."""
    from sonicaps.metrics.cider import cider_d
    from sonicaps.metrics.spice import SpiceUnavailable, spice

    columns = [[cands[j] for cands in mult] for j in range(len(mult[0]))]
    try:
        spices = [spice(col, tok_r)[1] for col in columns]
    except SpiceUnavailable as e:
        out.unavailable({"spider_max"}, e)
        return
    ciders = [cider_d(col, tok_r)[1] for col in columns]
    spiders = np.stack([(c + s) / 2 for c, s in zip(ciders, spices, strict=True)])
    best = spiders.argmax(axis=0)
    rows = np.arange(len(tok_r))
    tables = {"spider_max": spiders, "cider_d_max": np.stack(ciders), "spice_max": np.stack(spices)}
    for key, table in tables.items():
        items = table[best, rows]
        out.add(key, float(np.mean(items)), items)


def _sbert(out: _Scores, tok_c: list[str], tok_r: list[list[str]], models: MetricModels) -> None:
    from sonicaps.metrics.sbert import load_sbert, sbert_sim

    with out.model("sbert_sim", {"sbert_sim", "fense"}, ""):
        corpus, items, name = sbert_sim(tok_c, tok_r, models.sbert, models.device, models.batch_size)
        out.add("sbert_sim", corpus, items)
        out.models["sbert_sim"] = name
    del load_sbert


def _clap(out: _Scores, tok_c: list[str], tok_r: list[list[str]], models: MetricModels,
          dependents: set[str]) -> None:
    from sonicaps.metrics.clap import clap_sim

    with out.model("clap_sim", dependents, ""):
        corpus, items, name = clap_sim(tok_c, tok_r, models.clap, models.device, models.batch_size)
        out.add("clap_sim", corpus, items)
        out.models["clap_sim"] = name


def _model_metrics(out: _Scores, tok_c: list[str], tok_r: list[list[str]], models: MetricModels,
                   names: list[str]) -> None:
    """FER and what builds on it: FENSE (SBERT-sim), SPIDEr-FL (SPIDEr), MACE (CLAP-sim)."""
    from sonicaps.metrics.fluency import error_probs, fer, load_detector

    wanted = NEEDS_FER & set(names)
    with out.model("fer", wanted, ""):
        probs = error_probs(tok_c, models.echecker, models.device, models.batch_size)
        out.models["fer"] = load_detector(models.echecker, models.device)[2]
    if "fer" in out.missing:
        return
    fer_corpus, flags = fer(probs, FENSE_THRESHOLD)
    if wanted & {"fer", "fense", "spider_fl"}:
        out.add("fer", fer_corpus, flags)
    if "spider_fl" in names and "spider" in out.corpus:
        items = out.items["spider"] * (1.0 - FENSE_PENALTY * flags)
        out.add("spider_fl", float(np.mean(items)), items)
    elif "spider_fl" in names:
        out.unavailable({"spider_fl"}, RuntimeError(out.missing.get("spider", "SPIDEr is unavailable")))
    if "fense" in names:
        _sbert(out, tok_c, tok_r, models)
        if "sbert_sim" in out.corpus:
            items = out.items["sbert_sim"] * (1.0 - FENSE_PENALTY * flags)
            out.add("fense", float(np.mean(items)), items)
            out.models["fense"] = out.models["sbert_sim"]
    if "mace" in names:
        _clap(out, tok_c, tok_r, models, {"clap_sim", "mace"})
        if "clap_sim" in out.corpus:
            # MACE flags at 0.97 (its own threshold); its flags are not reported as "fer",
            # which stays FENSE's (aac-metrics' "all" set lets MACE's overwrite it).
            items = out.items["clap_sim"] * (1.0 - MACE_PENALTY * fer(probs, MACE_THRESHOLD)[1])
            out.add("mace", float(np.mean(items)), items)
            out.models["mace"] = out.models["clap_sim"]


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
    orders = [int(m.group(1)) for n in names if (m := _BLEU_N.match(n))]
    if orders:
        from sonicaps.metrics.bleu import bleu

        # BLEU-n for n > 4 needs longer n-grams than the shared table holds.
        top = max(max(orders), 4)
        bleu_corpus, bleu_items = bleu(tok_c, tok_r, n=top, ngrams=ngrams if top == 4 else None)
        for k in orders:
            corpus[f"bleu_{k}"], per_item[f"bleu_{k}"] = bleu_corpus[k - 1], bleu_items[k - 1]
    if "rouge_l" in names:
        from sonicaps.metrics.rouge import rouge_l

        corpus["rouge_l"], per_item["rouge_l"] = rouge_l(tok_c, tok_r)
    if "cider_d" in names or "spider" in names:
        from sonicaps.metrics.cider import cider_d

        corpus["cider_d"], per_item["cider_d"] = cider_d(tok_c, tok_r, ngrams=ngrams)
    return corpus, per_item


def human_upper_bound(references: Sequence[Sequence[str]], metrics: str | Sequence[str] | None = None,
                      *, ids: Sequence | None = None, models: MetricModels | None = None) -> dict:
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
                       metrics, ids=[ids[i] for i in items] if ids is not None else None, models=models)
        counts[items] += 1
        for name, value in result.items():
            if isinstance(value, float):  # corpus scores, also those without items (vocab.*)
                sums[name] = sums.get(name, 0.0) + value
        for name, value in result["per_item"].items():
            item_sums.setdefault(name, np.zeros(len(references)))[items] += value
        out.update({key: result[key] for key in ("unavailable", "models") if key in result})
    corpus = {name: total / turns for name, total in sums.items()}
    return {**corpus, "per_item": {n: s / counts for n, s in item_sums.items()}, "turns": turns, **out}
