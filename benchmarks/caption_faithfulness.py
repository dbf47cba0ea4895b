"""Do the default captions name only what is heard? Measured on real recordings.

    .venv/bin/python benchmarks/caption_faithfulness.py [--config FILE] [--per-class]
        [--single 90] [--mixes 20] [--seed 0] [--keep DIR] [--rejudge DIR]

Clips are made from real recordings whose class is known (`sonicaps.faithfulness`):
single-source clips (every class in turn) and two-source mixes whose second source
starts at least 2 s after the first, at random levels, half with a noise floor,
44.1 kHz stereo in wav/flac/ogg/mp3. They are captioned the way a user does it
(`sonicaps caption DIR -o OUT`), and each caption is judged from its text:

- recall: true sources the caption names (over all clips);
- other class: single-source clips whose caption names another source, or names the
  one source more than once ("a vehicle ... an aircraft ... an aircraft engine");
- speech / music hallucination: clips without speech (music) whose caption or answer
  2 (answer 3) says there is some;
- mixes: both sources named, and named in their order;
- fully right: all of the above right at once;
- false "faint": captions saying "faint..." or "no clear sound source" (every clip holds a
  source at -32 to -16 dBFS);
- by kind: fully right captions that name a source only by its kind ("an animal calls"),
  which the judge credits where the AudioSet ontology makes the true class that kind;
- accepted: how many captions the row's `accepted` flag keeps and how many of those are
  fully right, and the precision/coverage of the built-in confidence at a few thresholds.

Then SceneCaps' test split (built with `--scenecaps N` scenes, seed `--seed`): scenes of
several sources, judged the same way where the measures apply. Two sets of clips first,
each printed: recordings from packages sonicaps uses nowhere else
(`faithfulness_sources.csv` beside this script: tuxpaint-stamps, wesnoth, colobot,
stormbaancoureur, tuxtype), and SceneCaps' *test* recordings. Mixes may add SceneCaps'
synthetic test voices. The built-in source verifier is fitted on SceneCaps'
train and val recordings only (scripts/fit_source_verifier.py), never on these.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from sonicaps.faithfulness import (
    GENERIC_KINDS,
    Truth,
    clip_id_of,
    judge,
    make_clips,
    mentions,
    per_class,
    recorded,
    scenecaps_split,
    subject_key,
    summarise,
)
from sonicaps.pipeline.config import load_config
from sonicaps.pipeline.runner import run
from sonicaps.scenes.catalog import classes, read_sources, sources
from sonicaps.scenes.fetch import fetch
from sonicaps.scenes.make import make

ROWS = [("recall", "caption names the true source(s) (word recall)", "{:.2f}"),
        ("other_class", "single-source clips whose caption names another source class", "{:.1%}"),
        ("speech_hallucination", "speech-free clips whose caption or answer 2 says someone speaks",
         "{:.1%}"),
        ("music_hallucination", "music-free clips said to have music", "{:.1%}")]


def kept_truths(out: Path) -> list[Truth]:
    """The truths of a kept set (its clips' .truth.jsonl files)."""
    truths = []
    for name in ("audio", "mixes"):
        path = out / f"{name}.truth.jsonl"
        if path.is_file():
            for line in path.read_text().splitlines():
                r = json.loads(line)
                truths.append(Truth(r["id"], tuple(r["classes"]), tuple(r["onsets"]),
                                    tuple(r["sources"])))
    return truths


def evaluate(pool, speech_pool, out: Path, n_single: int, n_mixes: int, seed: int, cfg,
             name: str, show_classes: bool, rejudge: bool = False) -> dict:
    if rejudge:  # a kept run's clips and captions, judged again
        truths = kept_truths(out)
    else:
        truths = make_clips(pool, out / "audio", n_single, 0, seed=seed, prefix="s")
        if n_mixes:
            truths += make_clips(list(pool) + list(speech_pool), out / "mixes", 0, n_mixes,
                                 seed=seed + 1, prefix="m")
        run([out / "audio", out / "mixes"] if n_mixes else [out / "audio"], out / "captions",
            cfg, progress=False)
    df = pd.read_parquet(out / "captions")
    rows = {clip_id_of(r.id): r for r in df.itertuples()}
    missing = [t.id for t in truths if t.id not in rows]
    if missing:
        raise SystemExit(f"{len(missing)} clips were not captioned, e.g. {missing[:3]}")
    judged = [judge(t, rows[t.id].caption, rows[t.id].answer_2, rows[t.id].answer_3)
              for t in truths]
    s = summarise(truths, judged)
    s.update(accepted_figures(truths, judged, [rows[t.id] for t in truths]))
    print(f"\n## {name}: {s['clips']} clips ({s['single']} single-source, {s['mixes']} mixes)")
    print(f"{'measure':<68} value")
    for key, text, fmt in ROWS:
        print(f"{text:<68} {fmt.format(s[key])}")
    print(f"{'two-source mixes: both named / in the right order':<68} "
          f"{s['mixes_both_named']}/{s['mixes']} / {s['mixes_ordered']}/{s['mixes']}")
    print(f"{'clips fully right (true sources, nothing invented)':<68} "
          f"{s['fully_right']}/{s['clips']}")
    print(f"{'clips called faint / with no clear source (all hold an audible source)':<68} "
          f"{s['false_faint']}/{s['clips']}")
    print(f"{'fully right clips that name a source only by its kind (an animal, ...)':<68} "
          f"{s['by_kind']}/{s['fully_right']}")
    print(f"{'captions accepted / of them fully right':<68} "
          f"{s['accepted']}/{s['clips']} / {s['accepted_right']}/{s['accepted']}")
    if s["curve"]:
        print("confidence threshold: accepted share / accepted fully right")
        for t, cov, prec in s["curve"]:
            print(f"  {t:.2f}  {cov:6.1%}  {prec:6.1%}")
    if show_classes:
        print(f"\n{'class':<20} {'clips':>5} {'named':>6} {'other (single)':>15}")
        for c, d in sorted(per_class(truths, judged).items()):
            print(f"{c:<20} {d['clips']:>5} {d['named']:>6} {d['other']:>8}/{d['single']}")
    bad = [(t, j, rows[t.id].caption) for t, j in zip(truths, judged, strict=True)
           if not j.fully_right]
    print(f"\nnot fully right ({len(bad)}), e.g.:")
    for t, j, cap in bad[:12]:
        why = ", ".join(w for w, on in [("missed", not all(j.named)), ("order", not j.ordered),
                                        (f"other {j.other}", bool(j.other)),
                                        ("repeated", j.repeated),
                                        ("speech", j.speech_hallucinated),
                                        ("music", j.music_hallucinated)] if on)
        print(f"  {'+'.join(t.classes):<30} {cap!r:<70} {why}")
    dropped = df["dropped_sources"] if "dropped_sources" in df else None
    if dropped is not None:
        n = sum(bool(json.loads(d or "[]")) for d in dropped)
        print(f"clips where the check dropped an unsupported source: {n}")
    return s


FAINT = re.compile(r"\b(faint\w*|no clear sound source)\b", re.IGNORECASE)


def accepted_figures(truths, judged, rows) -> dict:
    """False "faint" (every benchmark clip holds a source at -32 to -16 dBFS), the accepted
    captions and how many are fully right, and the precision/coverage of the per-clip
    confidence (the evidence's "confidence", where the asker gives one) at a few thresholds."""
    conf = [json.loads(r.evidence or "{}").get("confidence") for r in rows]
    right = np.array([j.fully_right for j in judged])
    acc = np.array([bool(r.accepted) for r in rows])
    curve = []
    if all(c is not None for c in conf) and conf:
        c = np.array(conf, float)
        for t in (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9):
            got = c >= t
            if got.any():
                curve.append((t, float(got.mean()), float(right[got].mean())))
    kind_words = {subject_key(g) for g in GENERIC_KINDS}
    by_kind = sum(j.fully_right and any(m in kind_words for _, m in mentions(r.caption))
                  for j, r in zip(judged, rows, strict=True))
    return {"false_faint": sum(bool(FAINT.search(r.caption)) for r in rows), "by_kind": by_kind,
            "accepted": int(acc.sum()), "accepted_right": int(right[acc].sum()), "curve": curve}


def evaluate_scenecaps(out: Path, n: int, seed: int, cfg) -> None:
    """The same judge on SceneCaps' test split: scenes of 1-5 sources (background, events,
    speech, music), their classes from the timelines. Measures that need single-source
    clips or two-source mixes do not apply; 'names another source' counts every scene."""
    make(out / "scenecaps", n, seed=seed, progress=False)
    files, truths = scenecaps_split(out / "scenecaps")
    run(files, out / "captions", cfg, progress=False)
    rows = {clip_id_of(r.id): r for r in pd.read_parquet(out / "captions").itertuples()}
    judged = [judge(t, rows[t.id].caption, rows[t.id].answer_2, rows[t.id].answer_3)
              for t in truths]
    no_speech = [j for t, j in zip(truths, judged, strict=True) if not t.speech]
    no_music = [j for t, j in zip(truths, judged, strict=True) if not t.music]
    n_true = sum(len(t.classes) for t in truths)
    print(f"\n## SceneCaps test split (seed {seed}): {len(truths)} scenes, "
          f"{n_true / len(truths):.1f} sources each")
    print(f"{'sources named (word recall)':<68} {sum(sum(j.named) for j in judged) / n_true:.2f}")
    print(f"{'scenes whose caption names a source they do not hold':<68} "
          f"{np.mean([bool(j.other) for j in judged]):.1%}")
    print(f"{'speech-free scenes said to have speech':<68} "
          f"{np.mean([j.speech_hallucinated for j in no_speech]):.1%}")
    print(f"{'music-free scenes said to have music':<68} "
          f"{np.mean([j.music_hallucinated for j in no_music]):.1%}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--config", help="pipeline config (default: the built-in backends)")
    ap.add_argument("--single", type=int, default=90)
    ap.add_argument("--mixes", type=int, default=20)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--new-sources", default=str(Path(__file__).with_name("faithfulness_sources.csv")),
                    help="a manifest of recordings used nowhere else ('' to skip; default: 46 "
                         "recordings of 38 classes from five Debian packages, ~380 MB once)")
    ap.add_argument("--scenecaps", type=int, default=2000,
                    help="build SceneCaps with this many scenes and judge its test split (0: skip)")
    ap.add_argument("--per-class", action="store_true")
    ap.add_argument("--keep", help="keep clips and captions in this folder")
    ap.add_argument("--rejudge", help="judge the clips and captions a run kept in this folder "
                                      "(--keep) again, without captioning (e.g. after a change "
                                      "of the judge)")
    args = ap.parse_args()
    if args.rejudge:
        for k, name in enumerate(("new recordings", "SceneCaps test recordings")):
            if (Path(args.rejudge) / f"set{k}").is_dir():
                evaluate(None, None, Path(args.rejudge) / f"set{k}", 0, 0, 0, None, name,
                         args.per_class, rejudge=True)
        return
    cfg = load_config(args.config) if args.config else None
    catalog = fetch([s for s in sources() if s.split == "test"], progress=False)
    test = [s for s in recorded(catalog) if classes()[s.cls].group != "speech"]
    voices = [s for s in catalog if classes()[s.cls].group == "speech"]
    sets = [("SceneCaps test recordings", test, voices)]
    if args.new_sources:
        new = fetch(read_sources(Path(args.new_sources)), progress=False)
        sets.insert(0, ("new recordings", recorded(new), voices))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for k, (name, pool, speech) in enumerate(sets):
            evaluate(pool, speech, root / f"set{k}", args.single, args.mixes, args.seed, cfg,
                     name, args.per_class)
        if args.scenecaps:
            evaluate_scenecaps(root / "scenecaps", args.scenecaps, args.seed, cfg)


if __name__ == "__main__":
    main()
