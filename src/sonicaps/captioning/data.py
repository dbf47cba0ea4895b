"""Clips with their features, captions and attribute words, ready for the models.

Clips come from any folder retrieval.data reads (a SceneCaps build, an AudioCaps-layout
folder, pipeline output). Features are normalised per dimension with training-split
statistics. Attribute words (semantic models) are the sound classes of the nearest
training clip by mean YAMNet embedding, as the paper uses the labels of the nearest
training clip; for training clips the nearest *other* training clip, so that training
sees the same kind of noisy attributes as test. `attributes="gt"` uses each clip's own
classes instead (the paper's upper bound).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch

from sonicaps.captioning.features import clip_features
from sonicaps.captioning.vocab import PAD, Vocabulary
from sonicaps.retrieval.data import Item
from sonicaps.retrieval.features import pad as pad_frames

log = logging.getLogger(__name__)
MAX_ATTRIBUTES = 8


@dataclass
class Clip:
    id: str
    captions: tuple[str, ...]
    feats: np.ndarray  # [T, D] normalised
    mid: np.ndarray | None = None  # [T2, D2] normalised (topdown)
    classes: tuple[str, ...] = ()
    attributes: list[str] = field(default_factory=list)


@dataclass
class Norm:
    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, arrays: Sequence[np.ndarray]) -> Norm:
        x = np.concatenate(arrays)
        return cls(x.mean(0).astype(np.float32), (x.std(0) + 1e-5).astype(np.float32))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((x - self.mean) / self.std).astype(np.float32)


def spans(items: Sequence[Item]) -> list[tuple[str, object, float, float | None]]:
    return [(it.id, it.audio, it.start_s, it.end_s) for it in items]


def load_clips(
    items: Sequence[Item],
    kind: str,
    mid_kind: str | None,
    norms: dict[str, Norm] | None,
    progress: bool = True,
) -> tuple[list[Clip], dict[str, Norm]]:
    """Clips with features (unreadable audio skipped, with a warning); `norms` None fits
    them on these clips (the training split)."""
    high = clip_features(kind, spans(items), progress)
    mid = clip_features(mid_kind, spans(items), progress) if mid_kind else [None] * len(items)
    keep = [i for i in range(len(items)) if high[i] is not None and (mid_kind is None or mid[i] is not None)]
    if len(keep) < len(items):
        log.warning(
            "%d of %d clips skipped: their audio could not be read", len(items) - len(keep), len(items)
        )
    if norms is None:
        norms = {"feats": Norm.fit([high[i] for i in keep])}
        if mid_kind:
            norms["mid"] = Norm.fit([mid[i] for i in keep])
    clips = [
        Clip(
            items[i].id,
            items[i].captions,
            norms["feats"](high[i]),
            norms["mid"](mid[i]) if mid_kind else None,
            items[i].classes,
        )
        for i in keep
    ]
    return clips, norms


def class_words(classes: Sequence[str]) -> list[str]:
    """Attribute words of sound classes: "dog_bark" -> dog, bark; "Domestic animals, pets"
    -> domestic, animals, pets (unique, in order, at most MAX_ATTRIBUTES)."""
    out = dict.fromkeys(w for c in classes for w in re.findall(r"[a-z]+", c.lower()))
    return list(out)[:MAX_ATTRIBUTES]


def pooled(clips: Sequence[Clip]) -> np.ndarray:
    return np.stack([c.feats.mean(0) for c in clips])


def nearest(queries: np.ndarray, keys: np.ndarray, exclude_self: bool = False) -> np.ndarray:
    """Index of the nearest key (L2) for every query."""
    d = (queries**2).sum(1)[:, None] - 2 * queries @ keys.T + (keys**2).sum(1)[None]
    if exclude_self:
        np.fill_diagonal(d, np.inf)
    return d.argmin(1)


def set_attributes(
    clips: Sequence[Clip],
    train_classes: Sequence[Sequence[str]],
    train_keys: np.ndarray,
    source: str,
    same: bool,
) -> None:
    """Fill clip.attributes from the nearest training clip (source "nn": its classes,
    `train_keys` its pooled features) or the clip's own classes ("gt"). `same`: these
    clips are the training clips themselves."""
    if source == "gt":
        for c in clips:
            c.attributes = class_words(c.classes)
        return
    if source != "nn":
        raise ValueError(f"attributes must be 'nn' or 'gt', not {source!r}")
    idx = (
        nearest(pooled(clips), train_keys, exclude_self=same)
        if len(train_classes) > 1
        else np.zeros(len(clips), int)
    )
    for c, j in zip(clips, idx, strict=True):
        c.attributes = class_words(train_classes[j])


def collate(
    clips: Sequence[Clip], vocab: Vocabulary, captions: Sequence[str] | None, max_len: int
) -> dict[str, torch.Tensor]:
    """A batch: padded features and masks, attribute ids, and (for training) token ids."""

    def pad(arrays: list[np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        x, m = pad_frames(arrays)
        return torch.from_numpy(x), torch.from_numpy(m)

    batch: dict[str, torch.Tensor] = {}
    batch["feats"], batch["mask"] = pad([c.feats for c in clips])
    if clips[0].mid is not None:
        batch["mid"], batch["mid_mask"] = pad([c.mid for c in clips])
    attrs = np.full((len(clips), MAX_ATTRIBUTES), PAD, dtype=np.int64)
    for i, c in enumerate(clips):
        ids = [t for t in vocab.ids(c.attributes) if t > 3][:MAX_ATTRIBUTES]  # known words only
        attrs[i, : len(ids)] = ids
    batch["attrs"] = torch.from_numpy(attrs)
    if captions is not None:
        seqs = [vocab.encode(c, max_len) for c in captions]
        tokens = np.full((len(seqs), max(map(len, seqs))), PAD, dtype=np.int64)
        for i, s in enumerate(seqs):
            tokens[i, : len(s)] = s
        batch["tokens"] = torch.from_numpy(tokens)
    return batch
