"""How good the default captioning pipeline is on SceneCaps' test split.

    .venv/bin/python benchmarks/pipeline_quality.py [--data DIR] [--n 2000] [--seed 0]

Builds SceneCaps (or reads DIR), captions the test split with the built-in backends, and
prints: caption metrics against the five references; the human upper bound (each
reference scored against the other four, as in the AudioCaps paper); and, per class, the
precision and recall with which answer 1 names the sources the timelines hold.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd

from sonicaps.backends.builtin.lexicon import short_name
from sonicaps.metrics import human_upper_bound, score
from sonicaps.metrics.caption_files import read_captions
from sonicaps.pipeline.runner import run
from sonicaps.scenes.catalog import classes
from sonicaps.scenes.make import make

SHOWN = ("bleu_1", "bleu_4", "meteor", "rouge_l", "cider_d", "spice", "spider", "sbert_sim")


def named(evidence: dict, cls: str) -> bool:
    """Answer 1 names the class; for instruments, answer 3 names the instrument."""
    c = classes()[cls]
    if c.group == "music":
        return short_name(c.audioset) in evidence["music"]["instruments"]
    return bool({e["subject"] for e in evidence["events"]} & set(c.detect))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", help="an existing SceneCaps build (default: build one)")
    ap.add_argument("--n", type=int, default=2000)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(args.data) if args.data else Path(tmp) / "scenecaps"
        if not args.data:
            make(data, args.n, seed=args.seed, progress=False)
        splits = pd.read_csv(data / "splits.csv")
        test = set(splits.loc[splits["split"] == "test", "id"])
        files = sorted(p for p in (data / "audio").iterdir() if p.stem in test)
        s = run(files, Path(tmp) / "out", progress=False)
        df = pd.read_parquet(Path(tmp) / "out")
        refs_by_id = read_captions(data / "captions.csv")
        truth = {}
        with open(data / "events.jsonl") as f:
            for line in f:
                rec = json.loads(line)
                truth[rec["id"]] = {e["class"] for e in rec["events"]}
    df["scene"] = df["source"].map(lambda p: Path(p).stem)
    df = df.sort_values("scene")
    refs = [refs_by_id[i] for i in df["scene"]]
    machine = score(list(df["caption"]), refs)
    human = human_upper_bound(refs)
    print(f"SceneCaps test split: {len(df)} clips (seed {args.seed}), "
          f"captioned at {s.clips_per_s:.1f} clips/s")
    print(f"{'metric':<10} {'pipeline':>9} {'human':>7}")
    for m in SHOWN:
        if m in machine:
            print(f"{m:<10} {machine[m]:>9.3f} {human.get(m, float('nan')):>7.3f}")
    for m, why in machine.get("unavailable", {}).items():
        print(f"{m:<10} unavailable: {why.splitlines()[0][:90]}")

    held, said, hit = Counter(), Counter(), Counter()
    music = {c for c, v in classes().items() if v.group == "music"}
    for row in df.itertuples():
        ev = json.loads(row.evidence)
        present = truth[row.scene]
        n = ev["music"]["present"]
        held["music (any)"] += bool(present & music)
        said["music (any)"] += n
        hit["music (any)"] += n and bool(present & music)
        for cls in classes():
            n = named(ev, cls)
            held[cls] += cls in present
            said[cls] += n
            hit[cls] += n and cls in present
    print(f"\n{'class':<18} {'clips':>5} {'recall':>7} {'precision':>9}")
    for cls in sorted(held, key=lambda c: (-held[c], c)):
        if held[cls]:
            prec = f"{hit[cls] / said[cls]:>9.2f}" if said[cls] else f"{'-':>9}"
            print(f"{cls:<18} {held[cls]:>5} {hit[cls] / held[cls]:>7.2f} {prec}")
    tot_h = sum(v for k, v in held.items() if k in classes())
    tot_hit = sum(v for k, v in hit.items() if k in classes())
    # No overall precision: subjects shared by classes ("a person" for screams, laughs and
    # coughs) would count one mention several times.
    print(f"{'all classes (micro)':<18} {tot_h:>5} {tot_hit / tot_h:>7.2f}")


if __name__ == "__main__":
    main()
