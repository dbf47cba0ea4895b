"""Spoken language: sonicaps' answer against faster-whisper's own `detect_language`.

    .venv/bin/python benchmarks/language_id.py [--quick]

Utterances from three synthesisers (espeak-ng in eight languages with its default, female
and male variants; flite's four English voices; festival's English and Italian voices where
installed), each placed in a 10-s clip over a faint noise floor as users' clips are. For
each clip: the language the built-in asker names in answer 2 (Whisper base on the speech
spans it found; "-" when not determined), and faster-whisper's own `detect_language` on
the whole clip with the same model. Prints accuracy against the true language for both,
per language and overall, and where they disagree.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
from collections import defaultdict
from pathlib import Path

import numpy as np

from sonicaps.audio import load_audio
from sonicaps.backends.builtin.asker import BuiltinAsker
from sonicaps.backends.builtin.language import SpokenLanguage
from sonicaps.clip import Clip
from sonicaps.examples import Placed, mix
from sonicaps.prompts import QUESTIONS

SR = 16000
SENTENCES = {
    "en": ["The weather is nice today and we are going to the park to play football.",
           "Please remember to bring your notes and a pen to the meeting tomorrow."],
    "de": ["Guten Morgen, heute fahren wir mit dem Zug in die Stadt und besuchen das Museum.",
           "Das Wetter ist heute schön und wir gehen in den Park, um Fußball zu spielen."],
    "es": ["Hace buen tiempo hoy y vamos al parque a jugar al fútbol.",
           "Mañana por la mañana tomaremos el tren para visitar a mis abuelos."],
    "it": ["Oggi il tempo è bello e andiamo al parco a giocare a calcio.",
           "Domani mattina prenderemo il treno per andare a trovare i nonni."],
    "fr": ["Il fait beau aujourd'hui et nous allons au parc pour jouer au football.",
           "Demain matin, nous prendrons le train pour rendre visite à nos grands-parents."],
    "pt": ["O tempo está bom hoje e vamos ao parque jogar futebol.",
           "Amanhã de manhã vamos apanhar o comboio para visitar os nossos avós."],
    "nl": ["Het weer is vandaag mooi en we gaan naar het park om te voetballen.",
           "Morgenochtend nemen we de trein om onze grootouders te bezoeken."],
    "pl": ["Dzisiaj jest ładna pogoda i idziemy do parku grać w piłkę.",
           "Jutro rano pojedziemy pociągiem odwiedzić naszych dziadków."],
}
ESPEAK_VARIANTS = ("", "+f2", "+m3")
FLITE_VOICES = ("kal", "awb", "rms", "slt")
FESTIVAL_VOICES = {"en": "voice_kal_diphone", "it": "voice_lp_diphone"}


def _espeak(text: str, voice: str, out: Path) -> Path:
    subprocess.run(["espeak-ng", "-v", voice, "-w", str(out), text], check=True,
                   capture_output=True)
    return out


def _flite(text: str, voice: str, out: Path) -> Path:
    subprocess.run(["flite", "-voice", voice, "-t", text, "-o", str(out)], check=True,
                   capture_output=True)
    return out


def _festival(text: str, voice: str, out: Path) -> Path | None:
    if shutil.which("text2wave") is None:
        return None
    txt = out.with_suffix(".txt")
    txt.write_text(text, encoding="latin-1", errors="replace")
    done = subprocess.run(["text2wave", "-eval", f"({voice})", "-o", str(out), str(txt)],
                          capture_output=True)
    return out if done.returncode == 0 and out.is_file() and out.stat().st_size > 1000 else None


def utterances(tmp: Path, quick: bool = False) -> list[tuple[str, str, np.ndarray]]:
    """(true language, synthesiser/voice, 16 kHz audio) for every utterance."""
    out = []
    for lang, texts in SENTENCES.items():
        for k, text in enumerate(texts[:1] if quick else texts):
            for v in ESPEAK_VARIANTS:
                p = _espeak(text, lang + v, tmp / f"espeak-{lang}{v}-{k}.wav")
                out.append((lang, f"espeak-ng {lang}{v}", load_audio(p)))
    if shutil.which("flite"):
        for k, text in enumerate(SENTENCES["en"]):
            for v in FLITE_VOICES:
                p = _flite(text, v, tmp / f"flite-{v}-{k}.wav")
                out.append(("en", f"flite {v}", load_audio(p)))
    for lang, voice in FESTIVAL_VOICES.items():
        for k, text in enumerate(SENTENCES[lang]):
            p = _festival(text, voice, tmp / f"festival-{lang}-{k}.wav")
            if p is not None:
                out.append((lang, f"festival {voice}", load_audio(p)))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="one sentence per language")
    args = ap.parse_args()
    if shutil.which("espeak-ng") is None:
        raise SystemExit("espeak-ng is not installed (scripts/setup.sh installs it)")
    asker = BuiltinAsker()
    whisper = SpokenLanguage()
    with tempfile.TemporaryDirectory() as tmp:
        utts = utterances(Path(tmp), args.quick)
    clips = [mix([Placed("speech", 0.5, a[: int(9.4 * SR)])], seed=k)
             for k, (_, _, a) in enumerate(utts)]
    ours: list[str] = []
    for b in range(0, len(clips), 8):
        batch = [Clip(str(k), str(k), 0.0, 10.0, c) for k, c in enumerate(clips[b:b + 8], b)]
        for a in asker.ask(batch, QUESTIONS):
            ours.append(a.evidence["speech"]["language"] or "-")
    theirs = [whisper.detect_language(c)[0] for c in clips]
    # The 10-s shortcut alone (on the whole clip): where is it sure enough to skip the 30 s?
    short = [whisper._shortcut(c) for c in clips]
    per: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0])
    for (lang, _, _), o, t in zip(utts, ours, theirs, strict=True):
        per[lang][0] += 1
        per[lang][1] += o == lang
        per[lang][2] += t == lang
    print(f"{len(utts)} utterances in {len(per)} languages")
    print(f"{'language':<9} {'clips':>5} {'sonicaps':>9} {'detect_language':>16}")
    for lang, (n, o, t) in sorted(per.items()):
        print(f"{lang:<9} {n:>5} {o / n:>9.2f} {t / n:>16.2f}")
    n = len(utts)
    print(f"{'all':<9} {n:>5} {sum(o == u[0] for u, o in zip(utts, ours, strict=True)) / n:>9.2f} "
          f"{sum(t == u[0] for u, t in zip(utts, theirs, strict=True)) / n:>16.2f}")
    agree = sum(o == t for o, t in zip(ours, theirs, strict=True))
    print(f"sonicaps agrees with detect_language on {agree}/{n}")
    print("10-s shortcut alone: from probability p, clips / agreeing with detect_language")
    for p in (0.5, 0.6, 0.7, 0.8, 0.9):
        sel = [(c, t) for (c, q), t in zip(short, theirs, strict=True) if q >= p]
        print(f"  p >= {p:.1f}: {len(sel):>3} / {sum(c == t for c, t in sel):>3}")
    for (lang, who, _), o, t, (c, q) in zip(utts, ours, theirs, short, strict=True):
        if o != t or o != lang:
            print(f"  {who:<28} true {lang}  sonicaps {o}  detect_language {t}  "
                  f"shortcut {c} {q:.2f}")


if __name__ == "__main__":
    main()
