"""Caption dataset formats: every reader, every writer, round trips, bad rows, torch Dataset."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from roundtrip import FULL, round_trip

from sonicaps.formats.identity import parse_youtube_name
from sonicaps.formats.readers import FormatError, Report, detect, read_records
from sonicaps.formats.torch_dataset import CaptionDataset
from sonicaps.formats.writers import TARGETS, write_records
from sonicaps.pipeline.config import PipelineConfig
from sonicaps.pipeline.runner import run

# Captions as they occur: quotes, commas, unicode, a newline inside a quoted CSV cell.
CAPTIONS = ["A dog barks, then a man speaks", 'A woman says "hello" twice', "Rain falls on a tin roof",
            "Wind blows\nand leaves rustle", "Un chien aboie \u00e0 c\u00f4t\u00e9 \u2014 bruyamment"]


def write_csv(path, header, rows):
    with open(path, "w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)
    return path


@pytest.fixture
def inputs(tmp_path):
    """A small file of every input format; the AudioCaps one scatters each clip's captions."""
    audiocaps = write_csv(tmp_path / "audiocaps.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
                          [[str(100 + i), ["--0w1YA1Hm4", "a_b-c_d-e_f"][i % 2], ["30", "0"][i % 2], c]
                           for i, c in enumerate(CAPTIONS)])
    asc = write_csv(tmp_path / "asc.csv", ["id", "caption"],
                    [["--0w1YA1Hm4_30_10", CAPTIONS[0]], ["a_b-c_d-e_f_0_10", CAPTIONS[1]],
                     ["plain_id", CAPTIONS[3]]])
    qa_columns = [f"{k}_{i}" for k in ("question", "answer") for i in (1, 2, 3)]
    qa = write_csv(tmp_path / "qa.csv", ["id", *qa_columns],
                   [["--0w1YA1Hm4_30_10", "q1", "q2", "q3", "a dog", "a man", "no music"]])
    clotho = write_csv(tmp_path / "clotho.csv", ["file_name", *(f"caption_{i}" for i in range(1, 6))],
                       [["rain on roof.wav", *CAPTIONS], ["birds.wav", *reversed(CAPTIONS)]])
    wavcaps = tmp_path / "wavcaps.json"
    wavcaps.write_text(json.dumps({"num_captions_per_audio": 1, "data": [
        {"id": "Y7fmOlUlwoNg.wav", "caption": CAPTIONS[4], "audio": "wav/7fmOlUlwoNg.flac", "duration": 10.0},
        {"id": "119095.wav", "caption": CAPTIONS[2], "duration": 3.2}]}), encoding="utf-8")
    return {"audiocaps": audiocaps, "audiosetcaps": asc, "clotho": clotho, "wavcaps": wavcaps, "qa": qa}


def test_youtube_clip_names_are_read_as_their_layouts_mean_them():
    assert parse_youtube_name("_7Xe9vD3Hpg_4_10") == ("_7Xe9vD3Hpg", 4.0, 14.0)  # AudioSetCaps: duration
    assert parse_youtube_name("9eUrEyAR3xk_84_10") == ("9eUrEyAR3xk", 84.0, 94.0)
    assert parse_youtube_name("--0w1YA1Hm4_30_40") == ("--0w1YA1Hm4", 30.0, 40.0)  # `caption`: an end
    assert parse_youtube_name("Y--0w1YA1Hm4_30.000_40.000") == ("--0w1YA1Hm4", 30.0, 40.0)
    assert parse_youtube_name("Ya_b-c_d-e_f_0_10000") == ("a_b-c_d-e_f", 0.0, 10.0)  # milliseconds
    assert parse_youtube_name("vfY_TJq7n_U_130") == ("vfY_TJq7n_U", 130.0, 140.0)  # an AudioCaps row
    assert parse_youtube_name("YabcdefghiJ") == ("YabcdefghiJ", None, None)  # an id starting with Y
    assert parse_youtube_name("Y7fmOlUlwoNg.wav") == ("7fmOlUlwoNg", None, None)  # WavCaps: no span
    assert parse_youtube_name("plain_id") is None


def test_readers(inputs):
    ac = list(read_records(inputs["audiocaps"]))
    assert [(r.id, r.captions, r.caption_ids) for r in ac] == [
        ("--0w1YA1Hm4_30", CAPTIONS[0::2], ["100", "102", "104"]),
        ("a_b-c_d-e_f_0", CAPTIONS[1::2], ["101", "103"])]
    asc = list(read_records(inputs["audiosetcaps"], qa=inputs["qa"]))
    assert [r.id for r in asc] == ["--0w1YA1Hm4_30_10", "a_b-c_d-e_f_0_10", "plain_id"]  # byte for byte
    assert [(r.youtube_id, r.start_s, r.end_s) for r in asc] == [
        ("--0w1YA1Hm4", 30.0, 40.0), ("a_b-c_d-e_f", 0.0, 10.0), (None, None, None)]
    assert asc[0].qa["answer_3"] == "no music" and asc[1].qa is None
    clotho = list(read_records(inputs["clotho"]))
    assert [(r.id, len(r.captions)) for r in clotho] == [("rain on roof.wav", 5), ("birds.wav", 5)]
    assert clotho[0].captions[3] == "Wind blows\nand leaves rustle"
    wav = list(read_records(inputs["wavcaps"]))
    assert [(r.id, r.audio, r.extra.get("duration")) for r in wav] == [
        ("Y7fmOlUlwoNg.wav", "wav/7fmOlUlwoNg.flac", 10.0), ("119095.wav", None, 3.2)]
    assert {name: detect(inputs[name]) for name in ("audiocaps", "audiosetcaps", "clotho", "wavcaps")} == {
        "audiocaps": "audiocaps", "audiosetcaps": "audiosetcaps", "clotho": "clotho", "wavcaps": "wavcaps"}


def _key(records):
    return [(r.id, list(r.captions)) for r in records]


@pytest.mark.parametrize("source", ["audiocaps", "audiosetcaps", "clotho", "wavcaps"])
@pytest.mark.parametrize("to", TARGETS)
def test_every_format_converts_and_round_trips(inputs, tmp_path, source, to):
    """Every reader through every writer and back: each caption (quotes, commas, a newline
    inside a cell, unicode) comes back, or the report says what the layout could not hold."""
    original = list(read_records(inputs[source]))
    back, _ = round_trip(original, to, tmp_path / "once")
    if to in FULL:  # ... and back again: B -> A for the formats sonicaps writes.
        again, _ = round_trip(back, to, tmp_path / "twice")
        assert _key(again) == _key(original)


def test_bad_input_is_reported_with_its_line(tmp_path):
    missing = write_csv(tmp_path / "m.csv", ["youtube_id", "caption"], [["abc", "x"]])
    with pytest.raises(FormatError, match="missing column.*start_time"):
        list(read_records(missing, "audiocaps"))
    bad_rows = write_csv(tmp_path / "b.csv", ["audiocap_id", "youtube_id", "start_time", "caption"],
                         [["1", "abcdefghijk", "30", "ok"], ["2", "abcdefghijk", "soon", "bad start"],
                          ["3", "", "10", "no id"]])
    report = Report()
    assert _key(read_records(bad_rows, report=report)) == [("abcdefghijk_30", ["ok"])]
    assert report.skipped == [f"{bad_rows}:3: start_time 'soon' is not a number",
                              f"{bad_rows}:4: empty youtube_id or missing caption"]
    with pytest.raises(FormatError, match=r"b\.csv:3: start_time"):
        list(read_records(bad_rows, report=Report(strict=True)))
    dup = write_csv(tmp_path / "d.csv", ["file_name", "caption_1"], [["a.wav", "x"], ["a.wav", "y"]])
    report = Report()
    assert _key(read_records(dup, report=report)) == [("a.wav", ["x"])]
    assert report.skipped == [f"{dup}:3: duplicate file_name 'a.wav'"]
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id,caption\nok,fine\nx,caf\u00e9 noise\n".encode("latin-1"))
    with pytest.raises(FormatError, match=r"latin\.csv: line 3, column 6: byte 0xe9 is not utf-8.*encoding"):
        list(read_records(latin))
    assert _key(read_records(latin, encoding="latin-1")) == [("ok", ["fine"]), ("x", ["caf\u00e9 noise"])]
    (tmp_path / "w.json").write_text('{"data": [{"id": "a", "caption": 3}, {"id": "b", "caption": "ok"}]}')
    report = Report()
    assert _key(read_records(tmp_path / "w.json", report=report)) == [("b", ["ok"])]
    assert "data[0]" in report.skipped[0]
    with pytest.raises(FormatError, match="unknown file type"):
        detect(tmp_path / "notes.txt")


def test_pipeline_output_to_hf_and_torch_dataset(examples, tmp_path, backends):
    run([examples], tmp_path / "captions", PipelineConfig(), backends=backends, progress=False)
    done = subprocess.run([sys.executable, "-m", "sonicaps.cli", "convert", str(tmp_path / "captions"),
                           "-o", str(tmp_path / "hf"), "--to", "hf"], capture_output=True, text=True,
                          timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    from_output = CaptionDataset(tmp_path / "captions")
    from_hf = CaptionDataset(tmp_path / "hf")
    assert len(from_hf) == len(from_output) == 7
    for k in range(len(from_hf)):
        a, b = from_output[k], from_hf[k]
        assert a["id"] == b["id"] and a["captions"] == b["captions"]
        # The hf copy embeds the clip's own span, as the pipeline output's clip is.
        clip = from_output.records[k]
        assert len(a["audio"]) == pytest.approx((clip.end_s - clip.start_s) * 16000, abs=1)
        assert b["audio"].dtype == a["audio"].dtype
        assert len(b["audio"]) == pytest.approx(len(a["audio"]), abs=2)


def test_webdataset_shards_read_with_the_webdataset_library(examples, tmp_path):
    import webdataset as wds

    from sonicaps.formats.records import CaptionRecord

    records = [CaptionRecord(f"clip.{k}", [f"caption {k}"], audio=name) for k, name in
               enumerate(sorted(p.name for p in examples.iterdir()))]
    write_records(iter(records), tmp_path / "wds", "webdataset", audio_root=examples)
    urls = [str(p) for p in sorted((tmp_path / "wds").glob("*.tar"))]
    samples = list(wds.WebDataset(urls, shardshuffle=False))
    assert [json.loads(s["json"])["id"] for s in samples] == [r.id for r in records]
    for sample, rec in zip(samples, records, strict=True):
        ext = rec.audio.rsplit(".", 1)[1]
        assert sample[ext] == (examples / rec.audio).read_bytes()
