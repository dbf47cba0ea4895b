"""`sonicaps calibrate`: the equal-error threshold of a check backend on the user's own
labelled clips."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sonicaps.calibrate import equal_error_threshold

CONFIG = ('[ask]\nbackend = "builtin"\n[write]\nbackend = "builtin"\n'
          '[check]\nbackend = "textsim"\n[pipeline]\nmax_attempts = 1\n')


def test_equal_error_threshold_where_the_two_error_rates_meet():
    own, foreign = np.array([0.5, 0.6, 0.7, 0.8]), np.array([0.1, 0.2, 0.3, 0.65])
    t, frr, far = equal_error_threshold(own, foreign)
    assert frr == far == 0.25 and 0.5 < t <= 0.65
    t, frr, far = equal_error_threshold(np.array([0.9, 0.8]), np.array([0.1, 0.2]))  # separable
    assert frr == far == 0.0 and 0.2 < t <= 0.8
    with pytest.raises(ValueError, match="both own and foreign"):
        equal_error_threshold(np.array([0.5]), np.array([]))


def test_calibrate_command_on_a_labelled_manifest(examples, tmp_path, capsys):
    from sonicaps.cli import main

    man = tmp_path / "labelled.csv"
    with open(man, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "labels"])
        for name, labels in (("cow.mp3", "Cattle, bovinae;Moo"), ("dog_then_man.wav", "Dog;Bark"),
                             ("woman_speaking.flac", "Speech;Female speech")):
            w.writerow([examples / name, labels])
    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(man), "--config", str(config), "-o", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    cal = json.loads(out.read_text())
    assert cal["source"] == "labels" and cal["own"] == 3 and cal["foreign"] == 3
    assert f"accept_threshold = {cal['threshold']:.3f}" in printed
    assert 0.0 <= cal["false_reject"] <= 1.0
    assert cal["false_reject"] == pytest.approx(cal["false_accept"], abs=0.34)
    # A folder without labels cannot calibrate: a clear error, not a number.
    folder = tmp_path / "plain"
    folder.mkdir()
    (folder / "cow.mp3").write_bytes((examples / "cow.mp3").read_bytes())
    assert main(["calibrate", str(folder), "--config", str(config), "--quiet"]) == 2
    assert "no captioned clip with labels" in capsys.readouterr().err


def test_calibrate_command_on_a_reviewed_output(examples, tmp_path, capsys):
    """A captioned output reviewed on the review page (accept / edit / reject, stored in the
    output's review database) calibrates the check: kept captions are own, rejected ones and
    other clips' kept captions foreign; each is scored with its clip's stored answers."""
    import pandas as pd

    from sonicaps.cli import main
    from sonicaps.review.collection import Collection
    from sonicaps.review.reviews import record

    config = tmp_path / "c.toml"
    config.write_text(CONFIG)
    out = tmp_path / "out"
    assert main(["caption", str(examples), "-o", str(out), "--config", str(config), "--no-progress"]) == 0
    rows = pd.concat(pd.read_parquet(f) for f in sorted(out.glob("part-*.parquet")))
    col = Collection(out)  # the review page's own database, inside the output folder
    col.index()
    items = [col.item(pos) for pos in range(1, col.count() + 1)]
    assert len(items) == len(rows) >= 5
    accepted, edited, rejected = items[:-2], items[-2], items[-1]
    for it in accepted:
        record(col.con, it, "ann", "accept")
    record(col.con, edited, "ann", "edit", caption="Someone plays a violin in a large hall.")
    record(col.con, rejected, "ann", "reject", reason="the sounds are wrong")
    col.con.close()

    cal_path = tmp_path / "cal.json"
    assert main(["calibrate", str(out), "--config", str(config), "-o", str(cal_path), "--no-progress"]) == 0
    cal = json.loads(cal_path.read_text())
    assert f"accept_threshold = {cal['threshold']:.3f}" in capsys.readouterr().out
    assert cal["source"] == "reviews"
    assert cal["own"] == len(items) - 1  # accepted and edited
    assert cal["foreign"] == 1 + cal["own"]  # the rejected caption, and one other clip's per kept clip
    # Own scores: the pipeline's own check scores for the accepted captions (same clip,
    # answers and caption) and the edited caption scored against its clip's stored answers.
    from sonicaps.audio import load_audio
    from sonicaps.backends.builtin.textsim import TextSimScorer
    from sonicaps.clip import Answers, Clip

    by_clip = {r["id"]: r for r in rows.to_dict("records")}
    stored = [by_clip[it["clip"]]["check_score"] for it in accepted]
    row = by_clip[edited["clip"]]
    clip = Clip(row["id"], row["source"], row["start_s"], row["end_s"],
                load_audio(row["source"], start_s=row["start_s"], end_s=row["end_s"]))
    answers = Answers((row["answer_1"], row["answer_2"], row["answer_3"]), json.loads(row["evidence"]))
    edited_score = TextSimScorer().score([clip], [answers], ["Someone plays a violin in a large hall."])[0]
    assert cal["own_mean"] == pytest.approx((sum(stored) + edited_score) / cal["own"], abs=1e-6)
    assert cal["own_mean"] > cal["foreign_mean"]
