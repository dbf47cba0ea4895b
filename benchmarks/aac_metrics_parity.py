"""sonicaps beside aac-metrics 0.5.5, metric by metric: the largest difference from
aac-metrics' recorded outputs (tests/data/aac_metrics_reference/, AudioCaps val, 495 clips,
tiny random models; SPICE replaced by the same stand-in on both sides) and the speed of the
model-based metrics in items/s.

    .venv/bin/python benchmarks/aac_metrics_parity.py [--device cpu|cuda] [--batch-size 32]

Items/s are measured on the tiny models (second call: loading excluded), so they show
the batching overhead of sonicaps' code, not the speed of the published models.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data" / "aac_metrics_reference"
sys.path.insert(0, str(DATA))

from stand_in import spice_items  # noqa: E402

import sonicaps.metrics.spice as spice_module  # noqa: E402
from sonicaps.metrics import score  # noqa: E402
from sonicaps.metrics.models import MetricModels  # noqa: E402

# (metric asked for, reference entry, keys compared)
ROWS = [
    *[(f"bleu_{n}", f"bleu_{n}", [f"bleu_{n}"]) for n in range(1, 7)],
    ("vocab", "vocab", ["vocab.cands", "vocab.mrefs_full", "vocab.ratio_full", "vocab.mrefs_avg",
                        "vocab.ratio_avg", "vocab.precision", "vocab.recall", "vocab.f1", "vocab.jaccard"]),
    ("spider_max", "spider_max", ["spider_max", "cider_d_max", "spice_max"]),
    ("spider_fl", "spider_fl", ["cider_d", "spider", "fer", "spider_fl"]),
    ("fer", "fer", ["fer"]),
    ("sbert_sim", "sbert_sim", ["sbert_sim"]),
    ("fense", "fense", ["fense"]),
    ("bert_score", "bert_score", ["bert_score.precision", "bert_score.recall", "bert_score.f1"]),
    ("clap_sim", "clap_sim", ["clap_sim"]),
    ("mace", "mace", ["mace"]),
]
MODEL_BASED = {"fer", "sbert_sim", "fense", "bert_score", "clap_sim", "mace", "spider_fl"}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--threads", type=int, default=0,
                   help="torch threads (default: torch's; on a machine shared with other jobs, 1 avoids "
                   "threads waiting on each other)")
    args = p.parse_args()
    ref = json.loads((DATA / "reference.json").read_text(encoding="utf-8"))
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    tiny = DATA / "models"
    models = MetricModels(sbert=str(tiny / "sbert"), echecker=str(tiny / "echecker_tiny.ckpt"),
                          bert_score=str(tiny / "roberta"), clap=str(tiny / "msclap"),
                          device=args.device, batch_size=args.batch_size)

    def spice(candidates, references):
        items = np.array(spice_items(candidates, references))
        return float(np.mean(items)), items

    spice_module.spice = spice
    n = len(ref["candidates"])
    print(f"{n} items (AudioCaps val), aac-metrics {ref['versions']['aac-metrics']}, "
          f"device {args.device}, batch {args.batch_size}")
    print("| metric | max abs diff, corpus | max abs diff, per item | items/s |")
    print("|---|---|---|---|")
    for name, entry, keys in ROWS:
        cands = ref["mult_candidates"] if name == "spider_max" else ref["candidates"]
        score(cands, ref["references"], metrics=name, models=models)  # loads the models
        start = time.perf_counter()
        res = score(cands, ref["references"], metrics=name, models=replace(models))
        seconds = time.perf_counter() - start
        expected = ref["metrics"][entry]
        corpus = max(abs(res[k] - expected["corpus"][k]) for k in keys)
        items = [np.max(np.abs(res["per_item"][k] - np.array(expected["per_item"][k])))
                 for k in keys if k in res["per_item"] and k in expected["per_item"]
                 and not (name == "mace" and k == "mace")]  # aac-metrics 0.5.5 puts the corpus there
        per_item = f"{max(items):.1e}" if items else "n/a"
        rate = f"{n / seconds:.0f}" if name in MODEL_BASED else ""
        print(f"| {name} | {corpus:.1e} | {per_item} | {rate} |")


if __name__ == "__main__":
    main()
