"""Fit the built-in asker's source verifier on labelled real recordings.

    .venv/bin/python scripts/fit_source_verifier.py [--single 600] [--mixes 300] [--precision 0.9]

Clips are made from SceneCaps' *train and val* recordings only (single sources and
two-source mixes, `sonicaps.faithfulness.make_clips`); the faithfulness benchmark uses the
test recordings and recordings from other packages, so it never sees these. Every
candidate source of every clip (`backends/builtin/sources.py`) is labelled by whether its
subject names a true source; a logistic regression on the class-agnostic features is
fitted for a clip's strongest candidate and one for the others, each with the features and
the subject's record on these clips (per-subject operating points, learned), and each gets
the lowest threshold whose accepted candidates are right the asked share of the time on
folds of recordings their model never heard (`--top-precision`, `--secondary-precision`).

Writes src/sonicaps/data/source_verifier.json and prints precision and recall per fold.
"""

from __future__ import annotations

import argparse
import json
import tempfile
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.preprocessing import StandardScaler

from sonicaps.audio import load_audio
from sonicaps.backends.builtin.asker import BuiltinAsker
from sonicaps.backends.builtin.lexicon import MUSIC
from sonicaps.backends.builtin.sources import FEATURES, candidates
from sonicaps.faithfulness import _norm, class_words, make_clips, recorded
from sonicaps.scenes.catalog import classes, sources
from sonicaps.scenes.fetch import fetch

OUT = Path(__file__).resolve().parents[1] / "src/sonicaps/data/source_verifier.json"


def labelled(asker: BuiltinAsker, folder: Path, truths) -> tuple[np.ndarray, ...]:
    """Features, labels, clip index, rank in its clip and subject of every candidate."""
    paths = {p.stem: p for p in folder.iterdir()}
    X, y, clip, rank, subjects = [], [], [], [], []
    for k in range(0, len(truths), 32):
        batch = truths[k:k + 32]
        audios = [load_audio(paths[t.id]) for t in batch]
        for j, (t, probs) in enumerate(zip(batch, asker.yamnet.predict(audios), strict=True)):
            words = set().union(*(class_words(c) for c in t.classes))
            music = any(classes()[c].group == "music" for c in t.classes)
            for r, c in enumerate(candidates(probs, asker.yamnet.classes, asker._phrases,
                                             asker._in_music)):
                X.append([c.features[f] for f in FEATURES])
                y.append(music if c.subject == MUSIC else _norm(c.subject) in words)
                clip.append(k + j)
                rank.append(r)
                subjects.append(c.subject)
    return (np.array(X), np.array(y, bool), np.array(clip), np.array(rank),
            np.array(subjects))


SMOOTHING = 4.0  # calibration clips a subject needs before its own record outweighs the base rate


def subject_record(subjects: np.ndarray, y: np.ndarray) -> dict[str, tuple[int, int]]:
    return {str(s): (int(y[subjects == s].sum()), int((subjects == s).sum()))
            for s in np.unique(subjects)}


def with_prior(X: np.ndarray, subjects: np.ndarray, record: dict, base: float) -> np.ndarray:
    prior = [(record.get(s, (0, 0))[0] + SMOOTHING * base) / (record.get(s, (0, 0))[1] + SMOOTHING)
             for s in subjects]
    return np.column_stack([X, prior])


def fit(X, y, subjects, precision: float, fold: np.ndarray) -> tuple[dict, np.ndarray]:
    """One logistic model; its threshold is chosen on out-of-fold probabilities."""
    held = np.zeros(len(y))
    for f in np.unique(fold):
        tr = fold != f
        rec, base = subject_record(subjects[tr], y[tr]), float(y[tr].mean())
        sc = StandardScaler().fit(with_prior(X[tr], subjects[tr], rec, base))
        m = LogisticRegression(max_iter=2000).fit(
            sc.transform(with_prior(X[tr], subjects[tr], rec, base)), y[tr])
        held[~tr] = m.predict_proba(sc.transform(with_prior(X[~tr], subjects[~tr], rec, base)))[:, 1]
    grid = np.round(np.arange(0.05, 0.96, 0.01), 2)
    accept = float(next((t for t in grid if y[held >= t].mean() >= precision), 0.95))
    rec, base = subject_record(subjects, y), float(y.mean())
    Xp = with_prior(X, subjects, rec, base)
    sc = StandardScaler().fit(Xp)
    m = LogisticRegression(max_iter=2000).fit(sc.transform(Xp), y)
    got = held >= accept
    model = {"mean": sc.mean_.round(6).tolist(), "scale": sc.scale_.round(6).tolist(),
             "coef": m.coef_[0].round(6).tolist(), "intercept": round(float(m.intercept_[0]), 6),
             "accept": accept, "precision_target": precision,
             "held_out_precision": round(float(y[got].mean()), 4),
             "held_out_recall": round(float(got[y].mean()), 4),
             "base_rate": round(base, 4), "smoothing": SMOOTHING,
             "subjects": {k: list(v) for k, v in sorted(rec.items())}}
    return model, held


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--single", type=int, default=600)
    ap.add_argument("--mixes", type=int, default=300)
    ap.add_argument("--top-precision", type=float, default=0.88)
    ap.add_argument("--secondary-precision", type=float, default=0.8)
    ap.add_argument("--seed", type=int, default=11)
    args = ap.parse_args()
    pool = fetch([s for s in sources() if s.split in ("train", "val")], progress=False)
    real = [s for s in recorded(pool) if classes()[s.cls].group != "speech"]
    voices = [s for s in pool if classes()[s.cls].group == "speech"]
    asker = BuiltinAsker()
    with tempfile.TemporaryDirectory() as tmp:
        t1 = make_clips(real, Path(tmp) / "single", args.single, 0, seed=args.seed, prefix="s")
        t2 = make_clips(real + voices, Path(tmp) / "mixes", 0, args.mixes, seed=args.seed + 1,
                        prefix="m")
        X1, y1, c1, r1, s1 = labelled(asker, Path(tmp) / "single", t1)
        X2, y2, c2, r2, s2 = labelled(asker, Path(tmp) / "mixes", t2)
    X, y = np.vstack([X1, X2]), np.concatenate([y1, y2])
    clip, rank = np.concatenate([c1, c2 + len(t1)]), np.concatenate([r1, r2])
    subjects = np.concatenate([s1, s2])
    truths = t1 + t2
    # Folds by recording: a fold is scored by a model that never heard its recordings.
    ids = sorted({s for t in truths for s in t.sources})
    fold_of = dict(zip(ids, np.random.default_rng(0).integers(0, 4, len(ids)), strict=True))
    fold = np.array([min(fold_of[s] for s in truths[c].sources) for c in clip])
    print(f"{len(truths)} clips, {len(y)} candidates ({y.mean():.1%} true) from "
          f"{len(ids)} recordings of SceneCaps train+val")
    out = {"about": "source verifier of the built-in asker; fitted by scripts/fit_source_verifier.py "
                    f"on {len(truths)} clips of SceneCaps train+val recordings",
           "features": list(FEATURES) + ["subject_prior"], "max_sources": 3}
    for name, sel, prec in (("top", rank == 0, args.top_precision),
                            ("secondary", rank > 0, args.secondary_precision)):
        model, _ = fit(X[sel], y[sel], subjects[sel], prec, fold[sel])
        out[name] = model
        print(f"{name}: {sel.sum()} candidates, {y[sel].mean():.1%} true; on held-out recordings, "
              f"accept >= {model['accept']:.2f} gives precision {model['held_out_precision']:.3f}, "
              f"recall {model['held_out_recall']:.3f}")
    OUT.write_text(json.dumps(out, indent=1) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
