"""Every sentence of a corpus counted into 1..n-grams once, shared by BLEU and CIDEr-D.

Both metrics start from n-gram counts of the candidates and references. In the compiled
path (_coco.pyx) the sentences become corpus-wide n-gram ids in one pass; the Python path
keeps what pycocoevalcap's precook keeps, a dictionary per sentence. Either way each
sentence's n-grams come in the order the sentence first shows them (by length, then
position), the order in which the reference implementation sums.
"""

from __future__ import annotations

from dataclasses import dataclass
from itertools import accumulate

import numpy as np

try:  # BLEU, CIDEr-D and ROUGE-L in C; absent when sonicaps was installed without a compiler
    from sonicaps.metrics import _coco as compiled
except ImportError:
    compiled = None

MAX_N = 4


def sentence_ngrams(text: str, n: int) -> tuple[int, dict[tuple[str, ...], int]]:
    """(words, counts of its 1..n-grams in first-occurrence order), words split as str.split()."""
    words = text.split()
    counts: dict[tuple[str, ...], int] = {}
    for k in range(1, n + 1):
        for i in range(len(words) - k + 1):
            gram = tuple(words[i:i + k])
            counts[gram] = counts.get(gram, 0) + 1
    return len(words), counts


@dataclass
class CorpusNgrams:
    """Candidates are sentences 0..items-1; the references follow, item by item, item i's
    being references ref_off[i]:ref_off[i + 1]."""

    items: int
    ref_off: np.ndarray  # int64, items + 1
    n: int
    table: object  # compiled.Ngrams, or per sentence sentence_ngrams(...) (Python path)
    words: object = None  # compiled.Words of the sentences (compiled path), which ROUGE-L reuses

    @property
    def compiled(self) -> bool:
        return not isinstance(self.table, list)

    def python_table(self) -> list[tuple[int, dict[tuple[str, ...], int]]]:
        if self.compiled:
            raise TypeError("this table is the compiled one")
        return self.table


def layout(candidates: list[str], references: list[list[str]]) -> tuple[list[str], np.ndarray]:
    """The corpus' sentences, candidates first, and where each item's references start
    among the references (int64, items + 1)."""
    if len(candidates) != len(references):
        raise ValueError(f"{len(candidates)} candidates but {len(references)} reference lists")
    sentences = [*candidates, *(r for refs in references for r in refs)]
    ref_off = np.fromiter(accumulate((len(refs) for refs in references), initial=0), dtype=np.int64,
                          count=len(references) + 1)
    return sentences, ref_off


def count_corpus(candidates: list[str], references: list[list[str]], n: int = MAX_N,
                 python: bool = False) -> CorpusNgrams:
    """Count every sentence once (python=True: the pure-Python path even where the
    extension is built, for tests)."""
    sentences, ref_off = layout(candidates, references)
    if compiled is not None and not python:
        words = compiled.words(sentences)
        return CorpusNgrams(len(candidates), ref_off, n, compiled.ngrams(words, n), words)
    return CorpusNgrams(len(candidates), ref_off, n, [sentence_ngrams(text, n) for text in sentences])
