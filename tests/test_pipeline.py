"""End to end: folders and manifests in, Parquet + failures out; resume; bad input."""

import csv
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from conftest import SR, tone, write

from sonicaps.backends import available
from sonicaps.backends.builtin.writer import BuiltinWriter
from sonicaps.export import export
from sonicaps.pipeline.config import PipelineConfig, from_dict, load_config
from sonicaps.pipeline.inputs import ManifestError, iter_sources
from sonicaps.pipeline.runner import run
from sonicaps.pipeline.stages import Backends
from sonicaps.prompts import QUESTIONS

REQUIRED = ["id", "source", "start_s", "end_s", "caption", "question_1", "question_2",
            "question_3", "answer_1", "answer_2", "answer_3", "labels", "check_score",
            "label_score", "attempts", "asker", "writer", "scorer", "prompt_version"]


def failures(out):
    path = out / "_failures.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []


@pytest.fixture()
def messy(tmp_path, examples):
    """The example scenes plus every kind of bad file."""
    d = tmp_path / "in"
    shutil.copytree(examples, d)
    (d / "empty.wav").write_bytes(b"")
    (d / "text.wav").write_text("not audio\n" * 50)
    sf.write(d / "zero.wav", np.zeros(0, np.float32), SR)
    nan = tone(300, 10.0)
    nan[1000:2000] = np.nan
    sf.write(d / "nan.wav", nan, SR, subtype="FLOAT")
    write(d / "short.wav", tone(500, 0.3))
    write(d / "eight.wav", tone(300, 10.0, channels=8))
    write(d / "low.wav", tone(300, 10.0, sr=8000), sr=8000)
    full = d / "dog_then_man.wav"
    (d / "garbage.mp3").write_bytes(b"ID3" + os.urandom(3000))
    whole = write(tmp_path / "whole.mp3", tone(440, 30.0))  # cut in half: 14.7 s decode
    (d / "cut.mp3").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (d / "folder.wav").mkdir()
    shutil.copy(full, d / "folder.wav" / "inside.wav")
    return d


def test_folder_with_bad_files(messy, tmp_path, backends):
    out = tmp_path / "out"
    s = run([messy], out, backends=backends, progress=False)
    df = pd.read_parquet(out)
    assert set(REQUIRED) <= set(df.columns)
    assert df["id"].is_unique
    fails = failures(out)
    failed_sources = {os.path.basename(f["source"]) for f in fails}
    assert failed_sources == {"empty.wav", "text.wav", "zero.wav", "garbage.mp3", "nan.wav", "cut.mp3"}
    for f in fails:
        assert {"source", "id", "stage", "error", "message"} <= set(f) and f["message"]
    ids = set(df["id"])
    # handled sensibly: short padded, multichannel mixed down, 8 kHz resampled, long split
    assert {"short_0_0.3", "eight_0_10", "low_0_10", "folder.wav__inside_0_10"} <= ids
    assert {"frogs_and_woman_long_0_10", "frogs_and_woman_long_10_20",
            "frogs_and_woman_long_20_25"} <= ids
    by_source = {os.path.basename(f["source"]): f for f in fails}
    assert not df["source"].str.endswith("nan.wav").any()  # NaN samples: a failure, no row
    assert by_source["nan.wav"]["id"] == "nan_0_10" and "non-finite" in by_source["nan.wav"]["message"]
    # A truncated mp3: what decodes is captioned, and the loss is recorded.
    cut_ids = sorted(df.loc[df["source"].str.endswith("cut.mp3"), "id"])
    assert cut_ids[0] == "cut_0_10" and cut_ids[1].startswith("cut_10_14.") and len(cut_ids) == 2
    assert "truncated" in by_source["cut.mp3"]["message"]
    assert (df["question_1"] == QUESTIONS[0]).all()
    assert df["caption"].str.len().gt(0).all()
    assert s.clips == len(df) and s.failures == len(fails)

    again = run([messy], out, backends=backends, progress=False)
    assert again.clips == 0 and again.failures == 0
    assert len(pd.read_parquet(out)) == len(df) and len(failures(out)) == len(fails)


def test_demo_captions_are_sensible(examples, tmp_path, backends):
    out = tmp_path / "out"
    run([examples], out, backends=backends, progress=False)
    cap = dict(pd.read_parquet(out)[["id", "caption"]].itertuples(index=False))
    assert cap["dog_then_man_0_10"].lower().index("dog") < cap["dog_then_man_0_10"].index("man")
    assert "woman" in cap["woman_speaking_0_10"].lower()
    assert "cow" in cap["cow_0_10"].lower()
    for c in cap.values():
        low = c.lower()
        assert not low.startswith(("this is", "there is", "you can hear", "the audio"))
        assert c[0].isupper() and "." not in c[:-1]


def readme_demo_captions() -> dict[str, str]:
    """The captions the README shows for `sonicaps demo`."""
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    block = text.split("`sonicaps demo` prints", 1)[1].split("```")[1]
    return dict(line.split(None, 1) for line in block.strip().splitlines())


def test_demo_prints_the_readme_captions(examples, tmp_path, capsys):
    from sonicaps.cli import main

    shutil.copytree(examples, tmp_path / "demo" / "audio")
    assert main(["demo", "-o", str(tmp_path / "demo"), "--quiet"]) == 0
    lines = capsys.readouterr().out.strip().split("\n\n")[0].splitlines()
    assert dict(line.split(None, 1) for line in lines) == readme_demo_captions()


def test_the_default_check_prefers_own_captions_and_applies_its_rules(examples, backends):
    """The shipped check on the demo clips: each clip's own caption (the README's) scores
    above every other clip's; own captions pass the shipped threshold and foreign ones do
    not; with given labels, a foreign caption scores below the label string (rejected)."""
    from sonicaps.clip import Answers
    from sonicaps.pipeline.inputs import decode_source
    from sonicaps.pipeline.stages import accept_threshold

    captions = {k: v for k, v in readme_demo_captions().items()
                if k.endswith("_0_10")}  # one clip per recording
    clips = {c.id: c for src in iter_sources([examples]) for c in decode_source(src, 10.0, 1.0)}
    ids = sorted(captions)
    scorer, none = backends.scorer, Answers(("", "", ""))
    scores = np.array([scorer.score([clips[i]] * len(ids), [none] * len(ids), [captions[j] for j in ids])
                       for i in ids])
    assert (scores.argmax(axis=1) == np.arange(len(ids))).all(), scores
    threshold = accept_threshold(scorer, PipelineConfig())
    own = np.eye(len(ids), dtype=bool)
    assert (scores[own] >= threshold).all() and (scores[~own] < threshold).all(), (scores, threshold)
    cow = ids.index("cow_0_10")
    label = scorer.score([clips["cow_0_10"]], [none], ["Cattle, bovinae, Moo"])[0]
    assert (scores[cow, ~own[cow]] < label).all()
    elsewhere = [scorer.score([clips[i]], [none], ["Cattle, bovinae, Moo"])[0] for i in ids if i != ids[cow]]
    assert label > max(elsewhere)


def test_manifest_labels_use_the_label_rule(examples, tmp_path, backends):
    man = tmp_path / "m.csv"
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels", "id"])
        w.writerow([examples / "cow.mp3", "Cattle, bovinae;Moo", "cow-clip"])
        w.writerow([examples / "woman_speaking.flac", "", ""])
        w.writerow(["", "", ""])  # malformed row: recorded, not fatal
    out = tmp_path / "out"
    run([man], out, backends=backends, progress=False)
    df = pd.read_parquet(out).set_index("id")
    assert df.loc["cow-clip", "check_rule"] == "label_score"
    assert pd.notna(df.loc["cow-clip", "label_score"])
    assert list(df.loc["cow-clip", "labels"]) == ["Cattle, bovinae", "Moo"]
    assert df.loc["cow-clip", "accepted"] == (
        df.loc["cow-clip", "check_score"] >= df.loc["cow-clip", "label_score"] - 1e-9)
    other = df.loc["woman_speaking_0_10"]
    # no labels, no configured threshold: the built-in asker's calibrated confidence decides
    assert other["check_rule"].startswith("confidence>=") and pd.isna(other["label_score"])
    evidence = json.loads(other["evidence"])
    assert other["accepted"] == (evidence["confidence"] >= evidence["accept_at"])
    assert any("empty 'path'" in f["message"] for f in failures(out))


def test_parquet_manifest_segments_and_accepted_only_export(examples, tmp_path, capsys):
    """From the command line: a Parquet manifest (list labels, spans, ids), --segment-s,
    and `export --accepted-only` keeping exactly the rows the check accepted."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sonicaps.cli import main

    shutil.copytree(examples, tmp_path / "audio")
    pq.write_table(pa.table({
        "path": ["audio/cow.mp3", "audio/frogs_and_woman_long.wav", "audio/dog_then_man.wav"],
        "id": ["moo", None, None],
        "start_s": [None, 10.0, None],
        "end_s": [None, 25.0, None],
        "labels": [["Cattle, bovinae", "Moo"], None, None],
    }), tmp_path / "manifest.parquet")
    # A threshold between the clips' scores, so that some captions pass and some do not.
    (tmp_path / "c.toml").write_text("[pipeline]\naccept_threshold = 0.5\n")
    out = tmp_path / "out"
    assert main(["caption", str(tmp_path / "manifest.parquet"), "-o", str(out), "--segment-s", "5",
                 "--config", str(tmp_path / "c.toml"), "--quiet"]) == 0
    df = pd.read_parquet(out).set_index("id")
    frogs = "audio__frogs_and_woman_long"
    assert sorted(df.index) == ["audio__dog_then_man_0_5", "audio__dog_then_man_5_10", f"{frogs}_10_15",
                                f"{frogs}_15_20", f"{frogs}_20_25", "moo", "moo_5_10"]
    assert list(df.loc["moo", "labels"]) == ["Cattle, bovinae", "Moo"]
    assert df.loc["moo", "check_rule"] == "label_score"
    assert (df.loc[f"{frogs}_10_15", "start_s"], df.loc[f"{frogs}_10_15", "end_s"]) == (10, 15)
    accepted = set(df.index[df["accepted"]])
    assert 0 < len(accepted) < len(df)
    assert main(["export", str(out), "--accepted-only", "-o", str(tmp_path / "release")]) == 0
    assert set(pd.read_csv(tmp_path / "release" / "captions.csv")["id"]) == accepted
    assert set(pd.read_csv(tmp_path / "release" / "qa.csv")["id"]) == accepted
    capsys.readouterr()


def test_manifest_without_path_column_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("file,caption\na.wav,x\n")
    with pytest.raises(ManifestError, match="'path' column"):
        list(iter_sources([bad]))


def test_audioset_segment_list(tmp_path, examples):
    root = tmp_path / "audio"
    root.mkdir()
    shutil.copy(examples / "cow.mp3", root / "Yabc123_30.000_40.000.mp3")
    shutil.copy(examples / "dog_then_man.wav", root / "xyz789.wav")  # a whole "video"
    seg = tmp_path / "segments.csv"
    seg.write_text("# Segments csv\n# YTID, start_seconds, end_seconds, positive_labels\n"
                   'abc123, 30.000, 40.000, "/m/01xq0k1,/m/07rpkh9"\n'
                   'xyz789, 2.000, 6.000, "/m/0bt9lr"\n'
                   'missing1, 0.000, 10.000, "/m/0bt9lr"\n')
    srcs = list(iter_sources([seg], audio_root=root))
    assert [s.clip_id for s in srcs] == ["abc123_30_40", "xyz789_2_6", "missing1_0_10"]
    assert srcs[0].labels == ("Cattle, bovinae", "Moo")
    assert (srcs[1].start_s, srcs[1].end_s) == (2.0, 6.0)
    assert srcs[2].error and "no audio file" in srcs[2].error


def test_an_audiocaps_csv_over_an_audio_folder_is_captioned_and_scored_by_clip(
        tmp_path, examples, backends, capsys):
    """`caption audiocaps/test.csv --audio-root wavs/`: one 10-s clip per (YouTube id, start)
    however many captions it has, from a cut file or the whole video, named as `convert` and
    `score` name AudioCaps clips, so the output scores against the same CSV."""
    from sonicaps.cli import main

    root = tmp_path / "wavs"
    root.mkdir()
    shutil.copy(examples / "cow.mp3", root / "abcdefghijk_30.mp3")
    shutil.copy(examples / "dog_then_man.wav", root / "Yxyzxyzxyz_.wav")  # a whole video
    refs = tmp_path / "test.csv"
    refs.write_text("audiocap_id,youtube_id,start_time,caption\n"
                    "1,abcdefghijk,30,A cow moos\n2,abcdefghijk,30,Cattle low in a field\n"
                    "3,xyzxyzxyz_,0,A dog barks and a man talks\n4,missingmiss,0,Rain falls\n"
                    "5,abcdefghijk,soon,A cow\n")
    srcs = list(iter_sources([refs], audio_root=root))
    assert [s.clip_id or s.key for s in srcs] == ["abcdefghijk_30", "xyzxyzxyz__0", "missingmiss_0", "line6"]
    assert (srcs[1].start_s, srcs[1].end_s) == (0.0, 10.0) and srcs[1].path.endswith("Yxyzxyzxyz_.wav")
    assert "no audio file" in srcs[2].error and "not a number" in srcs[3].error
    out = tmp_path / "out"
    summary = run([refs], out, PipelineConfig(), backends=backends, progress=False, audio_root=root)
    ids = sorted(pd.read_parquet(out)["id"])
    assert ids == ["abcdefghijk_30", "xyzxyzxyz__0"], ids
    assert summary.failures == 2
    clean = tmp_path / "refs.csv"  # score wants every reference row readable
    clean.write_text("".join(refs.read_text().splitlines(keepends=True)[:-1]))
    capsys.readouterr()
    assert main(["score", str(out), str(clean), "--metrics", "bleu_1"]) == 0
    text = capsys.readouterr()
    assert "2 of 3" in text.out + text.err, text


class FlakyWriter(BuiltinWriter):
    """A backend that returns garbage for one clip and worse captions on retries."""

    def write(self, clips, answers, attempt):
        out = super().write(clips, answers, attempt)
        out = [("" if c.id.startswith("cow") else t) for c, t in zip(clips, out, strict=True)]
        return out if attempt == 0 else ["zxq vbnm qwerty" for _ in out]


def test_garbage_is_isolated_and_best_attempt_kept(examples, tmp_path, backends):
    flaky = Backends(backends.asker, FlakyWriter(), backends.scorer)
    cfg = PipelineConfig(max_attempts=2, accept_threshold=1.01)  # never accepted: retries
    out = tmp_path / "out"
    run([examples], out, cfg, backends=flaky, progress=False)
    df = pd.read_parquet(out)
    fails = failures(out)
    assert [f["id"] for f in fails] == ["cow_0_10"] and fails[0]["stage"] == "write"
    assert (df["attempts"] == 2).all()
    assert not df["caption"].str.contains("qwerty").any()  # the better first attempt stays


def test_export_layouts(examples, tmp_path, backends):
    out = tmp_path / "out"
    run([examples / "cow.mp3", examples / "woman_speaking.flac"], out, backends=backends,
        progress=False)
    cap, qa, n = export(out, tmp_path / "csv", "csv")
    assert n == 2
    assert pd.read_csv(cap).columns.tolist() == ["id", "caption"]
    assert pd.read_csv(qa).columns.tolist() == ["id", "question_1", "question_2", "question_3",
                                                "answer_1", "answer_2", "answer_3"]
    cap, qa, n = export(out, tmp_path / "jsonl", "jsonl")
    rows = [json.loads(line) for line in cap.read_text().splitlines()]
    assert sorted(r["id"] for r in rows) == ["cow_0_10", "woman_speaking_0_10"]


def test_config_files(tmp_path):
    t = tmp_path / "c.toml"
    t.write_text('[check]\nbackend = "textsim"\nbatch_size = 8\n[pipeline]\nbatch_size = 4\n')
    cfg = load_config(t)
    assert cfg.batch_size == 4 and cfg.check.options == {"batch_size": 8}
    y = tmp_path / "c.yaml"
    y.write_text("ask:\n  backend: nope\n")
    with pytest.raises(ValueError, match="unknown ask backend 'nope'"):
        Backends.from_config(load_config(y))
    with pytest.raises(ValueError, match="unknown"):
        from_dict({"pipeline": {"batch": 3}})
    with pytest.raises(ValueError, match="batch_size"):
        replace(PipelineConfig(), batch_size=0)
    shipped = Path(__file__).parents[1] / "configs"
    for path in [*shipped.glob("*.toml"), *shipped.glob("*.yaml")]:
        cfg = load_config(path)  # every shipped config parses
        for stage in ("ask", "write", "check"):
            assert getattr(cfg, stage).backend in available(stage), (path, stage)
    for name in ("builtin", "textsim-check", "ray-cluster"):  # (retrieval-check needs a trained run)
        Backends.from_config(load_config(shipped / f"{name}.toml"))
    ray = load_config(shipped / "ray-cluster.toml").ray
    assert (ray.ask.size, ray.write.size, ray.decode_tasks) == (2, 2, 4)
    with pytest.raises(ValueError, match="'actors' or 'tasks'"):
        from_dict({"ray": {"ask": {"pool": "threads"}}})
    with pytest.raises(ValueError, match=r"unknown \[ray\] setting"):
        from_dict({"ray": {"cpus": 3}})


def test_sigkill_then_resume_is_exactly_once(tmp_path, examples):
    src = tmp_path / "in"
    src.mkdir()
    for k in range(6):
        for f in examples.iterdir():
            shutil.copy(f, src / f"{k}_{f.name}")
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "sonicaps.cli", "caption", str(src), "-o", str(out),
           "--batch-size", "2", "--quiet"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    while time.time() < deadline and len(list(out.glob("part-*.parquet"))) < 3:
        if proc.poll() is not None:
            pytest.fail(f"finished before the kill: {proc.stderr.read().decode()[-2000:]}")
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    partial = len(pd.read_parquet(out))
    assert 0 < partial < 6 * 7
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    df = pd.read_parquet(out)
    assert df["id"].is_unique and len(df) == 6 * 7


def test_symlink_cycle_is_walked_once(tmp_path, examples):
    d = tmp_path / "in"
    d.mkdir()
    shutil.copy(examples / "cow.mp3", d / "cow.mp3")
    (d / "loop").symlink_to(d, target_is_directory=True)
    assert [s.key for s in iter_sources([d])] == ["cow"]


def test_extensions_are_matched_in_any_case(tmp_path):
    """Cameras and Windows write DOG.WAV and Take1.Flac: a folder's audio files are found
    whatever the case of their extension (none is left out silently)."""
    for name in ("DOG.WAV", "Take1.Flac", "bird.mp3"):
        write(tmp_path / name, tone(440, 0.5))
    (tmp_path / "notes.TXT").write_text("not audio")
    assert sorted(s.key for s in iter_sources([tmp_path])) == ["DOG", "Take1", "bird"]


@pytest.mark.parametrize("tail_s", [0.5, 1.0, 1.5])
def test_a_spans_last_clip_is_known_before_decoding(tmp_path, tail_s):
    """Resume decides from a span alone whether its last clip is stored, so last_clip_id
    must name the clip decoding ends with, also when the last piece is exactly min_tail_s
    long (kept) or just shorter (dropped). Otherwise the span is redone on every re-run."""
    from sonicaps.pipeline.inputs import Source, decode_source, last_clip_id

    path = write(tmp_path / "long.wav", tone(330, 30.0))
    src = Source(str(path), "long", 2.0, 2.0 + 10.0 + tail_s)
    clips = list(decode_source(src, 10.0, 1.0))
    assert len(clips) == (1 if tail_s < 1.0 else 2)
    assert last_clip_id(src, 10.0, 1.0) == clips[-1].id


def test_infinite_samples_are_recorded_not_captioned(tmp_path, backends):
    """A float wav holding Inf (a broken DSP chain) is a bad clip: recorded with the reason,
    never handed to the models; the file beside it is captioned."""
    d = tmp_path / "in"
    d.mkdir()
    bad = tone(300, 3.0)
    bad[100:200] = np.inf
    sf.write(d / "inf.wav", bad, SR, subtype="FLOAT")
    write(d / "good.wav", tone(440, 3.0))
    run([d], tmp_path / "out", backends=backends, progress=False)
    assert list(pd.read_parquet(tmp_path / "out")["id"]) == ["good_0_3"]
    (fail,) = failures(tmp_path / "out")
    assert fail["id"] == "inf_0_3" and "100 non-finite (NaN/Inf) samples" in fail["message"]


def _row(cid: str, source: str, last: bool) -> dict:
    from sonicaps.pipeline.store import SCHEMA

    row = {name: None for name in SCHEMA.names}
    return row | {"id": cid, "source": source, "caption": "a dog barks", "labels": [],
                  "last_in_source": last}


def _crash_at(monkeypatch, k: int | None,
              kinds: tuple[str, ...] = ("failures", "shard", "rename")) -> list[str]:
    """Make the store's k-th write (0-based, counting writes of these kinds) die halfway
    through, as a kill would: half a failure record appended, half a shard's bytes written,
    or a shard written but not renamed. Returns the writes seen so far (k=None: no crash,
    to count them)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from sonicaps.pipeline import store

    seen: list[str] = []
    real_open, real_write_table, real_replace = open, pq.write_table, os.replace

    def due(kind: str) -> bool:
        if kind not in kinds:
            return False
        seen.append(kind)
        return len(seen) - 1 == k

    class Torn:
        def __init__(self, f):
            self.f = f

        def write(self, data: bytes) -> int:
            if due("failures"):
                self.f.write(data[: len(data) // 2])
                self.f.flush()
                raise KeyboardInterrupt
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def opened(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return Torn(f) if "a" in mode else f

    def write_table(table, where, **kwargs):
        if isinstance(where, str | Path) and due("shard"):
            buf = pa.BufferOutputStream()
            real_write_table(table, buf, **kwargs)
            data = buf.getvalue().to_pybytes()
            Path(where).write_bytes(data[: len(data) // 2])
            raise KeyboardInterrupt
        return real_write_table(table, where, **kwargs)

    def replace(src, dst):
        if due("rename"):
            raise KeyboardInterrupt
        return real_replace(src, dst)

    monkeypatch.setattr(store, "open", opened, raising=False)
    monkeypatch.setattr(pq, "write_table", write_table)
    monkeypatch.setattr(os, "replace", replace)
    return seen


def test_a_kill_anywhere_in_a_commit_loses_nothing(tmp_path, monkeypatch):
    """A kill halfway through any write of a commit (a failure record torn, a shard half
    written, a shard written but not renamed) leaves every visible shard whole, no hidden
    file once the output is opened again, and every source either finished with all its
    records or unfinished; the next run then stores the rest, each record once."""
    import pyarrow.parquet as pq

    from sonicaps.pipeline.store import Store

    # Source a: a row, then a failed last clip. Source b: a failed clip, then a last row.
    rows = [_row("a_0_10", "a.wav", False), _row("b_10_20", "b.wav", True)]
    fails = [{"source": "a.wav", "id": "a_10_20", "stage": "ask", "error": "E", "message": "m",
              "last_in_source": True},
             {"source": "b.wav", "id": "b_0_10", "stage": "ask", "error": "E", "message": "m",
              "last_in_source": False}]
    records = {"a.wav": {"a_0_10", "a_10_20"}, "b.wav": {"b_0_10", "b_10_20"}}
    writes = _crash_at(monkeypatch, None)
    Store(tmp_path / "clean").commit(rows, fails)
    monkeypatch.undo()
    assert set(writes) == {"failures", "shard", "rename"}  # a crash is tried in each kind
    for k in range(len(writes)):
        out = tmp_path / f"killed-{k}"
        store = Store(out)
        _crash_at(monkeypatch, k)
        with pytest.raises(KeyboardInterrupt):
            store.commit(rows, fails)
        monkeypatch.undo()
        for shard in out.glob("part-*.parquet"):
            pq.read_table(shard)  # a half shard here would be ArrowInvalid for every reader
        prog = Store(out).load_progress()
        assert not [p.name for p in out.iterdir() if p.name.startswith(".")], k
        for source in prog.done_sources:
            assert records[source] <= prog.done_ids, f"{source} marked finished without all its records"
        # The next run: every record of an unfinished source that is not stored yet.
        redo = [r for r in rows + fails
                if r["source"] not in prog.done_sources and r["id"] not in prog.done_ids]
        Store(out).commit([r for r in redo if r in rows], [r for r in redo if r in fails])
        prog = Store(out).load_progress()
        assert prog.done_sources == set(records) and prog.done_ids == records["a.wav"] | records["b.wav"]
        assert (prog.rows, prog.failures) == (2, 2), k  # each record once


@pytest.mark.parametrize("killed_shard", [1, 2])
def test_a_file_resumed_after_a_kill_keeps_its_stored_clips(tmp_path, backends, monkeypatch, killed_shard):
    """A 25-s file, one clip per batch, killed halfway through writing a later shard: no
    half shard is visible, and the re-run keeps the clips already stored (a resumed file
    once ended with long_0_10 twice) and captions the rest."""
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write(src / "long.wav", tone(330, 25.0))
    cfg = PipelineConfig(batch_size=1)
    _crash_at(monkeypatch, killed_shard, kinds=("shard",))
    with pytest.raises(KeyboardInterrupt):
        run([src], out, cfg, backends=backends, progress=False)
    monkeypatch.undo()
    assert sorted(pd.read_parquet(out)["id"]) == ["long_0_10", "long_10_20"][:killed_shard]
    again = run([src], out, cfg, backends=backends, progress=False)
    assert sorted(pd.read_parquet(out)["id"]) == ["long_0_10", "long_10_20", "long_20_25"]
    assert (again.clips, again.failures) == (3 - killed_shard, 0)


@pytest.fixture
def s3(monkeypatch):
    """A real S3 API (moto's server) on 127.0.0.1, with a bucket; yields (filesystem, uri query)."""
    import socket

    import pyarrow.fs as pafs
    from moto.server import ThreadedMotoServer

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    for key, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(key, value)
    fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                           access_key="test", secret_key="test", allow_bucket_creation=True)
    fs.create_dir("captions")
    yield fs, f"endpoint_override=127.0.0.1:{port}&scheme=http&region=us-east-1"
    server.stop()


def test_output_to_an_object_store_resumes_like_a_folder(s3, examples, tmp_path, backends):
    import pyarrow.parquet as pq

    from sonicaps.pipeline.store import Store

    fs, query = s3
    src = tmp_path / "in"
    shutil.copytree(examples, src)
    (src / "broken.wav").write_text("not audio")
    uri = f"s3://captions/run1?{query}"
    first = run([src], uri, PipelineConfig(batch_size=3), backends=backends, progress=False)
    local = run([src], tmp_path / "local", PipelineConfig(batch_size=3), backends=backends, progress=False)
    got = pq.read_table("captions/run1", filesystem=fs).to_pandas().sort_values("id")
    want = pd.read_parquet(tmp_path / "local").sort_values("id")
    assert first.clips == local.clips == len(got) > 0
    assert list(got["id"]) == list(want["id"]) and list(got["caption"]) == list(want["caption"])
    fails = [(f["source"], f["stage"]) for f in Store(uri).read_failures()]
    assert fails == [(str(src / "broken.wav"), "decode")]
    again = run([src], uri, PipelineConfig(batch_size=3), backends=backends, progress=False)
    assert again.clips == again.failures == 0 and again.skipped_sources == len(list(src.iterdir()))


def test_same_stem_files_get_distinct_clip_ids(tmp_path):
    """a.wav beside a.mp3, or x/a.wav and y/a.wav given as two inputs, once shared one id."""
    for sub in ("x", "y"):
        (tmp_path / sub).mkdir()
        write(tmp_path / sub / "a.wav", tone(300, 1.0))
    write(tmp_path / "x" / "a.mp3", tone(300, 1.0))
    keys = [s.key for s in iter_sources([tmp_path / "x", tmp_path / "y"])]
    assert keys == ["a", "a.wav", "a.wav~2"]
    assert [s.key for s in iter_sources([tmp_path / "x"])] == ["a", "a.wav"]  # stable on re-run





def test_manifest_rows_that_cannot_be_captioned_are_errors(tmp_path):
    write(tmp_path / "a.wav", tone(300, 12.0))
    rows = [["path", "id", "start_s", "end_s"],
            ["a.wav", "ok", "2", "7"],           # row 2
            ["a.wav", "", "-3", "5"],            # 3: negative start
            ["a.wav", "", "nan", "5"],           # 4: not finite
            ["a.wav", "", "1", "inf"],           # 5
            ["a.wav", "ok", "0", "4"],           # 6: duplicate id
            ["a.wav", "", "8", "11"],            # 7
            ["a.wav", "", "8", "11"]]            # 8: same file and span, no id
    with open(tmp_path / "m.csv", "w", newline="") as f:
        csv.writer(f).writerows(rows)
    got = {s.origin or s.path: s.error for s in iter_sources([tmp_path / "m.csv"])}
    errors = {k.rsplit(" ", 1)[-1]: v for k, v in got.items() if v}
    assert set(errors) == {"3", "4", "5", "6", "8"}
    assert "start_s (-3.0) is negative" in errors["3"]
    assert "not a finite number" in errors["4"] and "not a finite number" in errors["5"]
    assert "duplicate id 'ok' (row 2 has it)" in errors["6"]
    assert "same file and span as row 7" in errors["8"]
    # a bad row is recorded under the row, so it never marks a.wav finished for its other rows
    assert all(k.startswith(str(tmp_path / "m.csv") + ":row ") for k, v in got.items() if v)


@pytest.mark.parametrize("content,expect", [
    (b"", "empty file"),
    ("path,labels\na.wav,Caf\xe9\n".encode("latin-1"), "not UTF-8 text"),
])
def test_manifests_unusable_as_a_whole_are_refused_clearly(tmp_path, content, expect):
    (tmp_path / "m.csv").write_bytes(content)
    with pytest.raises(ManifestError, match=rf"m\.csv: {expect}"):
        list(iter_sources([tmp_path / "m.csv"]))


def test_manifest_with_a_byte_order_mark_and_typed_parquet(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    write(tmp_path / "a.wav", tone(300, 2.0))
    (tmp_path / "bom.csv").write_bytes("\ufeffpath,id\na.wav,x\n".encode())  # Excel's UTF-8 CSV
    assert [s.clip_id for s in iter_sources([tmp_path / "bom.csv"])] == ["x"]
    pq.write_table(pa.table({"path": pa.array([1, 2])}), tmp_path / "ints.parquet")
    with pytest.raises(ManifestError, match=r"ints\.parquet: the 'path' column holds int64, not text"):
        list(iter_sources([tmp_path / "ints.parquet"]))


def test_audioset_inverted_span_is_an_error(tmp_path):
    audio = tmp_path / "audio"
    audio.mkdir()
    write(audio / "Yabc.wav", tone(300, 20.0))
    (tmp_path / "seg.csv").write_text('# YTID, start_seconds, end_seconds, positive_labels\n'
                                      'abc, 15.000, 5.000, "/m/09x0r"\nabc, 5.000, 15.000, "/m/09x0r"\n')
    srcs = list(iter_sources([tmp_path / "seg.csv"], audio))
    assert "line 2: end_seconds (5) must be after start_seconds (15)" in srcs[0].error
    assert srcs[1].error is None and (srcs[1].start_s, srcs[1].end_s) == (5.0, 15.0)


def test_output_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch, capsys):
    """A full disk or a read-only folder: one `sonicaps: error:` line saying what to do, not
    a traceback; what was committed stays."""
    import errno

    import pyarrow.parquet as pq

    from sonicaps.cli import main
    from sonicaps.pipeline.store import OutputError, Store

    store = Store(tmp_path / "out")
    store.commit([_row("a_0_1", "a.wav", True)], [])

    def full(*a, **k):
        raise OSError(errno.ENOSPC, "No space left on device")
    monkeypatch.setattr(pq, "write_table", full)
    with pytest.raises(OutputError, match="No space left on device; what was committed before is kept"):
        store.commit([_row("b_0_1", "b.wav", True)], [])
    monkeypatch.undo()
    assert Store(tmp_path / "out").load_progress().done_sources == {"a.wav"}

    import tempfile

    from test_audio import unprivileged

    with tempfile.TemporaryDirectory() as tmp:  # in /tmp: `nobody` may enter it
        os.chmod(tmp, 0o755)
        ro = Path(tmp) / "ro"
        ro.mkdir(mode=0o555)
        with unprivileged():  # root would write anyway
            code = main(["caption", str(Path(tmp) / "none.wav"), "-o", str(ro), "--quiet"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("sonicaps: error: output ") and "is not writable" in err and "Traceback" not in err


def test_bad_input_campaign_small(tmp_path, backends):
    """A few kinds of benchmarks/bad_inputs.py through run(): a non-UTF-8 file name (its
    surrogates crashed the Parquet and JSON writers), a.wav beside a.mp3 (one clip id), a
    cut wav, a dangling link, bad manifest rows. Every good file once, every bad one recorded
    with its reason, and a re-run adds nothing."""
    d = tmp_path / "in"
    d.mkdir()
    goods = [write(d / "a.wav", tone(300, 3.0)), write(d / "a.mp3", tone(900, 3.0))]
    raw = os.path.join(os.fsencode(d), b"caf\xe9.wav")  # Latin-1 bytes: not UTF-8
    sf.write(raw, tone(500, 3.0), SR)
    goods.append(Path(os.fsdecode(raw)))
    whole = write(tmp_path / "whole.wav", tone(440, 30.0))
    (d / "cut.wav").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    (d / "dangling.wav").symlink_to("gone.wav")
    m = tmp_path / "m"
    m.mkdir()
    goods.append(write(m / "long.wav", tone(200, 12.0)))
    (m / "rows.csv").write_text("path,id,start_s,end_s\nlong.wav,span,2,7\nlong.wav,,-1,4\n"
                                "long.wav,span,0,3\nlong.wav,,100,110\n")
    out = tmp_path / "out"
    run([d, m / "rows.csv"], out, backends=backends, progress=False)
    df = pd.read_parquet(out)
    assert df["id"].is_unique
    ids = set(df["id"])  # a.mp3 sorts first and keeps the plain stem
    assert {"a_0_3", "a.wav_0_3", "caf\\xe9_0_3", "cut_0_10", "span"} <= ids and len(ids) == 6
    assert any(i.startswith("cut_10_1") for i in ids)
    shown = {str(g).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace") for g in goods}
    assert set(df["source"]) == shown | {str(d / "cut.wav")}
    span = df.set_index("id").loc["span"]
    assert (span["start_s"], span["end_s"]) == (2.0, 7.0)
    msgs = sorted(f["message"].replace(str(tmp_path), "") for f in failures(out))
    assert len(msgs) == 5
    assert "/in/cut.wav: truncated: the audio stops at 15.0 s of the 30.0 s" in msgs[0]
    assert msgs[1] == "/in/dangling.wav: broken symlink (its target gone.wav does not exist)"
    assert msgs[2] == "row 3: start_s (-1.0) is negative (long.wav)"
    assert msgs[3] == "row 4: duplicate id 'span' (row 2 has it) (long.wav)"
    assert msgs[4] == "rows.csv row 5: /m/long.wav: start_s=100 is past the end of the audio (12.0 s)"
    again = run([d, m / "rows.csv"], out, backends=backends, progress=False)
    assert (again.clips, again.failures) == (0, 0) and len(pd.read_parquet(out)) == len(df)


@pytest.mark.parametrize("stop_after", [1, 2, 3])
def test_manifest_spans_of_one_file_resume_exactly_once(tmp_path, backends, monkeypatch, stop_after):
    """Progress was kept per file: once one row's span of long.wav finished, a re-run took
    every other row of long.wav as done, and their clips were lost without a record
    (found by benchmarks/bad_inputs.py). Interrupted after each commit in turn, the re-run
    must end with the uninterrupted run's records, each once."""
    from sonicaps.pipeline.store import Store

    write(tmp_path / "long.wav", tone(330, 30.0))
    write(tmp_path / "other.wav", tone(550, 3.0))
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,id,start_s,end_s\nlong.wav,first,0,10\nlong.wav,,12,27.5\n"
                        "long.wav,late,25,40\nother.wav,,,\nlong.wav,,5,9\n")
    cfg = PipelineConfig(batch_size=1)

    def records(out: Path) -> list[str]:
        ids = list(pd.read_parquet(out)["id"])
        return sorted(ids + [f"{f['source']}|{f['id']}" for f in Store(out).read_failures()])

    run([manifest], tmp_path / "ref", cfg, backends=backends, progress=False)
    want = records(tmp_path / "ref")
    assert len(want) == len(set(want)) and "first" in want

    calls = {"n": 0}
    real = Store.commit

    def commit(self, rows, fails):
        calls["n"] += 1
        if calls["n"] > stop_after:
            raise KeyboardInterrupt
        real(self, rows, fails)

    monkeypatch.setattr(Store, "commit", commit)
    with pytest.raises(KeyboardInterrupt):
        run([manifest], tmp_path / "out", cfg, backends=backends, progress=False)
    monkeypatch.setattr(Store, "commit", real)
    run([manifest], tmp_path / "out", cfg, backends=backends, progress=False)
    assert records(tmp_path / "out") == want
    again = run([manifest], tmp_path / "out", cfg, backends=backends, progress=False)
    assert again.clips == again.failures == 0 and records(tmp_path / "out") == want
