"""The search page in headless Chromium (Debian's chromium, driven by Playwright).

The page runs under its real Content-Security-Policy, so waits use locators and `expect`:
Playwright's string predicates need eval, which that policy (rightly) forbids. Every request
that is not to the test server is aborted: the tests run offline, as CI does.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterator
from urllib.parse import parse_qs, urlsplit

import pytest

from rex_search.pipelines.pipeline import SearchPipeline
from rex_search.service import create_app
from tests.conftest import cosine_reranker
from tests.service_server import running

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(
    CHROMIUM is None, reason="no Chromium: `sudo apt-get install chromium` (make browser) to run")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]
DESKTOP = {"width": 1200, "height": 1000}


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One Chromium for the module (Playwright's sync API allows one instance per thread)."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="module")
def site(small_index_dir, embedder, browser) -> Iterator[tuple[str, object]]:
    from rex_search.backends.embedded import EmbeddedBackend

    backend = EmbeddedBackend(small_index_dir)
    reranker = cosine_reranker(backend, embedder)
    pipeline = SearchPipeline(backend, embedder, reranker)
    with running(create_app(pipeline)) as url:
        yield url, browser
    backend.close()


def open_page(site, path: str, viewport: dict[str, int] = DESKTOP):
    url, browser = site
    page = browser.new_page(viewport=viewport)
    page.route("**/*", lambda route: route.continue_() if route.request.url.startswith(url)
               else route.abort())
    page.goto(url + path)
    return page


def state(page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def wait_for_hits(page, count: int = 10) -> None:
    from playwright.sync_api import expect

    expect(page.locator("li.hit")).to_have_count(count, timeout=20_000)


def test_a_search_by_url_shows_product_cards(site):
    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    assert page.input_value("#q") == "running shoes"
    first = page.locator("li.hit").first
    assert first.locator(".rank").inner_text() == "#1"
    assert re.fullmatch(r"(▲ \d+|▼ \d+|=)", first.locator(".move").inner_text())
    assert first.locator(".brand").inner_text()
    assert re.search(r"\d+ products · embedding-cosine", page.inner_text("#summary"))
    page.close()


def test_a_facet_click_filters_and_updates_the_url(site):
    from playwright.sync_api import expect

    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    box = page.locator("#facets input[name=brand][value=adidas]")
    count = int(box.locator("xpath=..").locator(".count").inner_text())
    assert count > 1
    box.focus()
    page.keyboard.press("Space")  # keyboard works as a click does
    expect(page).to_have_url(re.compile(r"brand=adidas"))
    # The unfiltered page also shows 10 hits: wait for the filtered answer, not a hit count.
    expect(page.locator("#summary")).to_have_text(re.compile(rf"^{count} products \(of "),
                                                  timeout=20_000)
    wait_for_hits(page, min(count, 10))
    assert set(page.locator("li.hit .brand").all_inner_texts()) == {"adidas"}
    page.reload()  # the URL holds the whole state
    wait_for_hits(page, min(count, 10))
    assert page.locator("#facets input[name=brand][value=adidas]").is_checked()
    assert state(page)["brand"] == ["adidas"]
    page.close()


def test_paging_moves_through_the_results(site):
    from playwright.sync_api import expect

    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    assert page.locator("#prev").is_disabled()
    first_page = page.locator("li.hit .title").all_inner_texts()
    page.click("#next")
    expect(page).to_have_url(re.compile(r"page=2"))
    expect(page.locator("li.hit .rank").first).to_have_text("#11")
    assert not set(page.locator("li.hit .title").all_inner_texts()) & set(first_page)
    assert page.inner_text("#page-label").startswith("page 2 of ")
    page.go_back()
    expect(page.locator("li.hit .rank").first).to_have_text("#1")
    page.close()


def test_the_before_after_view_shows_each_products_movement(site):
    from playwright.sync_api import expect

    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    final = {page.locator("li.hit").nth(i).locator(".title").inner_text(): i + 1
             for i in range(10)}
    page.click("#view-compare")
    expect(page).to_have_url(re.compile(r"view=compare"))
    rows = page.locator("table.compare tbody tr")
    expect(rows.first).to_be_visible()
    assert rows.count() >= 10
    assert page.locator("li.hit").first.is_hidden()
    cells = [rows.nth(i).locator("td").all_inner_texts() for i in range(rows.count())]
    assert [c[0] for c in cells] == [f"#{i}" for i in range(1, len(cells) + 1)]
    moved = [c for c in cells if c[4] != "="]
    assert moved, "the reranker moved nothing"
    for retrieval, title, _, where, move in cells:
        # the same product, the same final rank as in the results view (a collapsed variant
        # can carry the very title of the variant shown: its row says "removed by collapse")
        if title in final and not where.startswith("removed by collapse"):
            assert where == f"#{final[title]}"
            shift = int(retrieval[1:]) - final[title]
            assert move == ("=" if shift == 0 else f"▲ {shift}" if shift > 0 else f"▼ {-shift}")
    page.close()


def test_each_product_says_why_in_plain_words(site):
    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    reasons = page.locator("li.hit").first.locator("ul.reasons li").all_inner_texts()
    assert any(re.fullmatch(r"matches “[^”]+” \(title\)", r) for r in reasons), reasons
    assert any(re.fullmatch(r"(moved (up|down) \d+ by the reranker|kept its place after "
                            r"reranking)", r) for r in reasons), reasons
    numbers = page.locator("li.hit").first.locator("details.numbers")
    numbers.locator("summary").click()
    assert "reranker: rank" in numbers.inner_text()
    assert "retrieval (fused): rank" in numbers.inner_text()
    page.close()


def test_the_hidden_by_filter_notice_and_its_undo(site):
    from playwright.sync_api import expect

    page = open_page(site, "/?q=running+shoes+no+nike+under+%2480")
    wait_for_hits(page)
    understood = page.locator("#understood")
    assert "excluding Nike, as the query asked" in understood.inner_text()
    assert "price up to $80.00" in understood.inner_text()
    hidden = page.inner_text("#hidden")
    assert re.search(r"\d+ more products matched but were hidden by the query's filters: "
                     r"\d+ have no price", hidden), hidden
    assert re.search(r"\d+ are Nike", hidden)
    assert "Nike" not in page.locator("li.hit .brand").all_inner_texts()
    page.click("#undo")
    expect(page).to_have_url(re.compile(r"literal=1"))
    expect(page.locator("#understood")).to_have_count(0)
    expect(page.locator("#notices")).to_contain_text("Searched the words literally")
    assert page.locator("#hidden").count() == 0
    page.close()


def test_images_that_cannot_load_become_placeholders(site):
    from playwright.sync_api import expect

    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    # Every sample product has an image URL; offline, every one fails and is replaced.
    expect(page.locator("li.hit .placeholder")).to_have_count(10)
    assert page.locator("li.hit img").count() == 0
    assert page.locator("li.hit .placeholder").first.get_attribute("aria-label") == "no image"
    page.close()


def test_a_phone_width_screen_fits_and_folds_the_filters(site):
    page = open_page(site, "/?q=running+shoes", {"width": 390, "height": 844})
    wait_for_hits(page)
    assert page.locator("#facet-box").get_attribute("open") is None
    for locator in ("li.hit", "header", "#q"):
        box = page.locator(locator).first.bounding_box()
        assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 390
    page.close()


def test_the_retrieval_only_order_is_one_click(site):
    from playwright.sync_api import expect

    page = open_page(site, "/?q=running+shoes")
    wait_for_hits(page)
    page.check("#retrieval")
    expect(page).to_have_url(re.compile(r"retrieval=1"))
    expect(page.locator("#summary")).to_contain_text("retrieval order")
    reasons = page.locator("li.hit").first.locator("ul.reasons").inner_text()
    assert "reranker" not in reasons
    page.close()


@pytest.fixture(scope="module")
def calibrated_site(fixture_index_dir, embedder, browser, tmp_path_factory):
    """The page over the bundled reranker with its calibration (the fixture has no skillet)."""
    from rex_search.backends.embedded import EmbeddedBackend
    from rex_search.model_files import BUNDLED_RERANKER
    from rex_search.rerank.base import load_reranker
    from rex_search.rerank.calibration import for_model

    copy = tmp_path_factory.mktemp("browser-calibrated") / "fx"
    shutil.copytree(fixture_index_dir, copy)
    backend = EmbeddedBackend(copy)
    pipeline = SearchPipeline(backend, embedder, load_reranker(BUNDLED_RERANKER),
                              calibration=for_model(BUNDLED_RERANKER))
    with running(create_app(pipeline)) as url:
        yield url, browser
    backend.close()


def test_the_page_says_plainly_when_nothing_matches_well(calibrated_site):
    from playwright.sync_api import expect

    page = open_page(calibrated_site, "/?q=cast+iron+skillet")
    expect(page.locator("#no-good-match")).to_contain_text(
        "No good match: none of the", timeout=20_000)
    assert page.locator("li.hit").count() == page.locator("li.hit .weak").count() > 0
    page.goto(calibrated_site[0] + "/?q=usb+c+charger")
    expect(page.locator("li.hit").first).to_be_visible(timeout=20_000)
    assert page.locator("#no-good-match").count() == 0
    assert page.locator("li.hit").first.locator(".weak").count() == 0
    page.close()
