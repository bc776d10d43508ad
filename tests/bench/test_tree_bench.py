"""`seqlab bench tree` on small random trees: both sides run, level batching is faster."""

from __future__ import annotations

import random

from seqlab.bench import tree as bench_tree
from seqlab.data.readers import Tree


def random_tree(rng: random.Random, words: list[str]) -> Tree:
    if len(words) == 1:
        return Tree(rng.randrange(5), word=words[0])
    cut = rng.randrange(1, len(words))
    return Tree(rng.randrange(5), (random_tree(rng, words[:cut]), random_tree(rng, words[cut:])))


def test_bench_tree_reports_speedups() -> None:
    rng = random.Random(0)
    trees = [random_tree(rng, [f"w{rng.randrange(30)}" for _ in range(12)]) for _ in range(25)]
    result = bench_tree.run(trees=trees, rounds=3)  # best of 3: robust to a loaded machine
    assert result["sentences"] == 25 and result["nodes"] == 25 * 23
    for name in ("rntn", "treelstm"):
        rates = result["models"][name]
        assert rates["train_levels_sentences_per_s"] > 0
        assert rates["batched_speedup_infer"] > 1.5  # 23 calls per tree vs ~12 levels a batch
    assert result["batched_speedup_train"] == result["models"]["rntn"]["batched_speedup_train"]
