"""Caption metrics against the Java/Python reference (pycocoevalcap 1.2) and their contracts."""

from __future__ import annotations

import os

import numpy as np
import pytest
from coco_reference import reference_scores
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from sonicaps.metrics.bleu import bleu
from sonicaps.metrics.cider import cider_d
from sonicaps.metrics.ngrams import compiled, count_corpus
from sonicaps.metrics.rouge import rouge_l

NGRAM_METRICS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"]


def _ours(cands: list[str], refs: list[list[str]], python: bool = False) -> dict:
    """BLEU-1..4, ROUGE-L and CIDEr-D; python=True takes the pure-Python paths (the fallback
    where the C extension is not built)."""
    out: dict = {"per_item": {}}
    table = count_corpus(cands, refs, python=python)
    corpus, items = bleu(cands, refs, ngrams=table)
    for k in range(4):
        out[f"bleu_{k + 1}"], out["per_item"][f"bleu_{k + 1}"] = corpus[k], items[k]
    out["rouge_l"], out["per_item"]["rouge_l"] = rouge_l(cands, refs, python=python)
    out["cider_d"], out["per_item"]["cider_d"] = cider_d(cands, refs, ngrams=table)
    return out


def _assert_close(ours: dict, ref: dict, names: list[str], tol: float = 0.0) -> None:
    """Corpus and per-item scores agree to tol (0: bit for bit)."""
    for name in names:
        assert abs(ours[name] - ref[name]) <= tol, (name, ours[name], ref[name])
        diff = np.abs(np.asarray(ours["per_item"][name]) - ref["per_item"][name])
        worst = int(np.argmax(diff))
        assert diff[worst] <= tol, (name, worst, ours["per_item"][name][worst], ref["per_item"][name][worst])


def _assert_both_paths(cands: list[str], refs: list[list[str]], ref: dict) -> None:
    """The compiled path and the pure-Python one both give the reference's numbers exactly."""
    if compiled is None and os.environ.get("CI"):
        pytest.fail("the metrics' C extension is not built: scripts/setup.sh installs gcc and python3-dev")
    _assert_close(_ours(cands, refs), ref, NGRAM_METRICS)
    _assert_close(_ours(cands, refs, python=True), ref, NGRAM_METRICS)


def test_ngram_metrics_match_reference_on_audiocaps_like_corpus(coco_corpus):
    _assert_both_paths(coco_corpus.tok_candidates, coco_corpus.tok_references, coco_corpus.scores)


EDGE_CASES = [
    # (candidate, references): tokenized text as the metrics receive it
    ("", ["a dog barks", "dogs bark loudly"]),
    ("a dog barks", ["a dog barks", "a dog barks", "a dog barks"]),
    ("dog", ["a dog barks loudly in the distance", "dog"]),
    ("rain rain rain rain rain rain", ["rain falls", "heavy rain falls on a roof"]),
    ("a man speaks", [""]),
    ("", [""]),
    ("a b c d e f g h i j k l m n o p", ["a b c", "p o n m"]),
    ("the the the", ["the cat", "the the"]),
    ("-lrb- static -rrb- hums", ["static hums -lrb- low -rrb-", "a hum"]),
    ("it 's raining and a dog do n't bark", ["it 's raining", "a dog barks while it rains"]),
    # Spacing: BLEU and CIDEr-D split on any whitespace (no-break space included), ROUGE-L on " ".
    (" a  dog\xa0barks ", ["a dog barks", " dog  barks\u2003loudly", "a dog\xa0barks"]),
    ("a dog a dog a dog a dog a dog", ["a dog", "a dog a dog a dog a dog a dog a dog"]),
]


def test_ngram_metrics_match_reference_on_edge_cases():
    cands = [c for c, _ in EDGE_CASES]
    refs = [r for _, r in EDGE_CASES]
    ref = reference_scores(cands, refs, metrics=("bleu", "rouge_l", "cider_d"), tokenized=True)
    _assert_both_paths(cands, refs, ref)


@pytest.mark.parametrize("size", [1, 2])
def test_tiny_corpora_match_reference(size):
    """CIDEr-D's idf is log(N): one item gives log(1) = 0, a case worth pinning down."""
    cands = ["a dog barks twice", "a car passes by"][:size]
    refs = [["a dog barks", "dogs bark twice"], ["a car drives past", "a vehicle passes by"]][:size]
    ref = reference_scores(cands, refs, metrics=("bleu", "rouge_l", "cider_d"), tokenized=True)
    _assert_both_paths(cands, refs, ref)


WORDS = ["a", "dog", "barks", "the", "rain", "-lrb-", "'s", "n't"]
sentence = st.lists(st.sampled_from(WORDS), max_size=7).map(" ".join)


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(sentence, st.lists(sentence, min_size=1, max_size=4)), min_size=1, max_size=6))
def test_ngram_metrics_match_reference_on_random_small_corpora(items):
    """The reference's BLEU, ROUGE-L and CIDEr-D are pure Python, so hypothesis can drive
    them directly over tiny corpora: short and empty sentences, repeats, one-item corpora."""
    cands = [c for c, _ in items]
    refs = [r for _, r in items]
    assume(any(r.split() for rs in refs for r in rs))  # the reference's CIDEr crashes otherwise
    ref = reference_scores(cands, refs, metrics=("bleu", "rouge_l", "cider_d"), tokenized=True)
    _assert_both_paths(cands, refs, ref)


def _doubling(x: int):
    yield x
    yield 2 * x


def _failing(item: int):
    raise ValueError(f"bad item {item}")


def test_forked_worker_hands_over_answers_and_errors():
    from sonicaps.metrics.parallel import ForkedWorker

    with ForkedWorker(_doubling, 3) as worker:
        assert (worker.get(), worker.get()) == (3, 6)
    with ForkedWorker(_failing, 7) as worker, pytest.raises(ValueError, match="bad item 7"):
        worker.get()
    with ForkedWorker(os._exit, 3) as worker, pytest.raises(ChildProcessError, match="exit code 3"):
        worker.get()
