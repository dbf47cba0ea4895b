"""The Python API (`sonicaps.caption`, `sonicaps.Pipeline`) against the command line."""

from __future__ import annotations

import pandas as pd
import pytest

import sonicaps
from sonicaps.cli import main


def test_api_returns_the_captions_of_the_cli(examples, backends, tmp_path):
    assert main(["caption", str(examples), "-o", str(tmp_path / "cli"), "--quiet"]) == 0
    cli = pd.read_parquet(tmp_path / "cli").set_index("id")["caption"].to_dict()
    pipe = sonicaps.Pipeline(backends=backends)  # the session's default backends
    records = list(pipe.caption(examples))
    assert {r["id"]: r["caption"] for r in records} == cli
    assert not any(r["failed"] for r in records) and not (tmp_path / "none").exists()
    # with an output: the command's shards, then the finished clips come back from them
    written = list(pipe.caption([examples], output=tmp_path / "api"))
    assert pd.read_parquet(tmp_path / "api").set_index("id")["caption"].to_dict() == cli
    again = list(pipe.caption(str(examples), output=tmp_path / "api"))
    assert sorted(r["id"] for r in again) == sorted(r["id"] for r in written) == sorted(cli)


def test_api_yields_failures_and_checks_the_output_config(backends, tmp_path):
    (tmp_path / "bad.wav").write_text("not audio")
    recs = list(sonicaps.Pipeline(backends=backends).caption(tmp_path / "bad.wav"))
    assert len(recs) == 1 and recs[0]["failed"] and recs[0]["stage"] == "decode"
    assert "bad.wav" in recs[0]["source"]
    out = tmp_path / "out"
    list(sonicaps.Pipeline(backends=backends).caption(tmp_path / "bad.wav", output=out))
    other = sonicaps.Pipeline(sonicaps.api.load({"pipeline": {"segment_s": 5.0}}), backends=backends)
    with pytest.raises(ValueError, match="other settings"):
        list(other.caption(tmp_path / "bad.wav", output=out))
    with pytest.raises(TypeError, match="config must be"):
        sonicaps.api.load(3)
