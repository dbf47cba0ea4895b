"""What the reviews add up to: the reviewed captions (export) and review statistics.

Both stream the reviews in catalog order, one item's decisions at a time.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sonicaps.review.collection import Collection
from sonicaps.review.reviews import ACTIONS, current_reviews

EXPORT_COLUMNS = ["id", "item", "caption", "status", "machine_caption", "reviewer", "reviewed_at"]


def _by_item(collection: Collection, reviewer: str | None) -> Iterator[list[dict[str, Any]]]:
    """Each reviewed item's current decisions (one per reviewer)."""
    for _, group in itertools.groupby(current_reviews(collection.con, reviewer), key=lambda r: r["pos"]):
        yield list(group)


def export_reviewed(collection: Collection, dest: str | Path, fmt: str = "csv",
                    reviewer: str | None = None) -> tuple[Path, int]:
    """Write the accepted and edited captions to dest/reviewed_captions.<fmt>.

    An item's decision is its most recent one among the reviewers (or `reviewer`'s);
    rejected items are left out. Returns the file and the rows written."""
    if fmt not in ("csv", "jsonl"):
        raise ValueError(f"unknown export format {fmt!r}; expected csv or jsonl")
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"reviewed_captions.{fmt}"
    n = 0
    with open(path, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f) if fmt == "csv" else None
        if writer:
            writer.writerow(EXPORT_COLUMNS)
        for decisions in _by_item(collection, reviewer):
            last = max(decisions, key=lambda r: r["id"])
            if last["action"] == "reject":
                continue
            row = [last["clip"], last["item"], last["caption"], last["action"], last["machine_caption"],
                   last["reviewer"], round(last["created_at"], 3)]
            if writer:
                writer.writerow(row)
            else:
                f.write(json.dumps(dict(zip(EXPORT_COLUMNS, row, strict=True)), ensure_ascii=False) + "\n")
            n += 1
    return path, n


def word_edit_distance(a: str, b: str) -> int:
    """Levenshtein distance in words (lower-cased, punctuation dropped)."""
    from rapidfuzz.distance import Levenshtein

    from sonicaps.curate.text import words

    return Levenshtein.distance(words(a), words(b))


def cohen_kappa(pairs: Counter) -> float:
    """Cohen's kappa from counts of (decision a, decision b). A five-line formula, so
    written here rather than adding scikit-learn for it."""
    n = sum(pairs.values())
    observed = sum(c for (a, b), c in pairs.items() if a == b) / n
    left, right = Counter(), Counter()
    for (a, b), c in pairs.items():
        left[a] += c
        right[b] += c
    expected = sum(left[k] * right[k] for k in ACTIONS) / n**2
    if expected == 1.0:
        return 1.0 if observed == 1.0 else math.nan
    return (observed - expected) / (1 - expected)


def review_stats(collection: Collection) -> dict[str, Any]:
    """Per reviewer: decisions, acceptance rate, word edit distance of edits, rejection
    reasons; across reviewers: agreement on the items several of them reviewed."""
    actions: dict[str, Counter] = defaultdict(Counter)
    distances: dict[str, list[int]] = defaultdict(list)
    relative: dict[str, list[float]] = defaultdict(list)
    reasons: dict[str, Counter] = defaultdict(Counter)
    pairs: dict[tuple[str, str], Counter] = defaultdict(Counter)
    items = 0
    for decisions in _by_item(collection, None):
        items += 1
        for r in decisions:
            who = r["reviewer"]
            actions[who][r["action"]] += 1
            if r["action"] == "edit":
                d = word_edit_distance(r["machine_caption"], r["caption"])
                distances[who].append(d)
                relative[who].append(d / max(1, len(r["machine_caption"].split())))
            elif r["action"] == "reject":
                reasons[who][r["reason"].split(":")[0].strip()] += 1
        for a, b in itertools.combinations(sorted(decisions, key=lambda r: r["reviewer"]), 2):
            pairs[(a["reviewer"], b["reviewer"])][(a["action"], b["action"])] += 1

    def block(acts: Counter, dist: list[int], rel: list[float], why: Counter) -> dict[str, Any]:
        total = sum(acts.values())
        return {"reviewed": total, **{a: acts[a] for a in ACTIONS},
                "acceptance_rate": acts["accept"] / total if total else math.nan,
                "kept_rate": (acts["accept"] + acts["edit"]) / total if total else math.nan,
                "edit_distance_mean": statistics.fmean(dist) if dist else math.nan,
                "edit_distance_median": statistics.median(dist) if dist else math.nan,
                "edit_distance_per_word": statistics.fmean(rel) if rel else math.nan,
                "reject_reasons": dict(why.most_common())}

    reviewers = {who: block(actions[who], distances[who], relative[who], reasons[who])
                 for who in sorted(actions)}
    overall = block(sum(actions.values(), Counter()), [d for v in distances.values() for d in v],
                    [x for v in relative.values() for x in v], sum(reasons.values(), Counter()))
    agreement = {f"{a} / {b}": {"shared": sum(c.values()),
                                "agreement": sum(n for (x, y), n in c.items() if x == y) / sum(c.values()),
                                "kappa": cohen_kappa(c)}
                 for (a, b), c in sorted(pairs.items())}
    return {"items": collection.count(), "reviewed_items": items, "overall": overall,
            "reviewers": reviewers, "agreement": agreement}


def format_stats(stats: dict[str, Any]) -> str:
    """The statistics as plain-text tables."""
    def pct(x: float) -> str:
        return "-" if x != x else f"{100 * x:.1f}%"

    def num(x: float) -> str:
        return "-" if x != x else f"{x:.2f}"

    lines = [f"{stats['reviewed_items']} of {stats['items']} items reviewed", "",
             f"{'reviewer':<20} {'reviewed':>8} {'accept':>7} {'edit':>6} {'reject':>7} {'accepted':>9} "
             f"{'kept':>7} {'edit dist':>9} {'per word':>8}"]
    for name, b in [*stats["reviewers"].items(), ("all", stats["overall"])]:
        lines.append(f"{name[:20]:<20} {b['reviewed']:>8} {b['accept']:>7} {b['edit']:>6} {b['reject']:>7} "
                     f"{pct(b['acceptance_rate']):>9} {pct(b['kept_rate']):>7} "
                     f"{num(b['edit_distance_mean']):>9} {num(b['edit_distance_per_word']):>8}")
    if stats["overall"]["reject_reasons"]:
        lines += ["", "rejection reasons: " + ", ".join(f"{k} ({v})" for k, v in
                                                         stats["overall"]["reject_reasons"].items())]
    if stats["agreement"]:
        lines += ["", f"{'reviewers':<30} {'shared':>7} {'agreement':>10} {'kappa':>7}"]
        for pair, a in stats["agreement"].items():
            lines.append(f"{pair[:30]:<30} {a['shared']:>7} {pct(a['agreement']):>10} {num(a['kappa']):>7}")
    else:
        lines += ["", "agreement: no item has been reviewed by two reviewers yet"]
    lines.append("(accepted: kept as written; kept: accepted or edited; edit dist: words changed per edit)")
    return "\n".join(lines)
