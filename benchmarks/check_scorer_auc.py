"""Does the check stage tell a clip's own captions from other clips' captions?

    .venv/bin/python benchmarks/check_scorer_auc.py --run RUN_DIR [--data DIR]

On the SceneCaps test split, every clip is paired with its 5 reference captions
(positives) and with 5 captions of other clips (negatives). Each scorer rates every pair
through the pipeline's Scorer interface; ROC AUC says how well the scores separate the
two. Scorers: the built-in text-similarity stand-in (label names YAMNet hears vs the
caption) and a trained retrieval model (`sonicaps train-retrieval`).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from sonicaps.audio import load_audio
from sonicaps.backends.builtin.textsim import TextSimScorer
from sonicaps.backends.builtin.yamnet import Yamnet
from sonicaps.clip import Answers, Clip
from sonicaps.retrieval.data import read_dataset
from sonicaps.retrieval.scorer import RetrievalScorer
from sonicaps.scenes.make import make


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--run", required=True, help="a train-retrieval run directory")
    ap.add_argument("--data", help="a SceneCaps build (default: build seed 0, 2000 clips)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    rng = np.random.default_rng(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "scenecaps"
        if not args.data:
            make(data, 2000, seed=0, progress=False)
        items = [i for i in read_dataset(data) if i.split == "test"]
        clips = [Clip(i.id, str(i.audio), 0.0, 10.0, load_audio(i.audio)) for i in items]
    yamnet = Yamnet()
    answers = []
    for c in clips:  # the evidence the built-in asker would pass to the check stage
        p = yamnet.predict([c.audio])[0].max(axis=0)
        top = np.argsort(-p)[:10]
        answers.append(Answers(("", "", ""), {"labels": [[yamnet.classes[k], float(p[k])] for k in top]}))
    pairs, labels = [], []
    for k, item in enumerate(items):
        for cap in item.captions:
            pairs.append((k, cap))
            labels.append(1)
        for _ in item.captions:
            other = items[(k + 1 + rng.integers(len(items) - 1)) % len(items)]
            pairs.append((k, other.captions[rng.integers(len(other.captions))]))
            labels.append(0)
    print(f"SceneCaps test split: {len(items)} clips, {sum(labels)} true and "
          f"{len(labels) - sum(labels)} foreign captions")
    for name, scorer in (("textsim (built-in stand-in)", TextSimScorer()),
                         (f"retrieval ({Path(args.run).name})", RetrievalScorer(args.run))):
        scores = np.concatenate([
            scorer.score([clips[k] for k, _ in pairs[b:b + 256]], [answers[k] for k, _ in pairs[b:b + 256]],
                         [c for _, c in pairs[b:b + 256]])
            for b in range(0, len(pairs), 256)])
        print(f"{name:<32} ROC AUC {roc_auc_score(labels, scores):.3f}")


if __name__ == "__main__":
    main()
