"""Reviewers' decisions, append-only in the collection's SQLite database.

Nothing is updated or deleted: a new decision is a new row, and a reviewer's current
decision on an item is their latest row. Reviewers therefore never overwrite each
other, and a reviewer working in two tabs is told (Conflict) when the decision they are
changing is no longer their latest, instead of silently replacing it.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator
from typing import Any

ACTIONS = ("accept", "edit", "reject")
MAX_CAPTION_CHARS = 2000
MAX_REASON_CHARS = 500


class Conflict(RuntimeError):
    """The reviewer's latest decision changed since the page loaded it."""

    def __init__(self, current: dict[str, Any] | None) -> None:
        super().__init__("this item was reviewed again elsewhere; reload it")
        self.current = current


def record(con: sqlite3.Connection, item: dict[str, Any], reviewer: str, action: str, *,
           caption: str | None = None, reason: str = "", expected: int | None = None) -> dict[str, Any]:
    """Store one decision on a catalog item. `expected` is the id of the reviewer's
    latest review as the client saw it (None: it saw none)."""
    reviewer = reviewer.strip()
    if not reviewer:
        raise ValueError("a review needs a reviewer name")
    if action not in ACTIONS:
        raise ValueError(f"unknown action {action!r}; choose from {', '.join(ACTIONS)}")
    machine = item["caption"]
    if action == "edit":
        caption = " ".join((caption or "").split())
        if not caption:
            raise ValueError("an edit needs the new caption")
        if len(caption) > MAX_CAPTION_CHARS:
            raise ValueError(f"the caption is longer than {MAX_CAPTION_CHARS} characters")
        if caption == machine:
            action = "accept"  # an edit that changes nothing is an acceptance
    else:
        caption = machine
    if action == "reject" and not reason.strip():
        raise ValueError("a rejection needs a reason")
    reason = reason.strip()[:MAX_REASON_CHARS]
    con.execute("BEGIN IMMEDIATE")  # the check and the insert are one step for all writers
    try:
        current = latest(con, item["item"], reviewer)
        if (current["id"] if current else None) != expected:
            raise Conflict(current)
        cur = con.execute(
            "INSERT INTO reviews (item, reviewer, action, caption, machine_caption, reason, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (item["item"], reviewer, action, caption, machine, reason, time.time()))
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return dict(con.execute("SELECT * FROM reviews WHERE id = ?", (cur.lastrowid,)).fetchone())


def latest(con: sqlite3.Connection, item: str, reviewer: str) -> dict[str, Any] | None:
    row = con.execute("SELECT * FROM reviews WHERE item = ? AND reviewer = ? ORDER BY id DESC LIMIT 1",
                      (item, reviewer)).fetchone()
    return None if row is None else dict(row)


def current_reviews(con: sqlite3.Connection, reviewer: str | None = None) -> Iterator[dict[str, Any]]:
    """Each reviewer's latest decision per item (one reviewer's if given), joined with
    the item's clip id and catalog position, in catalog order."""
    where, args = ("WHERE reviewer = ?", [reviewer]) if reviewer else ("", [])
    yield from (dict(r) for r in con.execute(
        "SELECT r.*, i.clip, i.pos FROM reviews r JOIN items i ON i.item = r.item "
        f"WHERE r.id IN (SELECT max(id) FROM reviews {where} GROUP BY item, reviewer) ORDER BY i.pos, r.id",
        args))
