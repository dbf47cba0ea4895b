"""Audio-text retrieval on SceneCaps: the trained dual encoder beside an untrained baseline.

    .venv/bin/python benchmarks/retrieval_table.py [--data DIR] [--epochs 40] [--out RUN_DIR]

Builds SceneCaps (seed 0, 2000 clips) unless --data is given, trains on its train split
(validation picks the epoch), and prints R@1/5/10, mAP@10 both ways and zero-shot
accuracy on the test split (every caption of every clip, the AudioCaps protocol). The
baseline embeds the names of the labels YAMNet hears and compares them with the captions.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from sonicaps.retrieval.data import read_dataset
from sonicaps.retrieval.train import evaluate_baseline, load_split, train
from sonicaps.scenes.make import make


def row(name: str, res: dict) -> str:
    a, t = res["audio_to_text"], res["text_to_audio"]
    z = res.get("zero_shot", {})
    return (f"{name:<22} {a['R@1']:>5.3f} {a['R@5']:>5.3f} {a['R@10']:>5.3f} {a['mAP@10']:>6.3f}"
            f"   {t['R@1']:>5.3f} {t['R@5']:>5.3f} {t['R@10']:>5.3f} {t['mAP@10']:>6.3f}"
            f"   {z.get('top1', float('nan')):>5.3f} {z.get('top5', float('nan')):>5.3f}")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data")
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--out", help="keep the trained run here (default: a temporary directory)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "scenecaps"
        t0 = time.perf_counter()
        if not args.data:
            make(data, 2000, seed=0, progress=False)
        rep = train(data, args.out or Path(tmp) / "run", epochs=args.epochs, progress=False)
        total = time.perf_counter() - t0
        test = load_split([i for i in read_dataset(data) if i.split == "test"], progress=False)
        base = evaluate_baseline(test)
    print(f"SceneCaps test split: {rep['clips']['test']} clips x 5 captions; trained on "
          f"{rep['clips']['train']} clips, {args.epochs} epochs; "
          f"{'features + training' if args.data else 'build + features + training'} "
          f"{total / 60:.1f} min on this machine")
    print(f"{'':<22} {'audio -> text':^27}   {'text -> audio':^27}   {'zero-shot':^11}")
    print(f"{'model':<22} {'R@1':>5} {'R@5':>5} {'R@10':>5} {'mAP10':>6}   {'R@1':>5} {'R@5':>5} "
          f"{'R@10':>5} {'mAP10':>6}   {'top1':>5} {'top5':>5}")
    print(row("label-name baseline", base))
    print(row("sonicaps dual encoder", rep["test"]))


if __name__ == "__main__":
    main()
