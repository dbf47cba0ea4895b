"""Retrieval and zero-shot classification metrics from a similarity matrix.

Follows the AudioCaps/Clotho retrieval protocol (several captions per clip): audio->text
counts a query as found at the rank of its best-ranked caption; mAP@10 averages the
precision at each relevant caption within the top 10, divided by min(relevant, 10), which
is the 5-caption definition of the DCASE baseline and equals reciprocal rank for
text->audio. Ties are ranked pessimistically (an equal score from another item counts as
ranked above), so a constant similarity matrix cannot look good.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RECALL_AT = (1, 5, 10, 50)
MAP_AT = 10


def _ranks(scores: np.ndarray, relevant: np.ndarray) -> np.ndarray:
    """1-based ranks of the relevant columns in one row.

    A non-relevant item with an equal score ranks above; relevant items tied with each
    other take consecutive ranks in index order.
    """
    values = scores[relevant]
    at_least_all = (scores[None, :] >= values[:, None]).sum(axis=1)
    at_least_relevant = (values[None, :] >= values[:, None]).sum(axis=1)
    above_relevant = (values[None, :] > values[:, None]).sum(axis=1)
    tied_before = np.tril(values[None, :] == values[:, None], k=-1).sum(axis=1)
    return 1 + (at_least_all - at_least_relevant) + above_relevant + tied_before


def _summary(first_ranks: np.ndarray, aps: np.ndarray) -> dict[str, float]:
    out = {f"R@{k}": float(np.mean(first_ranks <= k)) for k in RECALL_AT}
    out["median_rank"] = float(np.median(first_ranks))
    out["mean_rank"] = float(np.mean(first_ranks))
    out[f"mAP@{MAP_AT}"] = float(np.mean(aps))
    return out


def _query(scores: np.ndarray, relevant: np.ndarray) -> tuple[int, float]:
    ranks = np.sort(_ranks(scores, relevant))
    hits = ranks <= MAP_AT
    ap = float(np.sum(np.arange(1, hits.sum() + 1) / ranks[hits])) / min(len(relevant), MAP_AT)
    return int(ranks[0]), ap


def retrieval(similarity: np.ndarray,
              text_to_audio: Sequence[int] | None = None) -> dict[str, dict[str, float]]:
    """R@1/5/10/50, median and mean rank, mAP@10 for audio->text and text->audio.

    similarity: (n_audio, n_text), higher is more similar. text_to_audio[j] is the audio
    that caption j describes; by default captions come grouped in audio order with the
    same number per audio (AudioCaps test: 5 per clip).
    """
    sim = np.asarray(similarity, dtype=np.float64)
    if sim.ndim != 2 or 0 in sim.shape:
        raise ValueError(f"similarity must be a non-empty (n_audio, n_text) matrix, got shape {sim.shape}")
    if not np.isfinite(sim).all():
        bad = np.argwhere(~np.isfinite(sim))[0]
        raise ValueError(f"similarity has a non-finite value at (audio {bad[0]}, text {bad[1]})")
    n_audio, n_text = sim.shape
    if text_to_audio is None:
        if n_text % n_audio:
            raise ValueError(f"{n_text} captions do not split evenly over {n_audio} clips: "
                             "pass text_to_audio")
        owner = np.repeat(np.arange(n_audio), n_text // n_audio)
    else:
        owner = np.asarray(text_to_audio, dtype=np.int64)
        if owner.shape != (n_text,):
            raise ValueError(f"text_to_audio has {owner.size} entries for {n_text} captions")
        if owner.min() < 0 or owner.max() >= n_audio:
            raise ValueError(f"text_to_audio refers to clip {int(owner.max())} but there are {n_audio}")
    captions_of = [np.flatnonzero(owner == a) for a in range(n_audio)]
    empty = [a for a, c in enumerate(captions_of) if len(c) == 0]
    if empty:
        raise ValueError(f"clip {empty[0]} has no caption ({len(empty)} clips without captions)")

    a2t = [_query(sim[a], captions_of[a]) for a in range(n_audio)]
    t2a = [_query(sim[:, t], np.array([owner[t]])) for t in range(n_text)]
    return {
        "audio_to_text": _summary(np.array([r for r, _ in a2t]), np.array([ap for _, ap in a2t])),
        "text_to_audio": _summary(np.array([r for r, _ in t2a]), np.array([ap for _, ap in t2a])),
    }


def zero_shot_accuracy(similarity: np.ndarray, labels: Sequence[int] | Sequence[Sequence[int]],
                       k: int = 1) -> float:
    """Top-k accuracy of classifying each clip as its most similar class text.

    similarity: (n_audio, n_classes); labels[i] is the true class of clip i, or the set of
    classes present in it (multi-label scenes: a hit when any present class is in the top
    k). Ties count against the truth, as in retrieval().
    """
    sim = np.asarray(similarity, dtype=np.float64)
    truth = [np.atleast_1d(np.asarray(x, dtype=np.int64)) for x in labels]
    if sim.ndim != 2 or sim.shape[0] != len(truth):
        raise ValueError(f"similarity {sim.shape} needs one row per label ({len(truth)} labels)")
    if any(t.size == 0 for t in truth):
        raise ValueError("every clip needs at least one true class")
    flat = np.concatenate(truth)
    if flat.min() < 0 or flat.max() >= sim.shape[1]:
        raise ValueError(f"labels must index the {sim.shape[1]} classes")
    if not np.isfinite(sim).all():
        raise ValueError("similarity has non-finite values")
    hits = []
    for row, t in zip(sim, truth, strict=True):
        best = row[t].max()
        others = np.delete(row, t)
        hits.append((others >= best).sum() + 1 <= k)  # 1 = a true class strictly best
    return float(np.mean(hits))
