"""`seqlab bench NAME`: name -> module with ``run(quick: bool) -> dict``.

Modules are imported only when their benchmark runs (some need optional peers such as
gensim).
"""

from __future__ import annotations

import importlib
from typing import Any

from seqlab.errors import ConfigError
from seqlab.registry import Registry

BENCHMARKS: Registry[str] = Registry("benchmark")


def run_benchmark(name: str, quick: bool = False) -> dict[str, Any]:
    module_name = BENCHMARKS.get(name)
    try:
        module = importlib.import_module(module_name)
    except ImportError as err:
        raise ConfigError(f"benchmark {name!r} needs {err.name!r}; install seqlab[dev]") from err
    result: dict[str, Any] = module.run(quick=quick)
    return result


BENCHMARKS.register("recurrent", "seqlab.bench.recurrent")
BENCHMARKS.register("long-range", "seqlab.bench.long_range")
BENCHMARKS.register("gradient-flow", "seqlab.bench.gradient_flow")
BENCHMARKS.register("lm", "seqlab.bench.lm")
BENCHMARKS.register("word2vec", "seqlab.bench.word2vec")
BENCHMARKS.register("tagger", "seqlab.bench.tagger")
BENCHMARKS.register("tree", "seqlab.bench.tree")
BENCHMARKS.register("decode", "seqlab.bench.decode")
BENCHMARKS.register("attention", "seqlab.bench.attention")
BENCHMARKS.register("distill", "seqlab.bench.distill")
