"""Cut the small excerpts of real peer files in tests/data/peers/ from their repositories.

    git clone https://github.com/XinhaoMei/WavCaps                        # a5a9649
    git clone https://github.com/mumbert/automatic-audio-captioning       # 687d3f6
    git clone https://github.com/AudioSetCaps/AudioSetCaps                # e4783ca
    python scripts/peer_excerpts.py WAVCAPS MUMBERT AUDIOSETCAPS AUDIOCAPS_CSV_DIR

Rows are copied byte for byte (CSV lines, JSON items re-serialised as the source does);
which rows is fixed below, so a re-run gives the same files. See tests/data/peers/README.md.
"""

from __future__ import annotations

import csv
import io
import json
import sys
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "data" / "peers"
AC_CLIPS = 12  # AudioCaps val clips in the excerpt (its first 12)
WAVCAPS_AC = 8  # of which WavCaps' copy excerpt holds the first 8, plus 2 clips from elsewhere


def csv_lines(path: Path) -> list[str]:
    """Physical records of a CSV (a quoted cell may hold a newline), each with its line end."""
    text = path.read_text(encoding="utf-8")
    out, buf = [], ""
    for line in text.splitlines(keepends=True):
        buf += line
        if buf.count('"') % 2 == 0:
            out.append(buf)
            buf = ""
    return out


def pick(path: Path, names: list[str]) -> list[str]:
    lines = csv_lines(path)
    keyed = {next(csv.reader(io.StringIO(line)))[0]: line for line in lines[1:]}
    return [lines[0]] + [keyed[n] for n in names]


def write(name: str, text: str) -> None:
    (OUT / name).parent.mkdir(parents=True, exist_ok=True)
    (OUT / name).write_text(text, encoding="utf-8")
    print(f"wrote {OUT / name} ({len(text)} characters)")


def main(wavcaps: Path, mumbert: Path, audiosetcaps: Path, audiocaps: Path) -> None:
    clotho = wavcaps / "captioning/data/Clotho/csv_files"
    dev = [" typical neighborhood in Porto.wav", " Ambience Birds.wav"]
    dev_rows = csv_lines(clotho / "train.csv")
    first_dev = [next(csv.reader(io.StringIO(line)))[0] for line in dev_rows[1:4]]
    write("clotho/clotho_captions_development.csv", "".join(pick(clotho / "train.csv", first_dev + dev)))
    val_rows = csv_lines(clotho / "val.csv")
    val = [next(csv.reader(io.StringIO(line)))[0] for line in val_rows[1:5]] + [" e ieio ieai.wav"]
    write("clotho/clotho_captions_validation.csv", "".join(pick(clotho / "val.csv", val)))

    sub_dir = mumbert / ("src/baseline-alternatives/logs/alternative1-2025.03.09-10.03.51-baseline/dcase")
    sub_lines = csv_lines(sub_dir / "labbe_irit_task6_submission_1_clotho_eval.csv")[:7]
    write("dcase/labbe_irit_task6_submission_1_clotho_eval.csv", "".join(sub_lines))
    evaluated = [next(csv.reader(io.StringIO(line)))[0] for line in sub_lines[1:]]
    write("clotho/clotho_captions_evaluation.csv", "".join(pick(clotho / "test.csv", evaluated)))

    for kind in ("captioning", "retrieval"):
        items = json.loads((wavcaps / f"{kind}/data/Clotho/json_files/val.json").read_text())["data"]
        keep = [i for i in items if Path(i["wav"]).name in val]
        write(f"wavcaps/clotho_val_{kind}.json", json.dumps({"data": keep}, indent=4) + "\n")

    ac_lines = csv_lines(audiocaps / "val.csv")
    clips: list[str] = []
    for line in ac_lines[1:]:
        yt = next(csv.reader(io.StringIO(line)))[1]
        if yt not in clips:
            clips.append(yt)
    ours = clips[:AC_CLIPS]
    write("audiocaps/val.csv", ac_lines[0] + "".join(
        line for line in ac_lines[1:] if next(csv.reader(io.StringIO(line)))[1] in ours))
    copy = [f"Y{yt}.wav" for yt in clips[:WAVCAPS_AC] + clips[-2:]]
    write("wavcaps/audiocaps_val.csv", "".join(pick(wavcaps / "captioning/data/AudioCaps/csv_files/val.csv",
                                                    copy)))
    items = json.loads((wavcaps / "captioning/data/AudioCaps/json_files/val.json").read_text())
    keep = [i for i in items["data"] if Path(i["wav"]).name in copy]
    write("wavcaps/audiocaps_val.json", json.dumps({"data": keep}, indent=4) + "\n")

    black = json.loads((wavcaps / "data/json_files/blacklist/blacklist_exclude_test_ac.json").read_text())
    excerpt = {"AudioSet": black["AudioSet"][:4] + black["AudioSet"][-3:],
               "FreeSound": black["FreeSound"][:5]}
    write("wavcaps/blacklist_exclude_test_ac.json", json.dumps(excerpt, indent=4) + "\n")
    sb = json.loads((wavcaps / "data/json_files/SoundBible/sb_final.json").read_text())
    write("wavcaps/sb_final.json", json.dumps({"num_captions_per_audio": sb["num_captions_per_audio"],
                                               "data": sb["data"][:3]}) + "\n")
    readme_examples(audiosetcaps / "README.md")


def readme_examples(readme: Path) -> None:
    """The AudioSetCaps README's "Example" table (id | audio | caption | 3 x Q&A) as its
    release layout: captions.csv (id, caption) and captions_qa.csv beside it."""
    import re

    captions, qa = [["id", "caption"]], [["id", "question_1", "question_2", "question_3", "answer_1",
                                          "answer_2", "answer_3"]]
    for line in readme.read_text(encoding="utf-8").splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|") if c.strip()]
        if len(cells) != 6 or not re.fullmatch(r"[A-Za-z0-9_-]{11}_\d+_\d+", cells[0]):
            continue
        pairs = [re.fullmatch(r"\*\*Question: (.*?)\*\* \*Answer: (.*?)\*", c) for c in cells[3:]]
        captions.append([cells[0], cells[2]])
        qa.append([cells[0], *(m.group(1) for m in pairs), *(m.group(2) for m in pairs)])
    for name, rows in (("captions.csv", captions), ("captions_qa.csv", qa)):
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows(rows)
        write(f"audiosetcaps/{name}", buf.getvalue())


if __name__ == "__main__":
    main(*(Path(a) for a in sys.argv[1:5]))
