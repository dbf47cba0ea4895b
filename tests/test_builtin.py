"""The built-in backends on real audio: speech, gender, event order, wording rules."""

import re

import numpy as np
import pytest
from conftest import SR, sweep, tone

from sonicaps.backends.builtin.lexicon import gerund, table
from sonicaps.backends.builtin.writer import BuiltinWriter, _from_text, sentence
from sonicaps.backends.builtin.yamnet import class_names
from sonicaps.clip import Answers, Clip
from sonicaps.examples import SENTENCES, Placed, animal, mix, speak
from sonicaps.prompts import QUESTIONS


def ask(backends, audio: np.ndarray):
    clip = Clip("x", "x", 0.0, len(audio) / SR, audio)
    return backends.asker.ask([clip], QUESTIONS)[0]


@pytest.fixture(scope="module")
def voices():
    return {"male": speak(SENTENCES["male"], "en+m3"), "female": speak(SENTENCES["female"], "en+f2")}


@pytest.mark.parametrize("gender", ["male", "female"])
def test_speech_and_gender_detected_in_tts(backends, voices, gender):
    a = ask(backends, mix([Placed("speech", 1.0, voices[gender])]))
    assert a.evidence["speech"]["present"]
    assert a.evidence["speech"]["gender"] == gender
    assert ("a man" if gender == "male" else "a woman") in a.texts[1].lower()


@pytest.mark.parametrize("name", ["sweep", "noise"])
def test_no_speech_in_sweep_or_noise(backends, name):
    x = sweep() if name == "sweep" else (np.random.default_rng(0).standard_normal(10 * SR) * 0.1)
    a = ask(backends, x.astype(np.float32))
    assert not a.evidence["speech"]["present"]
    assert a.texts[1] == "There is no speech in this audio."


@pytest.mark.parametrize("first_at,second_at", [(0.3, 5.5), (5.5, 0.3)])
def test_event_order_follows_onsets(backends, voices, first_at, second_at):
    dog = animal("dog")[: 4 * SR]
    a = ask(backends, mix([Placed("dog", first_at, dog), Placed("man", second_at, voices["male"])]))
    subjects = [e["subject"] for e in a.evidence["events"]]
    assert "a dog" in subjects and "a man" in subjects
    dog_first = subjects.index("a dog") < subjects.index("a man")
    assert dog_first == (first_at < second_at)
    text = a.texts[0].lower()
    assert (text.index("a dog") < text.index("a man")) == (first_at < second_at)
    onset = {e["subject"]: e["onset"] for e in a.evidence["events"]}
    assert abs(onset["a dog"] - first_at) < 1.0 and abs(onset["a man"] - second_at) < 1.0


def test_silence_gets_no_invented_sources(backends):
    a = ask(backends, np.zeros(10 * SR, np.float32))
    assert a.evidence["events"] == []
    assert not a.evidence["speech"]["present"] and not a.evidence["music"]["present"]


def test_writer_connectives_follow_the_timeline():
    dog = dict(subject="a dog", verb="barks", gerund="barking", onset=0.0, offset=3.0,
               impulsive=True, count=3, level_db=-20, kind="sound", score=0.9)
    man = dict(subject="a man", verb="speaks", gerund="speaking", onset=4.0, offset=9.0,
               impulsive=False, count=1, level_db=-20, kind="speech", score=0.9)
    car = dict(man, subject="a car", verb="passes by", gerund="passing by", onset=5.0,
               offset=9.5, kind="sound")
    assert sentence([dog, man]) == "A dog barks repeatedly, followed by a man speaking"
    assert sentence([dog, man], attempt=1) == "A dog barks repeatedly and then a man speaks"
    assert sentence([dog, man, car]) == "A dog barks repeatedly, then a man speaks while a car passes by"


def _event(subject: str, verb: str, onset: float, offset: float, score: float, kind: str = "sound") -> dict:
    return dict(kind=kind, label=subject, subject=subject, verb=verb, gerund=verb[:-1] + "ing",
                score=score, onset=onset, offset=offset, count=1, impulsive=False, level_db=-20.0)


def test_writer_names_the_strongest_sources_in_the_order_heard():
    """With more events than it names (MAX_SOURCES = 3), the writer keeps the three the
    asker scored highest, not the first three heard, and names them in time order; each
    retry drops the weakest of them."""
    events = [_event("a dog", "barks", 0.0, 2.0, 0.6), _event("a door", "slams", 2.5, 3.0, 0.3),
              _event("a bird", "chirps", 3.0, 5.0, 0.5), _event("a car", "honks", 5.5, 6.5, 0.4),
              _event("a man", "speaks", 7.0, 10.0, 0.9, kind="speech")]
    clip = Clip("x", "x", 0.0, 10.0, np.zeros(10 * SR, np.float32))
    answers = Answers(("", "", ""), {"events": events})
    writer = BuiltinWriter()
    assert writer.write([clip], [answers], 0) == [
        "A dog barks, then a bird chirps, followed by a man speaking"]
    assert writer.write([clip], [answers], 1) == ["A dog barks and then a man speaks"]
    assert writer.write([clip], [answers], 5) == ["A man speaks"]


def test_hiss_is_noise_not_a_snake(backends):
    """YAMNet reads hiss as "Snake" (0.82 here). Noise classes are never a source, so noise
    high-passed above 4 kHz must not become "A snake hisses"."""
    from scipy.signal import butter, sosfilt

    noise = np.random.default_rng(0).standard_normal(10 * SR)
    x = sosfilt(butter(8, 4000, "highpass", fs=SR, output="sos"), noise)
    clip = Clip("hiss", "hiss", 0.0, 10.0, (0.1 * x / x.std()).astype(np.float32))
    a = backends.asker.ask([clip], QUESTIONS)[0]
    assert a.evidence["labels"][0][0] == "Snake"  # what the exclusion is there for
    assert a.evidence["events"] == []
    assert "snake" not in BuiltinWriter().write([clip], [a], 0)[0].lower()


def test_the_verifier_keeps_at_most_max_sources(monkeypatch):
    """However many candidates the verifier accepts, a clip gets at most the number of
    sources its thresholds were calibrated for, strongest first."""
    from sonicaps.backends.builtin import sources

    monkeypatch.setattr(sources, "boosted_probability", lambda x, model: 0.99)
    features = dict.fromkeys(sources.FEATURES, 0.0)
    cands = [sources.Candidate(f"thing {k}", f"Thing {k}", k, [k], np.zeros(4), features) for k in range(6)]
    limit = sources.verifier()["max_sources"]
    assert limit < 6 and [c.subject for c in sources.verify(cands)] == [f"thing {k}" for k in range(limit)]


def test_writer_never_uses_banned_openings():
    assert _from_text("The audio contains a dog barking loudly. Then silence.") == \
        "A dog barking loudly"
    assert _from_text("There is a man speaking.") == "A man speaking"


def test_writer_reads_the_built_in_answer_text_without_copying_times():
    """Answers read back as text (a fallback, a server client): counts become words."""
    assert _from_text("Something plops from 2.0 s to 3.0 s, twice.") == "Something plops twice"
    assert _from_text("A cow moos from 1.0 s to 9.1 s, 5 times. A man speaks from 4.0 s to "
                      "6.0 s.") == "A cow moos repeatedly while a man speaks"
    # Text carries no scores: the first three sources heard are named.
    assert _from_text("A dog barks from 0.0 s to 1.0 s. A door slams from 2.0 s to 2.5 s. A bird "
                      "chirps from 3.0 s to 4.0 s. A man speaks from 5.0 s to 9.0 s.") == \
        "A dog barks, then a door slams, then a bird chirps"


def test_gerunds():
    cases = {"barks": "barking", "passes by": "passing by", "idles": "idling", "cries": "crying",
             "buzzes": "buzzing", "is dialed": "being dialed", "sees": "seeing"}
    assert {v: gerund(v) for v in cases} == cases


def test_lexicon_names_only_real_classes():
    names = set(class_names())
    unknown = [label for label in table() if label not in names]
    assert unknown == []
    for label, p in table().items():
        assert p.subject == "-" or re.fullmatch(r"[@a-z][a-z ,'-]*", p.subject), label


def test_yamnet_scores_do_not_depend_on_the_cpu():
    """Reference top-3 (max over patches) recorded on another machine for two CC0 recordings.

    With onnxruntime's saturating uint8 x int8 kernels (x86 without VNNI) frog.mp3 reads as
    Neigh/Horse and horse.mp3 as Grunt; the exact kernels give these on every CPU.
    """
    from sonicaps.backends.builtin.yamnet import Yamnet

    y = Yamnet()
    for name, expected in (("frog", ["Frog", "Animal", "Croak"]),
                           ("horse", ["Silence", "Animal", "Roar"])):
        probs = y.predict([animal(name)])[0].max(axis=0)
        top = np.argsort(-probs, kind="stable")[:3]
        assert [y.classes[i] for i in top] == expected, name
        assert abs(float(probs[top[0]]) - {"frog": 0.99, "horse": 0.99}[name]) < 0.01


def test_yamnet_reuses_results_by_content_not_by_array(monkeypatch):
    """The asker and the retrieval check see the same clips: the second YAMNet run is skipped."""
    from sonicaps.backends.builtin import yamnet as y

    model = y.Yamnet()
    calls: list[int] = []
    real = model._run

    def counted(audios, max_patches):
        calls.append(len(audios))
        return real(audios, max_patches)

    monkeypatch.setattr(model, "_run", counted)
    y._RECENT.clear()
    a, b = tone(440, 2.0), tone(880, 2.0)
    probs, emb = model.predict_with_embeddings([a, b])
    again_probs, again_emb = model.predict_with_embeddings([b.copy(), a, tone(440, 2.5)])
    assert calls == [2, 1]  # only the new clip ran
    assert np.array_equal(again_probs[0], probs[1]) and np.array_equal(again_emb[1], emb[0])
    y._RECENT.clear()
    fresh_probs, fresh_emb = model.predict_with_embeddings([a])
    assert np.array_equal(fresh_probs[0], probs[0]) and np.array_equal(fresh_emb[0], emb[0])
    with pytest.raises(ValueError):
        fresh_probs[0][0, 0] = 1.0  # shared results are read-only
