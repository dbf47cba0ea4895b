"""Find, read and rename an AudioSetCaps / WavCaps checkpoint.

The released files are `torch.save` dicts: weights under "model" in the original code's
layout (its own HTSAT, BART and RoBERTa wrappers), plus "epoch" and, for captioners,
"beam_size". sonicaps runs the same weights on transformers' ClapAudioModel, RobertaModel
and BartForConditionalGeneration, so the HTSAT keys are renamed (and its fused qkv
projection split); the text models' keys already match transformers'.
"""

from __future__ import annotations

import re
from pathlib import Path

import torch

REPO = "baijs/AudioSetCaps"  # a Hugging Face *dataset* repository, folder Model/
PUBLISHED = {
    "AAC_HTSAT+BART_ASC_PT": "captioner pre-trained on AudioSetCaps",
    "AAC_HTSAT+BART_ASC+AC+Clotho_PT": "captioner pre-trained on AudioSetCaps + AudioCaps + Clotho",
    "AAC_HTSAT+BART_ASC_PT_AC_FT_CR83.9_SR51.3": "captioner fine-tuned on AudioCaps (CIDEr 83.9)",
    "AAC_HTSAT+BART_ASC+AC+Clotho_PT_AC_FT_CR84.8_SR51.6": "captioner fine-tuned on AudioCaps (CIDEr 84.8)",
    "ATR_HTSAT+RoBERTa_ASC_PT_mask25_T2AR1_32.8_A2TR1_44.5": "retrieval pre-trained on AudioSetCaps",
    "ATR_HTSAT+RoBERTa_ASC_PT_mask25_AC_FT_T2AR1_46.3_A2TR1_59.3": "retrieval fine-tuned on AudioCaps",
    "ZSC_HTSAT+RoBERTa_ASC+AC+Clotho_PT_mask25_T2AR1_41.0_A2TR1_55.6": "retrieval for zero-shot use",
}
ALIASES = {
    "audiosetcaps-captioner": "AAC_HTSAT+BART_ASC+AC+Clotho_PT_AC_FT_CR84.8_SR51.6",
    "audiosetcaps-retrieval": "ATR_HTSAT+RoBERTa_ASC_PT_mask25_AC_FT_T2AR1_46.3_A2TR1_59.3",
    "audiosetcaps-zeroshot": "ZSC_HTSAT+RoBERTa_ASC+AC+Clotho_PT_mask25_T2AR1_41.0_A2TR1_55.6",
}
CAPTIONER, RETRIEVAL = "captioner", "retrieval"

# Keys of the original layout with no counterpart in transformers' classes: HTSAT's
# classifier (tscam_conv, head), buffers transformers derives itself (attention masks,
# relative position indices, RoBERTa's position ids) and torchlibrosa's fixed STFT/mel
# kernels (frontend.py computes the same log-mel). They are kept to write the file back.
DERIVED = re.compile(r"(tscam_conv|\.head\.|attn_mask$|relative_position_index$|audio_feats_extractor\.|"
                     r"embeddings\.position_ids$|\.pooler\.)")


# BART's token embeddings and output layer are one matrix under these names.
TIED = ("model.shared.weight", "model.encoder.embed_tokens.weight", "model.decoder.embed_tokens.weight",
        "lm_head.weight")


def published_name(spec: str | Path) -> str | None:
    """The released file's name for an alias or a name (with or without Model/, .pt)."""
    name = ALIASES.get(str(spec), str(spec)).removeprefix("Model/").removesuffix(".pt")
    return name if name in PUBLISHED else None


def resolve(spec: str | Path) -> Path:
    """A local file, or a published name (see PUBLISHED / ALIASES) fetched into the
    Hugging Face cache on first use."""
    path = Path(spec).expanduser()
    if path.is_file():
        return path
    name = published_name(spec)
    if name is None:
        known = ", ".join([*ALIASES, *PUBLISHED])
        raise FileNotFoundError(f"{spec}: no such checkpoint file, and not a published AudioSetCaps "
                                f"checkpoint (known names: {known})")
    from huggingface_hub import hf_hub_download

    try:
        return Path(hf_hub_download(REPO, f"Model/{name}.pt", repo_type="dataset"))
    except Exception as e:  # offline, gated, moved: say which file and where
        raise FileNotFoundError(f"{name}.pt: could not fetch it from the Hugging Face dataset {REPO} "
                                f"(folder Model/): {e}. Download it by hand and give its path.") from e


def read(spec: str | Path) -> dict:
    """The checkpoint dict, on the CPU whatever device saved it."""
    path = resolve(spec)
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ValueError(f"{path}: not a readable torch checkpoint ({e})") from e
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise ValueError(f"{path}: not an AudioSetCaps/WavCaps checkpoint (no 'model' state dict)")
    ckpt["path"] = str(path)
    return ckpt


def kind(state: dict) -> str:
    has = lambda prefix: any(k.startswith(prefix) for k in state)  # noqa: E731
    if has("encoder.audio_enc.") and has("decoder."):
        return CAPTIONER
    if has("audio_encoder.audio_enc.") and "temp" in state:
        return RETRIEVAL
    raise ValueError("not an HTSAT-BART captioner or HTSAT-RoBERTa retrieval checkpoint "
                     f"(first keys: {', '.join(list(state)[:3])})")


HTSAT_RENAMES = [
    (r"^bn0\.", "audio_encoder.batch_norm."),
    (r"^norm\.", "audio_encoder.norm."),
    (r"^patch_embed\.", "audio_encoder.patch_embed."),
    (r"\.norm1\.", ".layernorm_before."),
    (r"\.norm2\.", ".layernorm_after."),
    (r"\.attn\.relative_position_bias_table$", ".attention.self.relative_position_bias_table"),
    (r"\.attn\.proj\.", ".attention.output.dense."),
    (r"\.mlp\.fc1\.", ".intermediate.dense."),
    (r"\.mlp\.fc2\.", ".output.dense."),
    (r"^layers\.", "audio_encoder.layers."),
]


def htsat_to_clap(htsat: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original HTSAT keys (without their prefix) -> transformers' ClapAudioModel keys."""
    out = {}
    for key, value in htsat.items():
        if DERIVED.search("." + key):
            continue
        if ".attn.qkv." in key:
            for name, part in zip(("query", "key", "value"), value.chunk(3, dim=0), strict=True):
                new = "audio_encoder." + key.replace(".attn.qkv.", f".attention.self.{name}.")
                out[new] = part.clone()
            continue
        for pattern, repl in HTSAT_RENAMES:
            key = re.sub(pattern, repl, key)
        out[key] = value
    return out


def clap_to_htsat(clap: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The inverse of htsat_to_clap, to write a fine-tuned model in the original layout."""
    inverse = [
        (r"^audio_encoder\.batch_norm\.", "bn0."), (r"^audio_encoder\.norm\.", "norm."),
        (r"^audio_encoder\.patch_embed\.", "patch_embed."), (r"^audio_encoder\.layers\.", "layers."),
        (r"\.layernorm_before\.", ".norm1."), (r"\.layernorm_after\.", ".norm2."),
        (r"\.attention\.self\.relative_position_bias_table$", ".attn.relative_position_bias_table"),
        (r"\.attention\.output\.dense\.", ".attn.proj."), (r"\.intermediate\.dense\.", ".mlp.fc1."),
        (r"\.output\.dense\.", ".mlp.fc2."),
    ]
    out, qkv = {}, {}
    for key, value in clap.items():
        if DERIVED.search("." + key):
            continue
        m = re.match(r"(.*)\.attention\.self\.(query|key|value)\.(weight|bias)$", key)
        if m:
            qkv.setdefault((m.group(1), m.group(3)), {})[m.group(2)] = value
            continue
        for pattern, repl in inverse:
            key = re.sub(pattern, repl, key)
        out[key] = value
    for (block, kind_), parts in qkv.items():
        block = block.removeprefix("audio_encoder.")
        out[f"{block}.attn.qkv.{kind_}"] = torch.cat([parts["query"], parts["key"], parts["value"]])
    return out


def load_weights(module: torch.nn.Module, weights: dict[str, torch.Tensor], source: str) -> None:
    """load_state_dict that tolerates only derived buffers and tied duplicates, and names
    every key that matters when it fails."""
    own = module.state_dict()
    missing = [k for k in own if k not in weights and not DERIVED.search("." + k)]
    unexpected = [k for k in weights if k not in own and not DERIVED.search("." + k)]
    tied = {k for k in missing if k.endswith(TIED[1:])}
    missing = [k for k in missing if k not in tied]
    wrong = [f"{k} {tuple(weights[k].shape)} vs {tuple(own[k].shape)}" for k in own
             if k in weights and weights[k].shape != own[k].shape]
    if missing or unexpected or wrong:
        raise ValueError(f"{source}: does not fit the model: missing {missing[:5]} ({len(missing)}), "
                         f"unexpected {unexpected[:5]} ({len(unexpected)}), wrong shapes {wrong[:5]}")
    module.load_state_dict({k: v for k, v in weights.items() if k in own}, strict=False)
