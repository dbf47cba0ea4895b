"""Rendered SceneCaps sources: speech from espeak-ng and flite, music from General-MIDI.

Renders are deterministic (same tool versions, same bytes), so they are cached like the
downloaded recordings. Speech says neutral sentences; captions never quote them.
"""

from __future__ import annotations

import random
import shutil
import subprocess
import tempfile
from pathlib import Path

import mido

SENTENCES = (
    "The next train to the city centre leaves from platform four in ten minutes.",
    "Please remember to bring your notes and a pen to the meeting tomorrow morning.",
    "We walked along the river until the sun went down behind the hills.",
)

# General-MIDI programs (0-based); drum_kit plays on channel 10.
PROGRAMS = {"piano": 0, "organ": 19, "accordion": 21, "guitar": 24, "violin": 40, "cello": 42,
            "harp": 46, "trumpet": 56, "saxophone": 65, "flute": 73, "drum_kit": None}
RANGES = {"cello": (36, 60), "violin": (55, 84), "flute": (60, 89), "trumpet": (55, 79),
          "saxophone": (49, 76), "guitar": (40, 72), "harp": (43, 84)}
CHORDAL = {"piano", "organ", "accordion", "guitar", "harp"}
SCALES = ((0, 2, 4, 5, 7, 9, 11), (0, 2, 3, 5, 7, 8, 10), (0, 2, 3, 5, 7, 9, 10))


class RenderError(RuntimeError):
    pass


def _tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise RenderError(f"{name} is not installed (Debian: apt-get install {name}; "
                          "scripts/setup.sh installs it)")
    return exe


def _run(cmd: list[str]) -> None:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode != 0:
        raise RenderError(f"{' '.join(cmd[:3])}... failed: {done.stderr.strip()[-400:]}")


def render_speech(package: str, spec: str, out: Path) -> None:
    """spec is VOICE/sN: a voice of the package and the index of the sentence it says."""
    voice, _, sent = spec.partition("/")
    text = SENTENCES[int(sent.removeprefix("s"))]
    if package == "espeak-ng":
        _run([_tool("espeak-ng"), "-v", voice, "-s", "150", "-w", str(out), text])
    elif package == "flite":
        _run([_tool("flite"), "-voice", voice, "-t", text, "-o", str(out)])
    else:
        raise RenderError(f"no speech renderer called {package!r}")


def melody(instrument: str, variant: str) -> mido.MidiFile:
    """A short deterministic tune for one instrument; the variant name seeds it."""
    rng = random.Random(f"{instrument}/{variant}")
    tpb = 480
    mid = mido.MidiFile(type=0, ticks_per_beat=tpb)
    track = mido.MidiTrack()
    mid.tracks.append(track)
    track.append(mido.MetaMessage("set_tempo", tempo=mido.bpm2tempo(rng.randint(84, 132))))
    if PROGRAMS[instrument] is None:
        return _drums(mid, track, rng, tpb)
    track.append(mido.Message("program_change", program=PROGRAMS[instrument], channel=0))
    lo, hi = RANGES.get(instrument, (48, 79))
    root = rng.randint(lo, lo + 11)
    scale = rng.choice(SCALES)
    pitches = [root + 12 * o + s for o in range(4) for s in scale if lo <= root + 12 * o + s <= hi]
    i = rng.randrange(len(pitches))
    beats = 0.0
    while beats < 16:
        dur = rng.choice((0.5, 0.5, 1.0, 1.0, 1.5, 2.0))
        i = min(max(i + rng.choice((-2, -1, -1, 1, 1, 2, 3)), 0), len(pitches) - 1)
        notes = [pitches[i]]
        if instrument in CHORDAL and rng.random() < 0.4:
            notes += [p for p in (pitches[i] - 3, pitches[i] - 7) if p >= lo - 12]
        vel = rng.randint(70, 105)
        for n in notes:
            track.append(mido.Message("note_on", note=n, velocity=vel, time=0))
        ticks = int(dur * tpb)
        for k, n in enumerate(notes):
            track.append(mido.Message("note_off", note=n, velocity=0, time=ticks if k == 0 else 0))
        beats += dur
    return mid


def _drums(mid: mido.MidiFile, track: mido.MidiTrack, rng: random.Random,
           tpb: int) -> mido.MidiFile:
    kick, snare, hat, crash = 36, 38, rng.choice((42, 46, 51)), 49
    step = tpb // 2
    for bar in range(6):
        for eighth in range(8):
            hits = [hat]
            if eighth in (0, 4) or (eighth == 5 and rng.random() < 0.4):
                hits.append(kick)
            if eighth in (2, 6) or (eighth == 7 and rng.random() < 0.25):
                hits.append(snare)
            if bar == 0 and eighth == 0:
                hits.append(crash)
            for n in hits:
                track.append(mido.Message("note_on", note=n, velocity=rng.randint(80, 115),
                                          channel=9, time=0))
            for k, n in enumerate(hits):
                track.append(mido.Message("note_off", note=n, velocity=0, channel=9,
                                          time=step if k == 0 else 0))
    return mid


def render_music(spec: str, soundfonts: dict[str, Path], out: Path) -> None:
    """spec is FONT/INSTRUMENT/VARIANT, e.g. TimGM6mb/violin/m1."""
    font, instrument, variant = spec.split("/")
    if font not in soundfonts:
        raise RenderError(f"sound font {font} was not fetched")
    with tempfile.TemporaryDirectory() as tmp:
        mid_path = Path(tmp) / "tune.mid"
        melody(instrument, variant).save(mid_path)
        # -g 1.0: fluidsynth's default gain (0.2) renders 14 dB too quietly.
        _run([_tool("fluidsynth"), "-ni", "-g", "1.0", "-r", "22050", "-F", str(out),
              str(soundfonts[font]), str(mid_path)])
