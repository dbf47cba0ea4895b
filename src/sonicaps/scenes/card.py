"""The dataset card: AudioCaps-Table-1-style statistics, a class histogram, licences."""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from sonicaps.scenes.catalog import SPLITS, Source, classes


def statistics(out_dir: Path) -> pd.DataFrame:
    """Per split and overall: clips, captions, words per caption, events per clip."""
    caps = pd.read_csv(out_dir / "captions.csv", keep_default_na=False)
    splits = pd.read_csv(out_dir / "splits.csv")
    caps = caps.merge(splits, on="id")
    events = {}
    with open(out_dir / "events.jsonl") as f:
        for line in f:
            rec = json.loads(line)
            events[rec["id"]] = len(rec["events"])
    splits["events"] = splits["id"].map(events)
    words = caps["caption"].str.split().str.len()
    rows = []
    for name in [*SPLITS, "all"]:
        pick = caps["split"] == name if name != "all" else np.ones(len(caps), bool)
        clip_pick = splits["split"] == name if name != "all" else np.ones(len(splits), bool)
        if not clip_pick.any():
            continue
        w = words[pick]
        rows.append({"split": name, "clips": int(clip_pick.sum()), "captions": int(pick.sum()),
                     "words/caption (mean)": round(float(w.mean()), 2),
                     "words/caption (median)": float(w.median()),
                     "events/clip": round(float(splits.loc[clip_pick, "events"].mean()), 2),
                     "vocabulary": len({t for c in caps.loc[pick, "caption"]
                                        for t in c.lower().split()})})
    return pd.DataFrame(rows)


def class_counts(out_dir: Path) -> Counter:
    counts: Counter = Counter()
    with open(out_dir / "events.jsonl") as f:
        for line in f:
            counts.update({e["class"] for e in json.loads(line)["events"]})
    return counts


def _plot(counts: Counter, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = sorted(counts, key=lambda c: (-counts[c], c))
    fig, ax = plt.subplots(figsize=(12, 4.5))
    ax.bar(range(len(names)), [counts[n] for n in names], color="#4477aa")
    ax.set_xticks(range(len(names)), names, rotation=90, fontsize=7)
    ax.set_ylabel("clips")
    ax.set_title("SceneCaps: clips per sound class")
    fig.tight_layout()
    # A fixed date keeps the PNG byte-identical from run to run.
    fig.savefig(path, dpi=100, metadata={"Software": None, "CreationDate": None})
    plt.close(fig)


def write_card(out_dir: Path, seed: int, manifest: Sequence[Source]) -> Path:
    stats = statistics(out_dir)
    counts = class_counts(out_dir)
    _plot(counts, out_dir / "classes.png")
    used: dict[str, set[str]] = {}
    for s in manifest:
        used.setdefault(s.package, set()).add(s.licence)
    groups = Counter(classes()[c].group for c in counts)
    lines = [
        "# SceneCaps",
        "",
        "Ten-second scenes mixed from real recordings and rendered speech and music, with the",
        "ground-truth timeline of every source and five reference captions written from it.",
        f"Built with `sonicaps scenes make` (seed {seed}); the same seed and sources rebuild it",
        "byte for byte.",
        "",
        "## Statistics",
        "",
        stats.to_markdown(index=False),
        "",
        f"{len(counts)} sound classes in {len(groups)} groups "
        f"({', '.join(f'{g} {k}' for g, k in sorted(groups.items()))}). "
        "Sources are split by file: no recording appears in two splits.",
        "",
        "![clips per class](classes.png)",
        "",
        "## Files",
        "",
        "- `audio/`: 16 kHz mono scenes, band-limited per scene to a random 4.5-5.4 kHz cutoff",
        "- `captions.csv`: `id, caption`, five rows per clip",
        "- `events.jsonl`: class, AudioSet label, source, onset, offset, gain, SNR and hits of "
        "every source",
        "- `splits.csv`: `id, split`; `sources.csv`: every source with its licence",
        "",
        "## Licences",
        "",
        "The mixtures derive from the sources below; attribution and share-alike terms of each "
        "apply. Per-file licences are in `sources.csv`.",
        "",
        *[f"- {pkg}: {'; '.join(sorted(lic))}" for pkg, lic in sorted(used.items())],
        "",
    ]
    path = out_dir / "README.md"
    path.write_text("\n".join(lines))
    return path
