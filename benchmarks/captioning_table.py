"""The AudioCaps paper's Table 2 on SceneCaps: every captioning model, several seeds.

    .venv/bin/python benchmarks/captioning_table.py [--scenes 2000] [--seeds 0 1 2]
        [--max-minutes 10] [--models lstm tempatt ...] [--dir /tmp/sonicaps-captioning] [--data BUILD]
        [--jobs 2]

Builds SceneCaps (seed 0) once, trains each model with each seed on its train split
(early stopping on val CIDEr-D, at most --max-minutes of training each), captions the
test split with greedy decoding, and prints mean ± std over seeds of B-1..4, METEOR,
CIDEr-D, ROUGE-L and SBERT-sim, with the human upper bound (each reference against the
other four). Finished runs are kept in --dir and skipped on a re-run, so the table can
be built over several sittings. Features are cached, so only the first run pays for them.

--jobs runs that many trainings at once with cpu_count // jobs torch threads each: these
models are small, so on 2 cores two 1-thread runs train 1.74x as many batches per minute
as one 2-thread run (69 s against 60 s per tempatt epoch). Results depend on the thread
count (float summation order), so it is recorded with each run.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
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
    p.add_argument("--jobs", type=int, default=2, help="trainings at once (default 2)")
    p.add_argument("--data", help="an existing SceneCaps build (default: build one in --dir)")
    args = p.parse_args()
    root = Path(args.dir)
    data = Path(args.data) if args.data else root / f"scenecaps-{args.scenes}"
    if not (data / "captions.csv").is_file():
        from sonicaps.scenes.make import make

        make(data, args.scenes, seed=0, progress=True)

    jobs = []
    for model in args.models:
        seeds = [0] if model.startswith("1nn") else args.seeds  # 1-NN has nothing random
        jobs += [(model, seed) for seed in seeds]
    # seed by seed, so that an interrupted table has every model at the first seeds
    todo = sorted((j for j in jobs if not _result_file(root, *j).is_file()), key=lambda j: j[1])
    threads = max(1, (os.cpu_count() or 1) // args.jobs)
    # spawn: a forked child would inherit the parent's torch thread pool
    with ProcessPoolExecutor(args.jobs, mp_context=multiprocessing.get_context("spawn")) as pool:
        done = [pool.submit(_run, data, root, model, seed, args.max_minutes, threads) for model, seed in todo]
        for future in done:
            print(future.result(), flush=True)

    results: dict[str, list[dict]] = {}
    for model, seed in jobs:
        results.setdefault(model, []).append(json.loads(_result_file(root, model, seed).read_text()))
    human = results[args.models[0]][0]["human"]

    print(
        f"\nSceneCaps test split ({results[args.models[0]][0]['clips']} clips, {args.scenes} scenes), "
        f"greedy decoding; mean ± std over seeds {args.seeds} (1-NN: one run)"
    )
    print(f"{'model':<12}" + "".join(f"{s:>14}" for s in SHOWN) + f"{'epochs':>8}{'min':>6}{'threads':>8}")
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
        threads = ",".join(sorted({str(r.get("threads", "?")) for r in runs}))
        tail = f"{epochs:>8.1f}{minutes:>6.1f}{threads:>8}"
        print(f"{model:<12}" + "".join(f"{c:>14}" for c in cells) + tail)
    print(f"{'human':<12}" + "".join(f"{human[m]:>14.3f}" for m in METRICS))


def _result_file(root: Path, model: str, seed: int) -> Path:
    return root / "runs" / f"{model}-seed{seed}" / "test.json"


def _run(data: Path, root: Path, model: str, seed: int, max_minutes: float, threads: int) -> str:
    """Train and evaluate one model with one seed in a worker process; keep test.json."""
    import torch

    torch.set_num_threads(threads)
    run_dir = _result_file(root, model, seed).parent
    start = time.monotonic()
    run = train(data, run_dir, TrainConfig(model=model, seed=seed, max_minutes=max_minutes), progress=False)
    result = evaluate(load(run_dir), data, "test", metrics=METRICS)
    result["train_seconds"] = time.monotonic() - start
    result["epochs"] = len(run.history)
    result["threads"] = threads
    (run_dir / "test.json").write_text(json.dumps(result, indent=1))
    minutes = result["train_seconds"] / 60
    return f"{model} seed {seed}: CIDEr-D {result['scores']['cider_d']:.3f} ({minutes:.1f} min)"


if __name__ == "__main__":
    main()
