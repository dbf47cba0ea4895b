import os
from contextlib import contextmanager
from pathlib import Path

import av
import numpy as np
import pytest
import soundfile as sf
from conftest import SR, tone, write

from sonicaps.audio import AudioError, load_audio, stream_segments


def peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * SR / len(x))


@pytest.mark.parametrize("ext", ["wav", "flac", "ogg", "mp3"])
def test_formats_decode_to_16k_mono(tmp_path, ext):
    path = write(tmp_path / f"a.{ext}", tone(440, 3.0, sr=44_100, channels=2), sr=44_100)
    x = load_audio(path)
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) / SR - 3.0) < 0.1  # mp3 adds encoder padding
    assert abs(peak_hz(x) - 440) < 5


@pytest.mark.parametrize("start_s", [0.0, 3.3])
def test_an_mp3_decodes_as_in_one_read(tmp_path, start_s):
    """libsndfile decodes an mp3 as ffmpeg does only in its first read: every 10-s segment
    of a 30-s mp3 is that one read's decode (resampled), from any start."""
    path = write(tmp_path / "tone.mp3", tone(440, 30.0, sr=44_100, channels=2), sr=44_100)
    whole, sr = sf.read(str(path), dtype="float32", always_2d=True)
    from sonicaps.audio import _to_mono
    segments = list(stream_segments(path, start_s=start_s))
    assert [s.start_s for s in segments] == pytest.approx([start_s, start_s + 10, start_s + 20])
    for s in segments:
        at = int(round(s.start_s * sr))
        expected = _to_mono(whole[at: at + 10 * sr], sr, SR)
        np.testing.assert_allclose(s.audio[:len(expected)], expected, atol=1e-4)


def write_m4a(path: Path, x: np.ndarray) -> Path:
    """x: (samples, 2) at 48 kHz, AAC-encoded by PyAV (libsndfile cannot read it)."""
    with av.open(str(path), "w") as c:
        s = c.add_stream("aac", rate=48_000, layout="stereo")
        x = x.T.copy()
        for i in range(0, x.shape[1], 1024):
            frame = av.AudioFrame.from_ndarray(x[:, i:i + 1024], format="fltp", layout="stereo")
            frame.sample_rate = 48_000
            for p in s.encode(frame):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    return path


def test_m4a_goes_through_pyav(tmp_path):
    y = load_audio(write_m4a(tmp_path / "a.m4a", tone(1000, 2.0, sr=48_000, channels=2)))
    assert abs(len(y) / SR - 2.0) < 0.1
    assert abs(peak_hz(y) - 1000) < 5


def level(x: np.ndarray, hz: float, sr: int = SR) -> float:
    """Amplitude of the sine at hz in x (whatever x's length: a codec pads)."""
    return float(2 * np.abs(np.sum(x * np.exp(-2j * np.pi * hz * np.arange(len(x)) / sr))) / len(x))


@pytest.mark.parametrize("ext", ["wav", "m4a"])
def test_every_channel_is_heard(tmp_path, ext):
    """Channels are mixed down to mono, not dropped: a sound in the right channel only (a
    300 Hz tone, silence on the left) is heard, and two channels with different sounds
    (300 Hz left, 500 Hz right) give both, at the same level."""
    sr = 48_000 if ext == "m4a" else SR
    silent, left, right = np.zeros(2 * sr, np.float32), tone(300, 2.0, sr=sr), tone(500, 2.0, sr=sr)
    for name, x in (("right", np.stack([silent, left], axis=1)), ("both", np.stack([left, right], axis=1))):
        path = tmp_path / f"{name}.{ext}"
        y = load_audio(write_m4a(path, x) if ext == "m4a" else write(path, x, sr=sr))
        if name == "right":
            assert level(y, 300) > 0.1  # 0.15 for the mean of the channels; 0 if one were dropped
        else:
            assert level(y, 300) == pytest.approx(level(y, 500), rel=0.05) and level(y, 500) > 0.1


def test_eight_channels_and_8khz(tmp_path):
    eight = write(tmp_path / "eight.wav", tone(300, 1.0, channels=8))
    assert load_audio(eight).ndim == 1
    low = write(tmp_path / "low.wav", tone(300, 2.0, sr=8000), sr=8000)
    y = load_audio(low)
    assert abs(len(y) - 2 * SR) <= 1 and abs(peak_hz(y) - 300) < 5


def test_long_file_is_streamed_in_segments(tmp_path):
    path = write(tmp_path / "long.flac", tone(200, 35.3))
    segs = list(stream_segments(path, 10.0))
    assert [s.start_s for s in segs] == [0, 10, 20, 30]
    assert abs(segs[-1].end_s - 35.3) < 1e-3
    short_tail = write(tmp_path / "tail.wav", tone(200, 20.4))
    assert [s.start_s for s in stream_segments(short_tail, 10.0)] == [0, 10]  # 0.4-s tail dropped


def test_short_clip_kept(tmp_path):
    segs = list(stream_segments(write(tmp_path / "s.wav", tone(500, 0.3)), 10.0))
    assert len(segs) == 1 and abs(segs[0].end_s - 0.3) < 1e-3


def test_span_of_a_file(tmp_path):
    x = np.concatenate([tone(300, 5.0), tone(1200, 5.0)])
    path = write(tmp_path / "two.wav", x)
    y = load_audio(path, start_s=5.0, end_s=8.0)
    assert abs(len(y) / SR - 3.0) < 1e-3 and abs(peak_hz(y) - 1200) < 5


@pytest.mark.parametrize("make,expect", [
    (lambda p: p.write_bytes(b""), "empty file"),
    (lambda p: p.write_text("this is not audio at all\n" * 20), "not a decodable"),
    (lambda p: p.mkdir(), "is a directory"),
    (lambda p: sf.write(p, np.zeros((0,), np.float32), SR), "no audio samples"),
])
def test_bad_files_raise_clear_errors(tmp_path, make, expect):
    path = tmp_path / "bad.wav"
    make(path)
    with pytest.raises(AudioError, match=expect):
        list(stream_segments(path))


@contextmanager
def unprivileged():
    """Root reads files whatever their mode (CI runs as root): act as `nobody` meanwhile."""
    if os.geteuid() != 0:
        yield
        return
    import pwd

    nobody = pwd.getpwnam("nobody")
    os.setegid(nobody.pw_gid)
    os.seteuid(nobody.pw_uid)
    try:
        yield
    finally:
        os.seteuid(0)
        os.setegid(0)


def test_unreadable_file():
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:  # in /tmp: other users may enter it
        os.chmod(tmp, 0o755)
        path = write(Path(tmp) / "locked.wav", tone())
        path.chmod(0)
        with unprivileged(), pytest.raises(AudioError, match="locked.wav: permission denied"):
            list(stream_segments(path))
        if os.geteuid() == 0:  # root again: only the mode stopped `nobody`
            assert len(list(stream_segments(path))) == 1


def test_truncated_mp3_keeps_what_decodes_then_says_so(tmp_path):
    """An mp3 cut in half (an interrupted download): the half that decodes is yielded, then
    an error names the file and the loss (its header still declares 30 s)."""
    full = write(tmp_path / "full.mp3", tone(440, 30.0))
    assert sum(len(s.audio) for s in stream_segments(full, 10.0)) / SR == pytest.approx(30.0, abs=0.05)
    cut = tmp_path / "cut.mp3"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    segs = []
    with pytest.raises(AudioError, match=r"cut\.mp3: truncated: the audio stops at 1[45]\.\d s of the 30\.0"):
        for seg in stream_segments(cut, 10.0):
            segs.append(seg)
    assert [s.start_s for s in segs] == [0.0, 10.0]
    assert 13.0 < sum(len(s.audio) for s in segs) / SR < 15.5


def test_two_hour_file_streams_in_flat_memory(tmp_path):
    import tracemalloc

    path = tmp_path / "two_hours.wav"
    block = (tone(220, 60.0) * 32767).astype(np.int16)
    with sf.SoundFile(path, "w", SR, 1, subtype="PCM_16") as f:
        for _ in range(120):
            f.write(block)
    tracemalloc.start()
    n = 0
    for seg in stream_segments(path, 10.0):
        n += 1
        assert len(seg.audio) == 10 * SR
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert n == 720
    assert peak < 20e6  # a whole decode would need 460 MB of float32


@pytest.mark.parametrize("ext,expect", [
    ("wav", r"cut\.wav: truncated: the audio stops at 15\.0 s of the 30\.0 s its header declares"),
    ("ogg", r"cut\.ogg: truncated: the Ogg stream stops at \d+\.\d s without its end-of-stream page"),
    ("flac", r"cut\.flac: truncated: the audio stops at 1\d\.\d s of the 30\.0 s its header declares"),
])
def test_cut_wav_ogg_flac_keep_what_decodes_then_say_so(tmp_path, ext, expect):
    """libsndfile reads a cut wav or ogg short without a word (it trusts the file's size):
    the wav's data chunk and the Ogg end-of-stream page tell, and the loss is reported."""
    full = write(tmp_path / f"full.{ext}", tone(440, 30.0))
    assert sum(len(s.audio) for s in stream_segments(full)) / SR == pytest.approx(30.0, abs=0.05)
    cut = tmp_path / f"cut.{ext}"
    cut.write_bytes(full.read_bytes()[: full.stat().st_size // 2])
    segs = []
    with pytest.raises(AudioError, match=expect):
        for seg in stream_segments(cut, 10.0):
            segs.append(seg)
    assert segs and segs[0].start_s == 0.0  # what decoded before the cut is kept


def test_header_without_its_samples_says_truncated(tmp_path):
    import struct

    path = tmp_path / "lies.wav"  # a 44-byte header declaring 10 s of 16-bit mono
    path.write_bytes(b"RIFF" + struct.pack("<I", 36 + 320_000) + b"WAVEfmt "
                     + struct.pack("<IHHIIHH", 16, 1, 1, SR, SR * 2, 2, 16) + b"data"
                     + struct.pack("<I", 320_000))
    with pytest.raises(AudioError, match=r"lies\.wav: truncated: no samples of the 10\.0 s"):
        list(stream_segments(path))


def test_broken_and_looping_symlinks_are_named(tmp_path):
    (tmp_path / "loop.wav").symlink_to("loop.wav")
    (tmp_path / "dangling.wav").symlink_to("gone.wav")
    with pytest.raises(AudioError, match=r"loop\.wav: symlink loop"):
        list(stream_segments(tmp_path / "loop.wav"))
    with pytest.raises(AudioError, match=r"dangling\.wav: broken symlink \(its target gone\.wav"):
        list(stream_segments(tmp_path / "dangling.wav"))


@pytest.mark.parametrize("ext", ["wav", "mp3"])
def test_spans_outside_the_file(tmp_path, ext):
    """A span the file does not hold is an error naming it, not a silent other span."""
    path = write(tmp_path / f"twelve.{ext}", tone(300, 12.0))
    with pytest.raises(ValueError, match="start_s must be a time >= 0"):
        list(stream_segments(path, start_s=-3.0, end_s=5.0))
    with pytest.raises(ValueError, match="start_s must be a time >= 0"):
        list(stream_segments(path, start_s=float("nan")))
    with pytest.raises(ValueError, match="must be a time after start_s"):
        list(stream_segments(path, start_s=8.0, end_s=3.0))
    with pytest.raises(AudioError, match=r"twelve\.\w+: .*(past the end)"):
        list(stream_segments(path, start_s=100.0, end_s=110.0))
    segs = []
    with pytest.raises(AudioError, match=r"ends at 60 s, past the end of the audio at 12\.\d s"):
        for seg in stream_segments(path, start_s=5.0, end_s=60.0, check_end=True):
            segs.append(seg)
    assert segs and segs[0].start_s == pytest.approx(5.0, abs=0.1)
    # without check_end (load_audio's callers), the part that exists is simply returned
    assert len(load_audio(path, start_s=5.0, end_s=60.0)) / SR == pytest.approx(7.0, abs=0.1)


def test_flac_cut_in_its_leading_silence_says_truncated(tmp_path):
    """libsndfile fails on a FLAC file cut 200 bytes in; ffmpeg, the fallback, decodes the
    eight frames of leading silence those bytes hold and stops without a word: the clip
    was captioned "Silence" with no record of the other 9.3 s (found by
    benchmarks/crash_safety.py). The stream's declared length tells."""
    x = np.zeros((441_000, 2), np.float32)  # 10 s, 44.1 kHz stereo, silent for 2 s
    x[88_200:] = 0.3 * np.sin(np.arange(441_000 - 88_200) * 2 * np.pi * 440 / 44_100)[:, None]
    sf.write(tmp_path / "full.flac", x, 44_100)
    cut = tmp_path / "cut.flac"
    cut.write_bytes((tmp_path / "full.flac").read_bytes()[:200])
    segs = []
    with pytest.raises(AudioError, match=r"cut\.flac: truncated: the audio stops at 0\.\d s of the 10\.0 s"):
        for seg in stream_segments(cut):
            segs.append(seg)
    assert segs and not np.any(segs[0].audio)  # the silence that is there is kept


def _music_flac(path: Path, seconds: float = 30.0) -> Path:
    """44.1-kHz stereo FLAC with a changing signal (a cut lands mid-frame, as in real files)."""
    rng = np.random.default_rng(0)
    t = np.arange(int(seconds * 44_100)) / 44_100
    x = 0.3 * np.sin(2 * np.pi * 440 * t) * (1 + 0.5 * np.sin(2 * np.pi * 0.5 * t))
    x = (x + 0.05 * rng.standard_normal(len(t))).astype(np.float32)
    sf.write(path, np.stack([x, x[::-1]], 1), 44_100)
    return path


@pytest.mark.parametrize("decoder", ["soundfile", "pyav"])
@pytest.mark.parametrize("fraction,clips", [(0.4, 2), (0.1, 1)])
def test_flac_cut_mid_stream_keeps_its_decodable_clips(tmp_path, monkeypatch, decoder, fraction, clips):
    """A FLAC cut at 40 % decodes to about 12 s before both decoders fail ("lost sync";
    ffmpeg's avcodec_send_packet); at 10 %, to 3 s, less than one clip, and the whole file
    was lost as "not a decodable audio file". What decodes is kept, the loss named."""
    import sonicaps.audio as audio

    if decoder == "pyav":  # as for a format libsndfile does not read
        monkeypatch.setattr(audio, "_blocks_soundfile", lambda *a: (_ for _ in ()).throw(RuntimeError("no")))
    full = _music_flac(tmp_path / "full.flac")
    cut = tmp_path / "cut.flac"
    cut.write_bytes(full.read_bytes()[: int(full.stat().st_size * fraction)])
    segs = []
    expect = r"cut\.flac: truncated.*: the audio stops at \d+\.\d s of the 30\.0 s its header declares \("
    with pytest.raises(AudioError, match=expect):
        for seg in stream_segments(cut, 10.0):
            segs.append(seg)
    assert len(segs) == clips and segs[0].start_s == 0.0
    kept = sum(len(s.audio) for s in segs) / SR
    assert 30 * fraction - 1.0 < kept <= 30 * fraction


def test_pipeline_keeps_a_cut_flac_s_clips_and_records_the_loss(tmp_path, backends):
    import pandas as pd

    from sonicaps.pipeline.config import PipelineConfig
    from sonicaps.pipeline.runner import run
    from sonicaps.pipeline.store import Store

    full = _music_flac(tmp_path / "full.flac")
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "cut.flac").write_bytes(full.read_bytes()[: int(full.stat().st_size * 0.4)])
    run([tmp_path / "in"], tmp_path / "out", PipelineConfig(), backends=backends, progress=False)
    assert sorted(pd.read_parquet(tmp_path / "out")["id"]) == ["cut_0_10", "cut_10_11.75"]
    [fail] = Store(tmp_path / "out").read_failures()
    assert fail["id"] is None and fail["stage"] == "decode" and "truncated" in fail["message"]
