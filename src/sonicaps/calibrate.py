"""Calibrate a check backend's acceptance threshold on the user's own data.

The threshold applies to clips without labels: a caption is accepted when its check score
reaches it. It is the equal-error point between captions that belong to their clip and
captions that do not, measured on either
- labelled clips (a manifest with a labels column, an AudioSet segment list): the
  pipeline captions them, and each clip is also scored against the caption of a clip that
  shares none of its labels; or
- a captioned output reviewed on the review page (`sonicaps review OUT`): accepted and
  edited captions belong to their clip; rejected ones, and captions of other clips, do not.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from sonicaps.audio import load_audio
from sonicaps.clip import Answers, Clip
from sonicaps.pipeline.config import PipelineConfig
from sonicaps.pipeline.stages import Backends


@dataclass(frozen=True)
class Calibration:
    threshold: float
    false_reject: float  # own captions below the threshold
    false_accept: float  # foreign captions at or above it
    own: int  # captions scored that belong to their clip
    foreign: int  # captions scored that do not
    source: str  # "labels" or "reviews"
    scorer: str
    own_mean: float  # mean score of own captions
    foreign_mean: float  # mean score of foreign captions

    def report(self) -> str:
        return (f"check backend {self.scorer}, calibrated on {self.source}: {self.own} own captions "
                f"(mean score {self.own_mean:.3f}) and {self.foreign} foreign ones "
                f"(mean {self.foreign_mean:.3f})"
                f"\nequal-error threshold {self.threshold:.3f}: rejects "
                f"{self.false_reject:.1%} of own captions, accepts {self.false_accept:.1%} of foreign ones\n"
                f"put it in the config: [pipeline] accept_threshold = {self.threshold:.3f}")


def equal_error_threshold(own: np.ndarray, foreign: np.ndarray) -> tuple[float, float, float]:
    """(threshold, false-reject rate, false-accept rate) where the two rates meet, on the
    scores themselves (cosine-like scores lie in [-1, 1])."""
    own, foreign = np.asarray(own, float), np.asarray(foreign, float)
    if not len(own) or not len(foreign):
        raise ValueError("calibration needs both own and foreign captions")
    grid = np.unique(np.r_[own, foreign, np.nextafter(own.max(), np.inf)])
    frr = np.array([(own < t).mean() for t in grid])
    far = np.array([(foreign >= t).mean() for t in grid])
    k = int(np.argmin(np.abs(frr - far)))
    return float(grid[k]), float(frr[k]), float(far[k])


def _foreign_texts(labels: Sequence[frozenset], captions: Sequence[str], seed: int) -> list[int | None]:
    """For each clip, a random clip that shares none of its labels (None if there is none)."""
    rng = np.random.default_rng(seed)
    out: list[int | None] = []
    for i, mine in enumerate(labels):
        others = [j for j in range(len(labels)) if j != i and not labels[j] & mine]
        out.append(others[rng.integers(len(others))] if others else None)
    return out


def _answers(row: dict) -> Answers:
    """A clip's answers as the pipeline stored them: scorers that stand in for the audio
    with what the asker found (textsim) need them; audio-text models ignore them."""
    texts = tuple(row.get(f"answer_{k}") or "" for k in (1, 2, 3))
    return Answers(texts, json.loads(row.get("evidence") or "{}"))


def _score(backends: Backends, clips: list[Clip], answers: list[Answers], texts: list[str],
           batch: int) -> np.ndarray:
    out = []
    for k in range(0, len(clips), batch):
        part = slice(k, k + batch)
        out.append(backends.scorer.score(clips[part], answers[part], texts[part]))
    return np.concatenate(out) if out else np.zeros(0)


def _calibration(own: np.ndarray, foreign: np.ndarray, source: str, scorer: str) -> Calibration:
    t, frr, far = equal_error_threshold(own, foreign)
    return Calibration(t, frr, far, len(own), len(foreign), source, scorer, float(np.mean(own)),
                       float(np.mean(foreign)))


def from_labels(inputs: Sequence[str | Path], cfg: PipelineConfig, *, audio_root: str | Path | None = None,
                seed: int = 0, progress: bool = True) -> Calibration:
    """Caption labelled clips with the config's pipeline and calibrate its check on them."""
    import pandas as pd

    from sonicaps.pipeline.runner import run

    backends = Backends.from_config(cfg)
    with tempfile.TemporaryDirectory(prefix="sonicaps-calibrate-") as tmp:
        run(inputs, Path(tmp) / "out", cfg, audio_root=audio_root, backends=backends, progress=progress)
        files = list((Path(tmp) / "out").glob("part-*.parquet"))
        df = pd.concat([pd.read_parquet(f) for f in files]) if files else pd.DataFrame()
    if df.empty or not (df["label_source"] == "given").any():
        raise ValueError("no captioned clip with labels: give a manifest with a labels column "
                         "(or an AudioSet segment list), or a reviewed output folder")
    df = df[df["label_source"] == "given"].reset_index(drop=True)
    labels = [frozenset(x) for x in df["labels"]]
    pick = _foreign_texts(labels, list(df["caption"]), seed)
    keep = [i for i, j in enumerate(pick) if j is not None]
    clips = [Clip(df["id"][i], df["source"][i], df["start_s"][i], df["end_s"][i],
                  load_audio(df["source"][i], start_s=df["start_s"][i], end_s=df["end_s"][i])) for i in keep]
    rows = df.to_dict("records")
    foreign = _score(backends, clips, [_answers(rows[i]) for i in keep],
                     [df["caption"][pick[i]] for i in keep], cfg.batch_size)
    return _calibration(df["check_score"].to_numpy(float), foreign, "labels", backends.scorer.model_id)


def from_reviews(output: str | Path, cfg: PipelineConfig, *, review_db: str | Path | None = None,
                 seed: int = 0) -> Calibration:
    """Calibrate on a reviewed output: kept (accepted/edited) captions are own, rejected
    captions and the kept caption of another clip are foreign."""
    from sonicaps.review.collection import Collection
    from sonicaps.review.reviews import current_reviews

    collection = Collection(output, db_dir=review_db)
    latest: dict[int, dict] = {}
    for r in current_reviews(collection.con):  # the most recent decision per item
        if r["pos"] not in latest or r["id"] > latest[r["pos"]]["id"]:
            latest[r["pos"]] = r
    if not latest:
        raise ValueError(f"{output}: no reviewed captions (review them with `sonicaps review {output}`)")
    clips: dict[int, tuple[Clip, Answers]] = {}
    for pos, r in latest.items():
        path, start, end = collection.audio_span(pos)
        clip = Clip(r["clip"], str(path), start, end or 0.0, load_audio(path, start_s=start, end_s=end))
        clips[pos] = (clip, _answers(collection.output_row(pos)))
    kept = [p for p, r in latest.items() if r["action"] != "reject"]
    rejected = [p for p, r in latest.items() if r["action"] == "reject"]
    rng = np.random.default_rng(seed)
    pairs_own = [(*clips[p], latest[p]["caption"]) for p in kept]
    pairs_foreign = [(*clips[p], latest[p]["machine_caption"]) for p in rejected]
    for p in kept if len(kept) > 1 else []:
        q = kept[(kept.index(p) + 1 + int(rng.integers(len(kept) - 1))) % len(kept)]
        pairs_foreign.append((*clips[p], latest[q]["caption"]))
    backends = Backends.from_config(cfg)

    def scores(pairs: list[tuple[Clip, Answers, str]]) -> np.ndarray:
        return _score(backends, [c for c, _, _ in pairs], [a for _, a, _ in pairs], [t for _, _, t in pairs],
                      cfg.batch_size)

    return _calibration(scores(pairs_own), scores(pairs_foreign), "reviews", backends.scorer.model_id)


def calibrate(data: Sequence[str | Path], cfg: PipelineConfig, *, review_db: str | Path | None = None,
              audio_root: str | Path | None = None, progress: bool = True) -> Calibration:
    """A reviewed pipeline output (one folder with a review database), else labelled inputs."""
    from sonicaps.review.collection import _is_pipeline_output, review_dir_for

    if len(data) == 1 and _is_pipeline_output(Path(data[0])):
        db = Path(review_db) if review_db else review_dir_for(Path(data[0]))
        if not db.exists():
            raise ValueError(f"{data[0]} is a captioned output with no reviews: review it first with "
                             f"`sonicaps review {data[0]}`")
        return from_reviews(data[0], cfg, review_db=review_db)
    return from_labels(data, cfg, audio_root=audio_root, progress=progress)


def to_json(cal: Calibration) -> str:
    return json.dumps(cal.__dict__, indent=2)
