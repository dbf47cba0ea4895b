"""sonicaps.metrics.score, the human upper bound and `sonicaps score`, end to end against
the reference (pycocoevalcap with its Java tokenizer and METEOR)."""

from __future__ import annotations

import json

import numpy as np
import pytest
from coco_reference import reference_scores
from corpora import corpus

from sonicaps.cli import main
from sonicaps.metrics import human_upper_bound, score
from sonicaps.metrics.models import MetricModels

NGRAM = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "rouge_l", "cider_d"]


def _assert_matches(ours: dict, ref: dict, names: list[str], tol: float) -> None:
    for name in names:
        assert abs(ours[name] - ref[name]) <= tol, (name, ours[name], ref[name])
        np.testing.assert_allclose(ours["per_item"][name], ref["per_item"][name], rtol=0, atol=tol,
                                   err_msg=name)


def test_score_matches_reference_from_raw_captions(coco_corpus):
    """Raw captions in, the numbers pycocoevalcap prints out: tokenizer + all four metrics."""
    ours = score(coco_corpus.candidates, coco_corpus.references, metrics="coco")
    assert list(ours)[:-1] == NGRAM[:4] + ["meteor", "rouge_l", "cider_d"]
    _assert_matches(ours, coco_corpus.scores, NGRAM, 1e-9)
    _assert_matches(ours, coco_corpus.scores, ["meteor"], 1e-6)


def test_human_upper_bound_averages_reference_turns():
    _, refs = corpus(40, seed=11)
    expected = {name: 0.0 for name in NGRAM}
    for k in range(5):
        turn = reference_scores([r[k] for r in refs], [r[:k] + r[k + 1:] for r in refs],
                                metrics=("bleu", "rouge_l", "cider_d"))
        for name in NGRAM:
            expected[name] += turn[name] / 5
    ours = human_upper_bound(refs, metrics="bleu,rouge_l,cider_d")
    for name in NGRAM:
        assert ours[name] == pytest.approx(expected[name], abs=1e-9), name
    assert ours["turns"] == 5 and ours["per_item"]["cider_d"].shape == (40,)


def test_bad_inputs_name_the_item():
    with pytest.raises(ValueError, match="2 candidates but 1 reference"):
        score(["a", "b"], [["a"]], metrics="bleu")
    with pytest.raises(ValueError, match="item 1 has no references"):
        score(["a", "b"], [["a"], []], metrics="bleu")
    with pytest.raises(TypeError, match=r"candidate of item 1 \(id 'clip_b'\) is float"):
        score(["a", float("nan")], [["a"], ["b"]], metrics="bleu", ids=["clip_a", "clip_b"])
    with pytest.raises(TypeError, match="references of item 0 must be a list"):
        score(["a"], ["a dog"], metrics="bleu")
    with pytest.raises(TypeError, match="a reference of item 0 is NoneType"):
        score(["a"], [["a", None]], metrics="bleu")
    with pytest.raises(ValueError, match="unknown metric 'bleu5'"):
        score(["a"], [["a"]], metrics="bleu5")
    with pytest.raises(ValueError, match="at least 2"):
        human_upper_bound([["a", "b"], ["c"]], metrics="bleu")


def test_empty_and_punctuation_only_candidates_score_zero():
    res = score(["", "...", " ", "a dog barks loudly"],
                [["a dog barks"], ["a cat"], ["rain"], ["a dog barks loudly"]], metrics="coco")
    for name in NGRAM + ["meteor"]:
        assert list(res["per_item"][name][:3]) == [0, 0, 0], name
        assert res["per_item"][name][3] > 0.5, name


def test_spice_without_corenlp_is_a_clear_error_or_listed_as_unavailable():
    from sonicaps.metrics.spice import SpiceUnavailable

    with pytest.raises(SpiceUnavailable, match="fetch-spice"):
        score(["a dog barks"], [["a dog barks"]], metrics="spice")
    res = score(["a dog barks"], [["a dog barks loudly"]], metrics=None)  # aac-metrics' "default" set
    assert "spice" not in res and "fetch-spice" in res["unavailable"]["spider"]
    assert res["cider_d"] >= 0 and "meteor" in res and "sbert_sim" not in res


def test_missing_model_weights_name_the_metric_and_the_download(tmp_path, monkeypatch):
    """Offline, FENSE's detector cannot be fetched: asked for by name it is an error naming
    the metric, the file and where to get it; within a set its dependents are listed."""
    from sonicaps.metrics.fluency import load_detector
    from sonicaps.metrics.models import ModelUnavailable

    monkeypatch.setenv("FENSE_DATA", str(tmp_path))
    monkeypatch.setattr("urllib.request.urlopen", lambda *a, **k: (_ for _ in ()).throw(OSError("offline")))
    load_detector.cache_clear()
    with pytest.raises(ModelUnavailable, match=r"fer .*echecker_clotho_audiocaps_base\.ckpt.*github\.com"):
        score(["a dog barks"], [["a dog barks"]], metrics="fer")
    res = score(["a dog barks", "rain falls"], [["a dog barks"], ["rain"]], metrics="dcase2024")
    assert {"fer", "fense", "spider_fl"} <= set(res["unavailable"]) and "meteor" in res
    assert "--echecker" in res["unavailable"]["fense"] and not list(tmp_path.iterdir())


def test_sbert_sim_orders_paraphrase_above_unrelated_and_names_its_model():
    refs = [["a dog barks loudly", "a dog is barking"]] * 3
    res = score(["a dog barks loudly", "a puppy yaps", "an orchestra plays a symphony"], refs,
                metrics="sbert_sim")
    same, paraphrase, unrelated = res["per_item"]["sbert_sim"]
    assert same > paraphrase > unrelated
    # Offline, the published paraphrase-TinyBERT-L6-v2 cannot be had: the output says so.
    assert "MiniLM" in res["models"]["sbert_sim"] and "not comparable" in res["models"]["sbert_sim"]


def test_sbert_sim_equals_mean_pooled_transformer_cosines():
    """The reference, without sentence-transformers: the checkpoint through transformers'
    AutoModel, token embeddings mean-pooled over the attention mask, unit-normalised;
    per item, the mean cosine with its references; the corpus score, the mean of items."""
    import torch
    from transformers import AutoModel, AutoTokenizer

    from sonicaps.weights import MINILM, locate

    cands = ["a dog barks loudly", "A puppy yaps twice.", "an orchestra plays", "rain"]
    refs = [["a dog barks", "a dog is barking nearby"], ["a small dog yaps"],
            ["music plays", "violins play", "a band plays loudly"], ["rain falls on a roof", "thunder"]]
    from sonicaps.metrics.captions import _tokenize

    res = score(cands, refs, metrics="sbert_sim", models=MetricModels(sbert=str(locate(MINILM).parent)))
    cands, refs = _tokenize(cands, refs)  # every metric scores the PTB tokens, as aac-metrics
    folder = locate(MINILM).parent
    tok, model = AutoTokenizer.from_pretrained(folder), AutoModel.from_pretrained(folder).eval()

    def embed(texts: list[str]) -> torch.Tensor:
        batch = tok(texts, padding=True, truncation=True, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return torch.nn.functional.normalize((hidden * mask).sum(1) / mask.sum(1), dim=-1)

    per_item = [float((embed(r) @ embed([c])[0]).mean()) for c, r in zip(cands, refs, strict=True)]
    np.testing.assert_allclose(res["per_item"]["sbert_sim"], per_item, rtol=0, atol=1e-5)
    assert res["sbert_sim"] == pytest.approx(np.mean(per_item), abs=1e-5)


# --- the command line ------------------------------------------------------------------

def _audiocaps_csv(path, ids, refs):
    lines = ["audiocap_id,youtube_id,start_time,caption"]
    n = 0
    for clip, captions in zip(ids, refs, strict=True):
        for c in captions:
            n += 1
            lines.append(f'{n},{clip},30,"{c.replace(chr(34), chr(34) * 2)}"')
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_cli_scores_audiocaps_and_clotho_layouts_like_the_reference(tmp_path, capsys):
    cands, refs = corpus(60, seed=21)
    ids = [f"clip{i:03d}" for i in range(60)]
    cand_file = tmp_path / "cands.jsonl"
    cand_file.write_text("".join(json.dumps({"id": i, "caption": c}) + "\n"
                                 for i, c in zip(ids, cands, strict=True)))
    _audiocaps_csv(tmp_path / "audiocaps.csv", ids, refs)
    import pandas as pd

    pd.DataFrame({"file_name": ids, **{f"caption_{k + 1}": [r[k] for r in refs] for k in range(5)}}).to_csv(
        tmp_path / "clotho.csv", index=False)
    # A blank cell in Clotho's wide layout means a missing caption; in AudioCaps' long
    # layout an empty row is an (empty) caption.
    expected_by_file = {
        "audiocaps.csv": reference_scores(cands, refs, metrics=("bleu", "rouge_l", "cider_d")),
        "clotho.csv": reference_scores(cands, [[r for r in rs if r] for rs in refs],
                                       metrics=("bleu", "rouge_l", "cider_d")),
    }
    assert any("" in rs for rs in refs)
    for ref_file, expected in expected_by_file.items():
        code = main(["score", str(cand_file), str(tmp_path / ref_file), "--metrics", "bleu,rouge_l,cider_d",
                     "--json", "--per-item", str(tmp_path / "items.csv")])
        assert code == 0
        out = json.loads(capsys.readouterr().out)
        assert out["items"] == 60
        for name in NGRAM:
            assert out[name] == pytest.approx(expected[name], abs=1e-9), (ref_file, name)
        items = pd.read_csv(tmp_path / "items.csv")
        assert list(items["id"]) == ids
        np.testing.assert_allclose(items["cider_d"], expected["per_item"]["cider_d"], atol=1e-9)

    assert main(["score", "--human", str(tmp_path / "clotho.csv"), "--metrics", "cider_d"]) == 0
    table = capsys.readouterr().out
    assert "human upper bound" in table and "cider_d" in table


def test_cli_reports_missing_ids_and_malformed_files(tmp_path, capsys):
    refs = tmp_path / "refs.csv"
    refs.write_text("id,caption\na,a dog barks\na,dogs bark\nb,rain falls\n")
    cands = tmp_path / "cands.csv"
    cands.write_text("id,caption\na,a dog barks\nc,thunder\n")
    assert main(["score", str(cands), str(refs), "--metrics", "bleu"]) == 2
    assert "['c']" in capsys.readouterr().err
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"id": "a", "caption": "x"}\n{"id": "b", "caption": \n')
    assert main(["score", str(bad), str(refs), "--metrics", "bleu"]) == 2
    assert "bad.jsonl:2" in capsys.readouterr().err
    nocol = tmp_path / "nocol.csv"
    nocol.write_text("clip,sentence\na,x\n")
    assert main(["score", str(nocol), str(refs)]) == 2
    assert "no id column" in capsys.readouterr().err


def test_candidates_and_references_are_tokenized_in_separate_runs():
    """The PTB lexer reads 'b.' before 'The' as 'b' + '.', but 'b.' at the end of its run as
    one token; pycocoevalcap tokenizes candidates and references apart, and so must we."""
    cands = ["a dog barks", "plan b."]
    refs = [["The dog barks"], ["The plan b"]]
    from coco_reference import reference_tokenize

    assert reference_tokenize(["plan b.", "The plan b"])[0] != reference_tokenize(["plan b."])[0]
    expected = reference_scores(cands, refs, metrics=("bleu", "rouge_l", "cider_d"))
    _assert_matches(score(cands, refs, metrics="bleu,rouge_l,cider_d"), expected, NGRAM, 1e-9)
