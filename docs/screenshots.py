"""Take the README's screenshots of the search page (desktop and phone width), offline.

    python docs/screenshots.py --index rex-index    # after `make demo`

Runs `rex-search serve`'s app over the index with the configured (shipped) reranker, drives
Debian's Chromium with Playwright and writes PNG files next to this script. Requests to other
hosts are refused, as on a machine without internet: product images show their placeholder.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from rex_search.config import load_config, with_overrides  # noqa: E402
from rex_search.pipelines.pipeline import SearchPipeline  # noqa: E402
from rex_search.service import create_app  # noqa: E402
from tests.service_server import running  # noqa: E402

HERE = Path(__file__).resolve().parent
QUERY = "/?q=running+shoes+no+nike+under+%2480"
SHOTS = [("search-page-desktop.png", QUERY, {"width": 1280, "height": 1100}),
         ("search-page-before-after.png", QUERY + "&view=compare", {"width": 1280, "height": 900}),
         ("search-page-phone.png", "/?q=work+bag+16+inch+laptop", {"width": 390, "height": 1000})]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", default="rex-index")
    args = parser.parse_args()
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("no Chromium: `make browser` installs Debian's")
    pipeline = SearchPipeline.from_config(with_overrides(load_config(None),
                                                         index={"path": args.index}))
    with running(create_app(pipeline)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--headless", "--no-sandbox"])
        for name, path, viewport in SHOTS:
            page = browser.new_page(viewport=viewport)
            page.route("**/*", lambda route: route.continue_()
                       if route.request.url.startswith(url) else route.abort())
            page.goto(url + path)
            expect(page.locator("#summary")).to_contain_text("products", timeout=60_000)
            page.wait_for_timeout(500)  # failed images swap to their placeholders
            page.screenshot(path=str(HERE / name))
            print(f"wrote {HERE / name}")
            page.close()
        browser.close()


if __name__ == "__main__":
    main()
