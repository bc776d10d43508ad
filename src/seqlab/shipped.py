"""The experiment configs shipped in the package (``seqlab/configs/``), found by name.

A clone has them at ``configs/`` (a link to ``src/seqlab/configs``); an installed seqlab
has them inside the package, so ``seqlab train ptb_small`` works from any folder. A
config's name is its path under ``seqlab/configs/`` without ``.yaml``: ``ptb_small``,
``spaces/mr_l2`` (the search spaces of ``seqlab search --space``). ``seqlab configs`` lists
them with the first comment line of each as its description; ``seqlab configs show NAME``
prints one.

Where a command takes a config file, ``resolve_config`` reads the file when there is one
and the shipped config of that name otherwise; an unknown name is an error listing the
close names.
"""

from __future__ import annotations

import difflib
import itertools
from dataclasses import dataclass
from pathlib import Path

from seqlab.errors import ConfigError

CONFIG_DIR = Path(__file__).resolve().parent / "configs"
SUFFIX = ".yaml"


@dataclass(frozen=True)
class ShippedConfig:
    """One shipped config: its name (``ptb_small``), file and one-line description."""

    name: str
    path: Path

    @property
    def description(self) -> str:
        """The first line of the file's leading comment (``...`` where its sentence goes on
        to the next line)."""
        with self.path.open(encoding="utf-8") as file:
            lines = [line.rstrip() for line in itertools.islice(file, 2)]
        if not lines or not lines[0].startswith("#"):
            return ""
        first = lines[0].lstrip("#").strip()
        goes_on = len(lines) > 1 and lines[1].startswith("# ") and not lines[1].startswith("#  ")
        return first + " ..." if goes_on and not first.endswith(".") else first


def shipped_configs() -> list[ShippedConfig]:
    """Every shipped config, sorted by name (the top-level ones first, then ``spaces/``)."""
    paths = sorted(CONFIG_DIR.rglob(f"*{SUFFIX}"), key=lambda p: (len(p.parts), p))
    return [ShippedConfig(_name(p), p) for p in paths]


def _name(path: Path) -> str:
    return path.relative_to(CONFIG_DIR).with_suffix("").as_posix()


def shipped_config(name: str) -> ShippedConfig:
    """The shipped config called ``name`` (``ptb_small`` or ``ptb_small.yaml``), or a
    ConfigError that lists the close names."""
    key = name.removesuffix(SUFFIX)
    path = CONFIG_DIR / f"{key}{SUFFIX}"
    if key and ".." not in Path(key).parts and not Path(key).is_absolute() and path.is_file():
        return ShippedConfig(key, path)
    raise ConfigError(f"{name}: no shipped config of that name{_close(key)}")


def resolve_config(path: str | Path, what: str = "config file") -> Path:
    """The file a command's CONFIG argument names: the file itself when it exists, else
    the shipped config of that name; a ConfigError naming both when neither exists
    (``what``: the kind of file, for the message)."""
    path = Path(path)
    if path.is_file():
        return path
    try:
        return shipped_config(path.as_posix()).path
    except ConfigError:
        key = path.as_posix().removesuffix(SUFFIX)
        raise ConfigError(
            f"{path}: {what} not found, nor a shipped config of that name{_close(key)}"
        ) from None


def _close(key: str) -> str:
    """``"; close names: a, b; `seqlab configs` lists them all"`` (what a typo needs):
    names close to ``key``, then names whose last part is close to its last part."""
    names = [c.name for c in shipped_configs()]
    close = difflib.get_close_matches(key, names, n=4, cutoff=0.6)
    by_part = {name.rsplit("/", 1)[-1]: name for name in reversed(names)}
    for part in difflib.get_close_matches(Path(key).name, list(by_part), n=4, cutoff=0.6):
        if by_part[part] not in close:
            close.append(by_part[part])
    found = f"; close names: {', '.join(close[:4])}" if close else ""
    return f"{found}; `seqlab configs` lists them all"
