"""`seqlab bench tree`: sentences/s of level-batched against node-by-node tree evaluation.

The same model (same weights) runs over the same SST dev trees in batches of 25 in the
same process, once with ``evaluation: levels`` (all nodes of one height across the batch
in one call, nn/tree.py ``encode_levels``) and once with ``evaluation: nodes`` (one call
per node, ``encode_nodes``), alternating rounds so machine noise hits both alike.
``train``: forward, backward and an Adagrad step; ``infer``: ``predict`` under no_grad.
Collation (flattening the trees) is done once beforehand and counted on neither side.
Keys: ``batched_speedup_train`` and ``batched_speedup_infer`` (levels / nodes) for the
RNTN of configs/sst_rntn.yaml, and the same per model under ``models``.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from typing import Any

import torch

from seqlab.bench.metadata import bench_metadata
from seqlab.data.readers import Tree, read_trees
from seqlab.data.sources import resolve
from seqlab.models.tree import (
    SentimentExample,
    TreeBatch,
    TreeModelConfig,
    TreeSentimentModel,
    collate_trees,
)

MODELS = {
    "rntn": TreeModelConfig(name="rntn", embedding_size=25, hidden_size=25),
    "treelstm": TreeModelConfig(name="treelstm", embedding_size=300, hidden_size=150),
}
BATCH = 25


def _examples(trees: Sequence[Tree]) -> tuple[list[SentimentExample], int]:
    words: dict[str, int] = {}
    out = []
    for tree in trees:
        tokens = tree.leaves()
        ids = [words.setdefault(w, len(words)) for w in tokens]
        out.append(SentimentExample(tokens, ids, tree, tree.label))
    return out, len(words)


def _rates(model: TreeSentimentModel, batches: list[TreeBatch], rounds: int) -> dict[str, float]:
    """Seconds per pass for train and infer, levels and nodes, best of ``rounds``."""
    optimizer = torch.optim.Adagrad(model.parameters(), lr=0.01)
    levels_cfg = dataclasses.replace(model.cfg, evaluation="levels")
    nodes_cfg = dataclasses.replace(model.cfg, evaluation="nodes")
    best: dict[str, float] = {}
    for _ in range(rounds):
        for name, cfg in (("levels", levels_cfg), ("nodes", nodes_cfg)):
            model.cfg = cfg
            model.train()
            start = time.perf_counter()
            for batch in batches:
                optimizer.zero_grad()
                model.loss(batch).loss.backward()
                optimizer.step()
            elapsed = time.perf_counter() - start
            best[f"train_{name}"] = min(best.get(f"train_{name}", elapsed), elapsed)
            model.eval()
            start = time.perf_counter()
            with torch.no_grad():
                for batch in batches:
                    model.predict(batch)
            elapsed = time.perf_counter() - start
            best[f"infer_{name}"] = min(best.get(f"infer_{name}", elapsed), elapsed)
    model.cfg = levels_cfg
    return best


def run(
    quick: bool = False, trees: Sequence[Tree] | None = None, rounds: int = 2
) -> dict[str, Any]:
    if trees is None:
        trees = list(read_trees(resolve("sst", "dev"), binary=True))[: 100 if quick else 500]
    examples, vocab = _examples(trees)
    batches = [collate_trees(examples[i : i + BATCH]) for i in range(0, len(examples), BATCH)]
    sentences = len(examples)
    result: dict[str, Any] = {
        "sentences": sentences,
        "nodes": sum(b.structure.num_nodes for b in batches),
        "batch_size": BATCH,
        "threads": torch.get_num_threads(),
        "models": {},
    }
    for name, cfg in MODELS.items():
        torch.manual_seed(1)
        model = TreeSentimentModel(cfg, vocab, 5)
        seconds = _rates(model, batches, rounds)
        rates = {f"{key}_sentences_per_s": sentences / s for key, s in seconds.items()}
        rates["batched_speedup_train"] = seconds["train_nodes"] / seconds["train_levels"]
        rates["batched_speedup_infer"] = seconds["infer_nodes"] / seconds["infer_levels"]
        result["models"][name] = rates
    result["batched_speedup_train"] = result["models"]["rntn"]["batched_speedup_train"]
    result["batched_speedup_infer"] = result["models"]["rntn"]["batched_speedup_infer"]
    result.update(bench_metadata("cpu"))
    return result
