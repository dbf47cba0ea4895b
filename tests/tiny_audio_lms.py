"""Tiny random audio-language models of every family the transformers backend supports,
built from each family's own config, model and processor classes, with a BPE tokenizer
trained here (`tiny_models._bpe`) and a chat template shaped like the released one (the
same audio placeholder tokens in the same place). Saved like the released checkpoints, so
the backend loads them through the same `from_pretrained` code a GPU user runs.

Each builds in about a second and holds well under a million parameters. Random weights
write random text: tests check structure, batching and plumbing, never wording.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import torch
from tiny_models import _bpe, qwen2_audio

SMALL_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=2, initializer_range=0.2)


def _tokenizer(specials: list[str], template: str, eos: str, pad: str, bos: str | None = None,
               named: dict[str, str] | None = None):
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast(tokenizer_object=_bpe(specials), eos_token=eos, pad_token=pad,
                                   bos_token=bos,
                                   padding_side="left", chat_template=template,
                                   extra_special_tokens=named or {})


def _ids(tok, names: list[str]) -> dict[str, int]:
    return {n: tok.convert_tokens_to_ids(n) for n in names}


def _save(out: Path, model, processor_parts: list, template: str | None = None) -> Path:
    """Save model and processor parts (tokenizer, feature extractor, processor) as a
    released checkpoint lays them out."""
    for part in processor_parts:
        part.save_pretrained(out)
    if template is not None:
        (out / "chat_template.jinja").write_text(template)
    model.generation_config.pad_token_id = model.config.get_text_config().pad_token_id
    model.save_pretrained(out)
    return out


# ChatML as the Qwen omni models render it; `audio` is the family's audio span.
def _chatml(audio: str, system: str | None = None) -> str:
    first = ("{% if messages[0]['role'] != 'system' %}<|im_start|>system\n" + system
             + "<|im_end|>\n{% endif %}"
             if system else "")
    return (first + "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
            "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
            "{% for c in message['content'] %}{% if c['type'] == 'audio' %}" + audio +
            "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
            "<|im_end|>\n{% endfor %}{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


OMNI25_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>",
                   "<|audio_eos|>",
                   "<|vision_bos|>", "<|vision_eos|>", "<|IMAGE|>", "<|VIDEO|>"]


def qwen2_5_omni(out: Path) -> Path:
    from transformers import Qwen2_5OmniConfig, Qwen2_5OmniForConditionalGeneration, WhisperFeatureExtractor

    torch.manual_seed(0)
    template = _chatml("<|audio_bos|><|AUDIO|><|audio_eos|>", system="You are Qwen, a virtual human.")
    tok = _tokenizer(OMNI25_SPECIALS, template, eos="<|im_end|>", pad="<|endoftext|>", named={
        "audio_token": "<|AUDIO|>", "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>",
        "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
        "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>"})
    ids = _ids(tok, OMNI25_SPECIALS)
    # head_dim 8: the multimodal rope sections (time, height, width) must sum to 4.
    text = dict(vocab_size=len(tok), max_position_embeddings=2048, pad_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], **SMALL_TEXT,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2]})
    audio = dict(num_mel_bins=128, d_model=32, encoder_layers=1, encoder_attention_heads=2,
                 encoder_ffn_dim=64,
                 output_dim=32)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                  fullatt_block_indexes=[0])
    thinker = dict(audio_config=audio, vision_config=vision, text_config=text,
                   audio_token_index=ids["<|AUDIO|>"], image_token_index=ids["<|IMAGE|>"],
                   video_token_index=ids["<|VIDEO|>"], audio_start_token_id=ids["<|audio_bos|>"],
                   audio_end_token_id=ids["<|audio_eos|>"], vision_start_token_id=ids["<|vision_bos|>"])
    model = Qwen2_5OmniForConditionalGeneration(Qwen2_5OmniConfig(thinker_config=thinker,
                                                                   enable_audio_output=False))
    torch.save({}, out.mkdir(parents=True, exist_ok=True) or out / "spk_dict.pt")  # speakers: none
    return _save(out, model, [tok, WhisperFeatureExtractor(feature_size=128)], template)


OMNI3_SPECIALS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_start|>", "<|audio_pad|>",
                  "<|audio_end|>",
                  "<|vision_start|>", "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"]


def qwen3_omni_moe(out: Path) -> Path:
    """Qwen3-Omni (Instruct and Captioner share the architecture): a mixture-of-experts
    thinker with 4 experts, 2 per token."""
    from transformers import Qwen3OmniMoeConfig, Qwen3OmniMoeForConditionalGeneration, WhisperFeatureExtractor

    torch.manual_seed(0)
    template = _chatml("<|audio_start|><|audio_pad|><|audio_end|>")
    tok = _tokenizer(OMNI3_SPECIALS, template, eos="<|im_end|>", pad="<|endoftext|>", named={
        "audio_token": "<|audio_pad|>", "image_token": "<|image_pad|>", "video_token": "<|video_pad|>",
        "audio_bos_token": "<|audio_start|>", "audio_eos_token": "<|audio_end|>",
        "vision_bos_token": "<|vision_start|>", "vision_eos_token": "<|vision_end|>"})
    ids = _ids(tok, OMNI3_SPECIALS)
    text = dict(vocab_size=len(tok), max_position_embeddings=2048, pad_token_id=ids["<|endoftext|>"],
                eos_token_id=ids["<|im_end|>"], **SMALL_TEXT, head_dim=8, moe_intermediate_size=16,
                num_experts=4, num_experts_per_tok=2,
                rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "mrope_section": [1, 1, 2],
                                 "mrope_interleaved": True})
    audio = dict(num_mel_bins=128, d_model=32, encoder_layers=1, encoder_attention_heads=2,
                 encoder_ffn_dim=64,
                 output_dim=32, downsample_hidden_size=16)
    vision = dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2, out_hidden_size=32,
                  deepstack_visual_indexes=[0], num_position_embeddings=64)
    thinker = dict(audio_config=audio, vision_config=vision, text_config=text,
                   audio_token_id=ids["<|audio_pad|>"],
                   image_token_id=ids["<|image_pad|>"], video_token_id=ids["<|video_pad|>"],
                   audio_start_token_id=ids["<|audio_start|>"], vision_start_token_id=ids["<|vision_start|>"])
    model = Qwen3OmniMoeForConditionalGeneration(Qwen3OmniMoeConfig(thinker_config=thinker,
                                                                    enable_audio_output=False))
    return _save(out, model, [tok, WhisperFeatureExtractor(feature_size=128)], template)


def audioflamingo3(out: Path) -> Path:
    """Audio Flamingo 3: a Whisper-style encoder (30-s windows) and a Qwen2 language model;
    each audio part is one `<sound>` token, expanded by the processor."""
    from transformers import (
        AudioFlamingo3Config,
        AudioFlamingo3ForConditionalGeneration,
        AudioFlamingo3Processor,
        WhisperFeatureExtractor,
    )

    torch.manual_seed(0)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<sound>"]
    template = _chatml("<sound>", system="You are a helpful assistant.")
    tok = _tokenizer(specials, template, eos="<|im_end|>", pad="<|endoftext|>")
    ids = _ids(tok, specials)
    text = dict(model_type="qwen2", vocab_size=len(tok), max_position_embeddings=2048,
                pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|im_end|>"], **SMALL_TEXT)
    audio = dict(num_mel_bins=128, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                 intermediate_size=64)
    model = AudioFlamingo3ForConditionalGeneration(AudioFlamingo3Config(
        audio_config=audio, text_config=text, audio_token_id=ids["<sound>"]))
    features = WhisperFeatureExtractor(feature_size=128)
    processor = AudioFlamingo3Processor(features, tok, chat_template=template)
    return _save(out, model, [processor])


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "qwen2_audio": qwen2_audio,
    "qwen2_5_omni": qwen2_5_omni,
    "qwen3_omni_moe": qwen3_omni_moe,
    "audioflamingo3": audioflamingo3,
}
