"""`seqlab plot RUN_DIR --kind K`: read what a figure needs from a run dir and draw it.

``seqlab.analysis`` draws from arrays; this module is the one that reads run dirs for it.
Every kind is ``plot(run_dir, out, **options) -> Path`` (the PNG written); options a kind
does not know are an error.
"""

from __future__ import annotations

import inspect
import json
import math
import statistics
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np
import torch
from torch.nn import functional as F

from seqlab.analysis.alignment import plot_alignment
from seqlab.analysis.attention import plot_attention
from seqlab.analysis.caption_attention import plot_caption_attention
from seqlab.analysis.confusion import plot_confusion
from seqlab.analysis.curves import plot_curves
from seqlab.analysis.embedding_map import plot_embedding_map
from seqlab.analysis.gradient_flow import gradient_flow, plot_gradient_flow
from seqlab.analysis.memory import plot_memory
from seqlab.analysis.param_curves import plot_param_curves
from seqlab.analysis.reconstruction import plot_reconstruction
from seqlab.analysis.seed_curves import Curve, mean_std_at_steps, plot_seed_curves
from seqlab.analysis.tree import plot_tree
from seqlab.config import read_yaml
from seqlab.data.audio import read_wav
from seqlab.data.readers import Tree, parse_babi, parse_tree
from seqlab.errors import ConfigError, DataError, RunDirError
from seqlab.models.las import LAS
from seqlab.provenance import NOT_RECIPE
from seqlab.registry import Registry
from seqlab.report import build_report, find_run_dirs
from seqlab.rundir import RunDir
from seqlab.runs import load_run_config
from seqlab.tasks import TASKS
from seqlab.tasks.babi_qa import BabiQATask, encode
from seqlab.tasks.base import TrainedTask
from seqlab.tasks.caption import CaptionTask, load_array
from seqlab.tasks.speech import SpeechTask
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


def run_attention(
    run_dir: Path,
    out: Path,
    wav: str | None = None,
    image: str | None = None,
    text: str | None = None,
) -> Path:
    """What each output step attended to: for a speech run, the alignment of the digits to
    the frames of ``--wav FILE`` (else of the first test utterance); for a captioning run,
    the attention over the feature map for each word of ``--image FILE.npy``'s caption
    (else of the first test scene); for a translate run, the decoder's attention over the
    source ``--text`` at each step of its translation."""
    cfg = load_run_config(run_dir)
    task = TASKS.get(cfg.task)
    if isinstance(task, TranslateTask):
        if wav is not None or image is not None:
            raise ConfigError("a translate run's attention plot takes --text, not --wav/--image")
        return _translate_attention(task, cfg, run_dir, out, text)
    if isinstance(task, SpeechTask):
        if image is not None:
            raise ConfigError("a speech run's attention plot takes --wav, not --image")
        return _speech_attention(task, cfg, run_dir, out, wav)
    if isinstance(task, CaptionTask):
        if wav is not None:
            raise ConfigError("a captioning run's attention plot takes --image, not --wav")
        return _caption_attention(task, cfg, run_dir, out, image)
    raise ConfigError(
        f"attention plots need a translate, speech or caption run, {run_dir} is {cfg.task!r}"
    )


def _translate_attention(
    task: TranslateTask, cfg: Any, run_dir: Path, out: Path, text: str | None
) -> Path:
    """The attention of a translate run's decoder over the source ``--text`` at each step
    of its translation (decoded as the run's config says: ``data.beam_size``)."""
    if text is None or not text.strip():
        raise ConfigError("plot kind 'attention' needs --text (a source sentence)")
    model, data = task.load_trained(cfg, run_dir)
    with torch.no_grad():
        source, target, weights, translation = task.align(cfg, model, data, text)
    if weights is None:
        raise ConfigError(f"{run_dir}: the model has no attention (model.attention: none)")
    title = f"{text.strip()}\n-> {translation}"
    return plot_attention(weights, source, target, out, title=title)


def _speech_attention(
    task: SpeechTask, cfg: Any, run_dir: Path, out: Path, wav: str | None
) -> Path:
    model, data = task.load_trained(cfg, run_dir)
    if wav is not None:
        samples, source = read_wav(wav, data.logmel.cfg.rate), Path(wav).name
    else:
        utterance = data.splits["test"][0]
        samples, source = data.bank.render(utterance), f"test utterance {utterance.text}"
    with torch.no_grad():
        frames, labels, weights = task.alignment(cfg, model, data, samples)
    text = "".join(label for label in labels if label != "</s>")
    return plot_alignment(
        frames.numpy(),
        weights.numpy(),
        labels,
        out,
        seconds_per_frame=data.logmel.cfg.hop_length / data.logmel.cfg.rate,
        reduction=cast(LAS, model).listener.reduction,
        title=f"{Path(run_dir).resolve().name}: {source} -> {text}",
    )


def _caption_attention(
    task: CaptionTask, cfg: Any, run_dir: Path, out: Path, image: str | None
) -> Path:
    model, data = task.load_trained(cfg, run_dir)
    inputs = load_array(Path(image), batched=False) if image else data.inputs["test"][0]
    if inputs.ndim != 2:
        raise ConfigError(f"attention plots draw over an image (H, W), got {inputs.shape}")
    with torch.no_grad():
        words, weights, grid = task.attention(cfg, model, data, inputs)
    caption = " ".join(w for w in words if w != "<eos>")
    return plot_caption_attention(inputs, weights.numpy(), grid, words, out, title=caption)


def run_reconstruction(run_dir: Path, out: Path) -> Path:
    """Exact reconstruction and token accuracy by sentence length of a seq_autoencode run
    (its test split, else its validation split)."""
    files = RunDir(run_dir)
    split = next((s for s in ("test", "val") if files.reconstruction(s).is_file()), None)
    if split is None:
        raise RunDirError(
            f"{run_dir}: no {files.reconstruction('test').name} or "
            f"{files.reconstruction('val').name}; train or evaluate a seq_autoencode run"
        )
    table = json.loads(files.reconstruction(split).read_text(encoding="utf-8"))
    bins = [b for b in table["bins"] if b["sentences"]]
    return plot_reconstruction(
        [f"{b['min_length']}-{b['max_length']}" for b in bins],
        [b["exact"] for b in bins],
        [b["token_acc"] for b in bins],
        [b["sentences"] for b in bins],
        out,
        title=f"{Path(run_dir).resolve().name}: greedy reconstruction ({split})",
    )


def finished_runs(folder: Path) -> list[Path]:
    """The finished run dirs in and below ``folder`` (a search or ``--seeds`` dir, or a
    folder of them); a run dir's own sub-dirs (folds, pretraining) are part of it."""
    if not Path(folder).is_dir():
        raise RunDirError(f"{folder}: no such search or seeds dir")
    found = [p for p in find_run_dirs([Path(folder)]) if RunDir(p).metrics.is_file()]
    if not found:
        raise RunDirError(f"{folder}: holds no finished run (no metrics.json in or below it)")
    return found


def _config_value(config: dict[str, Any], key: str, run_dir: Path) -> float:
    node: Any = config
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise ConfigError(f"{RunDir(run_dir).config}: has no key {key!r}")
        node = node[part]
    if isinstance(node, bool) or not isinstance(node, int | float):
        raise ConfigError(f"{RunDir(run_dir).config}: {key} is {node!r}, not a number to plot")
    return float(node)


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def param_curve(folder: Path, out: Path, param: str, xlabel: str) -> Path:
    """A dev metric and the train / dev loss at the chosen checkpoint against ``param``,
    from every finished run in ``folder`` (mean ± std over the runs at each value)."""
    points: dict[float, list[dict[str, float]]] = {}
    metric = ""
    for run_dir in finished_runs(folder):
        config = read_yaml(RunDir(run_dir).config)
        metric = str((config.get("eval") or {}).get("metric", "val_loss"))
        final = json.loads(RunDir(run_dir).metrics.read_text(encoding="utf-8"))
        history = read_history(run_dir)
        chosen = next(
            (r for r in history if metric in r and r[metric] == final.get(metric)), history[-1]
        )
        point = {metric: float(final[metric]), "train": float(chosen["train_loss"])}
        if "val_loss" in final:
            point["dev"] = float(final["val_loss"])
        points.setdefault(_config_value(config, param, run_dir), []).append(point)
    xs = sorted(points)

    def series(name: str) -> tuple[list[float], list[float]]:
        stats = [_mean_std([p[name] for p in points[x] if name in p] or [math.nan]) for x in xs]
        return [m for m, _ in stats], [s for _, s in stats]

    losses = {"train": series("train")} | (
        {"dev": series("dev")} if "dev" in points[xs[0]][0] else {}
    )
    log_x = xs[0] > 0 and xs[-1] / xs[0] >= 100
    runs = sum(len(v) for v in points.values())
    title = f"{Path(folder).resolve().name}: {runs} runs at {len(xs)} values of {param}"
    return plot_param_curves(
        xs, metric, series(metric), losses, out, xlabel=xlabel, title=title, log_x=log_x
    )


def run_validation_curve(folder: Path, out: Path, param: str | None = None) -> Path:
    """The dev metric against one hyper-parameter (``--param``, a dotted config key)."""
    if not param:
        raise ConfigError("plot kind 'validation-curve' needs --param (e.g. model.dropout)")
    return param_curve(folder, out, param, param)


def run_learning_curve(folder: Path, out: Path, param: str | None = None) -> Path:
    """The dev metric against the size of the training set (``--param``, default
    ``data.train_fraction``)."""
    key = param or "data.train_fraction"
    return param_curve(folder, out, key, f"training-set size ({key})")


def _flat(config: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in config.items():
        if isinstance(value, dict):
            out |= _flat(value, f"{prefix}{key}.")
        else:
            out[f"{prefix}{key}"] = value
    return out


def recipe_labels(configs: Sequence[dict[str, Any]]) -> list[str]:
    """A short name for each recipe: the config keys whose values differ between them
    (``data.curriculum.score=length``), run-dir paths shortened to their last part; unset
    (None) values, the seed and the settings that change no number
    (``provenance.NOT_RECIPE``) left out."""
    ignored = {"anchor"} | {f"{s}.{k}" for s, keys in NOT_RECIPE.items() for k in keys}
    flat = [_flat(c) for c in configs]
    keys = sorted({k for f in flat for k in f} - ignored)
    differ = [k for k in keys if len({json.dumps(f.get(k), sort_keys=True) for f in flat}) > 1]

    def show(value: Any) -> str:
        text = str(value)
        return Path(text).name if "/" in text else text

    labels = [", ".join(f"{k}={show(f[k])}" for k in differ if f.get(k) is not None) for f in flat]
    return [label or "base" for label in labels]


def run_seed_curves(folder: Path, out: Path, metric: Sequence[str] | None = None) -> Path:
    """The dev curves (``metrics.jsonl``) of every finished run in ``folder``, grouped into
    recipes as ``seqlab report`` groups them (configs that differ only in the seed): the
    mean over seeds at each evaluated step, ± one std, each seed a thin line; ``--metric``
    picks the panels (default: ``eval.metric`` and ``val_loss``). The same numbers go to
    a Markdown table beside the PNG (``OUT.md``)."""
    rows = build_report([Path(folder)])["rows"]
    if not rows:
        raise RunDirError(f"{folder}: holds no finished run (no metrics.json in or below it)")
    configs = [read_yaml(RunDir(Path(row["runs"][0])).config) for row in rows]
    names = recipe_labels(configs)
    chosen = list(metric or dict.fromkeys([str(configs[0]["eval"]["metric"]), "val_loss"]))
    recipes: dict[str, dict[str, list[Curve]]] = {}
    for name, row in zip(names, rows, strict=True):
        histories = [read_history(Path(run)) for run in row["runs"]]
        recipes[name] = {
            m: [{int(r["step"]): float(r[m]) for r in h if m in r} for h in histories]
            for m in chosen
        }
    if not any(curve for by_metric in recipes.values() for curve in by_metric[chosen[0]]):
        known = sorted({k for r in read_history(Path(rows[0]["runs"][0])) for k in r})
        raise ConfigError(f"no run in {folder} logged {chosen[0]!r}; it logged {known}")
    lines = ["| recipe | n | metric | step: mean ± std |", "|---|---|---|---|"]
    for name, by_metric in recipes.items():
        for m in chosen:
            steps, mean, std = mean_std_at_steps([c for c in by_metric[m] if c])
            cells = ", ".join(
                f"{s}: {a:.4g} ± {d:.2g}" for s, a, d in zip(steps, mean, std, strict=True)
            )
            lines.append(f"| {name} | {len(by_metric[m])} | {m} | {cells} |")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    title = f"{Path(folder).resolve().name}: {sum(r['n'] for r in rows)} runs, {len(rows)} recipes"
    return plot_seed_curves(recipes, chosen, out, title=title)


PLOTS: Registry[PlotFn] = Registry("plot kind")
PLOTS.register("curves", run_curves)
PLOTS.register("embeddings", run_embeddings)
PLOTS.register("gradient-flow", run_gradient_flow)
PLOTS.register("confusion", run_confusion)
PLOTS.register("tree", run_tree)
PLOTS.register("memory", run_memory)
PLOTS.register("attention", run_attention)
PLOTS.register("validation-curve", run_validation_curve)
PLOTS.register("learning-curve", run_learning_curve)
PLOTS.register("seed-curves", run_seed_curves)
PLOTS.register("reconstruction", run_reconstruction)


def make_plot(run_dir: Path, kind: str, out: Path | None = None, **options: Any) -> Path:
    plot = PLOTS.get(kind)
    given = {k: v for k, v in options.items() if v is not None}
    accepted = inspect.signature(plot).parameters
    for key in given:
        if key not in accepted:
            raise ConfigError(f"plot kind {kind!r} does not take --{key.replace('_', '-')}")
    return plot(run_dir, out if out is not None else RunDir(run_dir).plot(kind), **given)
