"""The documentation site, checked in seconds without building it (`make docs` runs it):
the nav lists every page, every executed block parses, every `seqlab` command in a block
parses with the CLI's own options, every config a block trains loads with its overrides,
and every seqlab name a python block imports exists."""

from __future__ import annotations

import ast
import importlib
import importlib.util
import re
import shlex
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import typer.core
import typer.main
import yaml

from seqlab.bench_registry import BENCHMARKS
from seqlab.cli import app
from seqlab.loader import load_config
from seqlab.plots import PLOTS

REPO = Path(__file__).resolve().parents[2]
DOCS = REPO / "docs"


def load_hook() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_exec", REPO / "tools" / "docs_exec.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["docs_exec"] = module
    spec.loader.exec_module(module)
    return module


HOOK = load_hook()
PAGES = sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md"))
BLOCKS = [
    (page, block)
    for page in PAGES
    for block in HOOK.exec_blocks((DOCS / page).read_text(encoding="utf-8"), page)
]


def nav_files(entry: Any) -> list[str]:
    if isinstance(entry, str):
        return [entry]
    if isinstance(entry, list):
        return [f for item in entry for f in nav_files(item)]
    if isinstance(entry, dict):
        return [f for value in entry.values() for f in nav_files(value)]
    raise AssertionError(f"unexpected nav entry {entry!r}")


def mkdocs_config() -> dict[str, Any]:
    config = yaml.safe_load((REPO / "mkdocs.yml").read_text(encoding="utf-8"))
    assert isinstance(config, dict)
    return config


def test_the_nav_lists_every_page_and_only_pages_that_exist() -> None:
    nav = nav_files(mkdocs_config()["nav"])
    generated = set(HOOK.api_pages())
    assert len(nav) == len(set(nav)), "a page is twice in the nav"
    missing = sorted(set(PAGES) - set(nav))
    assert not missing, f"pages not in mkdocs.yml's nav: {missing}"
    dangling = sorted(set(nav) - set(PAGES) - generated)
    assert not dangling, f"nav entries without a file: {dangling}"
    config = mkdocs_config()
    HOOK.on_config(config)  # adds the API pages of new subpackages to the nav
    api_missing = sorted(generated - set(nav_files(config["nav"])))
    assert not api_missing, f"API pages not in the nav: {api_missing}"


def test_a_new_subpackage_gets_its_api_page_in_the_nav(monkeypatch: pytest.MonkeyPatch) -> None:
    pages = HOOK.api_pages() | {"api/serve.md": "# seqlab.serve"}
    monkeypatch.setattr(HOOK, "api_pages", lambda: pages)
    config = mkdocs_config()
    HOOK.on_config(config)
    assert "api/serve.md" in nav_files(config["nav"])


def test_every_chapter_is_executed_and_in_the_tutorials_section() -> None:
    chapters = [p for p in PAGES if p.startswith("tutorials/") and p != "tutorials/index.md"]
    assert len(chapters) >= 8
    tutorials = next(e for e in mkdocs_config()["nav"] if "Tutorials" in e)["Tutorials"]
    listed = nav_files(tutorials)
    index = (DOCS / "tutorials" / "index.md").read_text(encoding="utf-8")
    for chapter in chapters:
        assert chapter in listed, f"{chapter} is not under Tutorials in the nav"
        assert Path(chapter).name in index, f"tutorials/index.md has no row for {chapter}"
        kinds = {b.lang for page, b in BLOCKS if page == chapter}
        assert "bash" in kinds, f"{chapter} runs no command"
        text = (DOCS / chapter).read_text(encoding="utf-8")
        assert re.search(r"!\[[^\]]*\]\(figures/[\w.-]+\.png\)", text), f"{chapter}: no figure"
        assert "seqlab plot" in text, f"{chapter}: no figure drawn by seqlab plot"
        assert "## Exercise" in text, f"{chapter}: no exercise"


def test_the_block_parser_finds_blocks_options_and_skips_nested_examples() -> None:
    text = (
        "````markdown\n```bash exec\nnot run\n```\n````\n\n"
        "```bash exec tail=3\necho one\n```\n\n```python\nshown only\n```\n\n"
        "  ```python exec hide\n  print(1)\n  ```\n"
    )
    blocks = HOOK.exec_blocks(text)
    assert [(b.lang, b.code, b.tail, b.hide) for b in blocks] == [
        ("bash", "echo one\n", 3, False),
        ("python", "print(1)\n", None, True),
    ]
    with pytest.raises(ValueError, match="unknown exec option 'tails'"):
        HOOK.exec_blocks("```bash exec tails=3\necho\n```\n", "x.md")
    with pytest.raises(ValueError, match="x.md:1: fence ``` is never closed"):
        HOOK.exec_blocks("```bash exec\necho\n", "x.md")


def test_a_failing_block_names_the_page_and_line(tmp_path: Path) -> None:
    (block,) = HOOK.exec_blocks("\n```bash exec\necho start\nfalse\necho never\n```\n")
    with pytest.raises(HOOK.ExecError, match=r"x.md:2: bash block exited with 1") as err:
        HOOK.run_block(block, tmp_path, HOOK.environment(), "x.md")
    assert "start" in str(err.value) and "never" in str(err.value)  # the code and its output
    (ok,) = HOOK.exec_blocks("```python exec tail=1\nprint('a')\nprint('b')\n```\n")
    output = HOOK.run_block(ok, tmp_path, HOOK.environment(), "x.md")
    assert HOOK.shown_output(ok, output) == "...\nb"


@pytest.mark.parametrize(
    ("page", "block"), BLOCKS, ids=[f"{page}:{block.line}" for page, block in BLOCKS]
)
def test_every_executed_block_parses(page: str, block: Any) -> None:
    if block.lang == "bash":
        check = subprocess.run(["bash", "-n", "-c", block.code], capture_output=True, text=True)
        assert check.returncode == 0, f"docs/{page}:{block.line}: {check.stderr}"
        commands = seqlab_commands(block.code)
        for args in commands:
            check_seqlab_command(args, f"docs/{page}:{block.line}")
    else:
        tree = ast.parse(block.code, f"docs/{page}:{block.line}")
        check_seqlab_imports(tree, f"docs/{page}:{block.line}")


# ------------------------------------------------------------------ the command checks

OPERATORS = {";", "&&", "||", "|", "&", "(", ")", "do", "then", "else", "done", "fi"}
HEREDOC = re.compile(r"<<-?\s*['\"]?(\w+)['\"]?")


def seqlab_commands(code: str) -> list[list[str]]:
    """The argument lists of the `seqlab ...` commands in a bash block (heredoc bodies,
    comments and redirections left out)."""
    lines: list[str] = []
    pending = ""
    heredoc: str | None = None
    for line in code.split("\n"):
        if heredoc is not None:
            if line.strip() == heredoc:
                heredoc = None
            continue
        m = HEREDOC.search(line)
        if m:
            heredoc = m[1]
            line = line[: m.start()]
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        lines.append(pending + line)
        pending = ""
    commands = []
    for line in lines:
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        lexer.commenters = "#"
        tokens = list(lexer)
        current: list[str] = []
        i = 0
        while i < len(tokens):
            token = tokens[i]
            if token in OPERATORS or (set(token) <= set(";&|()") and token):
                if token != "||":  # `cmd || true`: a command meant to fail is not checked
                    commands.append(current)
                current = []
            elif token[0] in "<>":
                i += 1  # the redirection's target
            elif token.isdigit() and i + 1 < len(tokens) and tokens[i + 1][0] in "<>":
                pass  # the file descriptor of 2>&1
            else:
                current.append(token)
            i += 1
        commands.append(current)
    return [c[1:] for c in commands if c and c[0] == "seqlab"]


def check_seqlab_command(args: list[str], where: str) -> None:
    """Parse ``seqlab ARGS`` with the CLI's click command, as running it would, without
    running it; then check what the parse cannot: the config and its overrides, the
    benchmark and plot names."""
    command: Any = typer.main.get_command(app)  # typer's own (vendored) click command
    rest = list(args)
    path = ["seqlab"]
    while isinstance(command, typer.core.TyperGroup):
        if not rest and command.invoke_without_command:
            break  # `seqlab configs` lists them
        assert rest, f"{where}: `{' '.join(path)}` without a subcommand"
        sub = command.get_command(command.context_class(command), rest[0])
        assert sub is not None, f"{where}: `{' '.join(path)}` has no subcommand {rest[0]!r}"
        path.append(rest.pop(0))
        command = sub
    try:
        ctx = command.make_context(" ".join(path), rest)
    except Exception as err:  # the vendored click's UsageError
        message = err.format_message() if hasattr(err, "format_message") else str(err)
        raise AssertionError(f"{where}: `seqlab {' '.join(args)}`: {message}") from None
    params = ctx.params
    if path[1:] == ["train"] and params["config"] is not None:
        sets = [s for s in params["sets"] if "$" not in s]
        config = REPO / params["config"]  # a file in a clone, or a shipped config's name
        load_config(config if config.is_file() else params["config"], sets)  # or ConfigError
    if path[1:] == ["bench"] and params["name"] != "list":
        assert params["name"] in BENCHMARKS, f"{where}: no benchmark {params['name']!r}"
    if path[1:] == ["plot"]:
        assert params["kind"] in PLOTS, f"{where}: no plot kind {params['kind']!r}"


def check_seqlab_imports(tree: ast.AST, where: str) -> None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("seqlab"):
            module = importlib.import_module(node.module or "")
            for alias in node.names:
                assert hasattr(module, alias.name), f"{where}: {node.module} has no {alias.name}"
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.startswith("seqlab"):
                    importlib.import_module(alias.name)


def test_the_command_checks_catch_what_they_are_for() -> None:
    """The checks have teeth: a typo in an option, a config key, a plot kind fails."""
    assert seqlab_commands(
        "for s in 1 2; do seqlab train configs/x.yaml --set a=$s > /dev/null 2>&1; done\n"
        "cat > f <<'EOF'\nseqlab not a command\nEOF\necho x | seqlab predict runs/x  # note\n"
        "seqlab train --sett x || true\n"
    ) == [["train", "configs/x.yaml", "--set", "a=$s"], ["predict", "runs/x"]]
    bad = [
        (["train", "configs/ptb_kn5.yaml", "--sett", "x=1"], "No such option"),
        (["train", "configs/ptb_kn5.yaml", "--set", "trainer.epoch=1"], "epoch"),
        (["train", "ptb_kn6", "--set", "model.order=3"], "close names: ptb_kn5"),
        (["plot", "runs/x", "--kind", "heatmap"], "no plot kind"),
        (["bench", "nothing"], "no benchmark"),
        (["data", "lists"], "no subcommand"),
        (["generate", "runs/x", "--top-p", "high"], "Invalid value for '--top-p'"),
    ]
    for args, message in bad:
        with pytest.raises(Exception, match=message):
            check_seqlab_command(args, "x.md:1")
    check_seqlab_command(["train", "configs/ptb_kn5.yaml", "--set", "model.order=3"], "x.md")
    check_seqlab_command(["train", "ptb_kn5", "--set", "model.order=3"], "x.md")
    check_seqlab_command(["configs"], "x.md")
    check_seqlab_command(["configs", "show", "ptb_small"], "x.md")
