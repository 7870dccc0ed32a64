"""The web page at / in a real browser: headless Chromium (Debian's chromium + chromium-driver) driven by
Selenium against a live server on loopback with smollm-135m. Ask a question, watch the answer stream in, open a
cited passage and find the answer highlighted in it; search; everything offline (no external resource)."""
from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from tests.prereq import require
from tests.support.live_server import live_server

webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is a test extra: pip install 'adarag[test]'")

KEY = "page-key-0123456789abcdef"
SHOTS = Path(os.environ.get("ADARAG_SCREENSHOTS", "")) if os.environ.get("ADARAG_SCREENSHOTS") else None


@pytest.fixture(scope="module")
def browser():
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary, driver = shutil.which("chromium"), shutil.which("chromedriver")
    require(bool(binary and driver), "headless Chromium: apt-get install chromium chromium-driver")
    opts = Options()
    opts.binary_location = binary
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1200,1400"):
        opts.add_argument(arg)
    b = webdriver.Chrome(service=Service(driver), options=opts)
    yield b
    b.quit()


@pytest.fixture(scope="module")
def base(tmp_path_factory, hash_index):
    root = tmp_path_factory.mktemp("page") / "index"
    shutil.copytree(hash_index, root)
    with live_server(root, KEY) as url:
        yield url


def _shot(browser, name: str) -> None:
    if SHOTS is not None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        browser.save_screenshot(str(SHOTS / name))


def test_ask_streams_cites_and_highlights_then_search(browser, base):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.select import Select
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    html = browser.page_source
    assert "http://" not in html.replace(base, "") and "https://" not in html  # no CDN, no external font
    browser.find_element(By.ID, "key").send_keys(KEY)
    browser.find_element(By.ID, "question").send_keys("What year was Shirley Temple born?")
    Select(browser.find_element(By.ID, "mode")).select_by_visible_text("one_shot")
    browser.find_element(By.ID, "ask-btn").click()
    wait = WebDriverWait(browser, 120)
    wait.until(ec.visibility_of_element_located((By.ID, "citations-card")))
    assert not browser.find_element(By.ID, "ask-error").text
    answer = browser.find_element(By.ID, "answer-text").text
    meta = browser.find_element(By.ID, "answer-meta").text
    assert answer.strip() and "mode one_shot" in meta and "1 retrieval call" in meta
    assert "chose" in browser.find_element(By.ID, "trace").text or "retrieve" in browser.find_element(By.ID, "trace").text
    cites = browser.find_elements(By.CSS_SELECTOR, "#answer-text .cite")
    if cites:  # the model wrote [n] markers: clicking one opens that passage
        cites[0].click()
        n = cites[0].get_attribute("data-n")
        assert browser.find_element(By.ID, f"passage-{n}").get_attribute("open") is not None
    cited = browser.find_elements(By.CSS_SELECTOR, "details.cited")
    assert cited, "the answer cites at least one passage"
    cited[0].find_element(By.TAG_NAME, "summary").click() if cited[0].get_attribute("open") is None else None
    marks = cited[0].find_elements(By.TAG_NAME, "mark")
    if "citations: overlap" in meta:  # found by the answer's text: it must be there, highlighted
        assert marks and marks[0].text.lower() in answer.lower()
    _shot(browser, "ask.png")

    browser.find_element(By.ID, "tab-search").click()
    browser.find_element(By.ID, "query").send_keys("Shirley Temple")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#hits .hit")))
    hits = browser.find_elements(By.CSS_SELECTOR, "#hits .hit")
    assert len(hits) == 10 and "Shirley Temple" in hits[0].text
    _shot(browser, "search.png")


def test_a_wrong_key_is_shown_not_swallowed(browser, base):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(base + "/")
    browser.execute_script("localStorage.clear()")
    browser.get(base + "/")
    browser.find_element(By.ID, "key").send_keys("wrong-key-0123456789abc")
    browser.find_element(By.ID, "tab-search").click()
    browser.find_element(By.ID, "query").send_keys("Shirley Temple")
    browser.find_element(By.CSS_SELECTOR, "#search-form button").click()
    WebDriverWait(browser, 30).until(lambda b: b.find_element(By.ID, "search-error").text)
    assert "API key" in browser.find_element(By.ID, "search-error").text
