"""AudioSetCaps' released models: the checkpoints' exact layout loads, and sonicaps
reproduces the original code's outputs on the same (seeded fake) weights.

Reference numbers and key lists: tests/data/audiosetcaps (README there says how they were
made from the original code).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from asc_reference import TEXTS, fake_state_dict, reference_audio

from sonicaps.audiosetcaps import checkpoint
from sonicaps.audiosetcaps.frontend import log_mel
from sonicaps.audiosetcaps.models import HtsatBart, HtsatRoberta, fine_grained

DATA = Path(__file__).parent / "data" / "audiosetcaps"
TINY_BART, TINY_ROBERTA = str(DATA / "tiny-bart"), str(DATA / "tiny-roberta")


def keys(name: str) -> dict[str, list[int]]:
    return json.loads((DATA / f"{name}.json").read_text())


def save(tmp: Path, name: str, **extra) -> Path:
    path = tmp / f"{name}.pt"
    torch.save({"model": fake_state_dict(keys(name)), "epoch": 7, **extra}, path)
    return path


def released_text_model(tmp: Path, kind: str) -> str:
    """facebook/bart-base's or roberta-base's config with the tiny tokenizer (shapes only)."""
    folder = tmp / kind
    shutil.copytree(TINY_BART if kind == "bart-base" else TINY_ROBERTA, folder)
    shutil.copy(DATA / f"{kind}.config.json", folder / "config.json")
    return str(folder)


@pytest.mark.parametrize("name,cls,text", [("htsat_bart_keys", HtsatBart, "bart-base"),
                                           ("htsat_roberta_keys", HtsatRoberta, "roberta-base")])
def test_released_layout_loads_with_no_key_left_over(tmp_path, name, cls, text):
    path = save(tmp_path, name, beam_size=2)
    model = cls.from_checkpoint(str(path), released_text_model(tmp_path, text))
    # every learned tensor of the file is used (the classifier and fixed kernels are not)
    def learned(shapes: dict) -> int:
        return sum(int(np.prod(s)) for k, s in shapes.items() if not checkpoint.DERIVED.search("." + k)
                   and "num_batches_tracked" not in k and not k.endswith(checkpoint.TIED[1:]))

    assert learned({k: v.shape for k, v in model.state_dict().items()}) == learned(keys(name))
    if cls is HtsatBart:
        assert model.beam_size == 2 and model.epoch == 7
        back, original = model.original_state_dict(), torch.load(path)["model"]
        assert set(back) == set(original)
        assert all(torch.equal(back[k], original[k]) for k in original)


def test_a_checkpoint_that_does_not_fit_names_the_keys(tmp_path):
    state = fake_state_dict(keys("htsat_roberta_tiny_keys"))
    del state["text_proj.0.weight"]
    state["audio_proj.9.weight"] = torch.zeros(3)
    torch.save({"model": state}, tmp_path / "bad.pt")
    with pytest.raises(ValueError, match=r"text_proj\.0\.weight.*audio_proj\.9\.weight"):
        HtsatRoberta.from_checkpoint(str(tmp_path / "bad.pt"), TINY_ROBERTA)
    with pytest.raises(ValueError, match="a retrieval checkpoint, not a captioner"):
        HtsatBart.from_checkpoint(str(save(tmp_path, "htsat_roberta_tiny_keys")), TINY_BART)


def test_missing_unknown_and_unreadable_checkpoints(tmp_path, monkeypatch):
    with pytest.raises(FileNotFoundError, match="no such checkpoint file.*audiosetcaps-captioner"):
        checkpoint.read(tmp_path / "nope.pt")
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)  # fail fast, as with no network
    with pytest.raises(FileNotFoundError,
                       match=r"AAC_HTSAT\+BART_ASC_PT\.pt: could not fetch it .*baijs/AudioSetCaps"):
        checkpoint.read("AAC_HTSAT+BART_ASC_PT")
    (tmp_path / "text.pt").write_text("not a checkpoint")
    with pytest.raises(ValueError, match="not a readable torch checkpoint"):
        checkpoint.read(tmp_path / "text.pt")
    torch.save({"state_dict": {}}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="no 'model' state dict"):
        checkpoint.read(tmp_path / "other.pt")


def test_front_end_matches_the_original_log_mel():
    ref = np.load(DATA / "htsat_bart_reference.npz")["logmel"]
    ours = log_mel(reference_audio()).numpy()[:, :, ::25, :]
    # The original's STFT runs in float32 (a 1024-tap convolution), so bins far below their
    # frame's energy carry its rounding: 7e-4 dB at -60 dB, 0.05 dB at -97 dB. HTSAT's
    # output still agrees to 1e-4 (next test).
    audible = ref > -30
    assert audible.mean() > 0.5  # the rest is mostly clip 2's zero padding
    assert np.abs(ours - ref)[audible].max() < 1e-4
    assert np.abs(ours - ref).max() < 0.1


def test_captioner_reproduces_the_original(tmp_path):
    ref = np.load(DATA / "htsat_bart_reference.npz")
    path = save(tmp_path, "htsat_bart_tiny_keys", beam_size=3)
    model = HtsatBart.from_checkpoint(str(path), TINY_BART)
    waves = reference_audio()
    with torch.no_grad():
        mel = log_mel(waves)
        fine = fine_grained(model.audio(input_features=mel).last_hidden_state)
        assert np.abs(fine[:, ::32, ::4].numpy() - ref["fine_grained"]).max() < 1e-4
        enc = model._encoder_outputs(mel)
        start = torch.full((2, 1), 2)
        logits = model.decoder(decoder_input_ids=start, encoder_outputs=enc).logits[:, 0].numpy()
        assert np.abs(logits - ref["first_logits"]).max() < 1e-4
        assert abs(model.loss(waves, TEXTS[:2]).item() - float(ref["loss"])) < 1e-4
    assert np.array_equal(model.generate_ids(waves, beams=1).numpy(), ref["greedy_ids"])
    assert np.array_equal(model.generate_ids(waves).numpy(), ref["beam3_ids"])  # the checkpoint's beam
    # written back in the original layout, bit for bit what was read
    original = torch.load(path)["model"]
    back = model.original_state_dict()
    assert set(back) == set(original)
    assert all(torch.equal(back[k], original[k]) for k in original)


def test_retrieval_reproduces_the_original(tmp_path):
    ref = np.load(DATA / "htsat_roberta_reference.npz")
    model = HtsatRoberta.from_checkpoint(str(save(tmp_path, "htsat_roberta_tiny_keys")), TINY_ROBERTA)
    assert np.abs(model.audio_vectors(reference_audio()) - ref["audio_embeds"]).max() < 1e-4
    assert np.abs(model.text_vectors(TEXTS) - ref["text_embeds"]).max() < 1e-4
    with torch.no_grad():
        pooled = model.audio(input_features=log_mel(reference_audio())).pooler_output.numpy()
    assert np.abs(pooled - ref["pooled"]).max() < 1e-4
