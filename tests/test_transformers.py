"""The transformers backends on tiny random models built by the tests (no downloads): the
real from_pretrained loading, batching with left padding, prompt assembly, the check, and
the whole pipeline from a config file."""

from __future__ import annotations

import shutil
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import tiny_models
import torch
import yaml
from conftest import SR, sweep, tone

from sonicaps.backends import create
from sonicaps.clip import Answers, Clip
from sonicaps.pipeline.store import Store
from sonicaps.prompts import QUESTIONS, clean_caption, writer_message


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny_models")
    return {"ask": str(tiny_models.qwen2_audio(root / "qwen2audio")),
            "write": str(tiny_models.chat_lm(root / "chatlm")),
            "check": str(tiny_models.clap(root / "clap"))}


def clips() -> list[Clip]:
    audio = [tone(440, 1.0), sweep(3.0), tone(880, 10.0)]  # lengths differ: padding matters
    return [Clip(f"c{k}", "test", 0.0, len(a) / SR, a) for k, a in enumerate(audio)]


def test_qwen2_audio_asker_batches_the_three_turn_conversation(tiny):
    asker = create("ask", "transformers", model=tiny["ask"], max_new_tokens=4, dtype="float32")
    batch = clips()
    answers = asker.ask(batch, QUESTIONS)
    assert [len(a.texts) for a in answers] == [3, 3, 3]
    assert asker.model_id == f"transformers:{tiny['ask']}"
    # Left padding: each clip gets the same answers alone as in the batch.
    for k in (0, 2):
        assert asker.ask([batch[k]], QUESTIONS)[0].texts == answers[k].texts
    # Turn 3 carries the audio once, both questions and both earlier answers, in order.
    conv = asker.conversations(batch[:1], QUESTIONS, [list(answers[0].texts[:2])])[0]
    prompt = asker.prompts([conv])[0]
    assert prompt.count("<|AUDIO|>") == 1
    positions = [prompt.index(QUESTIONS[0]), prompt.index(QUESTIONS[1]), prompt.index(QUESTIONS[2])]
    assert positions == sorted(positions)
    assert [m["role"] for m in conv] == ["user", "assistant", "user", "assistant", "user"]
    # Later turns reuse the first turn's audio features: the inputs equal the processor's own.
    audio = [c.audio for c in batch]
    cache: dict = {}
    asker.inputs(asker.prompts(asker.conversations(batch, QUESTIONS, [[]] * 3)), audio, cache)
    turn3 = asker.prompts(asker.conversations(batch, QUESTIONS, [list(a.texts[:2]) for a in answers]))
    reused = asker.inputs(turn3, audio, cache)
    full = asker.processor(text=turn3, audio=audio, sampling_rate=SR, return_tensors="pt", padding=True)
    assert set(reused) == set(full)
    for key in full:
        assert (reused[key] == full[key]).all(), key


def test_chat_writer_prompts_without_absent_answers_and_batches(tiny):
    writer = create("write", "transformers", model=tiny["write"], max_new_tokens=6, dtype="float32")
    answers = [Answers(("A dog barks twice.", "There is no speech in this audio.", "A piano plays.")),
               Answers(("Rain falls.", "A man speaks calmly.", "There is no music in this audio.")),
               Answers(("Birds sing.", "No speech.", "No music."))]
    prompt = writer.prompt(answers[0])
    assert "A dog barks twice." in prompt and "A piano plays." in prompt
    assert "no speech" not in prompt.lower() and "You write captions" in prompt
    batch = clips()
    captions = writer.write(batch, answers, 0)
    # Attempt 0 is greedy decoding of the rendered chat: a plain argmax loop over the
    # model's logits, one clip at a time (no padding), gives the same captions.
    tok, model = writer.tokenizer, writer.model
    for answer, caption in zip(answers, captions, strict=True):
        chat = [{"role": "system", "content": writer.system},
                {"role": "user", "content": writer_message(answer.texts)}]
        ids = tok.apply_chat_template(chat, add_generation_prompt=True, tokenize=True, return_dict=True,
                                      return_tensors="pt")["input_ids"]
        new: list[int] = []
        with torch.no_grad():
            for _ in range(6):
                logits = model(torch.cat([ids, torch.tensor([new], dtype=torch.long)], dim=1)).logits
                nxt = int(logits[0, -1].argmax())
                new.append(nxt)
                if nxt == tok.eos_token_id:
                    break
        assert caption == clean_caption(tok.decode(new, skip_special_tokens=True))
    assert writer.write(batch[1:2], answers[1:2], 0) == captions[1:2]  # padding-independent
    # Retries sample (seeded per attempt): repeatable, and not the greedy captions.
    retry = writer.write(batch, answers, 1)
    assert retry == writer.write(batch, answers, 1)
    assert retry != captions and writer.write(batch, answers, 2) != retry


def test_clap_scorer_scores_pairs_and_reuses_audio(tiny):
    scorer = create("check", "clap", model=tiny["check"])
    batch = clips()
    texts = ["a tone", "a rising sweep", "a high tone"]
    scores = scorer.score(batch, [Answers(("", "", ""))] * 3, texts)
    # The reference: ClapModel's own forward pass, whose audio-to-text logits are the
    # cosine similarities times exp(logit_scale_a), on the processor's 48-kHz input.
    import soxr
    from transformers import ClapModel, ClapProcessor

    model = ClapModel.from_pretrained(tiny["check"]).eval()
    processor = ClapProcessor.from_pretrained(tiny["check"])
    audio = [soxr.resample(c.audio, SR, 48000) for c in batch]
    feats = processor.feature_extractor(audio, sampling_rate=48000, truncation="rand_trunc",
                                        padding="repeatpad", return_tensors="pt")
    tok = processor.tokenizer(texts, padding=True, return_tensors="pt")
    with torch.no_grad():
        out = model(input_ids=tok["input_ids"], attention_mask=tok["attention_mask"],
                    input_features=feats["input_features"])
        cosine = torch.diagonal(out.logits_per_audio) / model.logit_scale_a.exp()
    assert scores == pytest.approx(cosine.numpy(), abs=1e-5)
    assert len(set(np.round(scores, 4))) == 3  # three different pairs, three different scores
    # Each pair scores the same alone as in the batch (padding of text, cache of audio).
    for k in range(3):
        alone = scorer.score([batch[k]], [Answers(("", "", ""))], [texts[k]])[0]
        assert alone == pytest.approx(scores[k], abs=1e-5)
    vec = scorer.audio_vectors(batch[:1])
    assert np.linalg.norm(vec) == pytest.approx(1.0, abs=1e-5)
    assert scorer.accept_threshold is None  # no uncalibrated default


def test_caption_command_with_all_transformers_config(tiny, examples, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for name in ("cow.mp3", "dog_then_man.wav", "woman_speaking.flac"):
        shutil.copy(examples / name, src / name)
    config = tmp_path / "transformers.yaml"
    config.write_text(yaml.safe_dump({
        "ask": {"backend": "transformers", "model": tiny["ask"], "max_new_tokens": 4, "dtype": "float32"},
        "write": {"backend": "transformers", "model": tiny["write"], "max_new_tokens": 6, "dtype": "float32"},
        "check": {"backend": "clap", "model": tiny["check"]},
        "pipeline": {"batch_size": 2, "accept_threshold": 0.0},
    }))
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sonicaps.cli", "caption", str(src), "-o", str(out), "--config", str(config),
           "--quiet"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    # --quiet silences every progress bar, transformers' "Loading weights" included
    assert "Loading weights" not in done.stderr and "it/s]" not in done.stderr, done.stderr[-2000:]
    rows = pd.read_parquet(out) if list(out.glob("part-*.parquet")) else pd.DataFrame(columns=["id"])
    fails = Store(out).read_failures()
    assert sorted([*rows["id"], *(f["id"] for f in fails)]) == ["cow_0_10", "dog_then_man_0_10",
                                                                "woman_speaking_0_10"]
    # Random models may answer with nothing (then the clip is a recorded failure); the
    # rows that exist carry the models' ids and three answers.
    assert len(rows) > 0
    assert set(rows["asker"]) == {f"transformers:{tiny['ask']}"}
    assert set(rows["scorer"]) == {f"transformers:{tiny['check']}"}
    assert all(f["error"] == "BadOutput" for f in fails)
