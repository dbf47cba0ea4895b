"""How often the default asker names what is really in a clip.

    .venv/bin/python benchmarks/detection_quality.py [--clips 160]

Random 10-s mixes of real recordings with known sources (the same generator as
caption_throughput.py, another seed). For each source class: recall (clips holding it
whose answer-1 events name it) and precision (clips whose events name it that really
hold it).
"""

from __future__ import annotations

import argparse
import json
import tempfile
from collections import Counter
from pathlib import Path

import pandas as pd
from caption_throughput import AUDIOSET_NAMES, make_collection

from sonicaps.pipeline.runner import run

# The subjects the built-in asker uses for each source.
SUBJECTS = {"cow": {"a cow"}, "dog": {"a dog"}, "duck": {"a duck"}, "frog": {"frogs"},
            "horse": {"a horse"}, "owl": {"an owl"}, "pig": {"a pig"},
            "rooster": {"a rooster", "a chicken"}, "sheep": {"a sheep"},
            "male": {"a man"}, "female": {"a woman"}}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=160)
    args = ap.parse_args()
    by_name = {v: k for k, v in AUDIOSET_NAMES.items()}
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "audio"
        src.mkdir()
        labels = make_collection(src, args.clips, seed=2)
        run([src], Path(tmp) / "out", progress=False)
        df = pd.read_parquet(Path(tmp) / "out")
    truth = {str(p): {by_name[n] for n in names} for p, names in labels.items()}
    held, named, hit = Counter(), Counter(), Counter()
    for row in df.itertuples():
        subjects = {e["subject"] for e in json.loads(row.evidence)["events"]}
        present = truth[row.source]
        for cls, subj in SUBJECTS.items():
            said = bool(subjects & subj)
            held[cls] += cls in present
            named[cls] += said
            hit[cls] += said and cls in present
    print(f"{len(df)} clips\n{'class':<8} {'clips':>5} {'recall':>7} {'precision':>9}")
    for cls in SUBJECTS:
        rec = hit[cls] / held[cls] if held[cls] else float("nan")
        prec = hit[cls] / named[cls] if named[cls] else float("nan")
        print(f"{cls:<8} {held[cls]:>5} {rec:>7.2f} {prec:>9.2f}")
    tot_h, tot_n, tot_hit = sum(held.values()), sum(named.values()), sum(hit.values())
    print(f"{'all':<8} {tot_h:>5} {tot_hit / tot_h:>7.2f} {tot_hit / tot_n:>9.2f}")


if __name__ == "__main__":
    main()
