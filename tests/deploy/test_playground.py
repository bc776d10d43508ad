"""The playground page in a real headless Chromium (selenium + Debian's chromium-driver):
type a sentence, a story or source sentences, press Run, read the label / tags / answer /
translations and their attention heatmaps off the page. ``make test-browser`` installs the
browser when it is missing; without one these tests are skipped with a message."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from seqlab.evaluation import LoadedRun
from seqlab.serve.app import create_app
from seqlab.serve.settings import ServeSettings

pytestmark = pytest.mark.browser

SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "img" / "playground.png"


def run_page(browser: Any, url: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(url + "/")
    WebDriverWait(browser, 10).until(ready.visibility_of_element_located((By.ID, "form")))


def wait_for(browser: Any, element_id: str) -> Any:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ready
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, 10).until(
        ready.visibility_of_element_located((By.ID, element_id))
    )


def test_classify_page_shows_the_label_the_api_gives(
    browser: Any, cnn: Path, serve_live: Any
) -> None:
    from selenium.webdriver.common.by import By

    service = create_app(LoadedRun.load(cnn))
    expected = TestClient(service).post("/predict", json={"text": "boring and stupid"}).json()
    with serve_live(service) as url:
        run_page(browser, url)
        assert "classify" in browser.find_element(By.ID, "about").text
        box = browser.find_element(By.ID, "input")
        box.clear()
        box.send_keys("boring and stupid")
        browser.find_element(By.ID, "run").click()
        assert wait_for(browser, "label").text == expected["label"]
        bars = browser.find_elements(By.CSS_SELECTOR, "#output .bar")
        assert len(bars) == 2
        box.clear()
        browser.find_element(By.ID, "run").click()  # empty: the API's message, shown
        assert "422" in wait_for(browser, "error").text


def test_tagger_page_shows_a_tag_under_each_word(
    browser: Any, tagger_crf: Path, serve_live: Any
) -> None:
    from selenium.webdriver.common.by import By

    service = create_app(LoadedRun.load(tagger_crf))
    expected = TestClient(service).post("/tag", json={"text": "the dog sleeps ."}).json()
    with serve_live(service) as url:
        run_page(browser, url)
        box = browser.find_element(By.ID, "input")
        box.clear()
        box.send_keys("the dog sleeps .")
        browser.find_element(By.ID, "run").click()
        wait_for(browser, "tags")
        tags = [t.text for t in browser.find_elements(By.CSS_SELECTOR, "#tags .tag")]
        assert tags == expected["tags"]


def test_babi_page_answers_with_an_attention_heatmap(
    browser: Any, babi: Path, serve_live: Any
) -> None:
    from selenium.webdriver.common.by import By

    service = create_app(LoadedRun.load(babi))
    story = [
        "Sandra went to the office.",
        "Mary went to the garden.",
        "Sandra went to the hallway.",
    ]
    expected = (
        TestClient(service)
        .post("/answer", json={"story": story, "question": "Where is Sandra?"})
        .json()
    )
    with serve_live(service) as url:
        run_page(browser, url)
        area = browser.find_element(By.ID, "story")
        area.clear()
        area.send_keys("\n".join(story))
        question = browser.find_element(By.ID, "input")
        question.clear()
        question.send_keys("Where is Sandra?")
        browser.find_element(By.ID, "run").click()
        assert wait_for(browser, "answer").text == expected["answer"]
        rows = browser.find_elements(By.CSS_SELECTOR, "#heatmap tr")
        assert len(rows) == 1 + len(expected["attention"])  # header + one row per hop
        cells = rows[1].find_elements(By.TAG_NAME, "td")
        assert [float(c.text) for c in cells] == pytest.approx(expected["attention"][0], abs=0.006)


def test_page_asks_for_the_api_key(browser: Any, cnn: Path, serve_live: Any) -> None:
    from selenium.webdriver.common.by import By

    service = create_app(LoadedRun.load(cnn), ServeSettings(api_key="k3y"))
    with serve_live(service) as url:
        browser.get(url + "/")
        wait_for(browser, "key-row")
        browser.find_element(By.ID, "api-key").send_keys("k3y")
        browser.find_element(By.ID, "key-save").click()
        wait_for(browser, "form")
        browser.find_element(By.ID, "run").click()
        assert wait_for(browser, "label").text in ("pos", "neg")
        browser.execute_script("sessionStorage.clear()")


def test_translate_page_shows_each_translation_with_its_attention_heatmap(
    browser: Any, translate: Path, serve_live: Any
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    service = create_app(LoadedRun.load(translate), ServeSettings(max_beam=4))
    source = ["Der rot hund läuft im park.", "Der groß katze springt schnell im haus."]
    expected = (
        TestClient(service)
        .post("/translate", json={"source": source, "beam": 2, "attention": True})
        .json()["translations"]
    )
    with serve_live(service) as url:
        run_page(browser, url)
        assert "POST /translate" in browser.find_element(By.ID, "about").text
        assert browser.find_element(By.ID, "beam").get_attribute("max") == "4"
        box = browser.find_element(By.ID, "input")
        box.clear()
        box.send_keys("\n".join(source))
        beam = browser.find_element(By.ID, "beam")
        beam.clear()
        beam.send_keys("2")
        browser.find_element(By.ID, "run").click()
        for i, want in enumerate(expected):
            assert wait_for(browser, f"translation-{i}").text == want["translation"]
            rows = browser.find_elements(By.CSS_SELECTOR, f"#heatmap-{i} tr")
            header = [th.text for th in rows[0].find_elements(By.TAG_NAME, "th")]
            assert header == ["", *want["source_tokens"]]  # one column per source token
            assert [r.find_element(By.TAG_NAME, "th").text for r in rows[1:]] == want[
                "target_tokens"
            ]  # one row per output token, </s> last
            cells = rows[2].find_elements(By.TAG_NAME, "td")
            assert [float(c.text) for c in cells] == pytest.approx(want["attention"][1], abs=0.006)
        browser.find_element(By.ID, "show-attention").click()  # off: the heatmaps go
        browser.find_element(By.ID, "run").click()
        count = "return document.querySelectorAll('#output table.heatmap').length"
        WebDriverWait(browser, 10).until(lambda page: page.execute_script(count) == 0)
        assert browser.find_element(By.ID, "translation-1").text == expected[1]["translation"]
        box.clear()
        browser.find_element(By.ID, "run").click()  # no sentence: the API's 422, shown
        assert "422" in wait_for(browser, "error").text
