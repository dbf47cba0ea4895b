"""sonicaps against aac-metrics 0.5.5's recorded outputs (tests/data/aac_metrics_reference/,
made by its make.py in a scratch environment) on AudioCaps val captions (495 clips), with
the same tiny random models, loaded by sonicaps' own loading code from the files make.py
saved (FENSE's checkpoint layout, a sentence-transformers folder, a transformers RoBERTa,
msclap's checkpoint layout).

Tolerances: the model-free metrics are compared exactly (BLEU-n, vocab) or to 1e-12
(SPIDEr-max, SPIDEr-FL: sums of float64 terms in another order). The model-based ones run
the same float32 models on the same inputs, but batches are cut differently (sonicaps
embeds each distinct sentence once), which moves float32 results by ~1e-8: 1e-6.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from sonicaps.metrics import score
from sonicaps.metrics.models import MetricModels

DATA = Path(__file__).parent / "data" / "aac_metrics_reference"
MODELS = DATA / "models"
TINY = MetricModels(sbert=str(MODELS / "sbert"), echecker=str(MODELS / "echecker_tiny.ckpt"),
                    bert_score=str(MODELS / "roberta"), clap=str(MODELS / "msclap"), device="cpu")


@pytest.fixture(scope="module")
def ref() -> dict:
    return json.loads((DATA / "reference.json").read_text(encoding="utf-8"))


@pytest.fixture()
def stand_in_spice(monkeypatch):
    """SPICE cannot run here (no CoreNLP 3.6.0): both sides use the same stand-in."""
    sys.path.insert(0, str(DATA))
    from stand_in import spice_items

    import sonicaps.metrics.spice as spice_module

    def spice(candidates, references):
        items = np.array(spice_items(candidates, references))
        return float(np.mean(items)), items

    monkeypatch.setattr(spice_module, "spice", spice)
    yield
    sys.path.remove(str(DATA))


def _check(ours: dict, expected: dict, keys: list[str], tol: float) -> None:
    for key in keys:
        assert key in ours, (key, sorted(ours))
        assert abs(ours[key] - expected["corpus"][key]) <= tol, (key, ours[key], expected["corpus"][key])
        if key in expected["per_item"] and len(expected["per_item"][key]) == len(ours["per_item"][key]):
            diff = np.abs(ours["per_item"][key] - np.array(expected["per_item"][key]))
            worst = int(np.argmax(diff))
            assert diff[worst] <= tol, (key, worst, ours["per_item"][key][worst],
                                        expected["per_item"][key][worst])


def test_tokenization_matches_aac_metrics(ref):
    from sonicaps.metrics.captions import _tokenize

    tok_c, tok_r = _tokenize(ref["candidates"], ref["references"])
    assert tok_c == ref["tokenized"]["candidates"]
    assert tok_r == ref["tokenized"]["references"]


def test_bleu_n_matches_exactly(ref):
    res = score(ref["candidates"], ref["references"], metrics=[f"bleu_{n}" for n in range(1, 7)])
    assert list(res)[:6] == [f"bleu_{n}" for n in range(1, 7)]
    for n in range(1, 7):
        _check(res, ref["metrics"][f"bleu_{n}"], [f"bleu_{n}"], 0.0)


def test_vocab_matches_exactly(ref):
    res = score(ref["candidates"], ref["references"], metrics="vocab")
    keys = list(ref["metrics"]["vocab"]["corpus"])
    assert [k for k in res if k.startswith("vocab.")] == keys
    _check(res, ref["metrics"]["vocab"], keys, 0.0)


def test_spider_max_matches(ref, stand_in_spice):
    res = score(ref["mult_candidates"], ref["references"], metrics="spider_max")
    _check(res, ref["metrics"]["spider_max"], ["spider_max", "cider_d_max", "spice_max"], 1e-12)
    with pytest.raises(ValueError, match="spider_max only"):
        score(ref["mult_candidates"], ref["references"], metrics="spider_max,bleu_1")


def test_fer_error_probabilities_match(ref):
    from sonicaps.metrics.fluency import error_probs

    probs = error_probs(ref["tokenized"]["candidates"], TINY.echecker, "cpu")
    for name, values in probs.items():
        expected = np.array(ref["metrics"]["fer"]["per_item"][f"fluency_error.{name}_prob"])
        np.testing.assert_allclose(values, expected, rtol=0, atol=1e-6, err_msg=name)


def test_dcase2024_matches(ref, stand_in_spice):
    """The DCASE 2024 set: METEOR, SPIDEr-FL (CIDEr-D, SPICE, SPIDEr, FER), FENSE (SBERT-sim), vocab."""
    res = score(ref["candidates"], ref["references"], metrics="dcase2024", models=TINY)
    assert "unavailable" not in res
    flags = ref["metrics"]["fer"]["per_item"]["fer"]
    assert 0 < sum(flags) < len(flags)  # the tiny detector flags some captions, not all
    _check(res, ref["metrics"]["spider_fl"], ["cider_d", "spice", "spider", "fer", "spider_fl"], 1e-12)
    _check(res, ref["metrics"]["fense"], ["sbert_sim", "fense"], 1e-6)
    assert res["fense"] == pytest.approx(ref["metrics"]["fense"]["corpus"]["fense"], abs=1e-6)
    assert res["models"]["sbert_sim"] == TINY.sbert and "echecker_tiny" in res["models"]["fer"]


def test_bert_score_matches(ref):
    res = score(ref["candidates"], ref["references"], metrics="bert_score", models=TINY)
    keys = ["bert_score.precision", "bert_score.recall", "bert_score.f1"]
    assert [k for k in res if k.startswith("bert_score")] == keys
    _check(res, ref["metrics"]["bert_score"], keys, 1e-6)


def test_clap_sim_and_mace_match(ref):
    res = score(ref["candidates"], ref["references"], metrics="clap_sim,mace", models=TINY)
    _check(res, ref["metrics"]["clap_sim"], ["clap_sim"], 1e-6)
    # aac-metrics 0.5.5 returns MACE's corpus score as every item's "mace" (a slip in
    # _mace_from_outputs); sonicaps returns the items, whose mean is that score.
    assert res["mace"] == pytest.approx(ref["metrics"]["mace"]["corpus"]["mace"], abs=1e-6)
    mace_flags = np.array(ref["metrics"]["mace"]["per_item"]["fer"])
    clap = np.array(ref["metrics"]["mace"]["per_item"]["clap_sim"])
    np.testing.assert_allclose(res["per_item"]["mace"], clap * (1 - 0.3 * mace_flags), rtol=0, atol=1e-6)
    assert 0 < mace_flags.sum() < len(mace_flags)


def test_every_metric_and_set_runs_offline_from_the_command_line(ref, stand_in_spice, tmp_path, capsys):
    """`sonicaps score` with each metric name and each set, on the tiny models' files."""
    from sonicaps.cli import main
    from sonicaps.metrics.captions import CAPTION_METRICS, SETS

    ids = [f"clip{i}" for i in range(20)]
    cands = tmp_path / "cands.jsonl"
    cands.write_text("".join(json.dumps({"id": i, "caption": c}) + "\n"
                             for i, c in zip(ids, ref["candidates"][:20], strict=True)))
    several = tmp_path / "several.jsonl"
    several.write_text("".join(json.dumps({"id": i, "captions": c}) + "\n"
                               for i, c in zip(ids, ref["mult_candidates"][:20], strict=True)))
    refs = tmp_path / "refs.jsonl"
    refs.write_text("".join(json.dumps({"id": i, "captions": r}) + "\n"
                            for i, r in zip(ids, ref["references"][:20], strict=True)))
    flags = ["--sbert-model", TINY.sbert, "--echecker", TINY.echecker, "--bert-model", TINY.bert_score,
             "--clap-model", TINY.clap, "--device", "cpu", "--json"]
    for name in [*CAPTION_METRICS, "bleu_7", *SETS]:
        files = [str(several if name == "spider_max" else cands), str(refs)]
        assert main(["score", *files, "--metrics", name, *flags]) == 0, name
        out = json.loads(capsys.readouterr().out)
        assert "unavailable" not in out, (name, out.get("unavailable"))
        key = {"bert_score": "bert_score.f1", "vocab": "vocab.cands"}.get(name, name)
        assert name in SETS or np.isfinite(out[key]), (name, out)
    assert main(["score", str(cands), str(refs), "--metrics", "dcase2024", *flags[:-1]]) == 0
    table = capsys.readouterr().out
    for line in ("meteor", "spider_fl", "fense", "vocab.ratio_avg", f"model: {TINY.sbert}"):
        assert line in table, line
