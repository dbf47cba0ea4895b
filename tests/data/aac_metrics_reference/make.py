"""Record aac-metrics 0.5.5's outputs on AudioCaps captions with tiny random models, for the
parity tests in tests/test_aac_metrics_parity.py.

Runs in a scratch environment, never in sonicaps' own (aac-metrics must not become a
dependency). Set up as follows (the order keeps pip from pulling a CUDA torch):

    python3.11 -m venv venv
    venv/bin/pip install torch==2.13.0
    venv/bin/pip install --no-deps aac-metrics==0.5.5 msclap==1.3.4 torchlibrosa
    venv/bin/pip install numpy packaging pyyaml sentence-transformers==6.3.0 torchmetrics==1.9.0 \
        tqdm transformers==5.25.0 tokenizers==0.23.3 librosa pycocoevalcap==1.2 torch==2.13.0
    venv/bin/python tests/data/aac_metrics_reference/make.py --cache /tmp/aac-cache

What is patched in aac-metrics, and why (nothing that computes a score):
- Its Java check accepts only Java 8-13; Debian 12 has 17, which runs the PTB tokenizer jar
  unchanged. The jar itself is copied from the pycocoevalcap wheel (aac-metrics would
  download the same file from GitHub).
- SPICE needs Stanford CoreNLP 3.6.0, which cannot be had here: stand_in.py replaces it on
  both sides (see there).
- msclap 1.3.4 imports torchaudio (only for audio input, unused by the text method; no
  torchaudio build matches torch 2.13) and calls tokenizer.encode_plus, which transformers 5
  removed: torchaudio is stubbed and encode_plus maps to __call__ (what it did in 4.x).

The tiny models are random, seeded, and saved under models/ (about 0.7 MB), so the tests
load the very same weights: a BERT error detector in FENSE's checkpoint layout, a
sentence-transformers SBERT, a RoBERTa for BERTScore and an MS-CLAP 2023 text tower (GPT-2
+ projection) in msclap's checkpoint layout. Tokenizers are trained here on the AudioCaps
captions. The error detector's "error" output is scaled so that some captions pass FENSE's
0.9 and MACE's 0.97 thresholds and others do not, none within 1e-3 of either.
"""

from __future__ import annotations

import argparse
import csv
import json
import shutil
import sys
import types
from functools import partial
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
MODELS = HERE / "models"
AUDIOCAPS = HERE.parents[3] / "shared" / "data" / "audiocaps" / "val.csv"
# Tiny sizes: hidden 32, one layer; vocabularies trained below.
HIDDEN, VOCAB = 32, 1000
# FENSE and MACE thresholds on the "error" probability, as logits.
FENSE_LOGIT, MACE_LOGIT = 2.1972245773362196, 3.4760986898352724  # logit(0.9), logit(0.97)


def load_corpus() -> tuple[list[str], list[list[str]], list[list[str]]]:
    """AudioCaps val: per clip, caption 1 is the candidate, the rest the references; the
    candidates for SPIDEr-max are caption 1 of this clip and of two others."""
    by_clip: dict[str, list[str]] = {}
    with open(AUDIOCAPS, newline="", encoding="utf-8") as f:
        for row in csv.DictReader(f):
            by_clip.setdefault(row["youtube_id"], []).append(row["caption"])
    clips = [c for c in by_clip.values() if len(c) >= 2]
    candidates = [c[0] for c in clips]
    references = [c[1:] for c in clips]
    # Edge cases: an empty and a punctuation-only candidate, a repeated word.
    candidates[:3] = ["", "...", "dog dog dog dog barks barks"]
    n = len(clips)
    mult = [[candidates[i], candidates[(i + 1) % n], candidates[(i + 7) % n]] for i in range(n)]
    return candidates, references, mult


def train_tokenizers(texts: list[str]) -> None:
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import BertTokenizerFast, GPT2TokenizerFast, RobertaTokenizerFast

    # WordPiece, lower-cased, as bert-base-uncased (the error detector) and TinyBERT.
    wp = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    wp.normalizer = normalizers.BertNormalizer(lowercase=True)
    wp.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    wp.train_from_iterator(texts, trainers.WordPieceTrainer(
        vocab_size=VOCAB, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], show_progress=False))
    vocab = sorted(wp.get_vocab().items(), key=lambda kv: kv[1])
    (MODELS / "wordpiece").mkdir(parents=True, exist_ok=True)
    (MODELS / "wordpiece" / "vocab.txt").write_text("".join(t + "\n" for t, _ in vocab), encoding="utf-8")
    bert_tok = BertTokenizerFast(vocab_file=str(MODELS / "wordpiece" / "vocab.txt"), do_lower_case=True)

    # Byte-level BPE, as RoBERTa and GPT-2. GPT-2's "!" has id 0, which msclap relies on
    # (it pads with "!" and finds the last token by counting ids != 0).
    bpe = Tokenizer(models.BPE())
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.train_from_iterator(texts, trainers.BpeTrainer(
        vocab_size=VOCAB, show_progress=False, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    trained = json.loads(bpe.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in trained["merges"]]
    tokens = sorted(trained["vocab"], key=trained["vocab"].get)
    tokens.remove("!")
    gpt2_vocab = {t: i for i, t in enumerate(["!"] + tokens + ["<|endoftext|>"])}
    gpt2_tok = GPT2TokenizerFast(vocab=gpt2_vocab, merges=merges, model_max_length=1024)
    specials = ["<s>", "<pad>", "</s>", "<unk>"]
    roberta_vocab = {t: i for i, t in enumerate(specials + ["!"] + tokens + ["<mask>"])}
    roberta_tok = RobertaTokenizerFast(vocab=roberta_vocab, merges=merges, model_max_length=512)
    del decoders, processors
    return bert_tok, gpt2_tok, roberta_tok


def build_models(texts: list[str]) -> None:
    from sentence_transformers import SentenceTransformer
    from sentence_transformers import models as st_models
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model, RobertaConfig, RobertaModel

    if MODELS.exists():
        shutil.rmtree(MODELS)
    MODELS.mkdir(parents=True)
    bert_tok, gpt2_tok, roberta_tok = train_tokenizers(texts)
    shutil.rmtree(MODELS / "wordpiece")

    def bert(seed: int) -> BertModel:
        torch.manual_seed(seed)
        return BertModel(BertConfig(vocab_size=len(bert_tok), hidden_size=HIDDEN, num_hidden_layers=1,
                                    num_attention_heads=2, intermediate_size=64, max_position_embeddings=128))

    # FENSE's error detector: BERTFlatClassifier's state (encoder.*, clf.*) in a checkpoint
    # {"model_type", "num_classes", "state_dict"}, as the published .ckpt files; model_type
    # names the encoder folder beside it (bert-base-uncased in the published one).
    encoder_dir = MODELS / "echecker-bert"
    encoder = bert(1)
    encoder.save_pretrained(encoder_dir)
    bert_tok.save_pretrained(encoder_dir)
    torch.manual_seed(2)
    clf = torch.nn.Linear(HIDDEN, 6)
    state = {f"encoder.{k}": v for k, v in encoder.state_dict().items()}
    # The published checkpoints come from transformers < 4.31 and carry position_ids.
    state["encoder.embeddings.position_ids"] = torch.arange(128).unsqueeze(0)
    with torch.no_grad():
        # A random 1-layer BERT's [CLS] output varies little between captions: the "error"
        # row reads its main direction of variation, scaled to a logit spread of about 2.
        cls = _echecker_cls(encoder, bert_tok, texts)
        centred = cls - cls.mean(0)
        direction = torch.linalg.svd(centred, full_matrices=False).Vh[0]
        clf.weight[5] = direction * 2.0 / (centred @ direction).std()
        clf.bias[5] = 0.0
        logits = cls @ clf.weight[5]
        clf.bias[5] = FENSE_LOGIT + 0.7 - logits.median()
        for _ in range(100):  # nudge until no caption sits within 1e-3 of a threshold
            logits = cls @ clf.weight[5] + clf.bias[5]
            if min((logits - FENSE_LOGIT).abs().min(), (logits - MACE_LOGIT).abs().min()) > 1e-3:
                break
            clf.bias[5] += 0.0101
        else:
            raise RuntimeError("could not place the error logits away from the thresholds")
    state.update({f"clf.{k}": v for k, v in clf.state_dict().items()})
    torch.save({"model_type": "echecker-bert", "num_classes": 6, "state_dict": state},
               MODELS / "echecker_tiny.ckpt")

    # SBERT: BERT + mean pooling, as paraphrase-TinyBERT-L6-v2.
    sbert_dir = MODELS / "sbert"
    bert(3).save_pretrained(sbert_dir / "bert")
    bert_tok.save_pretrained(sbert_dir / "bert")
    word = st_models.Transformer(str(sbert_dir / "bert"), max_seq_length=128)
    SentenceTransformer(modules=[word, st_models.Pooling(HIDDEN, "mean")], device="cpu").save(str(sbert_dir))
    shutil.rmtree(sbert_dir / "bert")

    # RoBERTa for BERTScore (roberta-large in aac-metrics' default).
    torch.manual_seed(4)
    roberta = RobertaModel(RobertaConfig(vocab_size=len(roberta_tok), hidden_size=HIDDEN, num_hidden_layers=2,
                                         num_attention_heads=2, intermediate_size=64,
                                         max_position_embeddings=130,
                                         pad_token_id=roberta_tok.pad_token_id), add_pooling_layer=False)
    roberta.save_pretrained(MODELS / "roberta")
    roberta_tok.save_pretrained(MODELS / "roberta")

    # MS-CLAP 2023's text tower: GPT-2 + Projection, saved as msclap's checkpoint
    # {"model": state_dict} with the caption encoder's keys only (msclap loads it with
    # strict=False; the audio tower is not used by the text method). The folder name holds
    # "gpt" since msclap picks GPT-2's last-token pooling by that substring.
    torch.manual_seed(5)
    gpt2 = GPT2Model(GPT2Config(vocab_size=len(gpt2_tok), n_embd=HIDDEN, n_layer=1, n_head=2, n_positions=80,
                                bos_token_id=gpt2_tok.eos_token_id, eos_token_id=gpt2_tok.eos_token_id))
    clap_dir = MODELS / "msclap"
    gpt2.save_pretrained(clap_dir / "gpt2")
    gpt2_tok.save_pretrained(clap_dir / "gpt2")
    torch.manual_seed(6)
    proj = {"linear1.weight": torch.randn(16, HIDDEN) * 0.3, "linear2.weight": torch.randn(16, 16) * 0.3,
            "layer_norm.weight": 1 + 0.1 * torch.randn(16), "layer_norm.bias": 0.1 * torch.randn(16)}
    state = {f"caption_encoder.base.{k}": v for k, v in gpt2.state_dict().items()}
    state.update({f"caption_encoder.projection.{k}": v for k, v in proj.items()})
    state["logit_scale"] = torch.tensor(2.6592600345611572)
    torch.save({"model": state}, clap_dir / "CLAP_weights_2023.pth")


def _echecker_cls(encoder, tok, texts: list[str]) -> torch.Tensor:
    import re

    clean = [re.sub(r"[^\w\s]", "", t).lower() for t in texts]
    batch = tok(clean, truncation=True, padding="max_length", max_length=64, return_tensors="pt")
    encoder.eval()
    return encoder(**batch).last_hidden_state[:, 0, :]


def patch_aac_metrics(cache: Path) -> None:
    import aac_metrics.utils.tokenization as tokenization
    from pycocoevalcap.tokenizer import ptbtokenizer

    jar = cache / "aac-metrics" / "stanford_nlp" / "stanford-corenlp-3.4.1.jar"
    jar.parent.mkdir(parents=True, exist_ok=True)
    if not jar.exists():
        shutil.copy(Path(ptbtokenizer.__file__).parent / "stanford-corenlp-3.4.1.jar", jar)
    tokenization.check_java_path = lambda _path: True

    import aac_metrics.functional  # noqa: F401
    from stand_in import spice_items

    # The package's __init__ binds the name `spider` to the function, hiding the module.
    spider_module = sys.modules["aac_metrics.functional.spider"]

    def spice(candidates, mult_references, return_all_scores=True, **_kwargs):
        scores = torch.tensor(spice_items(candidates, mult_references), dtype=torch.float64)
        return {"spice": scores.mean()}, {"spice": scores}

    spider_module.spice = spice


def load_msclap():
    """msclap's CLAPWrapper with the tiny checkpoint and a config naming the tiny text model."""
    import re

    import yaml
    from msclap.CLAPWrapper import CLAPWrapper

    config = yaml.safe_load((Path(sys.modules["msclap.CLAPWrapper"].__file__).parent
                             / "configs" / "config_2023.yml").read_text())
    config.update(text_model=str(MODELS / "msclap" / "gpt2"), transformer_embed_dim=HIDDEN, d_proj=16)
    wrapper = CLAPWrapper.__new__(CLAPWrapper)
    wrapper.np_str_obj_array_pattern = re.compile(r"[SaUO]")
    wrapper.default_collate_err_msg_format = "default_collate: {}"
    wrapper.config_as_str = yaml.safe_dump(config)
    wrapper.model_fp, wrapper.use_cuda = str(MODELS / "msclap" / "CLAP_weights_2023.pth"), False
    wrapper.clap, wrapper.tokenizer, wrapper.args = wrapper.load_clap()
    wrapper.tokenizer.encode_plus = lambda text, **kw: wrapper.tokenizer(text, **kw)
    return wrapper


def as_lists(outs: tuple[dict, dict]) -> dict:
    corpus, sents = outs
    return {"corpus": {k: float(v) for k, v in corpus.items()},
            "per_item": {k: [float(x) for x in torch.as_tensor(v).reshape(-1)] for k, v in sents.items()}}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--cache", type=Path, required=True, help="aac-metrics' cache folder (jars go there)")
    args = p.parse_args()
    sys.path.insert(0, str(HERE))
    torch.set_num_threads(1)
    import torchmetrics.functional.text  # noqa: F401  (imports transformers before the stub below exists)

    # See the docstring: msclap imports torchaudio, which the text method never uses.
    stub = types.ModuleType("torchaudio")
    stub.transforms = types.ModuleType("torchaudio.transforms")
    sys.modules.setdefault("torchaudio", stub)
    sys.modules.setdefault("torchaudio.transforms", stub.transforms)

    import aac_metrics
    import sentence_transformers
    import torchmetrics
    import transformers
    from aac_metrics.functional import (
        bert_score_mrefs,
        bleu,
        clap_sim,
        fense,
        fer,
        mace,
        sbert_sim,
        spider_fl,
        spider_max,
        vocab,
    )
    from aac_metrics.functional.fer import BERTFlatClassifier
    from aac_metrics.utils.tokenization import preprocess_mono_sents, preprocess_mult_sents
    from sentence_transformers import SentenceTransformer
    from transformers import AutoModel, AutoTokenizer

    candidates, references, mult = load_corpus()
    build_models(candidates + [r for refs in references for r in refs])
    patch_aac_metrics(args.cache)
    tok = partial(preprocess_mono_sents, cache_path=str(args.cache))
    tok_c = tok(candidates)
    tok_r = preprocess_mult_sents(references, cache_path=str(args.cache))
    tok_m = preprocess_mult_sents(mult, cache_path=str(args.cache))

    # The error detector through aac-metrics' own checkpoint loading (BERTFlatClassifier +
    # the position_ids fix); model_type resolves against models/.
    ckpt = torch.load(MODELS / "echecker_tiny.ckpt")
    echecker = BERTFlatClassifier(model_type=str(MODELS / ckpt["model_type"]),
                                  num_classes=ckpt["num_classes"])
    state = dict(ckpt["state_dict"])
    state.pop("encoder.embeddings.position_ids")
    echecker.load_state_dict(state)
    echecker.eval()
    echecker_tok = AutoTokenizer.from_pretrained(MODELS / ckpt["model_type"])
    models = {"echecker": echecker, "echecker_tokenizer": echecker_tok, "device": "cpu"}
    sbert = SentenceTransformer(str(MODELS / "sbert"), device="cpu")
    roberta = AutoModel.from_pretrained(MODELS / "roberta")
    roberta_tok = AutoTokenizer.from_pretrained(MODELS / "roberta")
    clap = load_msclap()

    out: dict = {
        "versions": {"aac-metrics": aac_metrics.__version__, "torch": torch.__version__,
                     "transformers": transformers.__version__, "torchmetrics": torchmetrics.__version__,
                     "sentence-transformers": sentence_transformers.__version__},
        "source": "AudioCaps val (MIT licence, AudioCaps authors): ../../../../shared/data/audiocaps/val.csv",
        "candidates": candidates, "references": references, "mult_candidates": mult,
        "tokenized": {"candidates": tok_c, "references": tok_r, "mult_candidates": tok_m},
        "metrics": {},
    }
    m = out["metrics"]
    for n in range(1, 7):
        m[f"bleu_{n}"] = as_lists(bleu(tok_c, tok_r, n=n))
    m["vocab"] = as_lists(vocab(tok_c, tok_r))
    m["spider_max"] = as_lists(spider_max(tok_m, tok_r))
    m["spider_fl"] = as_lists(spider_fl(tok_c, tok_r, **models))
    m["fer"] = as_lists(fer(tok_c, return_probs=True, **models))
    m["sbert_sim"] = as_lists(sbert_sim(tok_c, tok_r, sbert_model=sbert, device="cpu"))
    m["fense"] = as_lists(fense(tok_c, tok_r, sbert_model=sbert, **models))
    m["bert_score"] = as_lists(bert_score_mrefs(tok_c, tok_r, model=roberta, tokenizer=roberta_tok,
                                                device="cpu"))
    m["clap_sim"] = as_lists(clap_sim(tok_c, tok_r, clap_model=clap, device="cpu"))
    m["mace"] = as_lists(mace(tok_c, tok_r, clap_model=clap, **models))
    (HERE / "reference.json").write_text(json.dumps(out, indent=0) + "\n", encoding="utf-8")
    # Weights only aac-metrics' loaders needed (they load the base model, then the
    # checkpoint over it); sonicaps builds those models from their configs.
    for extra in ("echecker-bert/model.safetensors", "msclap/gpt2/model.safetensors", "sbert/README.md"):
        (MODELS / extra).unlink()
    fer_items = m["fer"]["per_item"]["fer"]
    print(f"{len(candidates)} items; FER {sum(fer_items)}/{len(fer_items)} flagged; "
          f"MACE flags {sum(m['mace']['per_item']['fer'])}; "
          f"models {sum(f.stat().st_size for f in MODELS.rglob('*') if f.is_file()) / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
