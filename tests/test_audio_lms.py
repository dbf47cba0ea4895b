"""The transformers audio-language backend on a tiny random model of every family built
here (tests/tiny_audio_lms.py): family chosen by config, the three-turn asker and the
direct captioner, one left-padded generate per batch, greedy outputs equal batched and one
clip at a time, and the request shapes the OpenAI backend sends to vLLM."""

from __future__ import annotations

import json
import shutil

import pytest
import tiny_audio_lms
from conftest import SR, sweep, tone

from sonicaps.backends import create
from sonicaps.backends.hf.audio_lm import BATCH_SIZE
from sonicaps.backends.hf.families import FAMILIES, family_of
from sonicaps.clip import Answers, Clip
from sonicaps.prompts import QUESTIONS

BUILT = sorted(tiny_audio_lms.BUILDERS)


def clips(n: int = 3) -> list[Clip]:
    # Lengths differ (padding) and two are equal (families that batch by length pair them).
    audio = [tone(440, 1.0), sweep(3.0), tone(880, 3.0), tone(300, 0.5)] * 3
    return [Clip(f"c{k}", "test", 0.0, len(a) / SR, a) for k, a in enumerate(audio[:n])]


@pytest.mark.parametrize("name", BUILT)
def test_asker_batches_and_equals_one_clip_at_a_time(name, tiny_models_dir):
    asker = create("ask", "transformers", model=tiny_models_dir(name), max_new_tokens=4, dtype="float32")
    assert name in asker.lm.family.model_types  # the family came from the config
    batch = clips()
    answers = asker.ask(batch, QUESTIONS)
    assert [len(a.texts) for a in answers] == [3, 3, 3]
    # One generate per question for the whole batch (for a family whose encoder sees
    # padding: one per length, the two 3-s clips together).
    per_question = [1, 2] if asker.lm.family.batch_by_length else [3]
    assert asker.lm.forwards == per_question * 3
    assert any(t for a in answers for t in a.texts)  # the random model really generated
    for k, clip in enumerate(batch):  # left padding: each clip alone gives the same answers
        assert asker.ask([clip], QUESTIONS)[0].texts == answers[k].texts
    # Turn 3 holds the audio once, both earlier answers and all questions in order.
    conv = asker.conversations(batch[:1], QUESTIONS, [list(answers[0].texts[:2])])[0]
    assert [m["role"] for m in conv] == ["user", "assistant", "user", "assistant", "user"]
    parts = [p for m in conv if isinstance(m["content"], list) for p in m["content"]]
    assert sum(p["type"] != "text" for p in parts) == 1


@pytest.mark.parametrize("name", BUILT)
def test_direct_captioner_writes_from_audio(name, tiny_models_dir):
    writer = create("write", "audio-lm", model=tiny_models_dir(name), max_new_tokens=6, dtype="float32")
    batch = clips()
    none = [Answers(("", "", ""))] * 3
    try:
        captions = writer.write(batch, none, 0)
    except ValueError as e:  # a random model may say nothing for one clip: then BadOutput
        assert "empty caption" in str(e)
        return
    assert len(captions) == 3 and all(isinstance(c, str) and c for c in captions)
    assert writer.write(batch[1:2], none[:1], 0) == captions[1:2]
    assert writer.lm.forwards == ([1, 2, 1] if writer.lm.family.batch_by_length else [3, 1])
    retry = writer.write(batch, none, 1)  # sampled, seeded per attempt: repeatable
    assert retry == writer.write(batch, none, 1)


def test_default_batch_fills_at_least_eight_clips_per_forward(tiny_models_dir):
    asker = create("ask", "transformers", model=tiny_models_dir("qwen2_audio"), max_new_tokens=2,
                   dtype="float32")
    assert BATCH_SIZE >= 8
    asker.ask(clips(10), QUESTIONS[:1])
    assert asker.lm.forwards == [BATCH_SIZE, 10 - BATCH_SIZE]
    small = create("ask", "transformers", model=tiny_models_dir("qwen2_audio"), max_new_tokens=2,
                   dtype="float32", batch_size=4)
    small.ask(clips(6), QUESTIONS[:1])
    assert small.lm.forwards == [4, 2]


def test_gemma3n_loads_without_its_vision_tower(tiny_models_dir, caplog):
    """The checkpoint's tower weights are skipped quietly, images are refused, and the
    layered vocabulary holds: audio soft tokens lie above the per-layer vocabulary and
    reach the audio embedder."""
    import logging

    import torch

    with caplog.at_level(logging.WARNING):
        lm = create("ask", "transformers", model=tiny_models_dir("gemma3n"), dtype="float32").lm
    assert not [r for r in caplog.records if "vision_tower" in r.getMessage()]
    inner = lm.model.model
    assert type(inner.vision_tower).__name__ == "NoVisionTower"
    assert not list(inner.vision_tower.parameters())
    with pytest.raises(RuntimeError, match="audio and text only"):
        inner.get_image_features(torch.zeros(1, 3, 16, 16))
    text = lm.model.config.text_config
    audio_id = lm.model.config.audio_token_id
    assert text.vocab_size_per_layer_input <= inner.embed_audio.vocab_offset <= audio_id < text.vocab_size
    inputs = lm._inputs([[lm.user_turn(tone(440, 1.0), "What?")]], [tone(440, 1.0)])
    assert (inputs["input_ids"] == audio_id).sum() == lm.model.config.audio_soft_tokens_per_image


def test_phi4_speech_lora_is_merged(tiny_models_dir):
    """Phi-4 reads audio through its speech LoRA: merged into the weights on loading."""
    from pathlib import Path

    from safetensors.torch import load_file

    path = tiny_models_dir("phi4_multimodal")
    lm = create("ask", "transformers", model=path, dtype="float32").lm
    base = load_file(Path(path) / "model.safetensors")
    key = "model.layers.0.self_attn.qkv_proj.weight"
    merged = lm.model.state_dict()[key]
    assert not any("lora" in name for name, _ in lm.model.named_modules())
    assert (merged - base[key]).abs().max() > 1e-3  # the adapter changed the weights


def test_granite_features_without_torchaudio_equal_torchaudio():
    """The torch stand-in for Granite Speech's torchaudio front end, against features that
    transformers computed with torchaudio 2.9 (tests/data/make_granite_speech_features.py)."""
    from pathlib import Path

    import numpy as np
    import torch

    from sonicaps.backends.hf.torch_features import TorchGraniteSpeechFeatureExtractor

    ref = np.load(Path(__file__).parent / "data" / "granite_speech_features.npz")
    audio = [torch.from_numpy(ref[k].astype(np.float32) / 32768) for k in ("tone", "chirp", "noise")]
    fe = TorchGraniteSpeechFeatureExtractor()
    batch = fe(audio)  # three lengths: the zero-padded path
    assert list(batch["audio_embed_sizes"]) == list(ref["batch_sizes"])
    assert (batch["input_features_mask"].numpy() == ref["batch_mask"]).all()
    # Float32 rounding: torchaudio builds its filter bank in float32, transformers in float64
    # (they differ by 5e-6); features lie in about [-1, 2].
    np.testing.assert_allclose(batch["input_features"].numpy(), ref["batch_features"], rtol=0, atol=2e-5)
    alone = fe([audio[2]])["input_features"].numpy()
    np.testing.assert_allclose(alone, ref["noise_features"], rtol=0, atol=2e-5)


def test_granite_processor_uses_the_stand_in_only_without_torchaudio(tiny_models_dir):
    from sonicaps.backends.hf.audio_only import _loads, load_processor

    processor = load_processor(tiny_models_dir("granite_speech"))
    name = "GraniteSpeechFeatureExtractor" if _loads("torchaudio") else "TorchGraniteSpeechFeatureExtractor"
    assert type(processor.audio_processor).__name__ == name


def test_unknown_family_is_a_clear_error(tiny_models_dir, tmp_path):
    with pytest.raises(ValueError, match="supported: Qwen2-Audio .*Granite Speech"):
        family_of("llama")
    fake = tmp_path / "chat"
    shutil.copytree(tiny_models_dir("chat_lm"), fake)
    with pytest.raises(ValueError, match="no audio-language family for model_type 'llama'"):
        create("ask", "transformers", model=str(fake))
    assert len({f.name for f in FAMILIES}) == 8


# --- vLLM: the OpenAI backend's requests against the rules vLLM applies -----------------
# Read from vLLM's source (vllm/entrypoints/chat_utils.py and each model's
# get_placeholder_str): an audio part is {"type": "input_audio", "input_audio": {"data":
# base64, "format": ...}} (turned into the data URL data:audio/<format>;base64,<data>) or
# {"type": "audio_url", "audio_url": {"url": ...}}; vLLM inserts the model's placeholder
# itself, so a client must not write one into its text; one audio item per prompt is the
# default limit (--limit-mm-per-prompt).
VLLM_PLACEHOLDERS = {
    "qwen2_audio": "<|audio_bos|><|AUDIO|><|audio_eos|>",
    "qwen2_5_omni": "<|audio_bos|><|AUDIO|><|audio_eos|>",
    "qwen3_omni_moe": "<|audio_start|><|audio_pad|><|audio_end|>",
    "audioflamingo3": "<sound>",
    "gemma3n": "<audio_soft_token>",
    "granite_speech": "<|audio|>",
    "phi4_multimodal": "<|audio_1|>",
}


def vllm_problem(body: dict, placeholder: str) -> str | None:
    """Why vLLM's chat parser would refuse or mis-read this request, or None."""
    import base64
    import io

    import soundfile as sf

    audio = 0
    for m in body.get("messages", []):
        content = m.get("content")
        if isinstance(content, str):
            parts = [{"type": "text", "text": content}]
        elif isinstance(content, list):
            parts = content
        else:
            return f"content of type {type(content).__name__}"
        for p in parts:
            kind = p.get("type")
            if kind == "text":
                if any(tok in p.get("text", "") for tok in placeholder.split("><")):
                    return "a placeholder token in the text"
            elif kind == "input_audio":
                data, fmt = p["input_audio"].get("data"), p["input_audio"].get("format")
                if not data or fmt not in ("wav", "mp3", "flac", "ogg"):
                    return f"input_audio without data or with format {fmt!r}"
                url = f"data:audio/{fmt};base64,{data}"
            elif kind == "audio_url":
                url = p["audio_url"].get("url", "")
            else:
                return f"unknown part type {kind!r}"
            if kind in ("input_audio", "audio_url"):
                if m.get("role") != "user":
                    return "audio outside a user message"
                head, _, b64 = url.partition(";base64,")
                if not head.startswith("data:audio/"):
                    return f"not an audio data URL: {head[:40]}"
                wav, sr = sf.read(io.BytesIO(base64.b64decode(b64, validate=True)))
                if sr != SR or wav.ndim != 1 or not len(wav):
                    return f"audio {sr} Hz, shape {wav.shape}"
                audio += 1
    return None if audio <= 1 else f"{audio} audio items in one prompt"


@pytest.mark.parametrize("fmt", ["input_audio", "audio_url"])
def test_openai_requests_follow_vllm_rules_for_every_family(fmt):
    """A real server on 127.0.0.1 applies vLLM's rules to every request of the asker
    (three turns, the audio in the first) and the writer, per family's placeholder."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    problems: list[str] = []
    seen: list[int] = []
    placeholder = {"value": ""}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            problem = vllm_problem(body, placeholder["value"])
            seen.append(len(body["messages"]))
            if problem:
                problems.append(problem)
                self.send_response(400)
                self.end_headers()
                self.wfile.write(json.dumps({"error": {"message": problem}}).encode())
                return
            reply = {"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                     "choices": [{"index": 0, "finish_reason": "stop",
                                  "message": {"role": "assistant", "content": "A dog barks twice."}}]}
            data = json.dumps(reply).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_port}/v1"
    try:
        for family, ph in VLLM_PLACEHOLDERS.items():
            placeholder["value"] = ph
            asker = create("ask", "openai", base_url=url, model=family, audio_format=fmt, max_retries=0,
                           answer_retries=0)
            writer = create("write", "openai", base_url=url, model=family, max_retries=0, answer_retries=0)
            answers = asker.ask(clips(2), QUESTIONS)
            assert writer.write(clips(2), answers, 0) == ["A dog barks twice."] * 2
        assert not problems, problems
        assert seen.count(5) == 2 * len(VLLM_PLACEHOLDERS)  # turn 3: system-less 5 messages
        # The rules can fail: a placeholder in the text, two audio parts, a bad format.
        assert vllm_problem({"messages": [{"role": "user", "content": "<|AUDIO|> hi"}]},
                            VLLM_PLACEHOLDERS["qwen2_audio"])
        part = {"type": "input_audio", "input_audio": {"data": "AAAA", "format": "pcm"}}
        assert vllm_problem({"messages": [{"role": "user", "content": [part]}]}, "<sound>")
    finally:
        server.shutdown()
