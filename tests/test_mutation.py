"""benchmarks/mutation.py: every mutant of the list still applies to the code, and the
runner kills, spares and reports mutants as it says, never touching the tree it tests."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def mutation():
    spec = importlib.util.spec_from_file_location("mutation", ROOT / "benchmarks" / "mutation.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["mutation"] = module  # dataclasses look their module up while it runs
    spec.loader.exec_module(module)
    return module


def test_every_mutant_applies_to_the_code():
    """The script reports a mutant whose snippet moved as stale; this fails at once instead,
    so the list follows the code it tests (docs/testing.md says how to update one)."""
    m = mutation()
    stale = {x.id: m.stale(x, (ROOT / m.PACKAGE / x.path).read_text(encoding="utf-8")) for x in m.MUTANTS}
    assert {k: why for k, why in stale.items() if why} == {}
    assert len(m.MUTANTS) >= 60 and len({x.id for x in m.MUTANTS}) == len(m.MUTANTS)
    assert {x.path for x in m.MUTANTS} <= set(m.TESTS)
    assert all((ROOT / "tests" / f).is_file() for files in m.TESTS.values() for f in files)


def test_mutants_are_run_on_a_copy_and_reported(tmp_path, monkeypatch, capsys):
    tree = tmp_path / "tree"
    (tree / "src" / "sonicaps").mkdir(parents=True)
    (tree / "tests").mkdir()
    code = "def enough(n):\n    return n > 3\n"
    (tree / "src" / "sonicaps" / "__init__.py").write_text("")
    (tree / "src" / "sonicaps" / "gate.py").write_text(code)
    (tree / "tests" / "test_gate.py").write_text(
        "from sonicaps.gate import enough\n\n\ndef test_enough():\n    assert enough(4) and not enough(3)\n")
    m = mutation()
    monkeypatch.setattr(m, "TESTS", {"gate.py": ("test_gate.py",)})
    monkeypatch.setattr(m, "MUTANTS", [
        m.Mutant("flipped", "gate.py", "n > 3", "n < 3", "small numbers pass"),
        m.Mutant("same-meaning", "gate.py", "return n > 3", "return 3 < n", "nothing (equivalent)"),
        m.Mutant("moved", "gate.py", "n > 4", "n < 4", "stale: the code moved")])
    out = tmp_path / "results.json"
    monkeypatch.setattr(sys, "argv", ["mutation.py", "--tree", str(tree), "--min-rate", "0", "-o", str(out)])
    assert m.main() == 1  # a stale mutant is a problem to fix, never skipped silently
    status = {x["id"]: x["status"] for x in json.loads(out.read_text())["mutants"]}
    assert status == {"flipped": "killed", "same-meaning": "survived", "moved": "stale"}
    assert (tree / "src" / "sonicaps" / "gate.py").read_text() == code  # the tree tested is untouched
    printed = capsys.readouterr().out
    assert "| gate.py | 3 | 1 | 1 | 1 | 0 |" in printed
    assert "killed 1 of 2 applicable mutants: 50.0 %" in printed
