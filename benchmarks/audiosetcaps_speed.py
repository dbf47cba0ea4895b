"""Throughput of the AudioSetCaps models at their real size, on this machine.

The released weights cannot be downloaded here, so the files are built in the released
layout (tests/data/audiosetcaps key lists: HTSAT + BART-base, HTSAT + RoBERTa-base) with
seeded random weights; speed does not depend on the values, except that random weights
may stop generation at a different length than the real captioner (max 30 tokens).
Prints clips/s for captioning (beam 3, the checkpoint default) and audio embedding at
batch sizes 1 and 8.

    .venv/bin/python benchmarks/audiosetcaps_speed.py [--clips 8] [--device cpu]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from asc_reference import fake_state_dict  # noqa: E402

from sonicaps.audiosetcaps.models import HtsatBart, HtsatRoberta  # noqa: E402

DATA = ROOT / "tests" / "data" / "audiosetcaps"


def text_model(tmp: Path, kind: str, tiny: str) -> str:
    folder = tmp / kind
    shutil.copytree(DATA / tiny, folder)
    shutil.copy(DATA / f"{kind}.config.json", folder / "config.json")
    return str(folder)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=8)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    waves = [(0.1 * rng.standard_normal(320_000)).astype(np.float32) for _ in range(args.clips)]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}, "
          f"{args.clips} clips of 10 s")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for name, cls, kind, tiny in (("htsat_bart_keys", HtsatBart, "bart-base", "tiny-bart"),
                                      ("htsat_roberta_keys", HtsatRoberta, "roberta-base", "tiny-roberta")):
            state = fake_state_dict(json.loads((DATA / f"{name}.json").read_text()))
            torch.save({"model": state, "epoch": 0, "beam_size": 3}, tmp / "m.pt")
            del state
            model = cls.from_checkpoint(str(tmp / "m.pt"), text_model(tmp, kind, tiny)).to(args.device)
            for batch in (1, 8):
                run = model.caption if cls is HtsatBart else model.audio_vectors
                run(waves[:batch])  # warm-up
                start = time.perf_counter()
                for b in range(0, len(waves), batch):
                    run(waves[b:b + batch])
                rate = len(waves) / (time.perf_counter() - start)
                what = "captioning (beam 3)" if cls is HtsatBart else "audio embedding"
                print(f"{what:<22} batch {batch}: {rate:6.2f} clips/s")
            del model


if __name__ == "__main__":
    main()
