"""Retrieval and zero-shot metrics: against a direct argsort implementation of the
DCASE/AudioCaps protocol, and on matrices whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from sonicaps.metrics import retrieval, zero_shot_accuracy


def _by_sorting(sim: np.ndarray, per_clip: int) -> dict:
    """The protocol written the obvious way (sort every row), for tie-free matrices."""
    n_audio, n_text = sim.shape
    a2t_first, a2t_ap = [], []
    for a in range(n_audio):
        order = list(np.argsort(-sim[a]))
        ranks = sorted(order.index(t) + 1 for t in range(a * per_clip, (a + 1) * per_clip))
        a2t_first.append(ranks[0])
        top = [r for r in ranks if r <= 10]
        a2t_ap.append(sum((i + 1) / r for i, r in enumerate(top)) / per_clip)
    t2a_first, t2a_ap = [], []
    for t in range(n_text):
        rank = list(np.argsort(-sim[:, t])).index(t // per_clip) + 1
        t2a_first.append(rank)
        t2a_ap.append(1 / rank if rank <= 10 else 0.0)

    def summary(first, ap):
        first = np.array(first)
        return {"R@1": np.mean(first <= 1), "R@5": np.mean(first <= 5), "R@10": np.mean(first <= 10),
                "R@50": np.mean(first <= 50), "median_rank": np.median(first), "mean_rank": first.mean(),
                "mAP@10": np.mean(ap)}

    return {"audio_to_text": summary(a2t_first, a2t_ap), "text_to_audio": summary(t2a_first, t2a_ap)}


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_retrieval_matches_sorting_implementation(seed):
    rng = np.random.default_rng(seed)
    n_audio = 60
    # Captions of a clip are noisy copies of its embedding, so ranks spread over 1..n.
    audio = rng.normal(size=(n_audio, 16))
    text = np.repeat(audio, 5, axis=0) + rng.normal(scale=2.5, size=(n_audio * 5, 16))
    sim = audio @ text.T
    ours, expected = retrieval(sim), _by_sorting(sim, 5)
    for direction in expected:
        for name, value in expected[direction].items():
            assert ours[direction][name] == pytest.approx(value, abs=1e-12), (direction, name)
    assert 0 < ours["audio_to_text"]["R@1"] < 1


def test_known_answers_and_ties():
    perfect = np.repeat(np.eye(4), 5, axis=1)
    res = retrieval(perfect)
    assert res["audio_to_text"]["R@1"] == 1 and res["audio_to_text"]["mAP@10"] == 1
    assert res["text_to_audio"]["mean_rank"] == 1
    # A constant matrix is a useless model: pessimistic ties put every answer last.
    flat = retrieval(np.zeros((4, 20)))
    assert flat["audio_to_text"]["R@1"] == 0 and flat["text_to_audio"]["median_rank"] == 4
    assert flat["audio_to_text"]["median_rank"] == 16  # 15 other captions tie above the first own one


def test_map_at_10_divides_by_at_most_10_relevant_captions():
    """mAP@10 averages precision over the relevant captions found in the top 10, divided by
    min(relevant, 10): a clip with 12 captions ranked perfectly scores 1, not 10/12."""
    n_audio, per_clip = 3, 12
    perfect = np.repeat(np.eye(n_audio), per_clip, axis=1)
    assert retrieval(perfect)["audio_to_text"]["mAP@10"] == 1.0
    # Clip 0 finds 5 of its captions at ranks 1-5, five of clip 1's at 6-10, its other
    # seven last: AP = (1/1 + ... + 5/5) / 10 = 0.5.
    sim = perfect.copy()
    sim[0, 5:12] = -1.0
    sim[0, per_clip:per_clip + 5] = 0.5
    aps = retrieval(sim)["audio_to_text"]["mAP@10"] * n_audio - 2  # clips 1 and 2 stay perfect
    assert aps == pytest.approx(0.5)


def test_text_to_audio_mapping_and_uneven_captions():
    # Clip 0 has 2 captions, clip 1 has 1, listed out of order.
    sim = np.array([[0.9, 0.1, 0.8], [0.2, 0.7, 0.3]])
    res = retrieval(sim, text_to_audio=[0, 1, 0])
    assert res["audio_to_text"]["R@1"] == 1 and res["audio_to_text"]["mAP@10"] == 1
    with pytest.raises(ValueError, match="do not split evenly"):
        retrieval(np.zeros((2, 3)))
    with pytest.raises(ValueError, match="clip 1 has no caption"):
        retrieval(np.zeros((2, 2)), text_to_audio=[0, 0])
    with pytest.raises(ValueError, match="non-finite"):
        retrieval(np.array([[np.nan, 1.0]]))


def test_zero_shot_accuracy():
    sim = np.array([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.4, 0.4, 0.1]])
    assert zero_shot_accuracy(sim, [0, 2, 0]) == pytest.approx(2 / 3)  # the tie in row 2 counts as a miss
    assert zero_shot_accuracy(sim, [0, 1, 0], k=2) == 1.0
    with pytest.raises(ValueError):
        zero_shot_accuracy(sim, [0, 3, 0])
