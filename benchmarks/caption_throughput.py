"""Throughput of the default pipeline: clips/s and time per stage over N 10-s clips.

    .venv/bin/python benchmarks/caption_throughput.py [--clips 200] [--batch-size 16] [--speech 0.5]

Clips are random mixes of real animal recordings and, in a share `--speech` of them,
espeak-ng speech (speech costs more: Silero VAD, gender, language), written as
44.1 kHz stereo wav/flac/ogg/mp3 (so decoding and resampling cost what they cost on
real collections). Prints clips/s, seconds per stage and the share of the wall time
the models did not account for (waiting on decode, batching, writing shards).
"""

from __future__ import annotations

import argparse
import dataclasses
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
import soxr

from sonicaps.clip import Clip
from sonicaps.examples import SENTENCES, Placed, animal, mix, speak
from sonicaps.pipeline.config import PipelineConfig
from sonicaps.pipeline.runner import run
from sonicaps.pipeline.stages import Backends, caption_batch
from sonicaps.sources import fetch_animals

FORMATS = ("wav", "flac", "ogg", "mp3")


# AudioSet names of what each recording holds. cat.mp3 is left out: YAMNet hears a
# rooster in it, and its label cannot be trusted without listening.
AUDIOSET_NAMES = {"cow": "Cattle, bovinae", "dog": "Dog", "duck": "Duck", "frog": "Frog",
                  "horse": "Horse", "owl": "Owl", "pig": "Pig", "rooster": "Chicken, rooster",
                  "sheep": "Sheep", "male": "Male speech, man speaking",
                  "female": "Female speech, woman speaking"}


def make_collection(d: Path, n: int, seed: int = 0, speech: float = 0.5) -> dict[Path, list[str]]:
    """Write n random 10-s mixes; returns each file's AudioSet labels."""
    rng = np.random.default_rng(seed)
    fetch_animals()
    names = sorted(AUDIOSET_NAMES.keys() - {"male", "female"})
    sounds = {name: animal(name) for name in names}
    voices = {"male": speak(SENTENCES["male"], "en+m3"),
              "female": speak(SENTENCES["female"], "en+f3")}
    labels = {}
    for k in range(n):
        picked = list(rng.choice(names, size=rng.integers(1, 3), replace=False))
        parts = [Placed(a, float(rng.uniform(0, 6)), sounds[a]) for a in picked]
        if rng.random() < speech:
            who = ("male", "female")[rng.integers(2)]
            parts.append(Placed(who, float(rng.uniform(0, 5)), voices[who]))
        x = soxr.resample(mix(parts, 10.0, seed=k), 16_000, 44_100)
        path = d / f"clip{k:04d}.{FORMATS[k % 4]}"
        sf.write(path, np.stack([x, x], axis=1), 44_100)
        labels[path] = [AUDIOSET_NAMES[p.label] for p in parts]
    return labels


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--clips", type=int, default=200)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--speech", type=float, default=0.5, help="share of clips with speech")
    args = ap.parse_args()
    cfg = dataclasses.replace(PipelineConfig(), batch_size=args.batch_size)
    with tempfile.TemporaryDirectory() as tmp:
        src, out = Path(tmp) / "audio", Path(tmp) / "out"
        src.mkdir()
        t0 = time.perf_counter()
        make_collection(src, args.clips, speech=args.speech)
        print(f"made {args.clips} clips in {time.perf_counter() - t0:.1f} s")
        t0 = time.perf_counter()
        backends = Backends.from_config(cfg)
        # Throw-away clips, so that models loaded on first use (the check's text encoder,
        # the language model on the first speech) are loaded before the clock starts.
        noise = np.random.default_rng(1).normal(0, 0.1, 16000).astype(np.float32)
        voice = speak(SENTENCES["male"], "en+m3")
        caption_batch([Clip("warm-up", "noise", 0.0, 1.0, noise),
                       Clip("warm-up-speech", "voice", 0.0, len(voice) / 16000, voice)], backends, cfg)
        print(f"loaded models in {time.perf_counter() - t0:.1f} s (including one warm-up clip)")
        s = run([src], out, cfg, backends=backends, progress=False)
    models = sum(s.timings.get(k, 0.0) for k in ("ask", "write", "check"))
    overhead = s.seconds - models
    print(f"\n{s.clips} clips in {s.seconds:.1f} s: {s.clips_per_s:.2f} clips/s "
          f"(batch {args.batch_size}, {s.failures} failures, speech in {args.speech:.0%})")
    for stage in ("ask", "write", "check", "store"):
        print(f"  {stage:<6} {s.timings.get(stage, 0.0):6.1f} s  "
              f"({1000 * s.timings.get(stage, 0.0) / max(1, s.clips):.0f} ms/clip)")
    print(f"  decode {s.timings.get('decode', 0.0):6.1f} s of thread time, overlapped with the models")
    print(f"  not in the models (decode wait + batching + writing): {overhead:.1f} s = "
          f"{100 * overhead / s.seconds:.1f}% of the wall time")


if __name__ == "__main__":
    main()
