"""The grammar writer against the llama.cpp writer (and any GGUF you give), same asker.

    .venv/bin/python benchmarks/writer_comparison.py [--scenecaps 400] [--single 45]
        [--mixes 10] [--gguf PATH ...] [--seed 0] [--keep DIR]

Two sets of clips, each captioned by the built-in asker and then by each writer (the check
stage as configured by default):

- SceneCaps' test split (built with `--scenecaps N` scenes): CIDEr-D and SBERT-sim against
  the five references, and scenes whose caption names a source they do not hold;
- real recordings from packages sonicaps uses nowhere else (the faithfulness benchmark's
  `faithfulness_sources.csv`): word recall of the true sources, single-source clips naming
  another source, and clips fully right.

For every writer: words per caption, vocabulary size (distinct words over all captions),
the share of captions its guards handed to the grammar writer, and clips/s of the whole
pipeline on this machine.
"""

from __future__ import annotations

import argparse
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sonicaps.faithfulness import (
    Truth,
    clip_id_of,
    judge,
    make_clips,
    recorded,
    scenecaps_split,
    summarise,
)
from sonicaps.metrics import score
from sonicaps.pipeline.config import BackendSpec, PipelineConfig
from sonicaps.pipeline.runner import run
from sonicaps.scenes.catalog import classes, read_sources, sources
from sonicaps.scenes.fetch import fetch
from sonicaps.scenes.make import make

HERE = Path(__file__).parent


def scenecaps_test(root: Path, n: int, seed: int) -> tuple[list[Path], dict[str, list[str]], list[Truth]]:
    make(root, n, seed=seed, progress=False)
    files, truths = scenecaps_split(root)
    test = {t.id for t in truths}
    refs: dict[str, list[str]] = {}
    for row in pd.read_csv(root / "captions.csv").itertuples():
        if row.id in test:
            refs.setdefault(row.id, []).append(row.caption)
    return files, refs, truths


def words(caption: str) -> list[str]:
    return re.findall(r"[a-z']+", caption.lower())


def caption_with(cfg: PipelineConfig, inputs: list[Path], out: Path) -> tuple[pd.DataFrame, float]:
    summary = run(inputs, out, cfg, progress=False)
    df = pd.read_parquet(out)
    df["clip"] = [clip_id_of(i) for i in df["id"]]
    return df.set_index("clip"), summary.clips_per_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--scenecaps", type=int, default=400, help="SceneCaps scenes to build (15%% are test)")
    ap.add_argument("--single", type=int, default=45)
    ap.add_argument("--mixes", type=int, default=10)
    ap.add_argument("--gguf", nargs="*", default=[], help="more GGUF chat models to compare")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--keep", help="keep clips and captions in this folder")
    args = ap.parse_args()
    writers = {"grammar (builtin)": BackendSpec("builtin"),
               "llama.cpp SmolLM2-135M": BackendSpec("llamacpp")}
    for g in args.gguf:
        writers[f"llama.cpp {Path(g).stem}"] = BackendSpec("llamacpp", {"model": g})
    new = fetch(read_sources(HERE / "faithfulness_sources.csv"), progress=False)
    voices = [s for s in fetch([s for s in sources() if s.split == "test"], progress=False)
              if classes()[s.cls].group == "speech"]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep or tmp)
        files, refs, sc_truths = scenecaps_test(root / "scenecaps", args.scenecaps, args.seed)
        real = make_clips(recorded(new), root / "real" / "single", args.single, 0, seed=args.seed,
                          prefix="s")
        real += make_clips(recorded(new) + voices, root / "real" / "mixes", 0, args.mixes,
                           seed=args.seed + 1, prefix="m")
        for name, spec in writers.items():
            cfg = PipelineConfig(write=spec)
            sc, sc_rate = caption_with(cfg, files, root / "out" / name / "scenecaps")
            fr, fr_rate = caption_with(cfg, [root / "real" / "single", root / "real" / "mixes"],
                                       root / "out" / name / "real")
            ids = sorted(refs)
            metrics = score([sc.loc[i, "caption"] for i in ids], [refs[i] for i in ids],
                            metrics=["cider_d", "sbert_sim"])
            sc_judged = [judge(t, sc.loc[t.id, "caption"]) for t in sc_truths]
            fr_judged = [judge(t, fr.loc[t.id, "caption"], fr.loc[t.id, "answer_2"],
                               fr.loc[t.id, "answer_3"]) for t in real]
            s = summarise(real, fr_judged)
            caps = list(sc["caption"]) + list(fr["caption"])
            writer_col = list(sc["writer"]) + list(fr["writer"])
            rows.append({
                "writer": name,
                "SceneCaps CIDEr-D": metrics["cider_d"], "SceneCaps SBERT-sim": metrics["sbert_sim"],
                "SceneCaps invented": float(np.mean([bool(j.other) for j in sc_judged])),
                "real recall": s["recall"], "real other-class": s["other_class"],
                "real fully right": f"{s['fully_right']}/{s['clips']}",
                "words/caption": float(np.mean([len(words(c)) for c in caps])),
                "vocabulary": len({w for c in caps for w in words(c)}),
                "fell back": float(np.mean(["fallback" in w for w in writer_col])),
                "clips/s": (sc_rate + fr_rate) / 2,
            })
            print(f"done: {name}", flush=True)
    table = pd.DataFrame(rows).set_index("writer")
    print(f"\n{len(refs)} SceneCaps test scenes, {len(real)} real-recording clips "
          f"({args.single} single-source, {args.mixes} mixes)\n")
    print(table.to_markdown(floatfmt=".3f"))


if __name__ == "__main__":
    main()
