"""Peer layouts in and out: what sonicaps reads and writes, checked on real files.

    python benchmarks/interop.py                               # the table, on tests/data/peers
    python benchmarks/interop.py --audiocaps ../shared/data/audiocaps --wavcaps WavCaps/
    python benchmarks/interop.py --datasets-pythons venv3.6/bin/python venv4.0/bin/python

The table lists each layout, whether it reads and writes, what a round trip through its
own writer keeps (every caption of every clip, and the fields the layout holds), and the
test that pins it. With --audiocaps (the AudioCaps CSVs) and --wavcaps (a clone of
XinhaoMei/WavCaps), it runs the full-size checks of issue 34: dedupe of AudioCaps val
against WavCaps' copy of it (`Y<ytid>.wav`, no start time) and of AudioCaps test against
WavCaps' blacklist, and Clotho v2 names that begin with a space. With --datasets-pythons
(interpreters that import sonicaps beside another `datasets` version), every version
writes an hf dataset and every version reads every other's.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

from sonicaps.curate.dedupe import DedupeReport, dedupe, read_eval_set
from sonicaps.formats.readers import read_records
from sonicaps.formats.writers import WriteReport, write_records

PEERS = Path(__file__).resolve().parent.parent / "tests" / "data" / "peers"
LAYOUTS = [  # name, example, writer, test
    ("AudioCaps CSV (+ <name>_qa.csv)", "audiocaps/val.csv", "audiocaps-csv",
     "test_same_layout_writes_the_same_file"),
    ("AudioSetCaps CSV + Q&A", "audiosetcaps/captions.csv", "audiosetcaps-csv",
     "test_dedupe_reads_audiosetcaps_ids_as_start_and_duration"),
    ("Clotho v2 caption CSV", "clotho/clotho_captions_validation.csv", "clotho-csv",
     "test_convert_finds_names_with_a_leading_space_and_never_loses_audio_silently"),
    ("WavCaps JSON (pretraining)", "wavcaps/sb_final.json", "wavcaps-json",
     "test_same_layout_writes_the_same_file"),
    ("WavCaps JSON (fine-tuning)", "wavcaps/clotho_val_captioning.json", "wavcaps-json",
     "test_wavcaps_finetuning_json_and_a_hub_parquet_convert"),
    ("WavCaps AudioCaps copy (Y<ytid>.wav)", "wavcaps/audiocaps_val.csv", "clotho-csv",
     "test_dedupe_matches_wavcaps_copies_and_blacklists_across_layouts"),
    ("WavCaps blacklist JSON (dedupe --eval)", "wavcaps/blacklist_exclude_test_ac.json", None,
     "test_dedupe_matches_wavcaps_copies_and_blacklists_across_layouts"),
    ("DCASE submission CSV", "dcase/labbe_irit_task6_submission_1_clotho_eval.csv", "dcase-csv",
     "test_score_reads_a_dcase_submission_and_pairs_clips_across_layouts"),
    ("Hugging Face dataset (save_to_disk, hf://)", "audiocaps/val.csv", "hf",
     "test_hf_export_stores_each_clip_not_the_whole_file"),
    ("Parquet", "audiocaps/val.csv", "parquet", "test_real_files_round_trip_through_every_writer"),
    ("JSON lines", "audiocaps/val.csv", "jsonl", "test_real_files_round_trip_through_every_writer"),
    ("webdataset shards", "audiocaps/val.csv", "webdataset",
     "test_real_files_round_trip_through_every_writer"),
]
DEST = {"hf": "hf", "parquet": "x.parquet", "jsonl": "x.jsonl", "webdataset": "wds"}


def layout_table() -> None:
    print(f"{'layout':<44} {'read':<5} {'write (--to)':<17} {'round trip':<34} "
          "checked by (tests/test_peers.py)")
    with tempfile.TemporaryDirectory() as tmp:
        for name, example, to, test in LAYOUTS:
            if to is None:
                ids = read_eval_set(PEERS / example).clips
                print(f"{name:<44} {'yes':<5} {'-':<17} {f'{ids} ids as an eval set':<34} {test}")
                continue
            original = list(read_records(PEERS / example))
            dest = Path(tmp) / f"{len(list(Path(tmp).iterdir()))}" / DEST.get(to, Path(example).name)
            report = WriteReport()
            write_records(iter(original), dest, to, report=report)
            back = list(read_records(dest))
            same = sum(a.captions == b.captions for a, b in zip(original, back, strict=False))
            lost = ", ".join(report.lost) or "nothing"
            summary = f"{same}/{len(original)} clips; lost: {lost}"
            print(f"{name:<44} {'yes':<5} {to:<17} {summary[:34]:<34} {test}")
    print("every writer, from every real file: "
          "tests/test_peers.py::test_real_files_round_trip_through_every_writer")


def full_size(audiocaps: Path, wavcaps: Path) -> None:
    val = list(read_records(audiocaps / "val.csv"))
    for copy in ("captioning/data/AudioCaps/json_files/val.json",
                 "captioning/data/AudioCaps/csv_files/val.csv"):
        report = DedupeReport()
        kept = list(dedupe(iter(val), [read_eval_set(wavcaps / copy)], report))
        removed = sum(len(v) for v in report.removed.values())
        print(f"dedupe AudioCaps val ({len(val)} clips) against WavCaps' {copy} "
              f"({report.sizes[Path(copy).name]} clips): removed {removed}, kept {len(kept)}")
    test = list(read_records(audiocaps / "test.csv"))
    black = wavcaps / "data/json_files/blacklist/blacklist_exclude_test_ac.json"
    report = DedupeReport()
    kept = list(dedupe(iter(test), [read_eval_set(black)], report))
    print(f"dedupe AudioCaps test ({len(test)} clips) against {black.name} ({report.sizes[black.name]} ids): "
          f"removed {len(test) - len(kept)}")
    for split in ("train", "val", "test"):
        names = [r.id for r in read_records(wavcaps / f"captioning/data/Clotho/csv_files/{split}.csv")]
        spaced = [n for n in names if n != n.strip()]
        print(f"Clotho {split}: {len(names)} clips read; names with a leading or trailing space, "
              f"kept as they are: {spaced}")


CHECK = """
import io, sys
from pathlib import Path
import datasets, numpy as np, soundfile as sf
from sonicaps.formats.readers import read_records
from sonicaps.formats.writers import write_records
mode, dest = sys.argv[1], Path(sys.argv[2])
if mode == "write":
    recs = list(read_records(sys.argv[3]))
    audio = dest.parent / "audio"
    audio.mkdir(parents=True, exist_ok=True)
    for r in recs:
        sf.write(audio / r.id, np.zeros(1600, np.float32), 16000)
    write_records(iter(recs), dest, "hf", audio_root=audio)
ds = datasets.load_from_disk(str(dest)).cast_column("audio", datasets.Audio(decode=False))
sf.read(io.BytesIO(ds[0]["audio"]["bytes"]))
print(datasets.__version__, len(ds))
"""


def datasets_matrix(pythons: list[str]) -> None:
    """Each interpreter writes with its datasets; each reads every output."""
    with tempfile.TemporaryDirectory() as tmp:
        versions = {}
        for k, py in enumerate(pythons):
            out = subprocess.run([py, "-c", CHECK, "write", f"{tmp}/{k}/hf",
                                  str(PEERS / "clotho/clotho_captions_validation.csv")],
                                 capture_output=True, text=True)
            failed = out.stderr.strip().splitlines()[-1:] or ["?"]
            versions[py] = out.stdout.split()[0] if out.returncode == 0 else f"({failed[0][:50]})"
        print("hf written by datasets (row) and loaded by datasets (column):")
        print(f"{'':<10}" + "".join(f"{v:<10}" for v in versions.values()))
        for k, py in enumerate(pythons):
            row = []
            for reader in pythons:
                out = subprocess.run([reader, "-c", CHECK, "read", f"{tmp}/{k}/hf"], capture_output=True,
                                     text=True)
                row.append("ok" if out.returncode == 0 else "FAILS")
            print(f"{versions[py]:<10}" + "".join(f"{c:<10}" for c in row))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--audiocaps", type=Path, help="folder with AudioCaps' train/val/test CSVs")
    p.add_argument("--wavcaps", type=Path, help="a clone of github.com/XinhaoMei/WavCaps")
    p.add_argument("--datasets-pythons", nargs="+", default=[],
                   help="Python interpreters that import sonicaps beside other datasets versions")
    args = p.parse_args()
    layout_table()
    if args.audiocaps and args.wavcaps:
        full_size(args.audiocaps, args.wavcaps)
    if args.datasets_pythons:
        datasets_matrix([sys.executable, *args.datasets_pythons])


if __name__ == "__main__":
    main()
