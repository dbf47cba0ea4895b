"""Train, save, load, predict and evaluate a captioning model (`sonicaps train | predict |
evaluate`).

Training follows the AudioCaps paper's appendix: Xavier initialisation, Adam (0.9,
0.999, 1e-8), teacher forcing, early stopping on validation CIDEr-D (greedy decoding);
each epoch visits every caption of every training clip once. A run directory holds
`model.safetensors` (weights, feature normalisation, 1-NN keys), `config.json` (model,
training settings, vocabulary, history) and `curve.png`.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch import nn

from sonicaps.captioning import decode
from sonicaps.captioning.data import Clip, Norm, collate, load_clips, nearest, pooled, set_attributes
from sonicaps.captioning.features import check_kind
from sonicaps.captioning.models import NEURAL, ModelConfig, build
from sonicaps.captioning.vocab import PAD, Vocabulary, glove_vectors
from sonicaps.retrieval.data import Item, read_dataset

log = logging.getLogger(__name__)
NEAREST = {"1nn-mfcc": "mfcc", "1nn-yamnet": "yamnet"}
MODELS = (*NEAREST, *NEURAL)
SEMANTIC = ("semtempatt", "alignedatt")


@dataclass
class TrainConfig:
    model: str = "tempatt"
    features: str = "yamnet"  # the high-level feature (features.py kinds)
    mid_features: str = "yamnet-mid"  # topdown only
    attributes: str = "nn"  # semantic models: "nn" (nearest training clip) or "gt"
    embed: int = 128  # 50 with glove
    hidden: int = 256
    dropout: float = 0.3
    layers: int = 2  # transformer
    heads: int = 4  # transformer
    glove: bool = False  # start word embeddings from GloVe 6B 50-d
    min_count: int = 1
    max_len: int = 25
    batch_size: int = 32
    lr: float = 1e-3
    max_epochs: int = 40
    patience: int = 5  # epochs without a better validation CIDEr-D
    max_minutes: float = 10.0
    seed: int = 0
    beam: int = 0  # 0: greedy decoding (as in the paper), else the beam size

    def __post_init__(self) -> None:
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {', '.join(MODELS)}")
        if self.model in NEAREST:
            self.features = NEAREST[self.model]
        check_kind(self.features)
        if self.glove:
            self.embed = 50

    @classmethod
    def from_dict(cls, d: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = set(d) - known
        if unknown:
            raise ValueError(f"unknown training settings: {', '.join(sorted(unknown))}")
        return cls(**d)


def split_items(items: Sequence[Item], split: str) -> list[Item]:
    out = [it for it in items if it.split == split and it.captions]
    if not out:
        raise ValueError(f"no captioned clips in the {split!r} split")
    return out


@dataclass
class Run:
    """A trained model with everything needed to caption new audio."""

    cfg: TrainConfig
    vocab: Vocabulary
    norms: dict[str, Norm]
    model: nn.Module | None  # None for 1-NN
    keys: np.ndarray  # pooled training features (1-NN and attribute lookup)
    train_captions: list[str]  # 1-NN: the caption returned for each training clip
    train_classes: list[tuple[str, ...]]
    history: list[dict]
    data: str | None = None  # the dataset it was trained on
    # Why training ended: "max_epochs", "patience" (no better val CIDEr-D), "max_minutes"
    # (the time budget: where that stops a run depends on the machine's speed and load).
    stopped: str | None = None

    def caption(self, clips: Sequence[Clip], batch_size: int = 64) -> list[str]:
        if self.model is None:
            return [self.train_captions[j] for j in nearest(pooled(clips), self.keys)]
        if self.cfg.model in SEMANTIC:
            set_attributes(clips, self.train_classes, self.keys, self.cfg.attributes, same=False)
        self.model.eval()
        out = []
        for b in range(0, len(clips), batch_size):
            batch = collate(clips[b : b + batch_size], self.vocab, None, self.cfg.max_len)
            ids = (
                decode.beam(self.model, batch, self.cfg.max_len, self.cfg.beam)
                if self.cfg.beam
                else decode.greedy(self.model, batch, self.cfg.max_len)
            )
            out += [self.vocab.decode(s) for s in ids]
        return out


def _cider(run: Run, clips: Sequence[Clip]) -> float:
    from sonicaps.metrics import score

    return score(run.caption(clips), [list(c.captions) for c in clips], metrics=["cider_d"])["cider_d"]


def train(data: str | Path, out_dir: str | Path, cfg: TrainConfig, progress: bool = True) -> Run:
    """Train on the `train` split, stop early on `val`, save to out_dir."""
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    items = read_dataset(data)
    mid_kind = cfg.mid_features if cfg.model == "topdown" else None
    train_clips, norms = load_clips(split_items(items, "train"), cfg.features, mid_kind, None, progress)
    val_clips, _ = load_clips(split_items(items, "val"), cfg.features, mid_kind, norms, progress)
    keys = pooled(train_clips)
    run = Run(
        cfg,
        Vocabulary.build((c for clip in train_clips for c in clip.captions), cfg.min_count),
        norms,
        None,
        keys,
        [c.captions[0] for c in train_clips],
        [c.classes for c in train_clips],
        [],
        str(Path(data).resolve()),
    )
    start = time.monotonic()
    if cfg.model in NEAREST:
        run.history.append(
            {"epoch": 0, "val_cider_d": _cider(run, val_clips), "seconds": time.monotonic() - start}
        )
        save(run, out_dir)
        return run
    if cfg.model in SEMANTIC:
        if not any(c.classes for c in train_clips):
            log.warning("no training clip has sound classes: %s runs without attribute words", cfg.model)
        set_attributes(train_clips, run.train_classes, keys, cfg.attributes, same=True)
    mcfg = ModelConfig(
        cfg.model,
        len(run.vocab),
        train_clips[0].feats.shape[1],
        train_clips[0].mid.shape[1] if mid_kind else 0,
        cfg.embed,
        cfg.hidden,
        cfg.dropout,
        cfg.layers,
        cfg.heads,
    )
    model = run.model = build(mcfg)
    if cfg.glove:
        vectors, found = glove_vectors(run.vocab)
        model.embed.weight.data.copy_(torch.from_numpy(vectors))
        log.info("GloVe vectors for %d of %d words", found, len(run.vocab))
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999), eps=1e-8)
    loss_fn = nn.CrossEntropyLoss(ignore_index=PAD)
    pairs = [(i, c) for i, clip in enumerate(train_clips) for c in clip.captions]
    best, best_state, stale = -1.0, None, 0
    for epoch in range(1, cfg.max_epochs + 1):
        model.train()
        order = rng.permutation(len(pairs))
        total = 0.0
        for b in range(0, len(order), cfg.batch_size):
            chosen = [pairs[k] for k in order[b : b + cfg.batch_size]]
            batch = collate(
                [train_clips[i] for i, _ in chosen], run.vocab, [c for _, c in chosen], cfg.max_len
            )
            logits = model(batch)
            loss = loss_fn(logits.reshape(-1, logits.shape[-1]), batch["tokens"][:, 1:].reshape(-1))
            opt.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(model.parameters(), 5.0)
            opt.step()
            total += loss.item() * len(chosen)
        cider = _cider(run, val_clips)
        elapsed = time.monotonic() - start
        run.history.append(
            {"epoch": epoch, "train_loss": total / len(pairs), "val_cider_d": cider, "seconds": elapsed}
        )
        if progress:
            print(
                f"epoch {epoch}: loss {total / len(pairs):.3f}, val CIDEr-D {cider:.3f} ({elapsed:.0f} s)",
                flush=True,
            )
        if cider > best:
            best, stale = cider, 0
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
        else:
            stale += 1
        if stale >= cfg.patience:
            run.stopped = "patience"
            break
        if elapsed > cfg.max_minutes * 60 and epoch < cfg.max_epochs:
            run.stopped = "max_minutes"
            log.warning("training stopped by max_minutes (%g) after epoch %d of %d: a slower or busier "
                        "machine stops earlier, so the same seed need not repeat this run",
                        cfg.max_minutes, epoch, cfg.max_epochs)
            break
    else:
        run.stopped = "max_epochs"
    model.load_state_dict(best_state)
    save(run, out_dir)
    return run


def save(run: Run, out_dir: str | Path) -> None:
    from safetensors.torch import save_file

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    tensors = {f"model.{k}": v.contiguous() for k, v in (run.model.state_dict().items() if run.model else [])}
    for name, norm in run.norms.items():
        tensors[f"norm.{name}.mean"], tensors[f"norm.{name}.std"] = map(
            torch.from_numpy, (norm.mean, norm.std)
        )
    tensors["keys"] = torch.from_numpy(np.ascontiguousarray(run.keys, dtype=np.float32))
    save_file(tensors, out / "model.safetensors")
    meta = {
        "train": asdict(run.cfg),
        "model": run.model.cfg.to_dict() if run.model else None,
        "vocab": run.vocab.itos,
        "train_captions": run.train_captions,
        "train_classes": [list(c) for c in run.train_classes],
        "history": run.history,
        "data": run.data,
        "stopped": run.stopped,
    }
    (out / "config.json").write_text(json.dumps(meta, indent=1))
    _plot(run.history, out / "curve.png")


def _plot(history: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 3.5))
    epochs = [h["epoch"] for h in history]
    ax.plot(epochs, [h["val_cider_d"] for h in history], "o-", color="tab:blue", label="val CIDEr-D")
    ax.set_xlabel("epoch")
    ax.set_ylabel("val CIDEr-D")
    if any("train_loss" in h for h in history):
        ax2 = ax.twinx()
        ax2.plot(epochs, [h.get("train_loss") for h in history], "s--", color="tab:red", label="train loss")
        ax2.set_ylabel("train loss")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def load(run_dir: str | Path) -> Run:
    from safetensors.torch import load_file

    run_dir = Path(run_dir)
    if not (run_dir / "config.json").is_file():
        raise FileNotFoundError(f"{run_dir}: not a training run (no config.json)")
    meta = json.loads((run_dir / "config.json").read_text())
    tensors = load_file(run_dir / "model.safetensors")
    norms = {
        name: Norm(tensors[f"norm.{name}.mean"].numpy(), tensors[f"norm.{name}.std"].numpy())
        for name in ("feats", "mid")
        if f"norm.{name}.mean" in tensors
    }
    model = None
    if meta["model"]:
        model = build(ModelConfig(**meta["model"]))
        model.load_state_dict({k[6:]: v for k, v in tensors.items() if k.startswith("model.")})
        model.eval()
    return Run(
        TrainConfig.from_dict(meta["train"]),
        Vocabulary(meta["vocab"]),
        norms,
        model,
        tensors["keys"].numpy(),
        meta["train_captions"],
        [tuple(c) for c in meta["train_classes"]],
        meta["history"],
        meta.get("data"),
        meta.get("stopped"),
    )


def predict(run: Run, audio: Sequence[str | Path], beam: int | None = None) -> list[str | None]:
    """Captions of audio files (None for a file that cannot be decoded)."""
    if beam is not None:
        run = replace(run, cfg=replace(run.cfg, beam=beam))
    items = [Item(Path(a).stem, Path(a), (), "test") for a in audio]
    mid_kind = run.cfg.mid_features if run.cfg.model == "topdown" else None
    clips, _ = load_clips(items, run.cfg.features, mid_kind, run.norms, progress=False)
    captions = dict(zip((c.id for c in clips), run.caption(clips), strict=True))
    return [captions.get(it.id) for it in items]


def evaluate(
    run: Run,
    data: str | Path,
    split: str = "test",
    metrics: Sequence[str] | None = None,
    beam: int | None = None,
) -> dict:
    """The caption metrics of the run's captions on a split, with the human upper bound
    (each reference against the others) on the same clips."""
    from sonicaps.metrics import human_upper_bound, score

    if beam is not None:
        run = replace(run, cfg=replace(run.cfg, beam=beam))
    metrics = list(metrics or ["bleu", "meteor", "rouge_l", "cider_d", "sbert_sim"])
    mid_kind = run.cfg.mid_features if run.cfg.model == "topdown" else None
    clips, _ = load_clips(
        split_items(read_dataset(data), split), run.cfg.features, mid_kind, run.norms, progress=False
    )
    captions = run.caption(clips)
    refs = [list(c.captions) for c in clips]
    result = score(captions, refs, metrics=metrics)
    human = human_upper_bound(refs, metrics=metrics) if all(len(r) > 1 for r in refs) else None
    return {
        "model": run.cfg.model,
        "split": split,
        "clips": len(clips),
        "scores": {k: v for k, v in result.items() if k not in ("per_item", "models")},
        "human": {k: v for k, v in human.items() if k not in ("per_item", "models", "turns")}
        if human
        else None,
        "predictions": [{"id": c.id, "caption": p} for c, p in zip(clips, captions, strict=True)],
    }
