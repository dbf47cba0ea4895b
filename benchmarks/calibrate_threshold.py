"""Calibrate the acceptance threshold used for clips that come without labels.

    .venv/bin/python benchmarks/calibrate_threshold.py [--clips 160] [--config CONFIG]

On labelled clips (random mixes of real recordings whose AudioSet labels we know) each
clip's own caption is scored, and so is the caption of another clip that shares none of
its labels. The threshold is the equal-error point: the score at which as many own
captions are rejected as foreign captions are accepted. Prints the threshold, both
error rates, and how often it agrees with the recipe's label rule (check_score >=
label_score). This is the project's own measurement on its mixes; to calibrate a check
backend on your own labelled clips or reviewed captions, use `sonicaps calibrate`
(docs/audio-llms.md).
"""

from __future__ import annotations

import argparse
import csv
import json
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from caption_throughput import make_collection
from sklearn.metrics import roc_auc_score

from sonicaps.audio import load_audio
from sonicaps.clip import Answers, Clip
from sonicaps.pipeline.config import PipelineConfig, load_config
from sonicaps.pipeline.runner import run
from sonicaps.pipeline.stages import Backends


def equal_error_threshold(own: np.ndarray, foreign: np.ndarray) -> tuple[float, float, float]:
    grid = np.linspace(-0.2, 1.0, 1201)
    frr = np.array([(own < t).mean() for t in grid])
    far = np.array([(foreign >= t).mean() for t in grid])
    k = int(np.argmin(np.abs(frr - far)))
    return float(grid[k]), float(frr[k]), float(far[k])


def foreign_scores(df: pd.DataFrame, cfg: PipelineConfig, seed: int = 0) -> np.ndarray:
    """Score each clip against the caption of a random clip with disjoint labels."""
    backends = Backends.from_config(cfg)
    rng = np.random.default_rng(seed)
    labels = [set(x) for x in df["labels"]]
    clips, answers, texts = [], [], []
    for i, row in enumerate(df.itertuples()):
        others = [j for j in range(len(df)) if not labels[j] & labels[i]]
        j = others[rng.integers(len(others))]
        clips.append(Clip(row.id, row.source, row.start_s, row.end_s,
                          load_audio(row.source, start_s=row.start_s, end_s=row.end_s)))
        answers.append(Answers((row.answer_1, row.answer_2, row.answer_3), json.loads(row.evidence)))
        texts.append(df["caption"].iloc[j])
    return backends.scorer.score(clips, answers, texts)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=160)
    ap.add_argument("--config", help="pipeline config choosing the check backend (default: built-in)")
    args = ap.parse_args()
    cfg = load_config(args.config) if args.config else PipelineConfig()
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "audio"
        src.mkdir()
        labels = make_collection(src, args.clips, seed=1)
        manifest = Path(tmp) / "labelled.csv"
        with open(manifest, "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["path", "labels"])
            for path, names in labels.items():
                w.writerow([path, ";".join(names)])
        run([manifest], Path(tmp) / "out", cfg, progress=False)
        df = pd.read_parquet(Path(tmp) / "out")
        foreign = foreign_scores(df, cfg)
    own = df["check_score"].to_numpy()
    rule = own >= df["label_score"].to_numpy()
    t, frr, far = equal_error_threshold(own, foreign)
    print(f"check backend: {df['scorer'].iloc[0]}")
    auc = roc_auc_score(np.r_[np.ones(len(own)), np.zeros(len(foreign))], np.r_[own, foreign])
    print(f"ROC AUC own vs foreign captions: {auc:.3f}")
    print(f"{len(df)} labelled clips: own caption median score {np.median(own):.3f}, "
          f"foreign caption median {np.median(foreign):.3f}")
    print(f"equal-error threshold {t:.3f}: rejects {frr:.1%} of own captions, "
          f"accepts {far:.1%} of foreign captions")
    shipped = getattr(Backends.from_config(cfg).scorer, "accept_threshold", None)
    if shipped is not None:
        print(f"the shipped threshold {shipped}: rejects {(own < shipped).mean():.1%} of own "
              f"captions, accepts {(foreign >= shipped).mean():.1%} of foreign captions")
        no_source = df["caption"].str.startswith(("Faint background noise", "Silence")).to_numpy()
        print(f"  of the own captions it rejects, {(no_source & (own < shipped)).sum()} of "
              f"{(own < shipped).sum()} name no source at all")
    print(f"the label rule accepts {rule.mean():.1%} of own captions; the threshold agrees "
          f"with it on {np.mean((own >= t) == rule):.1%} of clips")


if __name__ == "__main__":
    main()
