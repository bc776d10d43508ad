"""The configs shipped in the package: found by name, listed with a description, shown as
they are, and a file of the same name always wins."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.selection.space import read_space
from seqlab.shipped import CONFIG_DIR, resolve_config, shipped_config, shipped_configs

REPO = Path(__file__).resolve().parents[1]
runner = CliRunner()


def test_the_clone_configs_folder_is_the_package_folder() -> None:
    """One source of truth: the repo's configs/ is the package's configs/."""
    assert (REPO / "configs").resolve() == CONFIG_DIR
    assert CONFIG_DIR.parent == (REPO / "src" / "seqlab").resolve()


def test_every_shipped_config_has_a_name_and_a_description() -> None:
    configs = shipped_configs()
    names = [c.name for c in configs]
    assert "ptb_small" in names and "spaces/mr_l2" in names
    assert len(names) == len(set(names)) == len(list(CONFIG_DIR.rglob("*.yaml")))
    for config in configs:
        assert config.description, f"{config.path}: no leading comment line"
        assert "\n" not in config.description
    small = shipped_config("ptb_small")
    assert small.description.startswith("Zaremba, Sutskever & Vinyals 2014")
    assert small.description.endswith(" ...")  # its first sentence goes on
    assert shipped_config("ptb_small.yaml").path == small.path


def test_a_name_resolves_when_no_such_file_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_config("ptb_small") == CONFIG_DIR / "ptb_small.yaml"
    assert resolve_config(Path("spaces/mr_l2")) == CONFIG_DIR / "spaces" / "mr_l2.yaml"
    assert load_config("ptb_kn5", ["model.order=3"]).model.order == 3  # type: ignore[attr-defined]
    assert [p.key for p in read_space(Path("spaces/mr_l2"))] == ["optim.l2"]
    mine = tmp_path / "ptb_small"  # a file of that name wins over the shipped config
    mine.write_text("task: lm_ngram\n", encoding="utf-8")
    assert resolve_config("ptb_small") == Path("ptb_small")
    assert load_config("ptb_small").task == "lm_ngram"


def test_an_unknown_name_lists_the_close_ones() -> None:
    with pytest.raises(ConfigError, match="ptb_smal: config file not found, nor a shipped") as e:
        resolve_config("ptb_smal")
    assert "close names: ptb_small" in str(e.value) and "`seqlab configs`" in str(e.value)
    with pytest.raises(ConfigError, match=r"close names: .*spaces/mr_l2"):
        read_space(Path("mr_l2"))
    with pytest.raises(ConfigError, match="search space file not found"):
        read_space(Path("mr_l2"))
    with pytest.raises(ConfigError, match="no shipped config of that name"):
        shipped_config("../pyproject")  # names never leave the configs folder
    with pytest.raises(ConfigError, match="config file not found"):
        resolve_config("/nowhere/x.yaml")


def test_seqlab_configs_lists_and_shows(tmp_path: Path) -> None:
    listed = runner.invoke(app, ["configs"])
    assert listed.exit_code == 0, listed.output
    lines = listed.output.splitlines()
    assert len(lines) == len(shipped_configs())
    row = next(line for line in lines if line.startswith("ptb_kn5 "))
    assert "Kneser-Ney 5-gram on PTB" in row
    as_json = runner.invoke(app, ["configs", "--json"])
    assert '"name": "w2v_ptb"' in as_json.output.splitlines()[-1]
    shown = runner.invoke(app, ["configs", "show", "ptb_small"])
    assert shown.exit_code == 0
    assert shown.output == (CONFIG_DIR / "ptb_small.yaml").read_text(encoding="utf-8")
    missing = runner.invoke(app, ["configs", "show", "ptb_smol"])
    assert missing.exit_code == 2
    assert "ptb_smol: no shipped config of that name; close names: ptb_small" in missing.output
    unknown = runner.invoke(app, ["train", "ptb_smol", "--out", str(tmp_path / "r")])
    assert unknown.exit_code == 2 and "close names: ptb_small" in unknown.output
    assert not (tmp_path / "r").exists()
