"""seqlab installed from its wheel, used outside the repository: the shipped configs are
listed, shown and trained by name (issue 24: "usable without the repository").

The wheel is built from a copy of the source (``pip wheel --no-deps``), installed into a
fresh virtual environment that sees this interpreter's site-packages for torch and the
other dependencies but not the editable seqlab, and every command runs from an empty
folder outside the repository with no ``PYTHONPATH``."""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import site
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def run(argv: list[str], cwd: Path, env: dict[str, str], timeout: float = 120) -> str:
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}:\n{done.stderr}"
    return done.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, dict]]:
    """(the venv's bin folder, an empty work folder outside the repo, the environment)."""
    root = tmp_path_factory.mktemp("wheel")
    source = root / "source"  # a copy, so that building writes nothing into the checkout
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    shutil.copytree(
        REPO / "src", source / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info")
    )
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PIP_DISABLE_PIP_VERSION_CHECK"] = "1"
    wheels = root / "wheels"
    pip = [sys.executable, "-m", "pip"]
    # this environment's setuptools where it has one (no download), else pip's isolated build
    isolation = ["--no-build-isolation"] if importlib.util.find_spec("setuptools") else []
    run([*pip, "wheel", "--no-deps", *isolation, "-q", "-w", str(wheels), "."], source, env)
    (wheel,) = wheels.glob("seqlab-*.whl")
    venv = root / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], root, env)
    # the dependencies (torch, ...) from this interpreter's site-packages; a path in a .pth
    # file is not a site dir, so the editable install's own .pth there is not processed
    (purelib,) = venv.glob("lib/python3*/site-packages")
    (purelib / "seqlab_test_deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    run([*pip, "--python", str(venv / "bin" / "python"), "install", "--no-deps", "--no-index",
         "-q", str(wheel)], root, env)  # fmt: skip
    work = root / "elsewhere"
    work.mkdir()
    yield venv / "bin", work, env


def test_seqlab_comes_from_the_wheel_and_lists_and_shows_its_configs(
    installed: tuple[Path, Path, dict],
) -> None:
    bin_dir, work, env = installed
    where = run([str(bin_dir / "python"), "-c", "import seqlab; print(seqlab.__file__)"], work, env)
    assert Path(where.strip()).is_relative_to(bin_dir.parent), where  # not the editable one
    listed = run([str(bin_dir / "seqlab"), "configs", "--json"], work, env)
    names = [row["name"] for row in json.loads(listed.splitlines()[-1])["configs"]]
    assert {"ptb_small", "ptb_kn5", "ewt_upos", "spaces/mr_l2"} <= set(names)
    assert len(names) == len(list((REPO / "configs").rglob("*.yaml")))
    shown = run([str(bin_dir / "seqlab"), "configs", "show", "ptb_small"], work, env)
    assert shown == (REPO / "configs" / "ptb_small.yaml").read_text(encoding="utf-8")


def test_a_shipped_config_trains_by_name_outside_the_repo(
    installed: tuple[Path, Path, dict], shared_data: Path
) -> None:
    bin_dir, work, env = installed
    env = env | {"SEQLAB_DATA": str(shared_data), "OMP_NUM_THREADS": "1"}
    sets = ["trainer.max_steps=3", "trainer.threads=1", "trainer.progress=false",
            "model.num_layers=1", "model.hidden_size=16", "model.embedding_size=16"]  # fmt: skip
    argv = [str(bin_dir / "seqlab"), "train", "ptb_small", "--json"]
    out = run(argv + [a for s in sets for a in ("--set", s)], work, env, timeout=300)
    result = json.loads(out.splitlines()[-1])
    assert result["run_dir"] == "runs/ptb_small"
    assert 1000 < result["test_ppl"] < 20000  # 3 steps of a tiny LSTM: near uniform over 10k
    assert (work / "runs" / "ptb_small" / "metrics.json").is_file()
