"""Real peer files in and out (tests/data/peers: Clotho v2 CSVs, WavCaps JSONs and its
AudioCaps copy and blacklist, a CoNeTTE DCASE submission, AudioCaps CSV rows, the
AudioSetCaps README's examples): read as their authors meant them, through every writer
with nothing lost silently, one clip identity for convert, score, dedupe and caption."""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from roundtrip import DEST, round_trip

from sonicaps.cli import main
from sonicaps.clip import Answers
from sonicaps.curate.dedupe import DedupeReport, dedupe, read_eval_set
from sonicaps.formats.identity import identity, same_clip
from sonicaps.formats.readers import FormatError, read_records
from sonicaps.formats.writers import TARGETS, write_records

PEERS = Path(__file__).parent / "data" / "peers"
AUDIOCAPS = PEERS / "audiocaps" / "val.csv"
CLOTHO_VAL = PEERS / "clotho" / "clotho_captions_validation.csv"
CLOTHO_EVAL = PEERS / "clotho" / "clotho_captions_evaluation.csv"
DCASE = PEERS / "dcase" / "labbe_irit_task6_submission_1_clotho_eval.csv"
WAVCAPS_AC_JSON = PEERS / "wavcaps" / "audiocaps_val.json"
WAVCAPS_AC_CSV = PEERS / "wavcaps" / "audiocaps_val.csv"
BLACKLIST = PEERS / "wavcaps" / "blacklist_exclude_test_ac.json"
ASC = PEERS / "audiosetcaps" / "captions.csv"
NOISY = "noisy stuff groceries paper bag cookie metallic case cling clang.wav"
READABLE = {  # every real caption file: (clips, first id)
    "audiocaps/val.csv": (12, "vfY_TJq7n_U_130"),
    "audiosetcaps/captions.csv": (2, "_7Xe9vD3Hpg_4_10"),
    "clotho/clotho_captions_development.csv": (5, "Distorted AM Radio noise.wav"),
    "clotho/clotho_captions_validation.csv": (5, NOISY),
    "clotho/clotho_captions_evaluation.csv": (6, "Santa Motor.wav"),
    "dcase/labbe_irit_task6_submission_1_clotho_eval.csv": (6, "Santa Motor.wav"),
    "wavcaps/audiocaps_val.csv": (10, "YvfY_TJq7n_U.wav"),
    "wavcaps/audiocaps_val.json": (10, "YvfY_TJq7n_U.wav"),
    "wavcaps/clotho_val_captioning.json": (5, NOISY),
    "wavcaps/clotho_val_retrieval.json": (5, "103989"),
    "wavcaps/sb_final.json": (3, "2219"),
}
LEADING_SPACE = [" typical neighborhood in Porto.wav", " Ambience Birds.wav", " e ieio ieai.wav"]


@pytest.fixture
def cli(capsys):
    """`sonicaps ARGS` in this process: (stdout, stderr), after checking the exit status."""

    def run(*args: str, code: int = 0) -> subprocess.CompletedProcess:
        got = main(list(args))
        out, err = capsys.readouterr()
        assert got == code, (args, got, out[-2000:], err[-3000:])
        return subprocess.CompletedProcess(args, got, out, err)

    return run


def test_real_files_read_as_their_layouts_mean_them():
    for name, (clips, first) in READABLE.items():
        records = list(read_records(PEERS / name))
        assert (len(records), records[0].id) == (clips, first), name
    names = [r.id for f in ("development", "validation") for r in
             read_records(PEERS / "clotho" / f"clotho_captions_{f}.csv")]
    assert [n for n in names if n.startswith(" ")] == LEADING_SPACE  # byte for byte
    finetune = list(read_records(PEERS / "wavcaps" / "clotho_val_captioning.json"))  # caption_1..5 + wav
    clotho = list(read_records(CLOTHO_VAL))
    assert [(r.id, r.captions) for r in finetune] == [(r.id, r.captions) for r in clotho]
    asc = {r.id: r for r in read_records(ASC)}  # the Q&A beside it is joined
    assert (asc["_7Xe9vD3Hpg_4_10"].start_s, asc["_7Xe9vD3Hpg_4_10"].end_s) == (4.0, 14.0)  # 10 s from 4 s
    assert asc["-TL8Mp3xcUM_0_10"].qa["answer_3"] == "There is no music in this audio."
    dcase = list(read_records(DCASE))
    assert dcase[2].captions == ["rain is falling on a hard surface with a light thunder in the background"]
    with pytest.raises(FormatError, match="blacklist.*dedupe --eval"):
        read_records(BLACKLIST)


@pytest.mark.parametrize("name", sorted(READABLE))
@pytest.mark.parametrize("to", TARGETS)
def test_real_files_round_trip_through_every_writer(name, to, tmp_path):
    original = list(read_records(PEERS / name))
    back, report = round_trip(original, to, tmp_path)
    if to == "dcase-csv":  # a submission holds one caption per clip: the others are listed, not lost
        assert len(report.dropped) == sum(len(r.captions) != 1 for r in original)


def test_same_layout_writes_the_same_file(tmp_path):
    """Read then written in its own layout, a real file comes back byte for byte (AudioCaps:
    the same rows, grouped by clip; WavCaps: every item's fields, plus an id where it had none)."""
    dev = PEERS / "clotho" / "clotho_captions_development.csv"
    for src, to in ((CLOTHO_VAL, "clotho-csv"), (dev, "clotho-csv"), (DCASE, "dcase-csv"),
                    (ASC, "audiosetcaps-csv")):
        dest = tmp_path / to / src.name
        write_records(read_records(src), dest, to)
        assert dest.read_bytes() == src.read_bytes(), src
    qa = tmp_path / "audiosetcaps-csv" / "captions_qa.csv"
    assert qa.read_bytes() == (PEERS / "audiosetcaps" / "captions_qa.csv").read_bytes()
    write_records(read_records(AUDIOCAPS), tmp_path / "ac.csv", "audiocaps-csv")
    rows = sorted(AUDIOCAPS.read_text(encoding="utf-8").splitlines()[1:])
    assert sorted((tmp_path / "ac.csv").read_text(encoding="utf-8").splitlines()[1:]) == rows
    for src in ("audiocaps_val.json", "clotho_val_captioning.json", "clotho_val_retrieval.json",
                "sb_final.json"):
        write_records(read_records(PEERS / "wavcaps" / src), tmp_path / src, "wavcaps-json")
        before, after = (json.loads(p.read_text(encoding="utf-8")) for p in (PEERS / "wavcaps" / src,
                                                                              tmp_path / src))
        assert len(after["data"]) == len(before["data"])
        for a, b in zip(before["data"], after["data"], strict=True):
            assert a.items() <= b.items(), (src, a, b)
    # WavCaps' fine-tuning JSON of Clotho val is the Clotho CSV, clip for clip.
    write_records(read_records(PEERS / "wavcaps" / "clotho_val_captioning.json"), tmp_path / "c.csv",
                  "clotho-csv")
    assert (tmp_path / "c.csv").read_bytes() == CLOTHO_VAL.read_bytes()


def _audio_for(names: list[str], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for k, name in enumerate(names):
        sf.write(folder / name, 0.1 * np.sin(np.arange(8000) * (k + 1) / 20).astype(np.float32), 16000)
    return folder


def test_convert_finds_names_with_a_leading_space_and_never_loses_audio_silently(tmp_path, cli):
    names = [r.id for r in read_records(CLOTHO_VAL)]
    audio = _audio_for(names, tmp_path / "audio")
    done = cli("convert", str(CLOTHO_VAL), "-o", str(tmp_path / "hf"), "--to", "hf", "--audio-root",
               str(audio))
    assert "wrote 5 clips" in done.stdout and "no audio" not in done.stderr
    import datasets

    ds = datasets.load_from_disk(str(tmp_path / "hf")).cast_column("audio", datasets.Audio(decode=False))
    assert ds["id"][4] == " e ieio ieai.wav"
    assert [a["bytes"] for a in ds["audio"]] == [(audio / n).read_bytes() for n in names]

    (audio / " e ieio ieai.wav").unlink()
    (audio / "FR.CTC.08.CoyuyoS.001.wav").unlink()
    for to in ("hf", "webdataset", "jsonl"):
        done = cli("convert", str(CLOTHO_VAL), "-o", str(tmp_path / f"out-{to}"), "--to", to,
                   "--audio-root", str(audio), code=1)
        assert "2 of 5 clips have no audio" in done.stderr and "--allow-missing-audio" in done.stderr
        assert "' e ieio ieai.wav': no audio file" in done.stderr  # the name as it is, space shown
    done = cli("convert", str(CLOTHO_VAL), "-o", str(tmp_path / "ok"), "--to", "hf", "--audio-root",
               str(audio), "--allow-missing-audio")
    assert "2 of 5 clips have no audio" in done.stderr
    # Without --audio-root, hf looks beside the dataset; a text-only dataset must be asked for.
    done = cli("convert", str(AUDIOCAPS), "-o", str(tmp_path / "text"), "--to", "hf", code=1)
    assert "12 of 12 clips have no audio" in done.stderr


def test_wavcaps_finetuning_json_and_a_hub_parquet_convert(tmp_path, cli):
    done = cli("convert", str(PEERS / "wavcaps" / "clotho_val_captioning.json"), "-o",
               str(tmp_path / "c.jsonl"), "--to", "jsonl")
    assert "wrote 5 clips" in done.stdout
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = list(csv.DictReader(AUDIOCAPS.open(encoding="utf-8")))
    table = pa.table({  # the columns of AudioCaps on the Hugging Face Hub, with an Audio column
        "audiocap_id": [int(r["audiocap_id"]) for r in rows], "youtube_id": [r["youtube_id"] for r in rows],
        "start_time": [int(r["start_time"]) for r in rows], "caption": [r["caption"] for r in rows],
        "audio": [{"bytes": b"RIFF", "path": f"{r['youtube_id']}.wav"} for r in rows]})
    pq.write_table(table, tmp_path / "hub.parquet")
    done = cli("convert", str(tmp_path / "hub.parquet"), "-o", str(tmp_path / "hub.jsonl"), "--to", "jsonl")
    assert "wrote 12 clips" in done.stdout
    from_hub = list(read_records(tmp_path / "hub.jsonl"))
    from_csv = list(read_records(AUDIOCAPS))
    assert [(r.id, r.captions, r.caption_ids) for r in from_hub] == [(r.id, r.captions, r.caption_ids)
                                                                     for r in from_csv]
    assert from_hub[0].audio == "vfY_TJq7n_U.wav"


def test_non_utf8_files_name_the_line_and_read_with_encoding(tmp_path, cli, capsys):
    latin = tmp_path / "clotho_latin1.csv"
    latin.write_bytes(CLOTHO_VAL.read_text(encoding="utf-8").replace("Crickets", "Cr\u00eckets")
                      .encode("latin-1"))
    done = cli("convert", str(latin), "-o", str(tmp_path / "x.jsonl"), "--to", "jsonl", code=2)
    assert "line 4, column" in done.stderr and "--encoding" in done.stderr
    cli("convert", str(latin), "-o", str(tmp_path / "x.jsonl"), "--to", "jsonl", "--encoding", "latin-1")
    assert "Cr\u00eckets" in list(read_records(tmp_path / "x.jsonl"))[2].captions[0]
    cands = tmp_path / "submission_latin1.csv"
    cands.write_bytes(DCASE.read_text(encoding="utf-8").replace("radio", "r\u00e4dio").encode("latin-1"))
    assert main(["score", str(cands), str(CLOTHO_EVAL), "--metrics", "bleu_1"]) == 2
    assert "submission_latin1.csv: line 3, column" in capsys.readouterr().err
    capsys.readouterr()
    assert main(["score", str(cands), str(CLOTHO_EVAL), "--metrics", "bleu_1", "--encoding", "latin-1"]) == 0


def _score_json(capsys, *args: str) -> dict:
    assert main(["score", *args, "--metrics", "bleu_4,cider_d", "--json"]) == 0
    return json.loads(capsys.readouterr().out)


def test_score_reads_a_dcase_submission_and_pairs_clips_across_layouts(tmp_path, capsys):
    from sonicaps.metrics import score

    cands = {r.id: r.captions[0] for r in read_records(DCASE)}
    refs = {r.id: r.captions for r in read_records(CLOTHO_EVAL)}
    expected = score(list(cands.values()), [refs[i] for i in cands], "bleu_4,cider_d")
    out = _score_json(capsys, str(DCASE), str(CLOTHO_EVAL))
    assert out["items"] == 6 and out["cider_d"] == expected["cider_d"] and out["bleu_4"] == expected["bleu_4"]
    # A subset of the references: allowed, with the count stated.
    subset = tmp_path / "subset.csv"
    lines = DCASE.read_text(encoding="utf-8").splitlines(keepends=True)
    subset.write_text("".join(lines[:5]), encoding="utf-8")
    assert main(["score", str(subset), str(CLOTHO_EVAL), "--metrics", "bleu_4", "--json"]) == 0
    captured = capsys.readouterr()
    assert json.loads(captured.out)["references_without_candidate"] == 2
    assert "scored 4 of 6 reference clips: 2 have no candidate" in captured.err

    # One AudioCaps clip, named four ways: WavCaps' Y<ytid>.wav, a youtube_id column, the id
    # `convert` gives it, an AudioSetCaps id. Each pairs with the AudioCaps references.
    refs = list(read_records(AUDIOCAPS))
    firsts = [r.captions[0] for r in read_records(WAVCAPS_AC_CSV)][:8]
    layouts = {"wavcaps.csv": ("file_name,caption_predicted", [f"Y{r.youtube_id}.wav" for r in refs[:8]]),
               "youtube.csv": ("youtube_id,caption", [r.youtube_id for r in refs[:8]]),
               "convert.csv": ("id,caption", [r.id for r in refs[:8]]),
               "audiosetcaps.csv": ("id,caption", [f"{r.youtube_id}_{r.start_s:g}_10" for r in refs[:8]])}
    results = []
    for name, (header, ids) in layouts.items():
        with open(tmp_path / name, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(header.split(","))
            w.writerows(zip(ids, firsts, strict=True))
        results.append(_score_json(capsys, str(tmp_path / name), str(AUDIOCAPS)))
    assert all(r == results[0] for r in results) and results[0]["items"] == 8
    assert results[0]["references_without_candidate"] == 4


def test_dedupe_reads_audiosetcaps_ids_as_start_and_duration(tmp_path):
    """vfY_TJq7n_U is 130-140 s and tdWhHV3X25Q 60-70 s in AudioCaps val: `_125_10` (125-135 s)
    overlaps; read as 125..10 it would not (the bug kept 2 of these 3 overlaps)."""
    train = tmp_path / "audiosetcaps_train.csv"
    ids = ["vfY_TJq7n_U_125_10", "vfY_TJq7n_U_131_10", "tdWhHV3X25Q_55_10",  # overlap
           "tdWhHV3X25Q_70_10", "vfY_TJq7n_U_140_10", "_7Xe9vD3Hpg_4_10"]  # touch or other videos
    rows = "".join(f"{i},caption {k}\n" for k, i in enumerate(ids))
    train.write_text("id,caption\n" + rows, encoding="utf-8")
    report = DedupeReport()
    kept = [r.id for r in dedupe(read_records(train), [read_eval_set(AUDIOCAPS)], report)]
    assert kept == ids[3:] and report.removed == {"val.csv": ids[:3]}


def test_dedupe_matches_wavcaps_copies_and_blacklists_across_layouts(tmp_path, cli):
    audiocaps = list(read_records(AUDIOCAPS))
    for copy in (WAVCAPS_AC_JSON, WAVCAPS_AC_CSV):  # WavCaps' AudioCaps val: Y<ytid>.wav, no start
        report = DedupeReport()
        kept = [r.id for r in dedupe(iter(audiocaps), [read_eval_set(copy)], report)]
        assert report.removed[copy.name] == [r.id for r in audiocaps[:8]]
        assert kept == [r.id for r in audiocaps[8:]]
        # ... and the other way round: WavCaps' copy as training data, AudioCaps as evaluation.
        kept = [r.id for r in dedupe(read_records(copy), [read_eval_set(AUDIOCAPS)], DedupeReport())]
        assert kept == ["YuCuo8zAkTvE.wav", "Yvvdb2UyJQrs.wav"]
    report = DedupeReport()  # the blacklist JSON's AudioSet names hold 4 of these clips
    kept = [r.id for r in dedupe(iter(audiocaps), [read_eval_set(BLACKLIST)], report)]
    assert report.removed == {BLACKLIST.name: [r.id for r in audiocaps[:4]]} and len(kept) == 8
    freesound = tmp_path / "fsd.json"  # ... and its FreeSound ids, WavCaps' FreeSound ids
    freesound.write_text(json.dumps({"data": [{"id": "201", "caption": "a"}, {"id": "202", "caption": "b"}]}))
    kept = [r.id for r in dedupe(read_records(freesound), [read_eval_set(BLACKLIST)], DedupeReport())]
    assert kept == ["202"]
    # WavCaps' retrieval JSON names Clotho clips by Freesound id; the wav name is the Clotho name.
    retrieval = PEERS / "wavcaps" / "clotho_val_retrieval.json"
    assert list(dedupe(read_records(retrieval), [read_eval_set(CLOTHO_VAL)], DedupeReport())) == []
    ids = tmp_path / "eval_ids.txt"  # a plain id list, a name with a leading space among them
    ids.write_text(" e ieio ieai.wav\nYvfY_TJq7n_U.wav\n", encoding="utf-8")
    kept = [r.id for r in dedupe(read_records(CLOTHO_VAL), [read_eval_set(ids)], DedupeReport())]
    assert len(kept) == 4 and " e ieio ieai.wav" not in kept

    done = cli("dedupe", str(AUDIOCAPS), "--eval", str(BLACKLIST), "--eval", str(WAVCAPS_AC_JSON),
               "-o", str(tmp_path / "train.csv"), "--to", "audiocaps-csv", "--removed",
               str(tmp_path / "rm.csv"))
    assert "removed 4 overlapping blacklist_exclude_test_ac.json (12 evaluation clips)" in done.stdout
    assert "removed 4 overlapping audiocaps_val.json (10 evaluation clips)" in done.stdout
    assert [r.id for r in read_records(tmp_path / "train.csv")] == [r.id for r in audiocaps[8:]]
    assert len(list(csv.DictReader((tmp_path / "rm.csv").open()))) == 8


class _Stub:
    """Backends that answer instantly: these tests are about ids and audio, not captions."""

    model_id = "stub"
    accept_threshold = 0.5

    def ask(self, clips, questions):
        return [Answers(("A tone.", "There is no speech.", "There is no music.")) for _ in clips]

    def write(self, clips, answers, attempt):
        return [f"a tone at {c.start_s:g} s" for c in clips]

    def score(self, clips, answers, texts):
        return np.ones(len(clips), dtype=np.float32)


def _caption(inputs: list, out: Path, audio_root: Path | None = None) -> None:
    from sonicaps.pipeline.config import PipelineConfig
    from sonicaps.pipeline.runner import run
    from sonicaps.pipeline.stages import Backends

    stub = _Stub()
    run(inputs, out, PipelineConfig(), backends=Backends(stub, stub, stub), audio_root=audio_root,
        progress=False)


def test_a_caption_run_is_the_same_clip_to_score_and_dedupe(tmp_path):
    """`sonicaps caption` over an AudioSet segment list names the clip `<ytid>_130_140`; its
    audio is a downloaded cut `Y<ytid>_130.000_140.000.wav`. It is AudioCaps' clip
    vfY_TJq7n_U at 130 s, WavCaps' YvfY_TJq7n_U.wav and AudioSetCaps' vfY_TJq7n_U_130_10."""
    audio = tmp_path / "audio"
    audio.mkdir()
    sf.write(audio / "YvfY_TJq7n_U_130.000_140.000.wav", np.zeros(160000, np.float32) + 0.01, 16000)
    (tmp_path / "segments.csv").write_text("# YTID, start_seconds, end_seconds, positive_labels\n"
                                           'vfY_TJq7n_U, 130.000, 140.000, "/m/09x0r"\n')
    _caption([tmp_path / "segments.csv"], tmp_path / "out", audio)
    (clip,) = list(read_records(tmp_path / "out"))
    assert clip.id == "vfY_TJq7n_U_130_140"
    ac = next(r for r in read_records(AUDIOCAPS) if r.id == "vfY_TJq7n_U_130")
    named = [ac, next(iter(read_records(WAVCAPS_AC_JSON))),
             next(r for r in read_records(WAVCAPS_AC_CSV) if r.id == "YvfY_TJq7n_U.wav")]
    assert all(same_clip(identity(clip), identity(r)) for r in named)
    assert (identity(clip).start_s, identity(clip).end_s) == (130.0, 140.0)
    assert list(dedupe(read_records(tmp_path / "out"), [read_eval_set(AUDIOCAPS)], DedupeReport())) == []
    for to in ("parquet", "audiosetcaps-csv", "hf"):  # the identity survives convert
        dest = tmp_path / to / DEST[to]
        write_records(read_records(tmp_path / "out"), dest, to, audio_root=audio)
        assert same_clip(identity(next(iter(read_records(dest)))), identity(ac)), to
    assert main(["score", str(tmp_path / "out"), str(AUDIOCAPS), "--metrics", "bleu_1"]) == 0


def test_hf_export_stores_each_clip_not_the_whole_file(tmp_path, cli):
    """A 3-minute FLAC cut into 18 clips: the hf dataset holds 18 clips of 10 s (about the
    file's size in all), not 18 copies of the file; --whole-files keeps the files."""
    src = tmp_path / "in"
    src.mkdir()
    t = np.arange(180 * 44100) / 44100
    stereo = np.stack([np.sin(2 * np.pi * 220 * t), np.sin(2 * np.pi * 330 * t)], axis=1) * 0.2
    sf.write(src / "long.flac", stereo.astype(np.float32), 44100, subtype="PCM_16")
    _caption([src], tmp_path / "out")
    import datasets

    size = (src / "long.flac").stat().st_size
    for flag, clip_bytes in (([], None), (["--whole-files"], size)):
        dest = tmp_path / f"hf{len(flag)}"
        cli("convert", str(tmp_path / "out"), "-o", str(dest), "--to", "hf", *flag)
        ds = datasets.load_from_disk(str(dest)).cast_column("audio", datasets.Audio(decode=False))
        assert len(ds) == 18
        stored = [a["bytes"] for a in ds["audio"]]
        if clip_bytes is None:
            for rec, data in zip(ds, stored, strict=True):
                import io

                info = sf.info(io.BytesIO(data))
                assert (info.frames, info.samplerate, info.channels) == (441000, 44100, 2), rec["id"]
                assert rec["audio_is_clip"] is True
            assert 0.5 * size < sum(map(len, stored)) < 1.5 * size
        else:
            assert all(len(b) == clip_bytes for b in stored)
    from sonicaps.formats.torch_dataset import CaptionDataset

    for k in (0, 17):  # both read back as the clip itself
        clip, whole = (CaptionDataset(tmp_path / name)[k]["audio"] for name in ("hf0", "hf1"))
        assert len(clip) == len(whole) == 160000
    write_records(read_records(tmp_path / "out"), tmp_path / "wds", "webdataset")
    assert sum(p.stat().st_size for p in (tmp_path / "wds").glob("*.tar")) < 1.6 * size


def test_hf_urls_upload_through_the_hub_or_refuse_leaving_nothing(tmp_path, cli, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    done = subprocess.run([sys.executable, "-m", "sonicaps.cli", "convert", str(CLOTHO_VAL), "-o",
                           "hf://datasets/someone/clotho-val", "--to", "hf", "--allow-missing-audio"],
                          capture_output=True, text=True, timeout=300, env={**_env(), "HF_HUB_OFFLINE": "1"})
    assert done.returncode == 2 and "HF_HUB_OFFLINE" in done.stderr
    done = subprocess.run([sys.executable, "-m", "sonicaps.cli", "convert", str(CLOTHO_VAL), "-o",
                           "hf://datasets/someone/clotho-val", "--to", "hf"], capture_output=True, text=True,
                          timeout=300, env={**_env(), "HF_ENDPOINT": "http://127.0.0.1:9", "HF_TOKEN": "x"})
    assert done.returncode == 2 and "cannot use the Hugging Face Hub" in done.stderr, done.stderr
    assert not list(tmp_path.iterdir())  # no local hf: folder tree
    assert "expected hf://datasets/" in cli("convert", str(CLOTHO_VAL), "-o", "hf://someone", "--to", "hf",
                                            code=2).stderr
    # Online, the records go to Dataset.push_to_hub (stood in for here: no network).
    import datasets
    import huggingface_hub

    pushed = {}
    monkeypatch.setattr(huggingface_hub.HfApi, "whoami", lambda self: {"name": "someone"})
    monkeypatch.setattr(datasets.Dataset, "push_to_hub",
                        lambda self, repo: pushed.update(repo=repo, ids=self["id"]))
    assert write_records(read_records(CLOTHO_VAL), "hf://datasets/someone/clotho-val", "hf") == 5
    assert pushed == {"repo": "someone/clotho-val", "ids": [r.id for r in read_records(CLOTHO_VAL)]}


def _env() -> dict:
    import os

    return {k: v for k, v in os.environ.items() if not k.startswith("HF_")}


def test_the_docs_way_to_decode_the_hf_audio_column(tmp_path):
    """docs/formats.md: torchcodec does not load beside torch 2.13, so read the bytes."""
    names = [r.id for r in read_records(CLOTHO_VAL)]
    audio = _audio_for(names, tmp_path / "audio")
    write_records(read_records(CLOTHO_VAL), tmp_path / "hf", "hf", audio_root=audio)
    # --- as in docs/formats.md ---
    import io

    import datasets
    import soundfile as sf

    ds = datasets.load_from_disk(str(tmp_path / "hf")).cast_column("audio", datasets.Audio(decode=False))
    row = ds[0]
    samples, rate = sf.read(io.BytesIO(row["audio"]["bytes"]), dtype="float32")
    # ---
    assert rate == 16000 and samples.shape == (8000,)
    assert row["captions"] == next(iter(read_records(CLOTHO_VAL))).captions
    shutil.rmtree(tmp_path / "hf")
