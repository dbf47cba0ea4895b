"""Every audio-language family through the CLI: a tiny random model of each (built from the
family's own transformers classes, tests/tiny_audio_lms.py) as the asker and as the direct
captioner, `sonicaps caption DIR -o OUT --config ...` on a folder of clips, then a table.

    .venv/bin/python benchmarks/audio_llm_families.py [--clips 10]

Columns: asker ok / captioner ok (the run exited 0 and every clip is a row or a BadOutput
record: random weights may say nothing), clips per forward (largest generate batch of the
asker run), batched = unbatched (greedy answers of the whole folder in one batch equal the
answers of each clip alone). The folder is AudioSet-like: 10-s clips, every 6th one shorter
(families whose encoder sees padding batch clips of equal length only). Random weights: this
measures plumbing, never caption quality; GPU throughput has not been measured.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import soundfile as sf
import yaml

sys.path.insert(0, str(Path(__file__).parent.parent / "tests"))
import tiny_audio_lms  # noqa: E402
import tiny_models  # noqa: E402

from sonicaps.backends import create  # noqa: E402
from sonicaps.backends.hf.families import FAMILIES  # noqa: E402
from sonicaps.clip import Clip  # noqa: E402
from sonicaps.pipeline.store import Store  # noqa: E402
from sonicaps.prompts import QUESTIONS  # noqa: E402


def make_folder(root: Path, n: int) -> Path:
    rng = np.random.default_rng(0)
    root.mkdir(parents=True)
    for k in range(n):
        seconds = 3.5 if k % 6 == 5 else 10.0
        t = np.arange(int(seconds * 16000)) / 16000
        x = 0.2 * np.sin(2 * np.pi * (200 + 150 * k) * t) + 0.02 * rng.standard_normal(len(t))
        sf.write(root / f"clip{k:02d}.wav", x.astype(np.float32), 16000)
    return root


def run_cli(folder: Path, out: Path, cfg: dict, config: Path) -> tuple[bool, str]:
    config.write_text(yaml.safe_dump(cfg))
    done = subprocess.run([sys.executable, "-m", "sonicaps.cli", "caption", str(folder), "-o", str(out),
                           "--config", str(config), "--quiet"], capture_output=True, text=True)
    if done.returncode != 0:
        return False, done.stderr.strip().splitlines()[-1] if done.stderr.strip() else "exit != 0"
    files = list(out.glob("part-*.parquet"))
    rows = pd.concat(pd.read_parquet(f) for f in files) if files else pd.DataFrame(columns=["id"])
    fails = Store(out).read_failures()
    expected = len(list(folder.glob("*.wav")))
    ok = (len(rows) + len(fails) == expected and len(rows) > 0
          and all(f["error"] == "BadOutput" for f in fails))
    return ok, f"{len(rows)} rows, {len(fails)} BadOutput"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=10, help="clips in the folder (default 10)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        folder = make_folder(root / "audio", args.clips)
        writer, clap = str(tiny_models.chat_lm(root / "chat")), str(tiny_models.clap(root / "clap"))
        check = {"backend": "clap", "model": clap}
        rows = []
        for fam in FAMILIES:
            key = fam.model_types[0]
            if key not in tiny_audio_lms.BUILDERS:
                rows.append((fam.name, "-", "-", "-", "-", "no tiny model"))
                continue
            t0 = time.perf_counter()
            model = str(tiny_audio_lms.BUILDERS[key](root / key))
            common = {"model": model, "dtype": "float32"}
            ask_ok, ask_note = run_cli(folder, root / f"{key}-ask", {
                "ask": {"backend": "transformers", **common, "max_new_tokens": 8},
                "write": {"backend": "transformers", "model": writer, "max_new_tokens": 12},
                "check": check, "pipeline": {"batch_size": 16}}, root / f"{key}-ask.yaml")
            cap_ok, cap_note = run_cli(folder, root / f"{key}-cap", {
                "ask": {"backend": "none"}, "write": {"backend": "audio-lm", **common, "max_new_tokens": 12},
                "check": check, "pipeline": {"batch_size": 16}}, root / f"{key}-cap.yaml")
            asker = create("ask", "transformers", **common, max_new_tokens=8)
            clips = [Clip(p.stem, str(p), 0.0, 10.0, sf.read(p, dtype="float32")[0])
                     for p in sorted(folder.glob("*.wav"))]
            batched = [a.texts for a in asker.ask(clips, QUESTIONS)]
            per_forward = max(asker.lm.forwards)
            alone = [asker.ask([c], QUESTIONS)[0].texts for c in clips]
            rows.append((fam.name, "ok" if ask_ok else "FAIL", "ok" if cap_ok else "FAIL", per_forward,
                         "yes" if batched == alone else "NO",
                         f"asker {ask_note}; captioner {cap_note}; {time.perf_counter() - t0:.0f} s"))
            print(f"  {fam.name}: done", file=sys.stderr, flush=True)
    print("| family | asker ok | captioner ok | clips per forward | batched = unbatched | notes |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print("| " + " | ".join(str(x) for x in r) + " |")


if __name__ == "__main__":
    main()
