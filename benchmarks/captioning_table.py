"""The AudioCaps paper's Table 2 on SceneCaps: every captioning model, several seeds.

    .venv/bin/python benchmarks/captioning_table.py [--scenes 2000] [--seeds 0 1 2]
        [--max-minutes 10] [--models lstm tempatt ...] [--dir /tmp/sonicaps-captioning] [--data BUILD]

Builds SceneCaps (seed 0) once, trains each model with each seed on its train split
(early stopping on val CIDEr-D, at most --max-minutes of training each), captions the
test split with greedy decoding, and prints mean ± std over seeds of B-1..4, METEOR,
CIDEr-D, ROUGE-L and SBERT-sim, with the human upper bound (each reference against the
other four). Finished runs are kept in --dir and skipped on a re-run, so the table can
be built over several sittings. Features are cached, so only the first run pays for them.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from sonicaps.captioning.train import MODELS, TrainConfig, evaluate, load, train

METRICS = ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "cider_d", "rouge_l", "sbert_sim"]
SHOWN = ["B-1", "B-2", "B-3", "B-4", "METEOR", "CIDEr-D", "ROUGE-L", "SBERT"]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--scenes", type=int, default=2000)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    p.add_argument("--models", nargs="+", default=list(MODELS))
    p.add_argument("--max-minutes", type=float, default=10.0)
    p.add_argument("--dir", default="/tmp/sonicaps-captioning")
    p.add_argument("--data", help="an existing SceneCaps build (default: build one in --dir)")
    args = p.parse_args()
    root = Path(args.dir)
    data = Path(args.data) if args.data else root / f"scenecaps-{args.scenes}"
    if not (data / "captions.csv").is_file():
        from sonicaps.scenes.make import make

        make(data, args.scenes, seed=0, progress=True)

    results: dict[str, list[dict]] = {}
    human = None
    for model in args.models:
        seeds = [0] if model.startswith("1nn") else args.seeds  # 1-NN has nothing random
        for seed in seeds:
            run_dir = root / "runs" / f"{model}-seed{seed}"
            result_file = run_dir / "test.json"
            if not result_file.is_file():
                start = time.monotonic()
                run = train(data, run_dir, TrainConfig(model=model, seed=seed, max_minutes=args.max_minutes),
                            progress=False)
                result = evaluate(load(run_dir), data, "test", metrics=METRICS)
                result["train_seconds"] = time.monotonic() - start
                result["epochs"] = len(run.history)
                result_file.write_text(json.dumps(result, indent=1))
                print(f"{model} seed {seed}: CIDEr-D {result['scores']['cider_d']:.3f} "
                      f"({result['train_seconds'] / 60:.1f} min)", flush=True)
            result = json.loads(result_file.read_text())
            results.setdefault(model, []).append(result)
            human = human or result["human"]

    print(f"\nSceneCaps test split ({results[args.models[0]][0]['clips']} clips, {args.scenes} scenes), "
          f"greedy decoding; mean ± std over seeds {args.seeds} (1-NN: one run)")
    print(f"{'model':<12}" + "".join(f"{s:>14}" for s in SHOWN) + f"{'epochs':>8}{'min':>6}")
    for model, runs in results.items():
        cells = []
        for m in METRICS:
            values = [r["scores"][m] for r in runs]
            if len(values) > 1:
                cells.append(f"{statistics.fmean(values):.3f}±{statistics.stdev(values):.3f}")
            else:
                cells.append(f"{values[0]:.3f}")
        epochs = statistics.fmean(r["epochs"] for r in runs)
        minutes = statistics.fmean(r["train_seconds"] for r in runs) / 60
        print(f"{model:<12}" + "".join(f"{c:>14}" for c in cells) + f"{epochs:>8.1f}{minutes:>6.1f}")
    print(f"{'human':<12}" + "".join(f"{human[m]:>14.3f}" for m in METRICS))


if __name__ == "__main__":
    main()
