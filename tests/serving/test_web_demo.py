"""The demo page in headless Debian chromium (Playwright): two turns, candidates with scores, one clicked
becomes the bot's turn. Saves a screenshot to tmp_path, and to docs/img/web-demo.png when HASHBERT_SCREENSHOT
is set."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
DOCS_SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "web-demo.png"


@pytest.fixture()
def page():
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is missing (run_tests.sh installs Debian's chromium when it runs as root)")
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a dev dependency")
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True)
        try:
            yield browser.new_page(viewport={"width": 1200, "height": 800})
        finally:
            browser.close()


def _say(page, text: str, users_before: int) -> None:
    page.fill("#text", text)
    page.press("#text", "Enter")
    page.wait_for_function(
        f"document.querySelectorAll('#log li.user').length > {users_before}"
        " && document.querySelectorAll('#candidates button').length > 0"
    )


def test_two_turns_show_candidates_and_a_click_makes_the_bot_turn(page, serve_app, tmp_path):
    url = serve_app()
    page.goto(url)
    page.wait_for_function("document.querySelector('#facts').textContent.includes('pool')")
    facts = page.text_content("#facts")
    assert "300 responses" in facts and "hdr" in facts

    _say(page, "hi! how was your weekend?", 0)
    _say(page, "I went hiking in the mountains", 1)
    candidates = page.locator("#candidates button")
    assert candidates.count() == 10
    assert "total" in page.text_content("#timings") and "encode" in page.text_content("#timings")
    chosen = candidates.nth(0).locator("span").nth(0).text_content()
    assert page.locator("#candidates .score").nth(0).text_content().replace(".", "").lstrip("-").isdigit()

    candidates.nth(0).click()
    page.wait_for_function("document.querySelectorAll('#log li.bot').length === 1")
    assert page.locator("#log li.bot").nth(0).text_content().endswith(chosen)
    _say(page, "what about you?", 2)  # the picture shows a full exchange with fresh candidates
    assert page.locator("#log li").count() == 4
    assert not page.is_visible("#error") and not page.is_visible("#key-form")  # no key asked: none shown

    shot = tmp_path / "web-demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    if os.environ.get("HASHBERT_SCREENSHOT"):
        DOCS_SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(shot, DOCS_SCREENSHOT)


def test_new_conversation_starts_an_empty_session(page, serve_app):
    page.goto(serve_app())
    page.wait_for_function("document.querySelector('#session').textContent.startsWith('session')")
    first = page.text_content("#session")
    _say(page, "good morning", 0)
    page.click("#new-conversation")
    page.wait_for_function(f"document.querySelector('#session').textContent !== {first!r}")
    assert page.locator("#log li").count() == 0 and page.locator("#candidates li").count() == 0
