"""Every executed block of the documentation runs in `make test`, at a small budget.

The blocks are the ones `make docs` runs (``tools/docs_exec.py``'s parser and runner), in
order, in a fresh work dir per page, with every ``seqlab train`` capped at ``MAX_STEPS``
optimizer steps (the hook's step budget, ``SEQLAB_DOCS_MAX_STEPS``); everything else runs
as written. A block that fails fails its page's test with the page, the line, the block
and the end of its output; a figure the page shows that its blocks did not draw fails it
too. Pages run two at a time (one per core of a 2-core machine), each block on one thread.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"
MAX_STEPS = 20
JOBS = 2
FIGURE = re.compile(r"!\[[^\]]*\]\(figures/([\w.-]+\.png)\)")


def load_hook() -> ModuleType:
    if "docs_exec" in sys.modules:  # test_docs_site.py loaded it already
        return sys.modules["docs_exec"]
    spec = importlib.util.spec_from_file_location("docs_exec", REPO / "tools" / "docs_exec.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_exec"] = module
    spec.loader.exec_module(module)
    return module


HOOK = load_hook()
PAGES = sorted(
    page.relative_to(DOCS).as_posix()
    for page in DOCS.rglob("*.md")
    if HOOK.exec_blocks(page.read_text(encoding="utf-8"), page.name)
)


@dataclass(frozen=True)
class Outcome:
    """What running one page's blocks gave: its work dir, the error (None: every block
    ran) and the seconds it took."""

    work: Path
    error: str | None
    seconds: float


@pytest.fixture(scope="module")
def ran(tmp_path_factory: pytest.TempPathFactory, shared_data: Path) -> dict[str, Outcome]:
    """Every page's blocks, run two pages at a time; page -> outcome."""
    root = tmp_path_factory.mktemp("chapters")
    env = HOOK.environment(MAX_STEPS, root / "bin") | {"SEQLAB_DATA": str(shared_data)}

    def run(page: str) -> Outcome:
        source = f"docs/{page}"
        blocks = HOOK.exec_blocks((DOCS / page).read_text(encoding="utf-8"), source)
        work = root / page.removesuffix(".md")
        HOOK.prepare_work(work)
        start = time.perf_counter()
        error = None
        try:
            HOOK.run_chapter(blocks, work, env, source)
        except HOOK.ExecError as err:
            error = str(err)
        return Outcome(work, error, time.perf_counter() - start)

    with ThreadPoolExecutor(max_workers=JOBS) as pool:
        return dict(zip(PAGES, pool.map(run, PAGES), strict=True))


def test_the_pages_with_blocks_are_the_chapters() -> None:
    assert len(PAGES) >= 8 and all(p.startswith("tutorials/") for p in PAGES), PAGES


@pytest.mark.parametrize("page", PAGES)
def test_every_block_of_the_page_runs(page: str, ran: dict[str, Outcome]) -> None:
    outcome = ran[page]
    if outcome.error is not None:
        pytest.fail(outcome.error, pytrace=False)
    text = (DOCS / page).read_text(encoding="utf-8")
    drawn = {p.name for p in (outcome.work / "figures").glob("*.png")}
    missing = sorted(set(FIGURE.findall(text)) - drawn)
    assert not missing, f"docs/{page} shows figures its blocks did not draw: {missing}"


def test_every_training_run_stopped_within_the_budget(ran: dict[str, Outcome]) -> None:
    logs = [log for outcome in ran.values() for log in outcome.work.rglob("metrics.jsonl")]
    steps = [
        json.loads(line).get("step", 0)
        for log in logs
        for line in log.read_text(encoding="utf-8").splitlines()
    ]
    assert len(logs) >= 8 and max(steps) <= MAX_STEPS, (len(logs), max(steps, default=None))


def test_the_budget_caps_training_and_keeps_smaller_caps() -> None:
    args = ["train", "ptb_small", "--set", "trainer.max_steps=150", "--out", "runs/x"]
    assert HOOK.budget_args(args, 20)[-2:] == ["--set", "trainer.max_steps=20"]
    small = ["train", "x", "--set", "trainer.max_steps=5"]
    assert HOOK.budget_args(small, 20)[-1] == "trainer.max_steps=5"
    assert HOOK.budget_args(["plot", "runs/x"], 20) == ["plot", "runs/x"]
    search = ["search", "mr_bow_logreg", "--space", "l2.yaml", "--trials", "4"]
    assert HOOK.budget_args(search, 20)[-2:] == ["--set", "trainer.max_steps=20"]
