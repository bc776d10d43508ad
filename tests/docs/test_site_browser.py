"""A chapter page of the documentation site in a real headless Chromium: its equations are
typeset by the site's own MathJax (nothing is fetched from another host: the test machine
has no internet) and its figure, drawn by its blocks at build time, is loaded.

The site is a one-chapter build of ``mkdocs.yml`` (the same theme, extensions and hooks)
with the chapter's blocks at the step budget of ``make test``; ``make test-browser`` runs
this with the playground tests and saves the screenshot that ``SCREENSHOT`` names
(docs/CONTRIBUTING-docs.md shows it)."""

from __future__ import annotations

import functools
import http.server
import io
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.browser

REPO = Path(__file__).resolve().parents[2]
CHAPTER = "tutorials/memory-networks.md"
FIGURE = "figures/memory_hops.png"
MAX_STEPS = 20
SCREENSHOT = REPO / "docs" / "img" / "docs_chapter.png"


def one_chapter_config(root: Path, chapter: str) -> Path:
    """``mkdocs.yml`` for a site of ``chapter`` alone (built in ``root``): the same theme,
    extensions, scripts and hooks, its paths made absolute; not strict, since the
    chapter's links to the other pages have no target here."""
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    docs = root / "docs"
    (docs / Path(chapter).parent).mkdir(parents=True)
    shutil.copy2(REPO / "docs" / chapter, docs / chapter)
    shutil.copytree(REPO / "docs" / "javascripts", docs / "javascripts")
    (docs / "index.md").write_text("# seqlab\n", encoding="utf-8")
    config |= {
        "docs_dir": str(docs),
        "site_dir": str(root / "site"),
        "strict": False,
        "nav": [{"Home": "index.md"}, {"Chapter": chapter}],
        "hooks": [str(REPO / hook) for hook in config["hooks"]],
    }
    for plugin in config["plugins"]:
        if isinstance(plugin, dict) and "mkdocstrings" in plugin:
            plugin["mkdocstrings"]["handlers"]["python"]["paths"] = [str(REPO / "src")]
    path = root / "mkdocs.yml"
    path.write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> Path:
    pytest.importorskip("mkdocs", reason="the docs extra is not installed (make docs installs it)")
    root = tmp_path_factory.mktemp("site")
    config = one_chapter_config(root, CHAPTER)
    env = os.environ | {
        "SEQLAB_DOCS_MAX_STEPS": str(MAX_STEPS),
        "SEQLAB_DATA": str(shared_data),
        "NO_MKDOCS_2_WARNING": "1",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
    }
    build = [sys.executable, "-m", "mkdocs", "build", "-q", "-f", str(config)]
    done = subprocess.run(build, env=env, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    return root / "site"


@pytest.fixture(scope="module")
def served(site: Path) -> Iterator[str]:
    handler = functools.partial(QuietHandler, directory=str(site))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


TYPESET = """
const done = arguments[arguments.length - 1];
const wait = () => window.MathJax && MathJax.startup && MathJax.startup.promise
  ? MathJax.startup.promise.then(() => MathJax.typesetPromise()).then(() => done(true),
                                                                      e => done(String(e)))
  : setTimeout(wait, 50);
wait();
"""

MATH = """
const math = Array.from(document.querySelectorAll('.md-content .arithmatex'));
return {
  spans: math.length,
  typeset: math.filter(m => m.querySelector('mjx-container')).length,
  raw: math.filter(m => /\\\\[()\\[\\]]/.test(m.textContent)).map(m => m.textContent),
  foreign: performance.getEntriesByType('resource').map(r => r.name)
    .filter(n => !n.startsWith(location.origin)),
  scripts: Array.from(document.scripts).map(s => s.src).filter(s => /tex-mml-chtml/.test(s)),
};
"""


def test_the_chapter_shows_typeset_equations_and_its_figure(browser: Any, served: str) -> None:
    from selenium.webdriver.common.by import By

    browser.set_script_timeout(60)
    browser.get(f"{served}/{CHAPTER.removesuffix('.md')}.html")
    assert browser.execute_async_script(TYPESET) is True
    math = browser.execute_script(MATH)
    assert math["spans"] >= 10, math  # the chapter's \( \) and \[ \] spans
    assert math["typeset"] == math["spans"], math
    assert not math["raw"], f"TeX left untypeset: {math['raw'][:3]}"
    assert math["scripts"] == [f"{served}/javascripts/mathjax/tex-mml-chtml.js"], math
    assert not math["foreign"], f"fetched from another host: {math['foreign']}"
    (figure,) = browser.find_elements(By.CSS_SELECTOR, f"img[src$='{FIGURE}']")
    browser.execute_script("arguments[0].scrollIntoView();", figure)
    loaded = "return arguments[0].complete && arguments[0].naturalWidth;"
    assert browser.execute_script(loaded, figure) > 0, "the figure did not load"
    save_screenshot(browser, figure, SCREENSHOT)


def save_screenshot(browser: Any, figure: Any, path: Path) -> None:
    """The page from its top to the figure's bottom, 1000 px wide, as a 64-colour PNG
    (about a third of the bytes of the full-colour one; text and figure stay legible)."""
    from PIL import Image

    page = "return document.documentElement.scrollHeight;"
    browser.set_window_size(1000, browser.execute_script(page))
    browser.execute_script("window.scrollTo(0, 0);")
    browser.execute_async_script(TYPESET)  # a resize lays the page out again
    bottom = "const r = arguments[0].getBoundingClientRect(); return r.bottom + window.scrollY;"
    height = int(browser.execute_script(bottom, figure)) + 24
    shot = Image.open(io.BytesIO(browser.get_screenshot_as_png())).convert("RGB")
    path.parent.mkdir(parents=True, exist_ok=True)
    shot.crop((0, 0, shot.width, min(height, shot.height))).quantize(colors=64).save(
        path, optimize=True
    )
    browser.set_window_size(1000, 800)
