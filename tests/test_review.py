"""sonicaps review: the catalog, append-only reviews, export and statistics, the HTTP API's
safety, and the page itself driven in headless Chromium."""

from __future__ import annotations

import csv
import io
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import soundfile as sf
from conftest import tone, write

from sonicaps.pipeline.config import PipelineConfig
from sonicaps.pipeline.runner import run
from sonicaps.pipeline.store import Store
from sonicaps.review.app import create_app
from sonicaps.review.collection import Collection, Filters
from sonicaps.review.reviews import Conflict, record
from sonicaps.review.summary import cohen_kappa, export_reviewed, review_stats, word_edit_distance
from sonicaps.serve import BackgroundServer

CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def captioned(examples, backends, tmp_path_factory) -> Path:
    """Real pipeline output over the example scenes, two clips per shard."""
    out = tmp_path_factory.mktemp("review") / "captions"
    run([examples], out, PipelineConfig(batch_size=2), backends=backends, progress=False)
    return out


def open_collection(captioned: Path, tmp_path: Path, **kw) -> Collection:
    """The collection with its reviews kept in tmp_path, so tests do not share them."""
    col = Collection(captioned, db_dir=tmp_path / "reviews", **kw)
    col.index()
    return col


class Client:
    """JSON over HTTP to a served review app."""

    def __init__(self, url: str, reviewer: str | None = None) -> None:
        self.url, self.reviewer = url.rstrip("/"), reviewer

    def request(
        self,
        path: str,
        body: dict | None = None,
        headers: dict | None = None,
        content_type: str = "application/json",
    ) -> tuple[int, bytes, dict]:
        h = {**({"X-Reviewer": self.reviewer} if self.reviewer else {}), **(headers or {})}
        data = None
        if body is not None:
            data, h["Content-Type"] = json.dumps(body).encode(), content_type
        req = urllib.request.Request(self.url + path, data=data, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, resp.read(), {k.lower(): v for k, v in resp.headers.items()}
        except urllib.error.HTTPError as e:
            return e.code, e.read(), {k.lower(): v for k, v in e.headers.items()}

    def json(self, path: str, body: dict | None = None) -> tuple[int, object]:
        status, data, _ = self.request(path, body)
        return status, json.loads(data)


def serve(col: Collection, **kw) -> BackgroundServer:
    return BackgroundServer(create_app(col, reviewer=kw.pop("reviewer", "tester"), **kw), path="")


# --- catalog -----------------------------------------------------------------------------


def test_catalog_pages_filters_and_picks_up_new_shards(captioned, tmp_path):
    captioned = Path(shutil.copytree(captioned, tmp_path / "captions"))  # this test adds a shard
    col = open_collection(captioned, tmp_path)
    table = pd.read_parquet(captioned)
    assert col.count() == len(table) == 7
    assert col.progress("x")["shards_indexed"] == len(list(captioned.glob("part-*.parquet"))) == 4
    # Keyset paging visits every clip once, forwards and backwards.
    seen, after = [], 0
    while page := col.page(Filters(), "x", after=after, limit=3):
        seen += page
        after = page[-1]["pos"]
    assert sorted(it["clip"] for it in seen) == sorted(table["id"])
    assert [it["pos"] for it in col.page(Filters(), "x", before=seen[-1]["pos"], limit=2)] == [
        seen[-3]["pos"],
        seen[-2]["pos"],
    ]
    # Label and score filters select what the Parquet rows say.
    label = table["labels"].explode().value_counts().index[0]
    want = {r.id for r in table.itertuples() if label in list(r.labels)}
    assert {it["clip"] for it in col.page(Filters(label=label.lower()), "x", limit=100)} == want
    cut = float(table["check_score"].median())
    assert {it["clip"] for it in col.page(Filters(min_score=cut), "x", limit=100)} == set(
        table.loc[table["check_score"] >= cut, "id"]
    )
    # The details come from the clip's shard.
    first = seen[0]
    detail = col.detail(first["pos"], "x")
    row = table.set_index("id").loc[first["clip"]]
    assert [q["answer"] for q in detail["qa"]] == [row.answer_1, row.answer_2, row.answer_3]
    # the detections are the asker's classifier scores (word hints), the labels what it found
    assert detail["detections"] == json.loads(row.evidence)["labels"]
    assert set(row.labels) <= {d[0] for d in detail["detections"]} | {"Speech", "Music", "Singing"}
    # A running pipeline adds a shard: only that shard is indexed, reviews stay valid.
    record(col.con, col.item(first["pos"]), "x", "accept")
    extra = table.head(2).assign(id=lambda d: d["id"] + "_new").to_dict("records")
    Store(captioned).commit(extra, [])
    assert col.index() == 2
    assert col.count() == 9
    assert col.latest_reviews([first["item"]], "x")[first["item"]]["action"] == "accept"
    assert col.index() == 0


def test_any_dataset_gets_one_item_per_caption(tmp_path):
    audio = tmp_path / "audiocaps" / "audio"
    audio.mkdir(parents=True)
    write(audio / "abcdefghijk.wav", tone(330, 2.0))
    csv_path = tmp_path / "audiocaps" / "test.csv"
    with open(csv_path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["audiocap_id", "youtube_id", "start_time", "caption"])
        for k in range(3):
            w.writerow([k, "abcdefghijk", 30, f"a tone plays, take {k}"])
    col = Collection(csv_path, audio_root=audio)
    col.index()
    assert col.dir == tmp_path / "audiocaps" / "test.csv.review"
    items = col.page(Filters(), "x")
    assert [it["item"] for it in items] == [f"abcdefghijk_30#{k}" for k in (1, 2, 3)]
    detail = col.detail(items[0]["pos"], "x")
    assert detail["other_captions"] == ["a tone plays, take 1", "a tone plays, take 2"]
    path, start, end = col.audio_span(items[0]["pos"])
    assert path == (audio / "abcdefghijk.wav").resolve() and (start, end) == (0.0, None)
    assert col.index() == 0  # unchanged files: nothing to redo
    csv_path.write_text(csv_path.read_text() + "9,abcdefghijk,30,a fourth caption\n")
    assert col.index() == 4


# --- reviews, export, statistics ---------------------------------------------------------


def test_reviews_are_append_only_and_stale_writes_are_refused(captioned, tmp_path):
    col = open_collection(captioned, tmp_path)
    item = col.item(1)
    first = record(col.con, item, "ann", "accept")
    with pytest.raises(Conflict):  # a second tab that still thinks nothing was decided
        record(col.con, item, "ann", "reject", reason="wrong sounds")
    second = record(col.con, item, "ann", "edit", caption="  A  dog barks ", expected=first["id"])
    assert second["caption"] == "A dog barks" and second["machine_caption"] == item["caption"]
    assert (
        record(col.con, item, "ann", "edit", caption=item["caption"], expected=second["id"])["action"]
        == "accept"
    )
    record(col.con, item, "bob", "reject", reason="sounds missing")  # another reviewer: its own row
    with pytest.raises(ValueError, match="reason"):
        record(col.con, col.item(2), "ann", "reject")
    with pytest.raises(ValueError, match="new caption"):
        record(col.con, col.item(2), "ann", "edit", caption="   ")
    rows = col.con.execute("SELECT reviewer, action FROM reviews ORDER BY id").fetchall()
    assert [tuple(r) for r in rows] == [
        ("ann", "accept"),
        ("ann", "edit"),
        ("ann", "accept"),
        ("bob", "reject"),
    ]
    assert [it["pos"] for it in col.page(Filters(status="unreviewed"), "ann", limit=100)] == list(range(2, 8))
    assert [it["pos"] for it in col.page(Filters(status="reject"), "bob", limit=100)] == [1]


def test_concurrent_reviewers_lose_nothing(captioned, tmp_path):
    col = open_collection(captioned, tmp_path)
    errors: list = []

    def reviewer(name: str) -> None:
        client = Client(server.url, name)
        latest: dict[int, int | None] = {}
        for k in range(21):
            pos = 1 + k % 7
            status, body = client.json(
                f"/api/items/{pos}/review",
                {"action": "edit", "caption": f"{name} take {k}", "expected": latest.get(pos)},
            )
            if status != 200:
                errors.append((name, k, status, body))
                return
            latest[pos] = body["id"]

    with serve(col) as server:
        threads = [threading.Thread(target=reviewer, args=(f"r{i}",)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert errors == []
    con = sqlite3.connect(col.db)
    assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 6 * 21
    for i in range(6):  # each reviewer's latest decision per clip is their last write to it
        latest = dict(
            con.execute(
                "SELECT item, caption FROM reviews WHERE id IN (SELECT max(id) FROM reviews "
                "WHERE reviewer = ? GROUP BY item)",
                (f"r{i}",),
            ).fetchall()
        )
        assert sorted(latest.values()) == sorted(f"r{i} take {k}" for k in range(14, 21))


def test_export_and_statistics(captioned, tmp_path):
    import sklearn.metrics as sklearn_metrics  # a declared dev dependency: missing must fail
    col = open_collection(captioned, tmp_path)
    items = [col.item(p) for p in range(1, 8)]
    plan = {
        "ann": ["accept", "edit", "reject", "accept", "accept", "edit", "reject"],
        "bob": ["accept", "accept", "reject", "reject", "edit", None, None],
    }
    for who, actions in plan.items():
        for item, action in zip(items, actions, strict=True):
            if action:
                record(
                    col.con,
                    item,
                    who,
                    action,
                    caption=f"{item['caption']} loudly {who}",
                    reason="wrong sounds: detail",
                )
    path, n = export_reviewed(col, tmp_path / "export")
    exported = pd.read_csv(path)
    # The latest decision wins: bob's for clips 1-5, ann's for 6 and 7.
    final = [plan["bob"][k] or plan["ann"][k] for k in range(7)]
    kept = [k for k in range(7) if final[k] != "reject"]
    assert n == len(exported) == len(kept)
    assert list(exported["id"]) == [items[k]["clip"] for k in kept]
    for row, k in zip(exported.itertuples(), kept, strict=True):
        who = "bob" if plan["bob"][k] else "ann"
        assert row.status == final[k] and row.reviewer == who
        assert row.caption == (
            f"{items[k]['caption']} loudly {who}" if final[k] == "edit" else items[k]["caption"]
        )
    _, n_ann = export_reviewed(col, tmp_path / "ann", "jsonl", reviewer="ann")
    assert n_ann == 5

    stats = review_stats(col)
    assert stats["reviewers"]["ann"]["acceptance_rate"] == pytest.approx(3 / 7)
    assert stats["reviewers"]["bob"]["kept_rate"] == pytest.approx(3 / 5)
    assert stats["reviewers"]["ann"]["edit_distance_mean"] == 2  # "loudly ann" added
    assert stats["overall"]["reject_reasons"] == {
        "wrong sounds": sum(a == "reject" for v in plan.values() for a in v)
    }
    shared = [(a, b) for a, b in zip(plan["ann"], plan["bob"], strict=True) if a and b]
    pair = stats["agreement"]["ann / bob"]
    assert pair["shared"] == 5
    assert pair["agreement"] == pytest.approx(sum(a == b for a, b in shared) / 5)
    assert pair["kappa"] == pytest.approx(sklearn_metrics.cohen_kappa_score(*zip(*shared, strict=True)))
    assert word_edit_distance("A dog barks.", "a dog barks loudly") == 1
    from collections import Counter

    assert cohen_kappa(Counter({("accept", "accept"): 3})) == 1.0

    def cli(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "sonicaps.cli", *args], capture_output=True, text=True, timeout=300
        )
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    db = str(tmp_path / "reviews")
    assert json.loads(cli("review-stats", str(captioned), "--review-db", db, "--json"))[
        "agreement"
    ] == json.loads(json.dumps(stats["agreement"]))
    assert "ann / bob" in cli("review-stats", str(captioned), "--review-db", db)
    out = cli("export", str(captioned), "--reviewed", "--review-db", db, "-o", str(tmp_path / "cli"))
    assert f"wrote {n} reviewed captions" in out
    assert pd.read_csv(tmp_path / "cli" / "reviewed_captions.csv")[["id", "caption"]].equals(
        exported[["id", "caption"]]
    )


# --- HTTP safety and media ---------------------------------------------------------------


def test_only_collection_audio_is_served(tmp_path):
    root = tmp_path / "data"
    (root / "audio").mkdir(parents=True)
    outside = write(tmp_path / "secret.wav", tone(500, 1.0))
    write(root / "audio" / "ok.flac", tone(440, 1.5))
    os.symlink(outside, root / "audio" / "link.wav")
    (root / "audio" / "broken.wav").write_bytes(b"RIFF....WAVEfmt garbage")
    lines = [
        {"id": "ok", "captions": ["a tone"], "audio": "audio/ok.flac"},
        {"id": "up", "captions": ["escape"], "audio": "../secret.wav"},
        {"id": "abs", "captions": ["escape"], "audio": str(outside)},
        {"id": "link", "captions": ["escape"], "audio": "audio/link.wav"},
        {"id": "broken", "captions": ["bad audio"], "audio": "audio/broken.wav"},
    ]
    (root / "set.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    col = Collection(root / "set.jsonl")
    col.index()
    with serve(col) as server:
        c = Client(server.url)
        status, body, headers = c.request("/api/items/1/audio")
        assert status == 200 and headers["accept-ranges"] == "bytes"
        audio, sr = sf.read(io.BytesIO(body))
        assert sr == 16000 and len(audio) == 24000
        status, part, headers = c.request("/api/items/1/audio", headers={"Range": "bytes=100-199"})
        assert (
            status == 206
            and part == body[100:200]
            and headers["content-range"] == f"bytes 100-199/{len(body)}"
        )
        assert c.request("/api/items/1/audio", headers={"Range": "bytes=-10"})[1] == body[-10:]
        assert c.request("/api/items/1/audio", headers={"Range": f"bytes={len(body)}-"})[0] == 416
        for pos in (2, 3, 4):  # outside the dataset's folder, directly or through a symlink
            status, body, _ = c.request(f"/api/items/{pos}/audio")
            assert status == 403 and b"outside the collection" in body
            assert c.request(f"/api/items/{pos}/spectrogram.png")[0] == 403
        status, body, _ = c.request("/api/items/5/audio")
        assert status == 422 and b"cannot decode" in body
        assert c.json("/api/items/5")[0] == 200  # the page still shows the clip
        from PIL import Image

        status, png, _ = c.request("/api/items/1/spectrogram.png")
        assert status == 200 and Image.open(io.BytesIO(png)).size[1] == 200
        for path in (
            "/static/../collection.py",
            "/static/%2e%2e%2fcollection.py",
            "/static/..%2f..%2fcli.py",
            "/api/items/1/../../../etc/passwd",
            "/api/items/99/audio",
            "/static/index.html",
        ):
            status, body, _ = c.request(path)
            assert status in (404, 422), path
            assert b"import" not in body and b"root:" not in body
        assert c.request("/api/items/99/audio")[0] == 404  # no such item
        assert c.request("/api/info", headers={"Host": "attacker.example"})[0] == 403
        # A cross-site form can post text/plain, never JSON: refused.
        assert c.request("/api/items/1/review", {"action": "accept"}, content_type="text/plain")[0] == 422
        assert c.request("/api/items/1/review", {"action": "accept"})[0] == 200


def test_token_is_required_off_loopback(captioned, tmp_path):
    col = open_collection(captioned, tmp_path)
    with pytest.raises(ValueError, match="token"):
        create_app(col, reviewer="x", loopback=False)
    with serve(col, token="s3cret", loopback=False) as server:
        c = Client(server.url)
        assert c.request("/api/info")[0] == 401
        assert c.request("/api/info", headers={"Authorization": "Bearer wrong"})[0] == 401
        assert c.request("/api/info", headers={"Authorization": "Bearer s3cret"})[0] == 200
        status, _, headers = c.request("/?token=s3cret")
        assert status == 200 and "HttpOnly" in headers["set-cookie"]
        assert c.request("/api/info", headers={"Cookie": "sonicaps_review_token=s3cret"})[0] == 200
        # A token with non-ASCII characters is a wrong token (401), not a crash (500).
        assert c.request("/api/info?token=%C3%A9t%C3%A9")[0] == 401
        assert c.request("/api/info", headers={"Cookie": "sonicaps_review_token=\u00e9t\u00e9"})[0] == 401
        assert c.request("/api/info", headers={"Authorization": "Bearer s3cr\u00e9t"})[0] == 401
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "sonicaps.cli",
            "review",
            str(captioned),
            "--host",
            "0.0.0.0",
            "--review-db",
            str(tmp_path / "r"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "SONICAPS_REVIEW_TOKEN"},
    )
    assert done.returncode == 2 and "without an access token" in done.stderr


# --- the page in a browser ---------------------------------------------------------------


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=["--autoplay-policy=no-user-gesture-required"])
        yield b
        b.close()


def test_review_in_the_browser(captioned, tmp_path, browser):
    col = open_collection(captioned, tmp_path)
    first = col.item(1)
    with serve(col, reviewer="ann") as server:
        page = browser.new_page(bypass_csp=True)  # the test's own probes are evaluated scripts
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(server.url + "/")
        page.wait_for_function("document.getElementById('clip-id').textContent.length > 0")
        assert page.inner_text("#clip-id") == first["clip"]
        assert page.inner_text("#caption") == first["caption"]
        assert page.locator("#list li").count() == 7
        assert "reviewed 0 of 7" in page.inner_text("#progress")
        assert page.locator("#qa dd").count() == 3 and page.locator("#hints li").count() > 0
        page.wait_for_function("document.getElementById('spectro').naturalWidth > 0")
        # Play: the audio decodes and time advances.
        page.keyboard.press(" ")
        page.wait_for_function("document.getElementById('player').currentTime > 0.3", timeout=15000)
        page.keyboard.press(" ")
        assert page.evaluate("document.getElementById('player').paused")
        # Accept the first clip; the page moves on to the second.
        page.keyboard.press("a")
        page.wait_for_function(
            f"document.getElementById('clip-id').textContent === {json.dumps(col.item(2)['clip'])}"
        )
        # Edit the second: warnings update as one types, ctrl+enter saves.
        page.keyboard.press("e")
        page.fill("#edit-text", "A dog barked while John spoke")
        page.wait_for_function("document.getElementById('warnings').textContent.includes('present tense')")
        assert "names a person" in page.inner_text("#warnings")
        page.fill("#edit-text", "A dog barks while a man speaks")
        page.wait_for_function("document.getElementById('warnings').children.length === 0")
        page.keyboard.press("Control+Enter")
        page.wait_for_function(
            f"document.getElementById('clip-id').textContent === {json.dumps(col.item(3)['clip'])}"
        )
        # Reject the third with a reason.
        page.keyboard.press("r")
        page.select_option("#reason", "sounds missing")
        page.fill("#reason-text", "no frog")
        page.keyboard.press("Enter")
        page.wait_for_function("document.getElementById('progress').textContent.includes('reviewed 3 of 7')")
        # Back to the first: its review is shown; the status filter finds the rejected one.
        page.keyboard.press("k")
        page.keyboard.press("k")
        page.keyboard.press("k")
        page.wait_for_function(
            f"document.getElementById('clip-id').textContent === {json.dumps(first['clip'])}"
        )
        assert page.inner_text("#review-state").startswith("accepted by ann")
        page.select_option("#f-status", "reject")
        page.click("#filters button[type=submit]")
        page.wait_for_function("document.querySelectorAll('#list li').length === 1")
        page.wait_for_function(
            f"document.getElementById('clip-id').textContent === {json.dumps(col.item(3)['clip'])}"
        )
        assert errors == []
    rows = (
        sqlite3.connect(col.db)
        .execute("SELECT item, reviewer, action, caption, reason FROM reviews ORDER BY id")
        .fetchall()
    )
    assert rows == [
        (first["item"], "ann", "accept", first["caption"], ""),
        (col.item(2)["item"], "ann", "edit", "A dog barks while a man speaks", ""),
        (col.item(3)["item"], "ann", "reject", col.item(3)["caption"], "sounds missing: no frog"),
    ]
    path, n = export_reviewed(col, tmp_path / "export")
    assert n == 2 and list(pd.read_csv(path)["caption"]) == [
        first["caption"],
        "A dog barks while a man speaks",
    ]


def test_captions_are_shown_as_text_never_run(tmp_path, browser):
    write(tmp_path / "a.wav", tone(440, 1.0))
    evil = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2">'
    (tmp_path / "set.jsonl").write_text(
        json.dumps(
            {
                "id": "<b>x</b>",
                "captions": [evil],
                "audio": "a.wav",
                "labels": ['<img src=y onerror="window.pwned=3">'],
            }
        )
        + "\n"
    )
    col = Collection(tmp_path / "set.jsonl")
    col.index()
    with serve(col) as server:
        # Without the page's Content-Security-Policy, which would also stop inline scripts:
        # the page itself must never turn data into markup.
        page = browser.new_page(bypass_csp=True)
        page.goto(server.url + "/")
        page.wait_for_function("document.getElementById('caption').textContent.length > 0")
        assert page.inner_text("#caption") == evil
        assert page.inner_text("#clip-id") == "<b>x</b>"
        page.wait_for_timeout(300)
        assert page.evaluate("window.pwned") is None
        assert page.locator("img[src=x], img[src=y], #list b b").count() == 0


SQL = "'); DROP TABLE reviews;--"


def test_markup_and_sql_in_every_text_field_are_stored_verbatim(tmp_path):
    """Ids, captions, reviewer names, edits and reasons full of SQL and markup: stored and
    returned as written, the tables intact, filters matching them literally; traversal
    paths, raw or encoded once or twice, refused."""
    write(tmp_path / "a.wav", tone(440, 1.0))
    evil = '"><img src=x onerror=alert(1)>'
    lines = [{"id": SQL, "captions": [evil], "audio": "a.wav", "labels": [SQL]},
             {"id": evil, "captions": [SQL], "audio": "a.wav", "labels": ["100%_a"]}]
    (tmp_path / "set.jsonl").write_text("".join(json.dumps(x) + "\n" for x in lines))
    col = Collection(tmp_path / "set.jsonl")
    col.index()
    with serve(col) as server:
        c = Client(server.url)
        assert [it["clip"] for it in c.json("/api/items")[1]] == [SQL, evil]
        sent = [(1, f"{SQL} ann", {"action": "edit", "caption": f"{SQL} {evil} 100% _"}),
                (2, f"{evil} bob", {"action": "reject", "reason": f"{SQL} {evil}"})]
        for pos, who, body in sent:
            status, data, _ = c.request(f"/api/items/{pos}/review", body, headers={"X-Reviewer": who})
            assert status == 200, data
        rows = sqlite3.connect(col.db).execute(
            "SELECT reviewer, action, caption, reason FROM reviews").fetchall()
        assert rows == [(f"{SQL} ann", "edit", f"{SQL} {evil} 100% _", ""),
                        (f"{evil} bob", "reject", SQL, f"{SQL} {evil}")]
        for label, want in ((SQL, [SQL]), ("100%_a", [evil]), ("%", []), ("_", []), ("'", [])):
            status, found = c.json("/api/items?label=" + urllib.parse.quote(label))
            assert status == 200 and [it["clip"] for it in found] == want, label
        assert c.json("/api/items?status=" + urllib.parse.quote(SQL))[0] == 400
        for path in ("/static/%252e%252e%252fapp.py", "/static/..%252f..%252fetc%252fpasswd",
                     "/static/%2e%2e/%2e%2e/etc/passwd", "/static/..\\app.py", "/%2e%2e/%2e%2e/etc/passwd",
                     "/api/items/..%2f..%2fetc%2fpasswd/audio", "/api/items/%252e%252e/audio"):
            status, body, _ = c.request(path)
            assert 400 <= status < 500 and b"root:" not in body and b"import" not in body, path


def test_reviewer_names_outside_latin1(captioned, tmp_path, browser):
    """A header holds Latin-1 only and browsers refuse to send anything else: the page
    sends the name percent-encoded, the server decodes it."""
    col = open_collection(captioned, tmp_path)
    name = "Zoë 王芳"
    with serve(col) as server:
        c = Client(server.url, reviewer=urllib.parse.quote(name))
        assert c.json("/api/info")[1]["reviewer"] == name
        assert Client(server.url, reviewer="%ff").request("/api/info")[0] == 400
        page = browser.new_page(bypass_csp=True)
        page.goto(server.url + "/?reviewer=" + urllib.parse.quote(name))
        page.wait_for_function("document.getElementById('clip-id').textContent.length > 0")
        page.keyboard.press("a")
        page.wait_for_function("document.getElementById('progress').textContent.includes('reviewed 1 of')")
    assert sqlite3.connect(col.db).execute("SELECT reviewer FROM reviews").fetchall() == [(name,)]


def _listening(port: int) -> set[str]:
    """IPv4 addresses listening on `port` (/proc/net/tcp)."""
    found = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        addr, p = f[1].split(":")
        if int(p, 16) == port and f[3] == "0A":
            found.add(".".join(str(b) for b in bytes.fromhex(addr)[::-1]))
    return found


def test_reviews_survive_kill_9_and_the_default_bind_is_loopback(captioned, tmp_path):
    """`sonicaps review` with no --host listens on 127.0.0.1 only; every review it
    acknowledged is there after a SIGKILL and a restart, the database intact."""
    import signal
    import socket
    import time

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    cmd = [sys.executable, "-m", "sonicaps.cli", "review", str(captioned), "--port", str(port),
           "--review-db", str(tmp_path / "db")]

    def start() -> subprocess.Popen:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/info", timeout=5) as resp:
                    info = json.loads(resp.read())
                if info["items"] == 7 and not info["indexing"]:  # indexed in the background
                    return proc
            except OSError:
                pass
            if time.time() > deadline or proc.poll() is not None:
                proc.kill()
                pytest.fail(f"review did not start: {proc.communicate()[0][-2000:]}")
            time.sleep(0.2)

    proc = start()
    try:
        assert _listening(port) == {"127.0.0.1"}
        c = Client(f"http://127.0.0.1:{port}")
        acked = []
        for k in range(30):
            c.reviewer = f"r{k}"
            status, review = c.json(f"/api/items/{k % 7 + 1}/review", {"action": "accept"})
            assert status == 200
            acked.append(review["id"])
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        proc = start()
        con = sqlite3.connect(tmp_path / "db" / "review.sqlite")
        assert {r[0] for r in con.execute("SELECT id FROM reviews")} == set(acked)
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        c.reviewer = "r0"
        assert c.json("/api/info")[1]["reviewed"] == 1
    finally:
        proc.kill()
        proc.wait()
