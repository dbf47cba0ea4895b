"""Tiny random audio-language models of every family the transformers backend supports,
built from each family's own config, model and processor classes, with a BPE tokenizer
trained here (`tiny_models._bpe`) and a chat template shaped like the released one (the
same audio placeholder tokens in the same place). Saved like the released checkpoints, so
the backend loads them through the same `from_pretrained` code a GPU user runs.

Each builds in about a second and holds well under a million parameters. Random weights
write random text: tests check structure, batching and plumbing, never wording.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import torch
from tiny_models import _bpe, qwen2_audio
from transformers import PreTrainedTokenizerFast

SR = 16_000
SMALL_TEXT = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
                  num_key_value_heads=2, initializer_range=0.2)


def _tokenizer(specials: list[str], template: str, eos: str, pad: str, bos: str | None = None,
               named: dict[str, str] | None = None):
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


# The pre-tokenizer pattern of GPT-2 (tiktoken's `gpt2`), which `_bpe`'s ByteLevel step applies.
BYTE_LEVEL_PATTERN = r"""'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"""
# Tekken's control tokens by rank, as mistral-common lays them out for an audio tokenizer
# (v11): the 20 of its first version, [AUDIO] at 24 (VoxtralProcessor hard-codes that id),
# [BEGIN_AUDIO] at 25, [ARGS]/[CALL_ID] at 32/33, [TRANSCRIBE] at 34; unnamed ranks are fillers.
TEKKEN_SPECIALS = {0: "<unk>", 1: "<s>", 2: "</s>", 3: "[INST]", 4: "[/INST]", 5: "[AVAILABLE_TOOLS]",
                   6: "[/AVAILABLE_TOOLS]", 7: "[TOOL_RESULTS]", 8: "[/TOOL_RESULTS]", 9: "[TOOL_CALLS]",
                   10: "[IMG]", 11: "<pad>", 12: "[IMG_BREAK]", 13: "[IMG_END]", 14: "[PREFIX]",
                   15: "[MIDDLE]", 16: "[SUFFIX]", 17: "[SYSTEM_PROMPT]", 18: "[/SYSTEM_PROMPT]",
                   19: "[TOOL_CONTENT]", 24: "[AUDIO]", 25: "[BEGIN_AUDIO]", 32: "[ARGS]", 33: "[CALL_ID]",
                   34: "[TRANSCRIBE]"}


def tekken_file(out: Path, num_special: int = 40) -> Path:
    """A tiny Tekken tokenizer file (mistral-common's JSON layout: `config`, `vocab` of
    base64 byte strings by rank, `special_tokens`, `audio`), its merges trained here: the
    256 single bytes first (Tekken requires rank i == byte i), then each BPE merge in the
    order it was learned, which is the rank order tiktoken merges by."""
    import base64

    from transformers.convert_slow_tokenizer import bytes_to_unicode

    trained = json.loads(_bpe([], decoder=False).to_str())["model"]
    to_byte = {char: byte for byte, char in bytes_to_unicode().items()}

    def raw(piece: str) -> bytes:
        return bytes(to_byte[c] for c in piece)

    pieces = [bytes([i]) for i in range(256)] + [raw(a) + raw(b) for a, b in trained["merges"]]
    vocab = [{"rank": i, "token_bytes": base64.b64encode(p).decode(), "token_str": p.decode("utf-8",
                                                                                            "replace")}
             for i, p in enumerate(pieces)]
    specials = [{"rank": i, "token_str": TEKKEN_SPECIALS.get(i, f"<SPECIAL_{i}>"), "is_control": True}
                for i in range(num_special)]
    data = {"config": {"pattern": BYTE_LEVEL_PATTERN, "num_vocab_tokens": len(vocab),
                       "default_vocab_size": len(vocab) + num_special,
                       "default_num_special_tokens": num_special,
                       "version": "v11"},
            "vocab": vocab, "special_tokens": specials,
            # Voxtral's audio front end: 16 kHz, 128 mel bins, 12.5 audio tokens per second
            # (1500 encoder frames per 30-s chunk, 4 frames per token), 30-s chunks.
            "audio": {"sampling_rate": SR, "frame_rate": 12.5, "chunk_length_s": 30.0,
                      "audio_encoding_config": {"num_mel_bins": 128, "hop_length": 160, "window_size": 400}}}
    out.mkdir(parents=True, exist_ok=True)
    (out / "tekken.json").write_text(json.dumps(data))
    return out / "tekken.json"


def voxtral(out: Path) -> Path:
    """Voxtral: a Whisper-style encoder, a projector over 4 frames at a time and a Llama
    language model; the tokenizer is mistral-common's Tekken (transformers'
    MistralCommonBackend), which takes the audio inside the chat and expands [AUDIO] itself."""
    from transformers import (
        MistralCommonBackend,
        VoxtralConfig,
        VoxtralForConditionalGeneration,
        VoxtralProcessor,
        WhisperFeatureExtractor,
    )

    torch.manual_seed(0)
    tok = MistralCommonBackend(tokenizer_path=str(tekken_file(out)))
    text = dict(model_type="llama", vocab_size=len(tok), max_position_embeddings=2048,
                pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id,
                **SMALL_TEXT)
    # intermediate_size = 4 x hidden_size: the projector reads 4 encoder frames per audio token.
    audio = dict(num_mel_bins=128, hidden_size=32, intermediate_size=128, num_hidden_layers=1,
                 num_attention_heads=2, max_source_positions=1500)
    model = VoxtralForConditionalGeneration(VoxtralConfig(
        audio_config=audio, text_config=text, audio_token_id=tok.convert_tokens_to_ids("[AUDIO]")))
    return _save(out, model, [VoxtralProcessor(WhisperFeatureExtractor(feature_size=128), tok)])


def _role_template(roles: dict[str, str], audio: str, turn_end: str, bos: str = "") -> str:
    """A `<|role|>content<end>` chat format (Phi-4) or `<start_of_turn>role` (Gemma); the
    audio part becomes the family's placeholder token, which the processor expands."""
    names = "{% set names = " + json.dumps(roles) + " %}"
    return (names + bos + "{% for message in messages %}" + "{{ names[message['role']] }}"
            "{% if message['content'] is string %}{{ message['content'] }}{% else %}"
            "{% for c in message['content'] %}{% if c['type'] == 'audio' %}" + audio +
            "{% elif c['type'] == 'text' %}{{ c['text'] }}{% endif %}{% endfor %}{% endif %}" + turn_end +
            "{% endfor %}{% if add_generation_prompt %}{{ names['assistant'] }}{% endif %}")


def phi4_multimodal(out: Path) -> Path:
    """Phi-4-multimodal: a conformer audio encoder (NeMo subsampling) and a Phi-3 language
    model; audio is read through the checkpoint's speech LoRA (`speech-lora/`, PEFT format,
    random non-zero weights here so that it changes the outputs)."""
    from peft import LoraConfig, get_peft_model
    from transformers import Phi4MultimodalConfig, Phi4MultimodalFeatureExtractor, Phi4MultimodalForCausalLM

    torch.manual_seed(0)
    specials = ["<|endoftext|>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>", "<|image|>",
                "<|audio|>"]
    template = _role_template({r: f"<|{r}|>" for r in ("system", "user", "assistant")}, "<|audio|>",
                              "<|end|>")
    tok = _tokenizer(specials, template, eos="<|end|>", pad="<|endoftext|>",
                     named={"image_token": "<|image|>", "audio_token": "<|audio|>"})
    ids = _ids(tok, specials)
    audio = dict(num_blocks=1, hidden_size=32, num_attention_heads=2, intermediate_size=48,
                 ext_pw_out_channel=32,
                 depthwise_separable_out_channel=32, nemo_conv_channels=32, audio_token_id=ids["<|audio|>"],
                 initializer_range=0.2)
    vision = dict(num_hidden_layers=1, hidden_size=32, intermediate_size=64, num_attention_heads=2,
                  crop_size=16,
                  image_size=16, image_token_id=ids["<|image|>"])
    model = Phi4MultimodalForCausalLM(Phi4MultimodalConfig(
        vocab_size=len(tok), max_position_embeddings=2048, original_max_position_embeddings=2048,
        bos_token_id=ids["<|endoftext|>"], pad_token_id=ids["<|endoftext|>"], eos_token_id=ids["<|end|>"],
        audio_config=audio, vision_config=vision,
        **SMALL_TEXT))
    # The image processor needs torchvision: the released layout's other parts are saved.
    _save(out, model, [tok, Phi4MultimodalFeatureExtractor()], template)
    lora = LoraConfig(r=4, lora_alpha=8, target_modules=["qkv_proj", "o_proj", "gate_up_proj", "down_proj"],
                      init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(out / "speech-lora")
    return out


def gemma3n(out: Path) -> Path:
    """Gemma 3n with its layered vocabulary as released: text tokens (also the per-layer
    embedding vocabulary) first, then a block of vision soft tokens starting with
    <end_of_image> and <image_soft_token>, then a block of audio soft tokens starting with
    <end_of_audio> and <audio_soft_token>, each block read by its own embedder. Its vision
    tower (a timm MobileNetV5) cannot be built here: the model is built the way sonicaps
    loads it (without the tower) and saved with the released vision config plus a stand-in
    tower weight, so that loading meets the checkpoint's tower weights as with the real one."""
    from safetensors.torch import load_file, save_file
    from tokenizers import AddedToken
    from transformers import (
        Gemma3nAudioFeatureExtractor,
        Gemma3nConfig,
        Gemma3nForConditionalGeneration,
        Gemma3nProcessor,
        SiglipImageProcessorPil,
    )

    from sonicaps.backends.hf.audio_only import without_vision_tower

    torch.manual_seed(0)
    template = _role_template({"system": "<start_of_turn>system\n", "user": "<start_of_turn>user\n",
                               "assistant": "<start_of_turn>model\n"},
                              "<audio_soft_token>", "<end_of_turn>\n", bos="{{ bos_token }}")
    text_specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>",
                     "<start_of_image>", "<start_of_audio>"]
    vision_block = ["<end_of_image>", "<image_soft_token>", "<image_2>", "<image_3>"]
    audio_block = ["<end_of_audio>", "<audio_soft_token>", "<audio_2>", "<audio_3>"]
    bpe = _bpe(text_specials)
    n_text = bpe.get_vocab_size()
    bpe.add_special_tokens([AddedToken(t, special=True) for t in vision_block + audio_block])  # ids n_text..
    tok = PreTrainedTokenizerFast(
        tokenizer_object=bpe, bos_token="<bos>", eos_token="<end_of_turn>", pad_token="<pad>",
        unk_token="<unk>", padding_side="left", chat_template=template, extra_special_tokens={
            "image_token": "<image_soft_token>", "boi_token": "<start_of_image>",
            "eoi_token": "<end_of_image>",
            "audio_token": "<audio_soft_token>", "boa_token": "<start_of_audio>",
            "eoa_token": "<end_of_audio>"})
    ids = _ids(tok, text_specials + vision_block + audio_block)
    assert ids["<end_of_image>"] == n_text and ids["<end_of_audio>"] == n_text + len(vision_block)
    # Every 2nd layer attends to the whole context (every 5th in the released models): with
    # sliding windows only, the last tokens would never see the 188 audio tokens.
    text = dict(vocab_size=len(tok), vocab_size_per_layer_input=n_text, hidden_size=32, intermediate_size=64,
                num_hidden_layers=2, layer_types=["sliding_attention", "full_attention"],
                num_attention_heads=4, num_key_value_heads=2, head_dim=8, hidden_size_per_layer_input=8,
                num_kv_shared_layers=0,
                laurel_rank=4, altup_num_inputs=2, sliding_window=64, max_position_embeddings=2048,
                initializer_range=0.2, pad_token_id=ids["<pad>"], bos_token_id=ids["<bos>"],
                eos_token_id=[ids["<eos>"], ids["<end_of_turn>"]])
    vision = dict(vocab_size=len(vision_block), vocab_offset=n_text, hidden_size=32)
    audio = dict(vocab_size=len(audio_block), vocab_offset=n_text + len(vision_block), input_feat_size=128,
                 hidden_size=32, conf_num_attention_heads=2, conf_num_hidden_layers=1,
                 sscp_conv_channel_size=[8, 8])
    # Untied output embeddings: tied ones make this tiny model repeat <start_of_turn>.
    config = Gemma3nConfig(text_config=text, vision_config=vision, audio_config=audio,
                           tie_word_embeddings=False,
                           boi_token_id=ids["<start_of_image>"], eoi_token_id=ids["<end_of_image>"],
                           image_token_id=ids["<image_soft_token>"], boa_token_id=ids["<start_of_audio>"],
                           eoa_token_id=ids["<end_of_audio>"], audio_token_id=ids["<audio_soft_token>"])
    released_vision = config.vision_config
    model = Gemma3nForConditionalGeneration(without_vision_tower(config))
    model.config.vision_config = released_vision
    processor = Gemma3nProcessor(Gemma3nAudioFeatureExtractor(), SiglipImageProcessorPil(), tok,
                                 chat_template=template, image_seq_length=4)
    _save(out, model, [processor])
    weights = load_file(out / "model.safetensors")
    weights["model.vision_tower.timm_model.conv_stem.conv.weight"] = torch.randn(8, 3, 3, 3)
    save_file(weights, out / "model.safetensors", metadata={"format": "pt"})
    return out


def granite_speech(out: Path) -> Path:
    """Granite Speech: a conformer encoder on stacked log-mel frames, a windowed Q-Former
    projector (15 frames -> 3 tokens) and a Granite language model. Its feature extractor
    needs torchaudio: sonicaps' torch stand-in (torch_features.py) is saved in its place,
    under the original's type name, exactly as the released preprocessor_config.json reads.
    The released checkpoints carry a LoRA adapter that transformers loads itself (PEFT >=
    0.22, newer than PyPI has here): this one has none (`has_lora_adapter` false)."""
    from transformers import GraniteSpeechConfig, GraniteSpeechForConditionalGeneration

    from sonicaps.backends.hf.torch_features import TorchGraniteSpeechFeatureExtractor

    torch.manual_seed(0)
    specials = ["<|end_of_text|>", "<|start_of_role|>", "<|end_of_role|>", "<|audio|>"]
    template = _role_template({r: f"<|start_of_role|>{r}<|end_of_role|>" for r in ("system", "user",
                                                                                   "assistant")},
                              "<|audio|>", "<|end_of_text|>\n")
    tok = _tokenizer(specials, template, eos="<|end_of_text|>", pad="<|end_of_text|>",
                     named={"audio_token": "<|audio|>"})
    ids = _ids(tok, specials)
    text = dict(model_type="granite", vocab_size=len(tok), max_position_embeddings=2048,
                pad_token_id=ids["<|end_of_text|>"], eos_token_id=ids["<|end_of_text|>"],
                bos_token_id=ids["<|end_of_text|>"], **SMALL_TEXT)
    encoder = dict(input_dim=160, num_layers=1, hidden_dim=32, num_heads=2, output_dim=8, context_size=200,
                   conv_kernel_size=3, dropout=0.0)
    projector = dict(model_type="blip_2_qformer", hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                     intermediate_size=64, encoder_hidden_size=32, cross_attention_frequency=1,
                     initializer_range=0.2)
    model = GraniteSpeechForConditionalGeneration(GraniteSpeechConfig(
        text_config=text, encoder_config=encoder, projector_config=projector, has_lora_adapter=False,
        initializer_range=0.2,
        audio_token_index=ids["<|audio|>"]))
    features = TorchGraniteSpeechFeatureExtractor()
    _save(out, model, [tok, features], template)
    cfg = out / "preprocessor_config.json"
    saved = json.loads(cfg.read_text())
    saved["feature_extractor_type"] = "GraniteSpeechFeatureExtractor"
    cfg.write_text(json.dumps({**saved, "processor_class": "GraniteSpeechProcessor"}, indent=2))
    (out / "processor_config.json").write_text(json.dumps({"audio_token": "<|audio|>",
                                                           "processor_class": "GraniteSpeechProcessor"}))
    return out


BUILDERS: dict[str, Callable[[Path], Path]] = {
    "qwen2_audio": qwen2_audio,
    "qwen2_5_omni": qwen2_5_omni,
    "qwen3_omni_moe": qwen3_omni_moe,
    "audioflamingo3": audioflamingo3,
    "voxtral": voxtral,
    "phi4_multimodal": phi4_multimodal,
    "gemma3n": gemma3n,
    "granite_speech": granite_speech,
}
