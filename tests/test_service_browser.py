"""The search page in headless Chromium (Debian's chromium, driven by Playwright)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.rerank.base import load_reranker
from rex_search.service import create_app
from tests.service_server import running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: `sudo apt-get install chromium` (make browser) to run")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def test_type_a_query_see_results_open_why(small_index_dir, embedder, tmp_path: Path):
    from playwright.sync_api import sync_playwright

    from rex_search.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(small_index_dir)
    pipeline = SearchPipeline(backend, embedder, load_reranker("embedding-cosine", embedder))
    with running(create_app(pipeline)) as url, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        # The page runs under its real Content-Security-Policy, so waits use locators:
        # Playwright's string predicates need eval, which that policy (rightly) forbids.
        page = browser.new_page(viewport={"width": 1100, "height": 1000})
        page.goto(url + "/")
        page.fill("#q", "running shoes no nike")
        page.click("button[type=submit]")
        page.wait_for_selector("li.hit")
        hits = page.locator("li.hit")
        assert hits.count() == 10
        brands = page.locator("li.hit .brand").all_inner_texts()
        assert "Nike" not in brands
        assert "exclude_brands" in page.inner_text("#meta")
        first_why = hits.first.locator("details.why")
        first_why.locator("summary").click()
        assert first_why.get_attribute("open") is not None
        assert "reranker: rank" in first_why.inner_text()
        assert "fused rank" in first_why.inner_text()
        page.screenshot(path=str(Path(os.environ.get("REX_SCREENSHOT_DIR", tmp_path))
                                 / "search-page.png"), full_page=False)
        page.check("#retrieval")
        page.click("button[type=submit]")
        page.locator("#meta", has_text="retrieval order").wait_for()
        assert "not reranked" in page.locator("li.hit details.why").first.text_content()
        browser.close()
    backend.close()
