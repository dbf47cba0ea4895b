"""Every command and snippet the README shows, run as a user would after the setup: the
`sonicaps ...` lines of its shell blocks through the CLI, and its Python blocks as they are,
on a small folder of real recordings. The README is read at test time, so a command that
changes there is the command that runs here; setup and pip lines are what CI itself runs."""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path

import pandas as pd
import soundfile as sf

from sonicaps.cli import main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")


def blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README, flags=re.S)


def sonicaps_commands() -> list[list[str]]:
    """The `sonicaps ...` command lines of the README's shell blocks, comments dropped."""
    out = []
    for block in blocks("bash"):
        for line in block.splitlines():
            line = line.split(" #", 1)[0].strip()
            if line.startswith(("sonicaps ", ".venv/bin/sonicaps ")):
                out.append(shlex.split(line)[1:])
    return out


def user_dir(examples: Path, tmp_path: Path) -> Path:
    """A working folder like a user's: the README's `path/to/folder` (three of the demo's
    recordings), `a.wav` and `b.flac`, the repository's configs/, and references.csv for the
    clips the folder gives."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    folder = tmp_path / "path" / "to" / "folder"
    folder.mkdir(parents=True)
    for name in ("cow", "dog_then_man", "woman_speaking"):
        src = next(examples.glob(f"{name}.*"))
        shutil.copy(src, folder / src.name)
    audio, sr = sf.read(next(examples.glob("cow.*")))
    sf.write(tmp_path / "a.wav", audio, sr)
    sf.write(tmp_path / "b.flac", audio, sr)
    shutil.copytree(ROOT / "configs", tmp_path / "configs")
    pd.DataFrame({"id": ["cow_0_10", "dog_then_man_0_10", "woman_speaking_0_10"],
                  "caption": ["A cow moos", "A dog barks and then a man speaks", "A woman speaks"]}
                 ).to_csv(tmp_path / "references.csv", index=False)
    return tmp_path


def test_the_readme_shows_its_commands():
    commands = [c[0] for c in sonicaps_commands()]
    assert commands.count("caption") >= 2 and "export" in commands and "score" in commands
    assert any("sonicaps.caption(" in b for b in blocks("python"))


def test_every_readme_command_runs(examples, tmp_path, monkeypatch, capsys):
    user = user_dir(examples, tmp_path)
    monkeypatch.chdir(user)
    for argv in sonicaps_commands():
        if argv[0] == "demo":  # test_pipeline.py runs the demo against the README's captions
            continue
        assert main([*argv, "--quiet"] if argv[0] == "caption" else argv) == 0, argv
        if argv[0] == "caption":
            out = user / argv[argv.index("-o") + 1]
            rows = pd.read_parquet(out)
            assert len(rows) == 3 and rows["caption"].str.len().gt(0).all(), argv
            assert not (out / "_failures.jsonl").exists() or not (out / "_failures.jsonl").read_text()
        if argv[0] == "export":
            release = user / argv[argv.index("-o") + 1]
            assert len(pd.read_csv(release / "captions.csv")) == 3
            assert len(pd.read_parquet(user / argv[1])) == 3  # the output stays readable
        if argv[0] == "score":
            assert "cider_d" in capsys.readouterr().out.lower()


def test_every_readme_python_snippet_runs(examples, tmp_path, monkeypatch):
    for i, block in enumerate(blocks("python")):
        monkeypatch.chdir(user_dir(examples, tmp_path / f"snippet{i}"))  # each in a fresh folder
        scope: dict = {}
        exec(compile(block, "README.md", "exec"), scope)  # the README's own code, as it stands
        if "records" in scope:  # the Pipeline snippet: a.wav and b.flac captioned into out/
            assert sorted({r["source"].split(".")[0] for r in scope["records"]}) == ["a", "b"]
            assert len(pd.read_parquet("out")) == len(scope["records"])
