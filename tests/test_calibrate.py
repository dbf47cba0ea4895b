"""`sonicaps calibrate`: the equal-error threshold of a check backend on the user's own
labelled clips."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from sonicaps.calibrate import equal_error_threshold


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
    config.write_text('[ask]\nbackend = "builtin"\n[write]\nbackend = "builtin"\n'
                      '[check]\nbackend = "textsim"\n[pipeline]\nmax_attempts = 1\n')
    out = tmp_path / "cal.json"
    assert main(["calibrate", str(man), "--config", str(config), "-o", str(out), "--no-progress"]) == 0
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
    assert main(["calibrate", str(folder), "--config", str(config), "--no-progress"]) == 2
    assert "no captioned clip with labels" in capsys.readouterr().err
