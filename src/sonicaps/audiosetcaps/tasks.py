"""predict, evaluate and fine-tune with the released checkpoints, on any captioned folder
sonicaps reads (retrieval.data.read_dataset).

Protocols as in the papers' code: captions scored with the COCO metrics (SPICE and SPIDEr
where CoreNLP is installed); retrieval R@1/5/10 and mAP@10 both ways over every caption
of every clip (AudioCaps test: 5 per clip), captions lower-cased and stripped of
punctuation as the original's dataset does. Clips longer than 10 s are read from their
first second to their tenth (frontend.py).
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sonicaps.audio import AudioError
from sonicaps.audiosetcaps import checkpoint
from sonicaps.audiosetcaps.frontend import SECONDS, read_32k
from sonicaps.audiosetcaps.models import HtsatBart, HtsatRoberta
from sonicaps.retrieval.data import Item, read_dataset

log = logging.getLogger(__name__)
BATCH = 8


def is_checkpoint(spec: str | Path) -> bool:
    """A released-layout .pt file or a published name, as opposed to a sonicaps run folder."""
    if Path(spec).is_file():
        return Path(spec).suffix in (".pt", ".pth", ".ckpt")
    return checkpoint.published_name(spec) is not None


def normalize_caption(text: str) -> str:
    """The original retrieval dataset's text clean-up: lower case, no punctuation."""
    text = re.sub(r'\s([,.!?;:"](?:\s|$))', r"\1", text.lower()).replace("  ", " ")
    return re.sub(r'[(,.!?;:|*")]', " ", text).replace("  ", " ")


def _audio(items: Sequence[Item]) -> Iterator[tuple[Item, np.ndarray | None]]:
    for it in items:
        end = it.end_s if it.end_s is not None else it.start_s + SECONDS
        try:
            yield it, read_32k(it.audio, it.start_s, min(end, it.start_s + SECONDS))
        except (AudioError, OSError) as e:
            log.warning("skipped %s: %s", it.audio, e)
            yield it, None


def _batches(items: Sequence[Item], progress: bool, desc: str) -> Iterator[list[tuple[Item, np.ndarray]]]:
    batch: list[tuple[Item, np.ndarray]] = []
    for it, wave in tqdm(_audio(items), total=len(items), desc=desc, unit="clip", disable=not progress):
        if wave is not None:
            batch.append((it, wave))
        if len(batch) == BATCH:
            yield batch
            batch = []
    if batch:
        yield batch


def caption_items(model: HtsatBart, items: Sequence[Item], beams: int | None = None,
                  progress: bool = False) -> dict[str, str]:
    out = {}
    for batch in _batches(items, progress, "captioning"):
        caps = model.caption([w for _, w in batch], beams)
        out.update({it.id: c for (it, _), c in zip(batch, caps, strict=True)})
    return out


def predict(spec: str, audio: Sequence[str | Path], beams: int | None = None,
            text_model: str = "facebook/bart-base") -> list[str | None]:
    """Captions of audio files (None for a file that cannot be decoded)."""
    model = HtsatBart.from_checkpoint(spec, text_model)
    items = [Item(str(k), Path(a), (), "test") for k, a in enumerate(audio)]
    caps = caption_items(model, items, beams)
    return [caps.get(it.id) for it in items]


def split_items(data: str | Path, split: str) -> list[Item]:
    items = [i for i in read_dataset(data) if i.split == split and i.captions]
    if not items:
        raise ValueError(f"{data}: no captioned clips in the {split!r} split")
    return items


def evaluate(spec: str, data: str | Path, split: str = "test", beams: int | None = None,
             text_model: str | None = None, progress: bool = True) -> dict:
    """Either checkpoint's protocol, chosen by what the file holds (read once)."""
    ckpt = checkpoint.read(spec)
    if checkpoint.kind(ckpt["model"]) == checkpoint.CAPTIONER:
        model = HtsatBart.from_checkpoint(ckpt, text_model or "facebook/bart-base")
        return evaluate_captioner(spec, data, split, beams, model=model, progress=progress)
    return evaluate_retrieval(HtsatRoberta.from_checkpoint(ckpt, text_model or "roberta-base"), spec, data,
                              split, progress)


def evaluate_captioner(spec: str, data: str | Path, split: str = "test", beams: int | None = None,
                       text_model: str = "facebook/bart-base", progress: bool = True,
                       model: HtsatBart | None = None) -> dict:
    from sonicaps.metrics import score

    model = model or HtsatBart.from_checkpoint(spec, text_model)
    items = split_items(data, split)
    caps = caption_items(model, items, beams, progress)
    kept = [i for i in items if i.id in caps]
    result = score([caps[i.id] for i in kept], [list(i.captions) for i in kept])
    return {"model": f"audiosetcaps:{Path(str(spec)).name}", "kind": "captioner", "split": split,
            "clips": len(kept), "skipped": len(items) - len(kept),
            "scores": {k: v for k, v in result.items() if isinstance(v, float)},
            "unavailable": result.get("unavailable", {}),
            "predictions": [{"id": i.id, "caption": caps[i.id]} for i in kept]}


def evaluate_retrieval(model: HtsatRoberta, spec: str, data: str | Path, split: str = "test",
                       progress: bool = True) -> dict:
    from sonicaps.metrics.ranking import retrieval

    kept, vecs = [], []
    for batch in _batches(split_items(data, split), progress, "embedding audio"):
        kept += [it for it, _ in batch]
        vecs.append(model.audio_vectors([w for _, w in batch]))
    if not kept:
        raise ValueError(f"{data}: no clip of the {split!r} split could be decoded")
    texts = [normalize_caption(c) for it in kept for c in it.captions]
    owner = np.repeat(np.arange(len(kept)), [len(it.captions) for it in kept])
    text_vecs = np.concatenate([model.text_vectors(texts[b:b + 64]) for b in range(0, len(texts), 64)])
    audio = np.concatenate(vecs)
    result = retrieval(audio @ text_vecs.T, owner)
    zero_shot = _zero_shot(model, kept, audio)
    if zero_shot:
        result["zero_shot"] = zero_shot
    return {"model": f"audiosetcaps:{Path(str(spec)).name}", "kind": "retrieval", "split": split,
            "clips": len(kept), "captions": len(texts), **result}


def _zero_shot(model: HtsatRoberta, items: Sequence[Item], audio: np.ndarray) -> dict | None:
    """Zero-shot classification where the dataset names its classes (events.jsonl): the
    original's prompt "The clip showcases <class>", raw (its script does not clean it); a
    hit when a class present in the clip ranks first."""
    from sonicaps.metrics.ranking import zero_shot_accuracy
    from sonicaps.retrieval.train import class_names, class_prompt

    names = class_names(items)
    rows = [k for k, it in enumerate(items) if it.classes]
    if not names or not rows:
        return None
    index = {n: k for k, n in enumerate(names)}
    sim = audio[rows] @ model.text_vectors([class_prompt(n) for n in names]).T
    labels = [[index[c] for c in items[k].classes] for k in rows]
    return {"top1": zero_shot_accuracy(sim, labels, 1), "top5": zero_shot_accuracy(sim, labels, 5),
            "classes": len(names), "clips": len(rows)}


def finetune(spec: str, data: str | Path, out_dir: str | Path, *, epochs: int = 10, lr: float = 1e-5,
             batch_size: int = 8, max_minutes: float = 60.0, patience: int = 3, seed: int = 0,
             text_model: str = "facebook/bart-base", device: str | None = None,
             progress: bool = True) -> dict:
    """Fine-tune the captioner on a dataset's train split, keeping the epoch with the best
    validation CIDEr-D (as `sonicaps train` does). The result, out_dir/model.pt, is in the
    released layout: sonicaps, and the original code, load it like the published files."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = HtsatBart.from_checkpoint(spec, text_model)
    model.to(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    train = [(i, c) for i in split_items(data, "train") for c in i.captions]
    val = split_items(data, "val")
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=1e-6)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    history, best, start = [], -1.0, time.monotonic()
    for epoch in range(1, epochs + 1):
        model.train()
        losses = []
        order = rng.permutation(len(train))
        for b in tqdm(range(0, len(order), batch_size), desc=f"epoch {epoch}", disable=not progress):
            pairs = [train[k] for k in order[b:b + batch_size]]
            decoded = _audio([it for it, _ in pairs])  # per batch: memory stays flat
            chosen = [(w, c) for (_, w), (_, c) in zip(decoded, pairs, strict=True) if w is not None]
            if not chosen:
                continue
            loss = model.loss([w for w, _ in chosen], [c for _, c in chosen])
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 2.0)
            opt.step()
            losses.append(loss.item())
        model.eval()
        val_scores = evaluate_captioner(spec, data, "val", model=model, progress=False)["scores"]
        history.append({"epoch": epoch, "train_loss": float(np.mean(losses)),
                        "val_cider_d": val_scores["cider_d"]})
        if val_scores["cider_d"] > best:
            best = val_scores["cider_d"]
            model.epoch = epoch
            torch.save({"model": model.original_state_dict(), "epoch": epoch, "beam_size": model.beam_size},
                       out / "model.pt")
        if (time.monotonic() - start) / 60 > max_minutes or \
                epoch - max(h["epoch"] for h in history if h["val_cider_d"] == best) >= patience:
            break
    report = {"init": str(spec), "text_model": text_model, "data": str(data), "lr": lr,
              "batch_size": batch_size, "seed": seed, "history": history, "best_val_cider_d": best,
              "train_captions": len(train), "val_clips": len(val)}
    (out / "config.json").write_text(json.dumps(report, indent=1))
    return report


class RetrievalTower:
    """The retrieval model as the vector source of `sonicaps index` / `search`."""

    def __init__(self, spec: str, text_model: str | None = None) -> None:
        self.text_model = text_model or "roberta-base"
        self.model = HtsatRoberta.from_checkpoint(spec, self.text_model)
        self.dim = self.model.audio_proj[2].out_features

    def embed_items(self, items: Sequence[Item]) -> tuple[list[Item], np.ndarray, np.ndarray]:
        """(items read, their vectors, sourceless flags: not judged here, all False)."""
        kept, vecs = [], []
        for batch in _batches(items, False, ""):
            kept += [it for it, _ in batch]
            vecs.append(self.model.audio_vectors([w for _, w in batch]))
        return (kept, np.concatenate(vecs) if vecs else np.zeros((0, self.dim), np.float32),
                np.zeros(len(kept), bool))

    def embed_text(self, text: str) -> np.ndarray:
        return self.model.text_vectors([normalize_caption(text)])[0]

    def embed_file(self, path: str | Path) -> np.ndarray:
        return self.model.audio_vectors([read_32k(path)])[0]
