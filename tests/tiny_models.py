"""Tiny randomly initialised transformers models, built and saved locally (no downloads), so
the real `from_pretrained` loading code of the backends can be tested.

Tokenizers are trained here with the `tokenizers` library. Random models produce random
text: tests check structure, batching and plumbing, never wording.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

CORPUS = [
    "You are a helpful assistant.",
    "Describe this audio according to the sounds in it.",
    "A dog barks while a car passes by in the rain.",
    "A man speaks and a woman laughs. There is no music in this audio.",
    "Based on the QAs, give some information about the speech and the music.",
    "Question 1: Answer 1: Question 2: Answer 2: system user assistant Audio 1:",
] * 10


def _bpe(specials: list[str], vocab_size: int = 400, decoder: bool = True) -> Tokenizer:
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    if decoder:
        bpe.decoder = decoders.ByteLevel()
    bpe.train_from_iterator(CORPUS, trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=specials, show_progress=False,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))  # every byte stays encodable
    return bpe


# Qwen2-Audio's chat format: audio parts become "Audio N: <|audio_bos|><|AUDIO|><|audio_eos|>".
QWEN_TEMPLATE = (
    "{% set audio_count = namespace(value=0) %}"
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}<|im_end|>\n"
    "{% else %}{% for content in message['content'] %}"
    "{% if content['type'] == 'audio' or 'audio_url' in content %}"
    "{% set audio_count.value = audio_count.value + 1 %}"
    "Audio {{ audio_count.value }}: <|audio_bos|><|AUDIO|><|audio_eos|>\n"
    "{% elif 'text' in content %}{{ content['text'] }}{% endif %}"
    "{% endfor %}<|im_end|>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)


def qwen2_audio(out: Path) -> Path:
    from transformers import (
        PreTrainedTokenizerFast,
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )

    torch.manual_seed(0)
    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "<|audio_bos|>", "<|AUDIO|>", "<|audio_eos|>"]
    tok = PreTrainedTokenizerFast(tokenizer_object=_bpe(specials), eos_token="<|im_end|>",
                                  pad_token="<|endoftext|>", additional_special_tokens=specials[1:],
                                  padding_side="left", chat_template=QWEN_TEMPLATE)
    features = WhisperFeatureExtractor(feature_size=128, sampling_rate=16000)  # pads to 30 s
    processor = Qwen2AudioProcessor(feature_extractor=features, tokenizer=tok, chat_template=QWEN_TEMPLATE)
    pad, eos = tok.pad_token_id, tok.convert_tokens_to_ids("<|im_end|>")
    text = Qwen2Config(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                       num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                       initializer_range=0.2, pad_token_id=pad, eos_token_id=eos, bos_token_id=None)
    # 128 mel bins as the feature extractor; 1500 positions = 30 s of features after the convs.
    audio = Qwen2AudioEncoderConfig(num_mel_bins=128, d_model=32, encoder_layers=1, encoder_attention_heads=2,
                                    encoder_ffn_dim=64, max_source_positions=1500)
    model = Qwen2AudioForConditionalGeneration(Qwen2AudioConfig(
        audio_config=audio, text_config=text, audio_token_index=tok.convert_tokens_to_ids("<|AUDIO|>")))
    model.generation_config.pad_token_id, model.generation_config.eos_token_id = pad, eos
    model.generation_config.bos_token_id = None
    processor.save_pretrained(out)
    model.save_pretrained(out)
    return out


def chat_lm(out: Path) -> Path:
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    torch.manual_seed(0)
    specials = ["<pad>", "<s>", "</s>", "<|system|>", "<|user|>", "<|assistant|>", "<|end|>"]
    template = ("{{ bos_token }}{% for message in messages %}<|{{ message['role'] }}|>\n"
                "{{ message['content'] }}<|end|>\n{% endfor %}"
                "{% if add_generation_prompt %}<|assistant|>\n{% endif %}")
    tok = PreTrainedTokenizerFast(tokenizer_object=_bpe(specials), bos_token="<s>", eos_token="<|end|>",
                                  pad_token="<pad>", additional_special_tokens=specials[2:6],
                                  chat_template=template, padding_side="left")
    model = LlamaForCausalLM(LlamaConfig(
        vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=1, num_attention_heads=4,
        num_key_value_heads=2, max_position_embeddings=512, initializer_range=0.2,
        bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id))
    tok.save_pretrained(out)
    model.save_pretrained(out)
    return out


def clap(out: Path) -> Path:
    from transformers import (
        ClapAudioConfig,
        ClapConfig,
        ClapFeatureExtractor,
        ClapModel,
        ClapProcessor,
        ClapTextConfig,
        RobertaTokenizerFast,
    )

    torch.manual_seed(0)
    roberta_specials = ["<s>", "<pad>", "</s>", "<unk>", "<mask>"]
    trained = json.loads(_bpe(roberta_specials, 350, decoder=False).to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tok = RobertaTokenizerFast(vocab=trained["vocab"], merges=merges, model_max_length=64)
    # The unfused variant's input: one 10-s crop at 48 kHz, 64 mel bins.
    features = ClapFeatureExtractor(feature_size=64, sampling_rate=48000, hop_length=480, max_length_s=10,
                                    fft_window_size=1024, truncation="rand_trunc", padding="repeatpad")
    text = ClapTextConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                          intermediate_size=64, max_position_embeddings=66, pad_token_id=tok.pad_token_id,
                          bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)
    # The smallest HTSAT that takes 1001 frames x 64 mels: a 256 "image", one Swin stage.
    audio = ClapAudioConfig(spec_size=256, num_mel_bins=64, window_size=8, patch_size=4, patch_stride=[4, 4],
                            patch_embeds_hidden_size=16, depths=[1], num_attention_heads=[2], hidden_size=16,
                            enable_fusion=False, mlp_ratio=2.0, initializer_factor=5.0)
    model = ClapModel(ClapConfig(text_config=text, audio_config=audio, projection_dim=16))
    ClapProcessor(feature_extractor=features, tokenizer=tok).save_pretrained(out)
    model.save_pretrained(out)
    return out
