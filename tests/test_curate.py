"""Curation: AudioSet selection, caption clean-up and checks, statistics, leakage filter,
and the whole chain from AudioSet-format files to a released dataset."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs

import pandas as pd
import pytest

from sonicaps.curate.audioset import read_ontology, select, write_segments
from sonicaps.curate.dedupe import DedupeReport, dedupe, read_eval_set
from sonicaps.curate.stats import compute, write_card
from sonicaps.curate.text import LanguageTool, caption_flags, clean_caption, vocabulary
from sonicaps.formats.readers import read_records
from sonicaps.formats.records import CaptionRecord
from sonicaps.pipeline.inputs import iter_audioset

# A slice of the AudioSet ontology's shape: ids, names, child_ids.
ONTOLOGY = [
    {"id": "/m/0dgw9r", "name": "Human sounds", "child_ids": ["/m/09x0r"]},
    {"id": "/m/09x0r", "name": "Speech", "child_ids": []},
    {"id": "/m/0jbk", "name": "Animal", "child_ids": ["/m/0bt9lr"]},
    {"id": "/m/0bt9lr", "name": "Dog", "child_ids": ["/m/05tny_"]},
    {"id": "/m/05tny_", "name": "Bark", "child_ids": []},
    {"id": "/m/04rlf", "name": "Music", "child_ids": ["/m/04szw", "/m/0glt670"]},
    {"id": "/m/04szw", "name": "Musical instrument", "child_ids": ["/m/042v_gx"]},
    {"id": "/m/042v_gx", "name": "Acoustic guitar", "child_ids": []},
    {"id": "/m/0glt670", "name": "Rock music", "child_ids": []},
    {"id": "/t/dd00125", "name": "Inside, small room", "child_ids": []},
    {"id": "/m/0838f", "name": "Water", "child_ids": []},
]
IDS = ["abcdefghij" + c for c in "ABCDEFGHIJKLMNOPQRSTUVWXYZ"]  # 11-character YouTube-like ids


@pytest.fixture
def audioset(tmp_path):
    return write_audioset_files(tmp_path)


def write_audioset_files(tmp_path):
    """ontology.json and segments.csv in AudioSet's layout (the README's select example)."""
    (tmp_path / "ontology.json").write_text(json.dumps(ONTOLOGY))
    rows = (
        [(IDS[i], "/m/09x0r,/m/0bt9lr,/m/05tny_") for i in range(4)]  # speech + dog + bark
        + [(IDS[i], "/m/09x0r") for i in range(4, 10)]  # speech only
        + [(IDS[i], "/m/0bt9lr,/m/05tny_") for i in range(10, 14)]  # dog + bark
        + [(IDS[14], "/m/04rlf,/m/042v_gx"), (IDS[15], "/m/0glt670,/m/09x0r")]  # music; music + speech
        + [(IDS[16], "/t/dd00125,/m/09x0r"), (IDS[17], "/m/0838f"), (IDS[18], "/m/zzzz")]
    )
    lines = ["# Segments csv created Sun Mar  5 10:54:31 2017",
             "# num_ytids=19, num_segs=19, num_unique_labels=9, num_positive_labels=30",
             "# YTID, start_seconds, end_seconds, positive_labels"]
    lines += [f'{yt}, 30.000, 40.000, "{labels}"' for yt, labels in rows] + ["garbage line without commas"]
    (tmp_path / "segments.csv").write_text("\n".join(lines) + "\n")
    return tmp_path


def test_selection_reads_ontology_and_segments_from_urls(audioset, monkeypatch, tmp_path):
    """URLs are fetched once (here from a server on 127.0.0.1) and read from the cache after."""
    import functools
    from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer

    monkeypatch.setenv("SONICAPS_CACHE", str(tmp_path / "cache"))
    handler = functools.partial(SimpleHTTPRequestHandler, directory=str(audioset))
    handler.log_message = lambda *a: None
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_port}"
    try:
        sel = select(read_ontology(f"{base}/ontology.json"), [f"{base}/segments.csv"], min_clips=2)
    finally:
        server.shutdown()
    local = select(read_ontology(audioset / "ontology.json"), [audioset / "segments.csv"], min_clips=2)
    assert sel.segments == local.segments
    assert len(list((tmp_path / "cache" / "audioset").iterdir())) == 2
    again = select(read_ontology(f"{base}/ontology.json"), [f"{base}/segments.csv"], min_clips=2)
    assert again.segments == local.segments  # from the cache: the server is down


def test_audioset_selection_steps_and_balance(audioset):
    onto = read_ontology(audioset / "ontology.json")
    sel = select(onto, [audioset / "segments.csv"], min_clips=2, drop_music=True,
                 drop_labels=["Inside, small room"], cap=5, seed=0)
    steps = {s.name: s for s in sel.steps}
    assert sel.skipped_lines == [f"{audioset / 'segments.csv'}:23: not 'YTID, start, end, \"labels\"'"]
    assert steps["read"].clips_left == 19
    assert (steps["unknown label ids"].labels_removed, steps["unknown label ids"].clips_removed) == (1, 1)
    rare = steps["labels with < 2 clips"]  # Water, Acoustic guitar, Rock music, Music, Inside: 1 clip
    assert (rare.labels_removed, rare.clips_removed) == (5, 2)  # IDS[14] (music only), IDS[17] (water)
    assert steps["music subtree"].labels_removed == 0  # already gone as rare
    left = {s.ytid: s.labels for s in sel.segments}
    gone = {"/m/04rlf", "/m/042v_gx", "/m/0glt670", "/t/dd00125"}
    assert not any(label in gone for ls in left.values() for label in ls)
    # Cap 5 per label: the four clips with three labels come first, then one more per label.
    from collections import Counter

    counts = Counter(label for ls in left.values() for label in ls)
    assert max(counts.values()) <= 5 + 3  # a clip chosen for one label adds to its other labels
    assert all(IDS[i] in left for i in range(4))  # clips with more labels are preferred
    again = select(onto, [audioset / "segments.csv"], min_clips=2, drop_music=True,
                   drop_labels=["Inside, small room"], cap=5, seed=0)
    assert again.segments == sel.segments  # deterministic by seed
    other = [select(onto, [audioset / "segments.csv"], min_clips=2, cap=5, seed=s).segments
             for s in range(1, 6)]
    assert any(o != sel.segments for o in other)  # the seed breaks ties
    write_segments(sel, audioset / "selected.csv")
    sources = list(iter_audioset(audioset / "selected.csv", audioset))
    assert [s.clip_id.split("_")[0] for s in sources] == [s.ytid for s in sel.segments]
    with pytest.raises(ValueError, match="neither an ontology id nor a label name"):
        select(onto, [audioset / "segments.csv"], drop_labels=["Kazoo"])


def test_caption_clean_up_and_checks():
    assert clean_caption("A dog barks 2 times,  then 10 cars pass.") == ("A dog barks two times, then ten "
                                                                          "cars pass")
    assert clean_caption("It lasts 2.5 s.", final_period=True) == "It lasts two point five s."
    assert clean_caption("Room 101 at 3:15") == "Room one hundred and one at 3:15"  # times stay
    answers = ("A man talks.", "A man speaks in English.", "There is no music in this audio.")
    assert caption_flags("A man speaks while a dog barks", answers) == []
    assert caption_flags('A man says "stop it" loudly', answers) == ["quotes speech"]
    assert caption_flags("There is a man speaking", answers) == ["starts with this is / there is / the audio"]
    assert caption_flags("A man sings with a guitar", answers) == ["mentions music the answers say is absent"]
    no_speech = ("Rain falls.", "There is no speech in this audio.", "Soft piano music.")
    assert caption_flags("Someone talks over soft piano music", no_speech) == [
        "mentions speech the answers say is absent"]
    labels = ["Speech", "Dog", "Bark"]
    assert caption_flags("Speech, Dog, Bark and rain", labels=labels) == ["lists label names"]
    assert caption_flags("word " * 26) == ["longer than 25 words"]
    vocab = vocabulary(["A dog barks.", "The dog's bark"])
    assert vocab == {"a": 1, "dog": 2, "barks": 1, "the": 1, "'s": 1, "bark": 1}


def test_languagetool_corrections_are_applied_by_offset():
    """A LanguageTool-compatible server on 127.0.0.1 (its /v2/check API, one rule: "a" before
    a vowel becomes "an")."""
    import re

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            form = parse_qs(self.rfile.read(int(self.headers["Content-Length"])).decode())
            text = form["text"][0]
            assert form["language"] == ["en-US"]
            matches = [{"offset": m.start(1), "length": 1, "replacements": [{"value": "an"}]}
                       for m in re.finditer(r"\b(a) [aeiou]", text)]
            body = json.dumps({"matches": matches}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = HTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        lt = LanguageTool(f"http://127.0.0.1:{server.server_port}")
        fixed = lt.correct("a owl hoots and a engine starts near a dog")
        assert fixed == "an owl hoots and an engine starts near a dog"
    finally:
        server.shutdown()


def test_statistics_tables_and_card(tmp_path):
    records = [CaptionRecord("a", ["A dog barks loudly.", "Two dogs bark"], labels=["Dog", "Bark"],
                             split="train"),
               CaptionRecord("b", ["A cat meows"], labels=["Cat"], split="train"),
               CaptionRecord("c", ["Rain falls quickly on a red roof"], split="test")]
    stats = compute(iter(records))
    t1 = {r["split"]: r for r in stats.table1()}
    assert (t1["train"]["clips"], t1["train"]["captions"], t1["train"]["labels/clip"]) == (2, 3, 1.5)
    assert t1["train"]["words/caption (mean)"] == round((4 + 3 + 3) / 3, 2)
    assert t1["test"]["words/caption (median)"] == 7 and t1["total"]["clips"] == 3
    t5 = stats.table5()
    assert t5["tokens"] == 17 and t5["vocabulary"] == 15
    assert {"dog", "dogs", "cat", "rain", "roof"} <= stats.pos["NOUN"]
    assert {"barks", "meows", "falls"} <= stats.pos["VERB"]
    assert {"loudly", "quickly"} <= stats.pos["ADV"] and "red" in stats.pos["ADJ"]
    card = write_card(stats, tmp_path / "card", "test set")
    text = card.read_text()
    assert "train" in text.split("Table 5")[0]
    table5 = text.split("Table 5")[1].splitlines()
    assert any(line.replace(" ", "").startswith("|17|15|") for line in table5), table5
    assert (tmp_path / "card" / "labels.png").stat().st_size > 1000
    assert (tmp_path / "card" / "caption_lengths.png").stat().st_size > 1000


def test_dedupe_removes_overlapping_evaluation_clips(tmp_path):
    (tmp_path / "audiocaps_test.csv").write_text(
        "audiocap_id,youtube_id,start_time,caption\n1,abcdefghijA,30,a dog\n2,abcdefghijB,100,rain\n")
    (tmp_path / "vggsound.csv").write_text("abcdefghijC,5,dog barking,test\nabcdefghijZ,0,rain,train\n")
    (tmp_path / "clotho_eval.csv").write_text("file_name,caption_1\nbirds.wav,birds sing\n")
    train = [CaptionRecord("abcdefghijA_35", ["x"], youtube_id="abcdefghijA", start_s=35.0, end_s=45.0),
             CaptionRecord("abcdefghijA_50", ["x"], youtube_id="abcdefghijA", start_s=50.0, end_s=60.0),
             CaptionRecord("Yabcdefghij" "B_95.000_105.000", ["x"]),  # id only, AudioSetCaps style
             CaptionRecord("abcdefghijC_14", ["x"], youtube_id="abcdefghijC", start_s=14.0),
             CaptionRecord("abcdefghijC_15", ["x"], youtube_id="abcdefghijC", start_s=15.0),
             CaptionRecord("birds.wav", ["x"]), CaptionRecord("other.wav", ["x"])]
    sets = [read_eval_set(tmp_path / n) for n in ("audiocaps_test.csv", "vggsound.csv", "clotho_eval.csv")]
    report = DedupeReport()
    kept = [r.id for r in dedupe(iter(train), sets, report)]
    assert kept == ["abcdefghijA_50", "abcdefghijC_15", "other.wav"]
    assert report.removed == {"audiocaps_test.csv": ["abcdefghijA_35", "Yabcdefghij" "B_95.000_105.000"],
                              "vggsound.csv": ["abcdefghijC_14"], "clotho_eval.csv": ["birds.wav"]}


def test_curation_end_to_end_from_audioset_files(audioset, examples, tmp_path):
    """select -> caption (audio found by YouTube id) -> clean -> dedupe -> stats -> convert."""
    audio = tmp_path / "audio"
    audio.mkdir()
    for yt, name in zip(IDS[:4], sorted(p.name for p in examples.iterdir()), strict=False):
        # Cut 10-s segments named as AudioSet downloaders name them.
        shutil.copy(examples / name, audio / f"Y{yt}_30.000_40.000{(examples / name).suffix}")
    run = [sys.executable, "-m", "sonicaps.cli"]

    def cli(*args: str) -> str:
        done = subprocess.run([*run, *args], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, (args, done.stderr[-3000:])
        return done.stdout

    out = cli("select", str(audioset / "segments.csv"), "--ontology", str(audioset / "ontology.json"),
              "-o", str(tmp_path / "selected.csv"), "--min-clips", "2", "--drop-music", "--cap", "3")
    assert "music subtree" in out and "balanced: at most 3 clips per label" in out
    cli("caption", str(tmp_path / "selected.csv"), "--audio-root", str(audio), "-o",
        str(tmp_path / "captions"), "--quiet")
    captions = pd.read_parquet(tmp_path / "captions")
    assert set(captions["label_source"]) == {"given"} and len(captions) > 0
    assert {cid[:11] for cid in captions["id"]} <= set(IDS[:4])  # a 25-s file gives 3 clips
    # The balance cap keeps the four clips with three labels (the ones with audio) and no more.
    assert not (tmp_path / "captions" / "_failures.jsonl").exists()
    out = cli("clean", str(tmp_path / "captions"), "-o", str(tmp_path / "clean.parquet"), "--vocab",
              str(tmp_path / "vocab.csv"))
    assert f"cleaned {len(captions)} clips" in out
    vocab = pd.read_csv(tmp_path / "vocab.csv", keep_default_na=False)
    cleaned = [c for r in read_records(tmp_path / "clean.parquet") for c in r.captions]
    assert vocab["count"].sum() == sum(len(c.split()) for c in cleaned)  # commas are no words
    assert not any(c.endswith(".") for c in cleaned)
    (tmp_path / "eval.csv").write_text(f"audiocap_id,youtube_id,start_time,caption\n1,{IDS[0]},35,x\n")
    out = cli("dedupe", str(tmp_path / "clean.parquet"), "--eval", str(tmp_path / "eval.csv"),
              "-o", str(tmp_path / "train.parquet"), "--removed", str(tmp_path / "removed.csv"))
    removed = pd.read_csv(tmp_path / "removed.csv")
    kept = list(read_records(tmp_path / "train.parquet"))
    assert len(kept) + len(removed) == len(captions)
    assert all(r.id.split("_")[0] != IDS[0] for r in kept)
    cli("stats", str(tmp_path / "train.parquet"), "-o", str(tmp_path / "card"))
    assert (tmp_path / "card" / "card.md").exists()
    cli("convert", str(tmp_path / "train.parquet"), "-o", str(tmp_path / "release.csv"), "--to",
        "audiocaps-csv")
    released = list(read_records(tmp_path / "release.csv"))
    assert [(r.id, r.captions) for r in released] == [(r.id, r.captions) for r in kept]


def test_near_duplicate_audio_is_found_by_sound(examples, tmp_path):
    """A re-encoded, quieter copy of a training clip under another name is caught; the other
    recordings stay below the default threshold."""
    import soundfile as sf

    from sonicaps.curate.dedupe import near_duplicates
    from sonicaps.formats.torch_dataset import CaptionDataset
    from sonicaps.formats.writers import write_records

    names = sorted(p.name for p in examples.iterdir() if p.suffix != ".wav" or "long" not in p.name)
    write_records(iter([CaptionRecord(n, ["x"], audio=str(examples / n)) for n in names]),
                  tmp_path / "train.jsonl", "jsonl")
    from sonicaps.audio import load_audio

    copy = tmp_path / "reupload.flac"
    sf.write(copy, 0.5 * load_audio(examples / "dog_then_man.wav"), 16000)  # other codec, rate, level
    write_records(iter([CaptionRecord("eval-1", ["y"], audio=str(copy))]), tmp_path / "eval.jsonl", "jsonl")
    train, ev = CaptionDataset(tmp_path / "train.jsonl"), CaptionDataset(tmp_path / "eval.jsonl")
    found = near_duplicates(train, [ev], threshold=0.0)  # every similarity, to check the margin
    sims = {tid: sim for tid, (_, sim) in found.items()}
    assert sims["dog_then_man.wav"] > 0.98  # measured 0.990
    assert max(s for tid, s in sims.items() if tid != "dog_then_man.wav") < 0.8  # measured 0.59
    assert set(near_duplicates(train, [ev], threshold=0.95)) == {"dog_then_man.wav"}


def test_clean_says_which_rows_it_could_not_read_and_exits_1(tmp_path, capsys):
    """`clean` is a conversion too: a row it cannot read is named, and the run exits 1
    unless --allow-dropped (it used to print nothing and exit 0)."""
    from sonicaps.cli import main

    src = tmp_path / "train.csv"
    src.write_text("audiocap_id,youtube_id,start_time,caption\n1,abcdefghijk,30,A dog barks 2 times.\n"
                   "2,bcdefghijkl,soon,A cat meows\n")
    assert main(["clean", str(src), "-o", str(tmp_path / "out.csv"), "--to", "audiocaps-csv"]) == 1
    err = capsys.readouterr().err
    assert "1 row(s) or clip(s) not written" in err and "train.csv:3" in err and "--allow-dropped" in err
    assert (tmp_path / "out.csv").read_text().splitlines()[1].endswith("A dog barks two times")
    assert main(["clean", str(src), "-o", str(tmp_path / "out2.csv"), "--to", "audiocaps-csv",
                 "--allow-dropped"]) == 0
