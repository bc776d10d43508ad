"""A search space file: dotted config keys mapped to distributions.

```yaml
optim.lr: {log-float: [1.0e-4, 1.0e-2]}   # log-uniform between the bounds
model.dropout: {float: [0.0, 0.7]}        # uniform
model.maps: {int: [50, 200, 50]}          # integers low..high (optional step)
model.cell: {choice: [lstm, gru]}         # one of the values
```
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import optuna

from seqlab.config import read_yaml
from seqlab.errors import ConfigError
from seqlab.shipped import resolve_config

Kind = Literal["choice", "int", "float", "log-float"]
KINDS: tuple[Kind, ...] = ("choice", "int", "float", "log-float")


@dataclass(frozen=True)
class Param:
    """One searched key and its distribution."""

    key: str
    kind: Kind
    values: tuple[Any, ...] = ()
    """``choice``: the values."""
    low: float = 0.0
    high: float = 0.0
    step: int = 1
    """``int``: the spacing of the integers."""

    def suggest(self, trial: optuna.Trial) -> Any:
        if self.kind == "choice":
            return trial.suggest_categorical(self.key, list(self.values))
        if self.kind == "int":
            return trial.suggest_int(self.key, int(self.low), int(self.high), step=self.step)
        return trial.suggest_float(self.key, self.low, self.high, log=self.kind == "log-float")

    def grid(self) -> list[Any] | None:
        """Every value, for the grid sampler (None for a continuous range)."""
        if self.kind == "choice":
            return list(self.values)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, self.step))
        return None

    def example(self) -> Any:
        """A value of the distribution (to check that the key exists)."""
        if self.kind == "choice":
            return self.values[0]
        return int(self.low) if self.kind == "int" else float(self.low)


def _param(path: Path, key: Any, spec: Any) -> Param:
    where = f"{path}: {key}"
    if not isinstance(key, str) or "." not in key:
        raise ConfigError(f"{where}: keys are dotted config keys such as optim.lr")
    if not isinstance(spec, dict) or len(spec) != 1:
        raise ConfigError(f"{where}: give one distribution, e.g. {{log-float: [1.0e-4, 1.0e-2]}}")
    [(kind, args)] = spec.items()
    if kind not in KINDS:
        raise ConfigError(f"{where}: unknown distribution {kind!r} (known: {', '.join(KINDS)})")
    if not isinstance(args, list) or not args:
        raise ConfigError(f"{where}: {kind} needs a list of values")
    if kind == "choice":
        if len(args) != len({repr(a) for a in args}):
            raise ConfigError(f"{where}: a choice value is given twice")
        return Param(key, "choice", values=tuple(args))
    if kind == "int":
        if len(args) not in (2, 3) or not all(isinstance(a, int) for a in args):
            raise ConfigError(f"{where}: int needs [low, high] or [low, high, step], integers")
        step = args[2] if len(args) == 3 else 1
        if args[0] > args[1] or step < 1:
            raise ConfigError(f"{where}: int needs low <= high and step >= 1")
        return Param(key, "int", low=args[0], high=args[1], step=step)
    if len(args) != 2 or not all(isinstance(a, int | float) for a in args):
        raise ConfigError(f"{where}: {kind} needs [low, high], numbers")
    low, high = float(args[0]), float(args[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ConfigError(f"{where}: {kind} needs finite low < high, got [{low}, {high}]")
    if kind == "log-float" and low <= 0:
        raise ConfigError(f"{where}: log-float needs low > 0, got {low}")
    return Param(key, kind, low=low, high=high)


def read_space(path: Path) -> list[Param]:
    """The parameters of a space file, in file order; a clear error for a bad entry."""
    raw = read_yaml(resolve_config(path, "search space file"))
    if not raw:
        raise ConfigError(f"{path}: the search space is empty")
    return [_param(path, key, spec) for key, spec in raw.items()]


def grid_space(params: list[Param], path: Path) -> dict[str, list[Any]]:
    """The grid of every parameter's values; continuous ranges have none (an error)."""
    grid = {}
    for param in params:
        values = param.grid()
        if values is None:
            raise ConfigError(
                f"{path}: {param.key}: the grid sampler needs choice or int "
                f"distributions, not {param.kind}"
            )
        grid[param.key] = values
    return grid


def set_key(raw: dict[str, Any], key: str, value: Any) -> None:
    """``raw[a][b] = value`` for ``key == "a.b"`` (sections made as needed)."""
    *sections, last = key.split(".")
    node = raw
    for part in sections:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise ConfigError(f"{key}: {part!r} is not a config section")
        node = child
    node[last] = value


def override_text(key: str, value: Any) -> str:
    """``key=value`` that ``--set`` reads back to the same value (``1.0e-05``, not
    ``1e-05``, which YAML reads as a string)."""
    if isinstance(value, float):
        text = repr(value)
        if "e" in text and "." not in text:
            text = text.replace("e", ".0e")
        return f"{key}={text}"
    if isinstance(value, bool):
        return f"{key}={'true' if value else 'false'}"
    return f"{key}={value}"
