"""`seqlab plot RUN_DIR --kind K`: read what a figure needs from a run dir and draw it.

``seqlab.analysis`` draws from arrays; this module is the one that reads run dirs for it.
Every kind is ``plot(run_dir, out, **options) -> Path`` (the PNG written); options a kind
does not know are an error.
"""

from __future__ import annotations

import inspect
import json
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from seqlab.analysis.attention import plot_attention
from seqlab.analysis.confusion import plot_confusion
from seqlab.analysis.curves import plot_curves
from seqlab.analysis.embedding_map import plot_embedding_map
from seqlab.analysis.gradient_flow import gradient_flow, plot_gradient_flow
from seqlab.analysis.memory import plot_memory
from seqlab.analysis.tree import plot_tree
from seqlab.data.readers import Tree, parse_babi, parse_tree
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.runs import load_run_config
from seqlab.tasks import TASKS
from seqlab.tasks.babi_qa import BabiQATask, encode
from seqlab.tasks.base import TrainedTask
from seqlab.tasks.translate import TranslateTask
from seqlab.tasks.word2vec import load_run_vectors
from seqlab.train.trainer import seed_everything

PlotFn = Callable[..., Path]


def read_history(run_dir: Path) -> list[dict[str, float]]:
    """The evaluations a run logged (``metrics.jsonl``), oldest first."""
    path = RunDir(run_dir).metrics_log
    if not path.is_file():
        raise RunDirError(f"{path}: no evaluations logged yet; train first")
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    if not rows:
        raise RunDirError(f"{path}: empty; train for at least one evaluation")
    return rows


def run_curves(run_dir: Path, out: Path) -> Path:
    """Learning curves of any gradient-trained run."""
    return plot_curves(read_history(run_dir), out, title=Path(run_dir).resolve().name)


def run_confusion(run_dir: Path, out: Path) -> Path:
    """The tag confusion of a tagging run: its test split, else its validation split."""
    files = RunDir(run_dir)
    split = next((s for s in ("test", "val") if files.tag_predictions(s).is_file()), None)
    if split is None:
        raise RunDirError(
            f"{run_dir}: no {files.tag_predictions('test').name} or "
            f"{files.tag_predictions('val').name}; train or evaluate a tagging run"
        )
    side = json.loads(files.tag_predictions(split).read_text(encoding="utf-8"))
    return plot_confusion(side["labels"], np.asarray(side["confusion"]), out, split)


def run_embeddings(run_dir: Path, out: Path, words: Sequence[str] | None = None) -> Path:
    """PCA and t-SNE maps of a word2vec run's vectors (``--words`` to pick them)."""
    return plot_embedding_map(load_run_vectors(run_dir), out, words, title=str(run_dir))


def run_gradient_flow(
    run_dir: Path, out: Path, fresh: bool = False, steps: int | None = None
) -> Path:
    """||dL/dh_t|| of an lm_rnn run's model (``--fresh``: of a newly initialised one).

    The loss is the cross-entropy of the last step of one validation window, so the
    gradient enters at t = T-1 and the heatmap shows how much of it reaches each earlier
    step and layer: an Elman RNN's fades within a few steps, an LSTM's survives.
    """
    cfg = load_run_config(run_dir)
    if cfg.task != "lm_rnn":
        raise ConfigError(f"gradient-flow plots need an lm_rnn run, {run_dir} is {cfg.task!r}")
    task = TASKS.get(cfg.task)
    if not isinstance(task, TrainedTask):
        raise ConfigError(f"gradient-flow plots need a gradient-trained run, not {cfg.task!r}")
    model, data = task.load_trained(cfg, run_dir, None)
    if fresh:
        seed_everything(cfg.trainer.seed)
        model = task.build_model(cfg, data)
    model.eval()
    length = steps or max(cfg.data.bptt, 50)
    split = "val" if "val" in data.splits else "test"
    ids: Any = data.splits[split][: length + 1].unsqueeze(0)  # (1, T+1)
    if ids.size(1) < 2:
        raise ConfigError(f"{split} split is too short for a gradient-flow plot")

    def loss() -> torch.Tensor:
        logits, _ = model(ids[:, :-1])
        return F.cross_entropy(logits[:, -1], ids[:, -1])

    matrices = gradient_flow(model, loss)
    label = "fresh" if fresh else "trained"
    named = {f"{cfg.model.cell} {label}: {name}": m for name, m in matrices.items()}
    return plot_gradient_flow(named, out, title=f"{run_dir}: ||dL/dh_t||, loss at t = T-1")


def run_tree(run_dir: Path, out: Path, text: str | None = None) -> Path:
    """The tree of ``--text`` with each node's predicted sentiment, from a run whose
    ``predict`` gives ``label<TAB>probability<TAB>bracketed tree`` (tree_sentiment): the
    given parse for the tree models (``--text`` is a bracketed tree), the greedily built
    tree for the RAE (``--text`` is a plain sentence)."""
    if not text:
        raise ConfigError("plot kind 'tree' needs --text (a sentence, or a bracketed tree)")
    cfg = load_run_config(run_dir)
    if cfg.task != "tree_sentiment":
        raise ConfigError(f"tree plots need a tree_sentiment run, {run_dir} is {cfg.task!r}")
    task = TASKS.get(cfg.task)
    fold = 0 if cfg.eval.folds > 1 else None  # a cross-validated run: its first fold
    model_dir = RunDir(run_dir).fold(fold).path if fold is not None else run_dir
    model, data = task.load_trained(cfg, model_dir, None, fold=fold)
    with torch.no_grad():
        lines = list(task.predict(cfg, model, data, [text]))
    if not lines:
        raise DataError("--text is empty")
    label, probability, bracketed = lines[0].split("\t")
    tree = parse_tree(bracketed, "<prediction>")
    children: list[tuple[int, int] | None] = []
    words: list[str | None] = []
    labels: list[int] = []

    def add(node: Tree) -> int:  # pre-order ids, children filled in after
        index = len(children)
        children.append(None)
        words.append(node.word)
        labels.append(node.label)
        if node.children:
            left, right = (add(child) for child in node.children)
            children[index] = (left, right)
        return index

    add(tree)
    title = f"{Path(run_dir).resolve().name} ({cfg.model.name}): {label} ({probability})"
    return plot_tree(children, words, labels, data.labels, out, title=title)


def run_memory(run_dir: Path, out: Path, story: str | None = None) -> Path:
    """Attention over the memory sentences at each hop of a babi_qa run, for the last
    question of ``--story FILE`` (bAbI format), else the run's first test question."""
    cfg = load_run_config(run_dir)
    task = TASKS.get(cfg.task)
    if not isinstance(task, BabiQATask):
        raise ConfigError(f"memory plots need a babi_qa run, {run_dir} is {cfg.task!r}")
    model, data = task.load_trained(cfg, run_dir)
    if story is not None:
        path = Path(story)
        if not path.is_file():
            raise DataError(f"{path}: story file not found")
        with open(path, encoding="utf-8") as handle:
            numbered = ((n, line.rstrip("\n")) for n, line in enumerate(handle, 1))
            examples = parse_babi(numbered, path, answers=False)
        if not examples:
            raise DataError(f"{path}: no question in the story")
        example = examples[-1]
        encoded = encode(example, data.vocab, data.memory_size, 0, path)
    else:
        example, encoded = data.examples["test"][0], data.splits["test"][0]
    [(answer, attention)] = task.answer(cfg, model, data, [encoded])
    kept = example.story[len(example.story) - attention.shape[1] :]
    return plot_memory(
        kept,
        attention,
        out,
        question=example.question,
        answer=answer,
        gold=example.answer,
        supporting=encoded.supporting,
    )


def run_attention(run_dir: Path, out: Path, text: str | None = None) -> Path:
    """The attention of a translate run's decoder over the source ``--text`` at each step
    of its translation (decoded as the run's config says: ``data.beam_size``)."""
    if text is None or not text.strip():
        raise ConfigError("plot kind 'attention' needs --text (a source sentence)")
    cfg = load_run_config(run_dir)
    task = TASKS.get(cfg.task)
    if not isinstance(task, TranslateTask):
        raise ConfigError(f"attention plots need a translate run, {run_dir} is {cfg.task!r}")
    model, data = task.load_trained(cfg, run_dir)
    with torch.no_grad():
        source, target, weights, translation = task.align(cfg, model, data, text)
    if weights is None:
        raise ConfigError(f"{run_dir}: the model has no attention (model.attention: none)")
    title = f"{text.strip()}\n-> {translation}"
    return plot_attention(weights, source, target, out, title=title)


PLOTS: Registry[PlotFn] = Registry("plot kind")
PLOTS.register("curves", run_curves)
PLOTS.register("embeddings", run_embeddings)
PLOTS.register("gradient-flow", run_gradient_flow)
PLOTS.register("confusion", run_confusion)
PLOTS.register("tree", run_tree)
PLOTS.register("memory", run_memory)
PLOTS.register("attention", run_attention)


def make_plot(run_dir: Path, kind: str, out: Path | None = None, **options: Any) -> Path:
    plot = PLOTS.get(kind)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(plot).parameters
    for key in given:
        if key not in accepted:
            raise ConfigError(f"plot kind {kind!r} does not take --{key.replace('_', '-')}")
    return plot(run_dir, out if out is not None else RunDir(run_dir).plot(kind), **given)
