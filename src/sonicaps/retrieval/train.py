"""Train and evaluate the dual encoder on any captioned dataset sonicaps reads.

Evaluation follows the AudioCaps protocol (every caption of every test clip; R@k, ranks,
mAP@10 both ways) and adds zero-shot classification when the data carries classes
(SceneCaps' timelines): prompt "The clip showcases <class>", a hit when a class present
in the clip ranks first. The untrained baseline embeds the names of the labels YAMNet
hears (as the built-in check stage does) and compares them with the captions.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from sonicaps.metrics import retrieval, zero_shot_accuracy
from sonicaps.retrieval.data import Item, read_dataset
from sonicaps.retrieval.features import ClipFeatures, audio_features, embed_texts, pad
from sonicaps.retrieval.model import DualEncoder, RetrievalConfig

log = logging.getLogger(__name__)
PROMPT = "The clip showcases {}"


@dataclass
class Split:
    items: list[Item]
    feats: list[ClipFeatures]
    text: np.ndarray  # [n_captions, 384] sentence vectors, captions grouped by item
    owner: np.ndarray  # caption -> item index


def load_split(items: Sequence[Item], progress: bool = True) -> Split:
    feats = audio_features([(i.audio, i.start_s, i.end_s) for i in items], progress=progress)
    kept = [(i, f) for i, f in zip(items, feats, strict=True) if f is not None and i.captions]
    if len(kept) < len(items):
        log.warning("%d of %d clips skipped (unreadable audio or no caption)",
                    len(items) - len(kept), len(items))
    captions = [c for i, _ in kept for c in i.captions]
    owner = np.repeat(np.arange(len(kept)), [len(i.captions) for i, _ in kept])
    return Split([i for i, _ in kept], [f for _, f in kept], embed_texts(captions), owner)


def class_names(items: Sequence[Item]) -> list[str]:
    return sorted({c for i in items for c in i.classes})


def class_prompt(name: str, template: str = PROMPT) -> str:
    """SceneCaps class names read as their AudioSet label ("dog_bark" -> "bark")."""
    from sonicaps.scenes.catalog import classes

    known = classes()
    label = known[name].audioset.split(",")[0].lower() if name in known else name.replace("_", " ")
    return template.format(label)


def evaluate(audio_vecs: np.ndarray, text_vecs: np.ndarray, split: Split,
             class_vecs: np.ndarray | None = None, names: Sequence[str] = ()) -> dict:
    """Retrieval both ways, and zero-shot accuracy when classes are known."""
    out: dict = retrieval(audio_vecs @ text_vecs.T, split.owner)
    if class_vecs is not None and len(names):
        index = {n: k for k, n in enumerate(names)}
        rows = [k for k, i in enumerate(split.items) if i.classes]
        if rows:
            labels = [[index[c] for c in split.items[k].classes] for k in rows]
            sim = audio_vecs[rows] @ class_vecs.T
            out["zero_shot"] = {"top1": zero_shot_accuracy(sim, labels, 1),
                                "top5": zero_shot_accuracy(sim, labels, 5),
                                "classes": len(names), "clips": len(rows)}
    return out


def baseline_vectors(split: Split, top: int = 5, min_p: float = 0.1) -> np.ndarray:
    """Untrained audio vectors: sentence embeddings of the top YAMNet label names."""
    from sonicaps.backends.builtin.yamnet import class_names as yamnet_names

    names = yamnet_names()
    label_vecs = embed_texts(names)
    out = []
    for f in split.feats:
        p = f.probs.astype(np.float32)
        idx = [i for i in np.argsort(-p)[:top] if p[i] >= min_p] or [int(np.argmax(p))]
        v = (p[idx, None] * label_vecs[idx]).sum(axis=0)
        out.append(v / max(np.linalg.norm(v), 1e-9))
    return np.stack(out)


def _mean_r1(result: dict) -> float:
    return (result["audio_to_text"]["R@1"] + result["text_to_audio"]["R@1"]) / 2


def train(data: str | Path, out_dir: str | Path, *, epochs: int = 40, batch_size: int = 128,
          lr: float = 1e-3, weight_decay: float = 0.01, seed: int = 0,
          cfg: RetrievalConfig | None = None, prompt: str = PROMPT, progress: bool = True) -> dict:
    """Train on the train split, keep the epoch with the best validation R@1, report test."""
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    items = read_dataset(data)
    parts = {name: [i for i in items if i.split == name] for name in ("train", "val", "test")}
    if not parts["train"] or not any(i.captions for i in parts["train"]):
        raise ValueError(f"{data}: no captioned training clips")
    splits = {name: load_split(p, progress) for name, p in parts.items() if p}
    tr = splits["train"]
    model = DualEncoder(cfg or RetrievalConfig())
    opt = torch.optim.AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    steps = epochs * -(-len(tr.items) // batch_size)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, lr, total_steps=steps, pct_start=0.1)
    select = splits.get("val") or tr
    first_caption = np.searchsorted(tr.owner, np.arange(len(tr.items)))
    n_caps = np.bincount(tr.owner)
    best, best_state, history = -1.0, None, []
    for epoch in tqdm(range(epochs), desc="epochs", disable=not progress):
        model.train()
        order = rng.permutation(len(tr.items))
        losses = []
        for b in range(0, len(order), batch_size):
            idx = order[b:b + batch_size]
            if len(idx) < 2:
                continue
            cap = first_caption[idx] + rng.integers(0, n_caps[idx])  # one caption per clip
            x, m = pad([tr.feats[i].patches.astype(np.float32) for i in idx])
            loss = model.loss(torch.from_numpy(x), torch.from_numpy(m), torch.from_numpy(tr.text[cap]))
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
        res = evaluate(model.audio_vectors([f.patches for f in select.feats]),
                       model.text_vectors(select.text), select)
        score = _mean_r1(res)
        history.append({"epoch": epoch, "loss": float(np.mean(losses)), "val_mean_r1": score})
        if score > best:
            best = score
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    model.load_state_dict(best_state)
    report = {"data": str(data), "epochs": epochs, "best_val_mean_r1": best, "history": history,
              "clips": {k: len(v.items) for k, v in splits.items()},
              "train_seconds": round(time.perf_counter() - t0, 1)}
    if "test" in splits:
        report["test"] = evaluate_run(model, splits["test"], prompt)
        report["zero_shot_prompt"] = prompt
    model.save(out_dir, data=str(data), seed=seed, best_val_mean_r1=best)
    (Path(out_dir) / "report.json").write_text(json.dumps(report, indent=2))
    return report


def evaluate_run(model: DualEncoder, split: Split, template: str = PROMPT) -> dict:
    names = class_names(split.items)
    class_vecs = None
    if names:
        class_vecs = model.text_vectors(embed_texts([class_prompt(n, template) for n in names]))
    return evaluate(model.audio_vectors([f.patches for f in split.feats]),
                    model.text_vectors(split.text), split, class_vecs, names)


def evaluate_baseline(split: Split, template: str = PROMPT) -> dict:
    names = class_names(split.items)
    class_vecs = embed_texts([class_prompt(n, template) for n in names]) if names else None
    return evaluate(baseline_vectors(split), split.text, split, class_vecs, names)
