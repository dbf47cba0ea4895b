"""Write small General-MIDI files with raw bytes (no mido) and render them with fluidsynth."""
import os, struct, subprocess, sys, time, random
import numpy as np, soundfile as sf

OUT = "/tmp/scenecaps_research/gen/music"
R = "/tmp/scenecaps_research/cache/root"
SF2 = "/tmp/scenecaps_research/cache/pkgs/fluid-soundfont-gm/usr/share/sounds/sf2/FluidR3_GM.sf2"
TPQ = 480

def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    return bytes(reversed(out))

def smf(events, tempo_bpm=100):
    """events: list of (tick, bytes) absolute; returns a format-0 SMF."""
    tr = bytearray()
    tr += vlq(0) + b"\xff\x51\x03" + struct.pack(">I", int(60e6 / tempo_bpm))[1:]
    last = 0
    for t, ev in sorted(events, key=lambda e: (e[0], e[1][0] & 0xF0 != 0x80)):
        tr += vlq(t - last) + ev
        last = t
    tr += vlq(TPQ * 2) + b"\xff\x2f\x00"
    return b"MThd" + struct.pack(">IHHH", 6, 0, 1, TPQ) + b"MTrk" + struct.pack(">I", len(tr)) + bytes(tr)

def melody(program, ch=0, notes=(60, 62, 64, 65, 67, 69, 71, 72, 67, 64, 60), dur=1, vel=100, chord=False):
    ev = [(0, bytes([0xC0 | ch, program]))]
    t = 0
    for n in notes:
        ns = [n, n + 4, n + 7] if chord else [n]
        for x in ns:
            ev.append((t, bytes([0x90 | ch, x, vel])))
            ev.append((t + int(TPQ * dur * 0.95), bytes([0x80 | ch, x, 0])))
        t += int(TPQ * dur)
    return ev

def drums():
    ch = 9
    ev = []
    for bar in range(4):
        for step in range(8):
            t = (bar * 8 + step) * TPQ // 2
            ev.append((t, bytes([0x99, 42, 80])))            # closed hi-hat
            ev.append((t + 100, bytes([0x89, 42, 0])))
            if step in (0, 4):
                ev.append((t, bytes([0x99, 36, 110]))); ev.append((t + 100, bytes([0x89, 36, 0])))
            if step in (2, 6):
                ev.append((t, bytes([0x99, 38, 105]))); ev.append((t + 100, bytes([0x89, 38, 0])))
    ev.append((32 * TPQ // 2, bytes([0x99, 49, 110]))); ev.append((32 * TPQ // 2 + 100, bytes([0x89, 49, 0])))
    return ev

PIECES = {
    "piano": melody(0, chord=False),
    "piano_chords": melody(0, notes=(48, 53, 55, 48, 57, 53, 55, 48), dur=2, chord=True),
    "acoustic_guitar": melody(25, notes=(52, 55, 59, 64, 59, 55, 52, 57, 60, 64), dur=1),
    "violin": melody(40, notes=(67, 69, 71, 72, 74, 72, 71, 69, 67), dur=1.5),
    "cello": melody(42, notes=(36, 43, 48, 47, 45, 43, 41, 40), dur=1.5),
    "trumpet": melody(56, notes=(60, 64, 67, 72, 67, 64, 60, 67, 72), dur=1),
    "flute": melody(73, notes=(72, 74, 76, 77, 79, 77, 76, 74, 72), dur=1),
    "saxophone": melody(65, notes=(58, 61, 63, 65, 68, 65, 63, 61, 58), dur=1),
    "church_organ": melody(19, notes=(48, 53, 55, 48), dur=4, chord=True),
    "accordion": melody(21, notes=(60, 64, 67, 65, 62, 60, 64, 67), dur=1, chord=True),
    "harp": melody(46, notes=(48, 52, 55, 60, 64, 67, 72, 76, 79, 84), dur=0.5),
    "drum_kit": drums(),
}

if __name__ == "__main__":
    env = dict(os.environ, LD_LIBRARY_PATH=f"{R}/usr/lib/x86_64-linux-gnu")
    gains = [float(g) for g in sys.argv[1:]] or [1.0]
    rows = []
    for name, ev in PIECES.items():
        mid = f"{OUT}/{name}.mid"
        open(mid, "wb").write(smf(ev))
        for g in gains:
            wav = f"{OUT}/{name}_g{g}.wav"
            t0 = time.time()
            p = subprocess.run([f"{R}/usr/bin/fluidsynth", "-ni", "-g", str(g), "-F", wav, "-r", "44100", SF2, mid],
                               env=env, capture_output=True, text=True)
            dt = time.time() - t0
            x, sr = sf.read(wav)
            m = x.mean(1) if x.ndim > 1 else x
            nz = np.abs(m) > 1e-4
            act = m[nz] if nz.any() else m
            rms = 20 * np.log10(np.sqrt(np.mean(m ** 2)) + 1e-12)
            rms_act = 20 * np.log10(np.sqrt(np.mean(act ** 2)) + 1e-12)
            peak = 20 * np.log10(np.abs(x).max() + 1e-12)
            rows.append((name, g, p.returncode, round(len(x) / sr, 2), sr, x.shape[1] if x.ndim > 1 else 1,
                         round(rms, 1), round(rms_act, 1), round(peak, 1), round(dt, 2)))
    print("name\tgain\trc\tdur_s\tsr\tch\trms_dbfs\trms_active_dbfs\tpeak_dbfs\trender_s")
    for r in rows:
        print("\t".join(map(str, r)))
