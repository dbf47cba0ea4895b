"""sonicaps metrics against pycocoevalcap on one corpus: time, ratio, and agreement.

    .venv/bin/python benchmarks/metrics_speed.py [--items 1000] [--repeat 3] [--memory-items 100000]

Both score the same AudioCaps-like corpus (tests/corpora.py: N items x 5 references) with
the full COCO suite the way papers run it: PTB tokenization, BLEU-1..4, METEOR, ROUGE-L,
CIDEr-D. pycocoevalcap runs its Java tokenizer and METEOR jar; sonicaps runs in a fresh
Python process (imports and METEOR resource loading included, the METEOR index and
bytecode caches already built, as after a first run), so both sides pay their start-up.
Both run --repeat times, alternating, since a shared machine's speed drifts. Prints the
per-metric times of each run, the median ratio of wall times, and the largest difference
between the two sets of numbers.
With --words N, the captions are drawn from N words instead (a wide-vocabulary worst case).
With --memory-items, also scores that many candidates in a fresh process and prints its
peak memory and that of its largest worker process.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))

from corpora import corpus  # noqa: E402

# Runs in a child process so that imports and resource loading are timed, as a user sees them.
CHILD = """
import json, sys, time, resource
t0 = time.perf_counter()
with open({path!r}) as f:
    cands, refs = json.load(f)
t1 = time.perf_counter()
from sonicaps.metrics import score
res = score(cands, refs, metrics="coco")
t2 = time.perf_counter()
out = {{k: v for k, v in res.items() if k != "per_item"}}
out["per_item"] = {{k: v.tolist() for k, v in res["per_item"].items()}}
out["_seconds"] = t2 - t1
out["_corpus_seconds"] = t1 - t0
out["_peak_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
out["_worker_peak_mb"] = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps(out))
"""


def wide_corpus(items: int, words: int, seed: int) -> tuple[list[str], list[list[str]]]:
    """Captions of 6-14 words drawn uniformly from `words` words of METEOR's paraphrase
    vocabulary: nearly every word of the vocabulary occurs, the worst case for sonicaps,
    whose METEOR prepares each distinct word (stem, synonyms, paraphrase entries) once."""
    from sonicaps.metrics.meteor_data import load_resources

    vocab = [w for w in (b.decode() for b in load_resources().paraphrases.vocab.tolist())
             if w.isalpha() and w.isascii() and len(w) > 2]
    rng = random.Random(seed)
    pool = rng.sample(sorted(vocab), words)

    def caption() -> str:
        return " ".join(rng.choice(pool) for _ in range(rng.randint(6, 14)))

    return [caption() for _ in range(items)], [[caption() for _ in range(5)] for _ in range(items)]


def run_sonicaps(cands: list[str], refs: list[list[str]]) -> tuple[dict, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
        json.dump([cands, refs], f)
        f.flush()
        code = CHILD.format(path=f.name)
        # Python's default bytecode caching, as a user's shell has it (some sandboxes turn it
        # off, and then every sonicaps module is compiled again at each start).
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        start = time.perf_counter()
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                              env=env)
        wall = time.perf_counter() - start
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    return result, wall - result["_corpus_seconds"]


def run_reference(cands: list[str], refs: list[list[str]]) -> tuple[dict, dict[str, float]]:
    from pycocoevalcap.bleu.bleu import Bleu
    from pycocoevalcap.cider.cider import Cider
    from pycocoevalcap.meteor.meteor import Meteor
    from pycocoevalcap.rouge.rouge import Rouge
    from pycocoevalcap.tokenizer.ptbtokenizer import PTBTokenizer

    times: dict[str, float] = {}
    gts = {i: [{"caption": r} for r in rs] for i, rs in enumerate(refs)}
    res = {i: [{"caption": c}] for i, c in enumerate(cands)}
    t = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        tok = PTBTokenizer()
        gts, res = tok.tokenize(gts), tok.tokenize(res)
    times["tokenize"] = time.perf_counter() - t
    out: dict = {"per_item": {}}
    for name, scorer in (("bleu", Bleu(4)), ("meteor", None), ("rouge_l", Rouge()), ("cider_d", Cider())):
        t = time.perf_counter()
        if name == "meteor":
            scorer = Meteor()  # JVM start and paraphrase loading belong to METEOR's time
        with contextlib.redirect_stdout(io.StringIO()):
            corpus_score, items = scorer.compute_score(gts, res)
        times[name] = time.perf_counter() - t
        if name == "bleu":
            for k in range(4):
                out[f"bleu_{k + 1}"], out["per_item"][f"bleu_{k + 1}"] = corpus_score[k], items[k]
        else:
            out[name], out["per_item"][name] = corpus_score, items
        if name == "meteor":
            del scorer
    return out, times


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--items", type=int, default=1000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--words", type=int, default=0,
                   help="draw captions uniformly from this many words instead (a wide-vocabulary worst case)")
    p.add_argument("--memory-items", type=int, default=0)
    args = p.parse_args()

    _, warmup = run_sonicaps(*corpus(50, seed=args.seed + 1))  # builds the METEOR index on a new machine
    print(f"warm-up on 50 items (includes the one-off METEOR index build on a new machine): {warmup:.1f} s")
    if args.words:
        cands, refs = wide_corpus(args.items, args.words, args.seed)
        source = f"captions of {args.words} words drawn uniformly from METEOR's paraphrase vocabulary"
    else:
        cands, refs = corpus(args.items, seed=args.seed)
        source = "tests/corpora.py"
    distinct = len({w for text in cands + [r for rs in refs for r in rs] for w in text.split()})
    print(f"corpus: {args.items} items x 5 references ({source}, seed {args.seed}), "
          f"{distinct} distinct words")
    walls, in_process = [], []
    for run in range(1, args.repeat + 1):
        ours, ours_wall = run_sonicaps(cands, refs)
        ref, ref_times = run_reference(cands, refs)
        ref_wall = sum(ref_times.values())
        walls.append(ref_wall / ours_wall)
        in_process.append(ref_wall / ours["_seconds"])
        print(f"run {run}: pycocoevalcap 1.2 (Java tokenizer and METEOR): " +
              ", ".join(f"{k} {v:.2f} s" for k, v in ref_times.items()) + f"; total {ref_wall:.2f} s")
        print(f"run {run}: sonicaps: score() {ours['_seconds']:.2f} s; fresh process incl. imports "
              f"{ours_wall:.2f} s; speed-up {walls[-1]:.1f}x (wall), {in_process[-1]:.1f}x (in process)")
    print(f"speed-up, median of {args.repeat} runs: {statistics.median(walls):.1f}x (wall), "
          f"{statistics.median(in_process):.1f}x (in process)")
    worst = 0.0
    for name in ("bleu_1", "bleu_2", "bleu_3", "bleu_4", "meteor", "rouge_l", "cider_d"):
        corpus_diff = abs(ours[name] - ref[name])
        item_diff = float(np.max(np.abs(np.array(ours["per_item"][name]) - np.array(ref["per_item"][name]))))
        worst = max(worst, corpus_diff, item_diff)
        print(f"  {name:<8} sonicaps {ours[name]:.6f}  reference {ref[name]:.6f}  "
              f"max |diff| corpus {corpus_diff:.1e}, per item {item_diff:.1e}")
    print(f"largest difference: {worst:.1e}")
    if args.memory_items:
        big, big_wall = run_sonicaps(*corpus(args.memory_items, seed=args.seed + 2))
        print(f"{args.memory_items} items x 5 references: {big['_seconds']:.1f} s, "
              f"peak memory {big['_peak_mb']:.0f} MB "
              f"(largest forked worker: {big['_worker_peak_mb']:.0f} MB; "
              "workers share the parent's pages until they write)")


if __name__ == "__main__":
    main()
