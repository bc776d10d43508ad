"""Executed chapters: an mkdocs hook that runs the fenced blocks marked ``exec``.

A chapter marks a block to run by adding ``exec`` to its fence::

    ```bash exec
    seqlab train configs/ptb_kn5.yaml --out runs/kn5 --json
    ```

``bash`` blocks run with ``bash -euo pipefail``, ``python`` blocks as a script, one after
the other in the chapter's own work dir, ``build/docs/<chapter>/`` (emptied first; it
holds a ``configs`` link to the repo's configs, so the commands read as a user types them
in a clone). The page shows the block and, under it, what it printed (stdout and stderr).
Options after ``exec``: ``tail=N`` shows only the last N lines of the output, ``hide``
shows no output, ``timeout=S`` (default 900 s). A block that exits non-zero or runs past
its timeout fails the build, naming the chapter, the line and the output's last lines.

PNGs a chapter's commands write under ``figures/`` in its work dir are published beside
the chapter as ``figures/<name>.png``, so ``![...](figures/<name>.png)`` in the chapter
shows what seqlab drew at build time (two chapters of one folder may not share a name).

Links from a page to repository files outside ``docs/`` (``../../configs/x.yaml``) are
checked (a missing file fails the build) and published under ``_repo/``.

Environment: the blocks see ``PYTHONPATH=<repo>/src`` first, this Python's ``bin`` first
on ``PATH`` (so ``seqlab`` is the package being documented), ``SEQLAB_DATA`` (kept, or
``<repo>/../shared/data`` where that exists), ``COLUMNS=100`` and ``OMP_NUM_THREADS``
(kept, or 1). Chapters run side by side, ``SEQLAB_DOCS_JOBS`` at a time (default 2: one
per core of a 2-core CI machine). ``SEQLAB_DOCS_CACHE=1`` (``make docs-serve``) reuses a
chapter's outputs while its blocks are unchanged; ``make docs`` always runs everything.

A step budget: ``SEQLAB_DOCS_MAX_STEPS=N`` runs the blocks with every ``seqlab train`` capped
at N optimizer steps (``--set trainer.max_steps=N`` added, or the block's own smaller one
kept), through a ``seqlab`` command first on ``PATH`` that adds it (``budget_args``); work
dirs are then ``build/docs-steps<N>/``, beside the full-size ones. ``make test`` runs every
chapter so (``tests/docs/test_chapters_run.py``), the docs build at full size.

The parsing half (``exec_blocks``) imports nothing of mkdocs, so ``tests/docs`` checks
every block without building the site.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
WORK = REPO / "build" / "docs"
MAX_STEPS_ENV = "SEQLAB_DOCS_MAX_STEPS"
LANGUAGES = {"bash": "bash", "sh": "bash", "python": "python"}
FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^`]*)$")
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
DEFAULT_TIMEOUT = 900.0


@dataclass
class Block:
    """One fenced block marked ``exec``: its language, code and where it stands."""

    lang: str  # "bash" or "python"
    code: str
    line: int  # 1-based line of the opening fence
    start: int  # index of the opening fence line
    end: int  # index of the closing fence line
    indent: str
    fence: str
    options: dict[str, str] = field(default_factory=dict)

    @property
    def tail(self) -> int | None:
        return int(self.options["tail"]) if "tail" in self.options else None

    @property
    def hide(self) -> bool:
        return "hide" in self.options

    @property
    def timeout(self) -> float:
        return float(self.options.get("timeout", DEFAULT_TIMEOUT))


def exec_blocks(markdown: str, source: str = "<page>") -> list[Block]:
    """The ``exec`` blocks of a page, in order. Fences nest as in CommonMark: a fence
    closes at a line of the same character, at least as long; nothing inside a fence
    opens another (so an example block inside a ```` fence is not run)."""
    lines = markdown.split("\n")
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, indent, info = m["fence"], m["indent"], m["info"].strip()
        close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
        j = i + 1
        while j < len(lines) and not close.match(lines[j]):
            j += 1
        if j == len(lines):
            raise ValueError(f"{source}:{i + 1}: fence {fence} is never closed")
        words = info.split()
        if len(words) >= 2 and words[1] == "exec":
            if words[0] not in LANGUAGES:
                raise ValueError(
                    f"{source}:{i + 1}: exec blocks are bash or python, not {words[0]!r}"
                )
            options: dict[str, str] = {}
            for word in words[2:]:
                key, _, value = word.partition("=")
                if key not in ("tail", "hide", "timeout"):
                    raise ValueError(
                        f"{source}:{i + 1}: unknown exec option {key!r} (tail=N, hide, timeout=S)"
                    )
                options[key] = value
            body = [ln[len(indent) :] if ln.startswith(indent) else ln for ln in lines[i + 1 : j]]
            code = "\n".join(body) + "\n"
            blocks.append(Block(LANGUAGES[words[0]], code, i + 1, i, j, indent, fence, options))
        i = j + 1
    return blocks


def environment(max_steps: int | None = None, bin_dir: Path | None = None) -> dict[str, str]:
    """What the blocks run with (see the module docstring); with ``max_steps``, a
    ``seqlab`` in ``bin_dir`` (written here, first on ``PATH``) caps every training run."""
    env = dict(os.environ)
    env.pop(MAX_STEPS_ENV, None)
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO / "src")] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else [])
    )
    path = [str(Path(sys.executable).parent), env.get("PATH", "")]
    if max_steps is not None:
        if bin_dir is None:
            raise ValueError("a step budget needs a bin_dir for its seqlab command")
        path.insert(0, str(write_budget_command(bin_dir, max_steps)))
    env["PATH"] = os.pathsep.join(path)
    shared = REPO.parent / "shared" / "data"
    if not env.get("SEQLAB_DATA") and shared.is_dir():
        env["SEQLAB_DATA"] = str(shared)
    env["COLUMNS"] = "100"
    env.setdefault("OMP_NUM_THREADS", "1")
    env["PYTHONHASHSEED"] = "0"
    env.pop("FORCE_COLOR", None)
    env["NO_COLOR"] = "1"
    return env


def budget_args(args: list[str], max_steps: int) -> list[str]:
    """``seqlab ARGS`` at a step budget: ``train`` and ``search`` (whose ``--set`` reaches
    every trial) get ``--set trainer.max_steps=N`` (after their own sets, so it wins)
    unless they set a smaller one themselves."""
    if not args or args[0] not in ("train", "search"):
        return list(args)
    own = []
    for flag, value in zip(args, args[1:], strict=False):
        key, _, number = value.partition("=")
        if flag == "--set" and key.strip() == "trainer.max_steps" and number.strip().isdigit():
            own.append(int(number))
    return [*args, "--set", f"trainer.max_steps={min([max_steps, *own])}"]


def write_budget_command(bin_dir: Path, max_steps: int) -> Path:
    """``bin_dir/seqlab``: the seqlab CLI with ``budget_args`` applied to its arguments."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "seqlab"
    script.write_text(
        f"#!{sys.executable}\n"
        f'"""seqlab with training capped at {max_steps} steps (tools/docs_exec.py)."""\n'
        "import sys\n"
        f"sys.path.insert(0, {str(Path(__file__).resolve().parent)!r})\n"
        "from docs_exec import budget_args\n"
        "from seqlab.cli import main\n"
        # a guard, as pip's entry scripts have: `--nproc N` starts its processes by spawn,
        # which imports this file again in each of them
        "if __name__ == '__main__':\n"
        f"    sys.argv[1:] = budget_args(sys.argv[1:], {max_steps})\n"
        "    main()\n",
        encoding="utf-8",
    )
    script.chmod(0o755)
    return bin_dir


_live: set[subprocess.Popen[str]] = set()


def _stop(proc: subprocess.Popen[str]) -> None:
    """Kill a block's process group (the block and what it started)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()


_stopping = threading.Event()


def stop_all() -> None:
    """Stop the blocks still running, and start no more (another chapter failed)."""
    _stopping.set()
    for proc in list(_live):
        _stop(proc)


class ExecError(Exception):
    """A block failed; the message names the chapter, the line and the output's end."""


def run_block(block: Block, cwd: Path, env: dict[str, str], source: str) -> str:
    """Run one block in ``cwd``; its output (ANSI codes removed), or ExecError."""
    if block.lang == "bash":
        argv = ["bash", "-euo", "pipefail", "-c", block.code]
        stdin = None
    else:
        argv = [sys.executable, "-"]
        stdin = block.code
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # so that a failed build can stop it and its children
    )
    _live.add(proc)
    try:
        stdout, _ = proc.communicate(stdin, timeout=block.timeout)
    except subprocess.TimeoutExpired as err:
        _stop(proc)
        raise ExecError(
            f"{source}:{block.line}: {block.lang} block ran past its timeout of "
            f"{block.timeout:.0f} s:\n{block.code}"
        ) from err
    finally:
        _live.discard(proc)
    output = ANSI.sub("", stdout).replace("\r\n", "\n")
    # a progress bar redraws with \r: keep what the last redraw showed
    output = "\n".join(line.rsplit("\r", 1)[-1] for line in output.split("\n"))
    if proc.returncode != 0:
        last = "\n".join(output.rstrip().split("\n")[-20:])
        raise ExecError(
            f"{source}:{block.line}: {block.lang} block exited with {proc.returncode}:\n"
            f"{block.code}--- last lines of its output ---\n{last}"
        )
    return output


def shown_output(block: Block, output: str) -> str:
    lines = output.rstrip("\n").split("\n")
    if block.tail is not None and len(lines) > block.tail:
        lines = ["..."] + lines[-block.tail :]
    return "\n".join(lines)


@dataclass
class Chapter:
    """The executed result of one page: the outputs of its blocks and its figures."""

    outputs: list[str]
    figures: list[Path]
    seconds: float
    cached: bool = False


def chapter_key(blocks: list[Block]) -> str:
    text = json.dumps([[b.lang, b.code, b.options] for b in blocks])
    return hashlib.sha256(text.encode()).hexdigest()


def prepare_work(work: Path) -> None:
    """An empty work dir for a chapter: ``figures/`` and the ``configs`` link."""
    if work.exists():
        shutil.rmtree(work)
    (work / "figures").mkdir(parents=True)
    (work / "configs").symlink_to(REPO / "configs", target_is_directory=True)


def run_chapter(
    blocks: list[Block], work: Path, env: dict[str, str], source: str, log: Any = None
) -> list[str]:
    """Run a chapter's blocks in order in ``work``; their outputs (or ExecError)."""
    outputs = []
    for block in blocks:
        if _stopping.is_set():
            raise ExecError(f"{source}: stopped (another chapter failed)")
        began = time.perf_counter()
        outputs.append(run_block(block, work, env, source))
        if log is not None:
            log.info(
                f"{source}:{block.line}: {block.lang} block ran in "
                f"{time.perf_counter() - began:.1f} s"
            )
    return outputs


def max_steps_from_env() -> int | None:
    """``SEQLAB_DOCS_MAX_STEPS`` (a step budget for the blocks), or None: full size."""
    value = os.environ.get(MAX_STEPS_ENV, "").strip()
    if not value:
        return None
    if not value.isdigit() or int(value) < 1:
        raise ValueError(f"{MAX_STEPS_ENV} must be a positive number of steps, got {value!r}")
    return int(value)


def execute_page(src_uri: str, markdown: str, use_cache: bool, log: Any = None) -> Chapter | None:
    """Run a page's exec blocks in its work dir (None: the page has none)."""
    blocks = exec_blocks(markdown, f"docs/{src_uri}")
    if not blocks:
        return None
    max_steps = max_steps_from_env()
    root = WORK if max_steps is None else WORK.with_name(f"docs-steps{max_steps}")
    work = root / src_uri.removesuffix(".md")
    cache = work / ".exec.json"
    key = chapter_key(blocks)
    if use_cache and cache.is_file():
        saved = json.loads(cache.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            figures = sorted((work / "figures").glob("*.png"))
            return Chapter(saved["outputs"], figures, 0.0, cached=True)
    prepare_work(work)
    env = environment(max_steps, root / ".bin")
    start = time.perf_counter()
    outputs = run_chapter(blocks, work, env, f"docs/{src_uri}", log)
    seconds = time.perf_counter() - start
    cache.write_text(json.dumps({"key": key, "outputs": outputs, "seconds": seconds}))
    return Chapter(outputs, sorted((work / "figures").glob("*.png")), seconds)


def render(markdown: str, chapter: Chapter) -> str:
    """The page with each exec block shown as plain code, its output under it."""
    lines = markdown.split("\n")
    blocks = exec_blocks(markdown)
    for block, output in reversed(list(zip(blocks, chapter.outputs, strict=True))):
        lang = "bash" if block.lang == "bash" else "python"
        shown = [f"{block.indent}{block.fence}{lang}"] + lines[block.start + 1 : block.end + 1]
        text = shown_output(block, output)
        if not block.hide and text.strip():
            fence = "`" * max(3, len(block.fence), longest_backticks(text) + 1)
            shown += [
                "",
                f'{block.indent}{fence}text title="output (run when this page was built)"',
                *[f"{block.indent}{line}" for line in text.split("\n")],
                f"{block.indent}{fence}",
            ]
        lines[block.start : block.end + 1] = shown
    return "\n".join(lines)


def longest_backticks(text: str) -> int:
    runs = re.findall(r"`+", text)
    return max((len(r) for r in runs), default=0)


# ------------------------------------------------------------------- the API pages

API_INTROS = {
    "": (
        "Platform (seqlab.*)",
        "The model contract, configs, run dirs, loading, training a config into a run dir, "
        "evaluation, figures, reports and the command line. "
        "[Architecture](../architecture.md) says how they fit together.",
    ),
    "nn": (
        "Blocks (seqlab.nn)",
        "Cells, BPTT kernels, recurrent stacks, convolutions, CRF, pooling, dropout, "
        "autoencoders, memory and tree blocks, each written from the equations.",
    ),
    "models": (
        "Models (seqlab.models)",
        "One module per task model; every model follows the contract of `seqlab.contract`.",
    ),
    "tasks": ("Tasks (seqlab.tasks)", "One module per kind of job `seqlab train` can run."),
    "train": (
        "Training (seqlab.train)",
        "The one Trainer, optimizers, learning-rate schedules, checkpoints and devices.",
    ),
    "data": (
        "Data (seqlab.data)",
        "The dataset catalogue and resolution, readers, tokenizers, vocabularies, batching.",
    ),
    "embeddings": (
        "Embeddings (seqlab.embeddings)",
        "word2vec, vector files in word2vec's formats, similarity and analogy evaluation.",
    ),
    "export": (
        "Export (seqlab.export)",
        "`seqlab export`: a trained run to ONNX, TorchScript or safetensors, checked.",
    ),
    "serve": ("Serving (seqlab.serve)", "`seqlab serve`: the HTTP service and its playground."),
    "analysis": (
        "Figures (seqlab.analysis)",
        "Figures drawn from arrays; `seqlab plot` (`seqlab.plots`) reads them from run dirs.",
    ),
}


def api_pages() -> dict[str, str]:
    """The API reference, generated from the source tree so that a new module is on it
    without anyone remembering: ``api/platform.md`` for the top-level modules of
    ``seqlab``, ``api/<package>.md`` for each subpackage (one that ``mkdocs.yml``'s nav
    does not list is added to its API section by ``on_config``)."""
    root = REPO / "src" / "seqlab"
    pages = {}
    packages = [""] + sorted(d.name for d in root.iterdir() if (d / "__init__.py").is_file())
    for package in packages:
        folder = root / package
        modules = sorted(p.stem for p in folder.glob("*.py") if p.stem != "__init__")
        prefix = "seqlab." + (package + "." if package else "")
        title, intro = API_INTROS.get(package, (f"seqlab.{package}", _package_doc(folder)))
        body = [f"# {title}", "", intro, ""]
        if package:  # the package's own names (registries such as seqlab.tasks.TASKS)
            body += [f"::: seqlab.{package}", "    options:", "      show_root_heading: false\n"]
        body += [f"::: {prefix}{m}\n" for m in modules]
        pages[f"api/{package or 'platform'}.md"] = "\n".join(body)
    return pages


def _package_doc(folder: Path) -> str:
    import ast

    tree = ast.parse((folder / "__init__.py").read_text(encoding="utf-8"))
    return (ast.get_docstring(tree) or "").split("\n\n")[0]


# ------------------------------------------------------------------- the mkdocs hook

LINK = re.compile(r"(\]\()([^)\s#]+)((?:#[^)\s]*)?\))")
_chapters: dict[str, Chapter] = {}


def on_config(config: Any) -> Any:
    """Put a generated API page that the nav does not list (a new subpackage) at the end
    of the nav's *API* section, so that it is never an orphan page."""
    pages = list(api_pages())

    def find_api(entries: list[Any]) -> list[Any] | None:
        for entry in entries:
            if isinstance(entry, dict):
                for key, value in entry.items():
                    if key == "API" and isinstance(value, list):
                        return value
                    if isinstance(value, list) and (found := find_api(value)) is not None:
                        return found
        return None

    api = find_api(config["nav"] or [])
    if api is not None:
        listed = {e if isinstance(e, str) else next(iter(e.values())) for e in api}
        api.extend(page for page in pages if page not in listed)
    return config


def on_files(files: Any, config: Any) -> Any:
    """Run every page's exec blocks before any page is rendered, and add their figures."""
    import logging

    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    log = logging.getLogger("mkdocs.plugins.docs_exec")
    for uri, text in api_pages().items():
        files.append(File.generated(config, uri, content=text))
    use_cache = os.environ.get("SEQLAB_DOCS_CACHE") == "1"
    jobs = int(os.environ.get("SEQLAB_DOCS_JOBS", "2"))
    try:
        max_steps = max_steps_from_env()
    except ValueError as err:
        raise PluginError(str(err)) from None
    if max_steps is not None:
        log.info(f"{MAX_STEPS_ENV}: every seqlab train capped at {max_steps} steps")
    _chapters.clear()
    _stopping.clear()
    published: dict[str, str] = {}
    total = time.perf_counter()
    pages = [
        (file.src_uri, Path(file.abs_src_path).read_text(encoding="utf-8"))
        for file in files.documentation_pages()
        if file.abs_src_path is not None  # not the generated API pages
    ]
    # Chapters are independent (each has its own work dir): run them side by side, one
    # per core, each block single-threaded unless OMP_NUM_THREADS says otherwise.
    results: dict[str, Chapter | None] = {}
    pool = ThreadPoolExecutor(max_workers=max(1, jobs))
    futures = {pool.submit(execute_page, uri, md, use_cache, log): uri for uri, md in pages}
    try:
        for future in as_completed(futures):
            results[futures[future]] = future.result()
    except (ExecError, ValueError) as err:
        pool.shutdown(wait=False, cancel_futures=True)
        stop_all()
        raise PluginError(str(err)) from None
    pool.shutdown()
    for uri, _ in pages:
        chapter = results[uri]
        if chapter is None:
            continue
        _chapters[uri] = chapter
        done = "outputs reused" if chapter.cached else f"executed in {chapter.seconds:.1f} s"
        log.info(f"docs/{uri}: {done}")
        folder = Path(uri).parent
        for png in chapter.figures:
            figure = (folder / "figures" / png.name).as_posix()
            if figure in published:
                raise PluginError(
                    f"docs/{uri} and docs/{published[figure]} both publish {figure}; "
                    "name the figures of a chapter after it"
                )
            published[figure] = uri
            files.append(File.generated(config, figure, abs_src_path=str(png)))
    log.info(f"executed chapters: {time.perf_counter() - total:.1f} s in all")
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    """Show each exec block's output; publish linked repository files under ``_repo/``."""
    from mkdocs.exceptions import PluginError
    from mkdocs.structure.files import File

    chapter = _chapters.get(page.file.src_uri)
    if chapter is not None:
        markdown = render(markdown, chapter)
    if page.file.abs_src_path is None:
        return markdown
    docs_dir = Path(config["docs_dir"]).resolve()
    page_dir = Path(page.file.abs_src_path).resolve().parent

    def repo_link(m: re.Match[str]) -> str:
        target = m[2]
        if "://" in target or target.startswith(("mailto:", "/")):
            return m[0]
        path = (page_dir / target).resolve()
        if path.is_relative_to(docs_dir) or not path.is_relative_to(REPO):
            return m[0]
        if not path.is_file():
            raise PluginError(
                f"docs/{page.file.src_uri}: link to {target}, which is not in the repository"
            )
        uri = "_repo/" + path.relative_to(REPO).as_posix()
        if files.get_file_from_path(uri) is None:
            files.append(File.generated(config, uri, abs_src_path=str(path)))
        rel = os.path.relpath(docs_dir / uri, page_dir)
        return f"{m[1]}{Path(rel).as_posix()}{m[3]}"

    return LINK.sub(repo_link, markdown)
