"""Take the README's screenshot of `sonicaps review` (docs/review.png).

    .venv/bin/sonicaps demo && .venv/bin/python scripts/review_screenshot.py demo/captions

Serves the collection with a throwaway review database, opens the page in headless
Chromium, accepts the first clip, opens the editor on the second with a caption that
breaks two guidelines, and saves the page.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from playwright.sync_api import sync_playwright

from sonicaps.review.app import create_app
from sonicaps.review.collection import Collection
from sonicaps.serve import BackgroundServer


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("data")
    p.add_argument("-o", "--output", default=str(Path(__file__).resolve().parents[1] / "docs" / "review.png"))
    args = p.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        col = Collection(args.data, db_dir=tmp)
        col.index()
        with BackgroundServer(create_app(col, reviewer="ann"), path="") as server, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path="/usr/bin/chromium")
            page = browser.new_page(viewport={"width": 1280, "height": 860}, bypass_csp=True)
            page.goto(server.url + "/")
            page.wait_for_function("document.getElementById('spectro').naturalWidth > 0")
            page.keyboard.press("a")
            page.wait_for_function("document.getElementById('clip-pos').textContent.startsWith('#2')")
            page.wait_for_function("document.getElementById('spectro').naturalWidth > 0")
            page.keyboard.press("e")
            page.fill("#edit-text", "A dog barked while John talks, then a red car passes")
            page.wait_for_function("document.getElementById('warnings').children.length >= 2")
            Path(args.output).parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=args.output)
            browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
