"""What batching buys each transformers stage: clips/s at batch 1, 8 and 32.

    .venv/bin/python benchmarks/batching.py [--clips 64] [--new-tokens 8]

Runs the ask (Qwen2-Audio), write (chat LM) and check (CLAP) backends on tiny random
models built locally (tests/tiny_models.py; the same code paths as the real 7B models,
from_pretrained included) over the same 10-s clips, on the CPU. Random models rarely stop
early, so every answer costs about --new-tokens decoding steps, as a real answer of that
length would. Absolute speeds say nothing about real models; the ratios show how much of
each stage's cost is per call rather than per clip.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import tiny_models  # noqa: E402

from sonicaps.backends import create  # noqa: E402
from sonicaps.clip import Answers, Clip  # noqa: E402
from sonicaps.prompts import QUESTIONS  # noqa: E402

SR = 16_000
BATCHES = (1, 8, 32)


def make_clips(n: int) -> list[Clip]:
    rng = np.random.default_rng(0)
    t = np.arange(10 * SR) / SR
    out = []
    for k in range(n):
        audio = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + 0.05 * rng.standard_normal(t.size)
        out.append(Clip(f"clip{k}", "bench", 0.0, 10.0, audio.astype(np.float32)))
    return out


def timed(fn, clips: list[Clip], batch: int) -> float:
    t0 = time.perf_counter()
    for i in range(0, len(clips), batch):
        fn(clips[i:i + batch])
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clips", type=int, default=64)
    ap.add_argument("--new-tokens", type=int, default=8)
    args = ap.parse_args()
    clips = make_clips(args.clips)
    answers = {c.id: Answers(("A dog barks twice while a car passes.", "A man speaks calmly.",
                              "There is no music in this audio.")) for c in clips}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        asker = create("ask", "transformers", model=str(tiny_models.qwen2_audio(root / "ask")),
                       max_new_tokens=args.new_tokens, dtype="float32", batch_size=64)
        writer = create("write", "transformers", model=str(tiny_models.chat_lm(root / "write")),
                        max_new_tokens=args.new_tokens, dtype="float32")
        check_dir = str(tiny_models.clap(root / "check"))

        def check(batch: list[Clip]) -> None:
            scorer._audio.clear()  # score the audio every time, as for new clips
            scorer.score(batch, [answers[c.id] for c in batch], ["a dog barks"] * len(batch))

        scorer = create("check", "clap", model=check_dir)
        stages = {
            "ask (3 turns)": lambda b: asker.ask(b, QUESTIONS),
            "write": lambda b: writer.write(b, [answers[c.id] for c in b], 0),
            "check": check,
        }
        for fn in stages.values():  # warm-up: first calls allocate and compile kernels
            fn(clips[:2])
        results = {name: {b: args.clips / timed(fn, clips, b) for b in BATCHES}
                   for name, fn in stages.items()}

    print(f"{args.clips} clips of 10 s, tiny random models on the CPU, "
          f"{args.new_tokens} new tokens per answer")
    print(f"{'stage':<14}" + "".join(f"{f'batch {b}':>12}" for b in BATCHES) + f"{'32 vs 1':>10}")
    for name, speeds in results.items():
        print(f"{name:<14}" + "".join(f"{speeds[b]:>9.1f}/s " for b in BATCHES)
              + f"{speeds[32] / speeds[1]:>9.1f}x")


if __name__ == "__main__":
    main()
