"""The transformers text writer and CLAP check on tiny random models built by the tests (no
downloads): the real from_pretrained loading, batching with left padding, prompt assembly.
The audio-language models are in test_audio_lms.py; the configs in test_configs.py."""

from __future__ import annotations

import numpy as np
import pytest
import tiny_models
import torch
from conftest import SR, sweep, tone

from sonicaps.backends import create
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import clean_caption, writer_message


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("tiny_models")
    return {"write": str(tiny_models.chat_lm(root / "chatlm")),
            "check": str(tiny_models.clap(root / "clap"))}


def clips() -> list[Clip]:
    audio = [tone(440, 1.0), sweep(3.0), tone(880, 10.0)]  # lengths differ: padding matters
    return [Clip(f"c{k}", "test", 0.0, len(a) / SR, a) for k, a in enumerate(audio)]


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
