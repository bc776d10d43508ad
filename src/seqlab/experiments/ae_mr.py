"""Autoencoder codes as features for MR sentiment, with few labels and with all of them.

``python -m seqlab.experiments.ae_mr [--labels 500 all] [--seeds 3] [--plot PNG] [--json]``

For each seed (``trainer.seed`` = 1, 2, ...: model initialisation, batch order and which
training sentences keep their labels) on the fixed train / val / test split of the
``configs/ae_*.yaml`` files (MR, binary bag of the 2000 most frequent training words):

* ``raw``: the bag-of-words vector itself (D = 2000);
* ``pca``: its top 100 principal components (of the training sentences);
* ``ae``, ``sparse``, ``denoising``, ``vae`` (the posterior mean): the codes of the models
  of ``configs/ae_dense.yaml``, ``ae_sparse``, ``ae_denoising``, ``ae_vae``, trained on
  every training sentence without labels (best epoch by validation reconstruction);
* ``stack``: the top code of ``configs/ae_stacked.yaml`` after greedy layer-wise
  pretraining, frozen;
* ``stack_finetuned``: that stack fine-tuned with its softmax head on 80% of the labelled
  examples, the epoch chosen on the other 20%.

Every representation but the last is read by the task's linear probe (logistic
regression, L2 chosen by 5-fold cross-validation on the labelled examples only). The
unsupervised models are trained once per seed and probed with every label count. The
result is test accuracy (%), mean and standard deviation over the seeds.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from torch import Tensor, nn

from seqlab.config import ExperimentConfig
from seqlab.loader import load_config
from seqlab.shipped import CONFIG_DIR
from seqlab.tasks.autoencoder import (
    AutoencoderTask,
    labelled_subset,
    load_data,
    probe_metrics,
)
from seqlab.train.trainer import seed_everything

AUTOENCODERS = {
    "ae": "ae_dense.yaml",
    "sparse": "ae_sparse.yaml",
    "denoising": "ae_denoising.yaml",
    "vae": "ae_vae.yaml",
}
STACK = "ae_stacked.yaml"
REPRESENTATIONS = ["raw", "pca", *AUTOENCODERS, "stack", "stack_finetuned"]
PCA_COMPONENTS = 100


class PCA(nn.Module):
    """``encode(x) = (x − mean) V_k``: the top-k principal directions V_k (D, k) of ``data``
    (N, D): the leading eigenvectors of its covariance (``torch.linalg.eigh`` in float64;
    the same subspace as the SVD of the centered matrix, and much cheaper for N >> D)."""

    def __init__(self, data: Tensor, components: int) -> None:
        super().__init__()
        mean = data.mean(0)
        centered = data - mean
        covariance = (centered.T @ centered).double() / len(data)  # (D, D)
        _, vectors = torch.linalg.eigh(covariance)  # eigenvalues in ascending order
        self.mean: Tensor
        self.directions: Tensor
        self.register_buffer("mean", mean)
        self.register_buffer("directions", vectors.flip(-1)[:, :components].float())

    def encode(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, k)"""
        return (x - self.mean) @ self.directions


def experiment_config(name: str, seed: int, overrides: list[str]) -> ExperimentConfig:
    fixed = [f"trainer.seed={seed}", "trainer.progress=false", "data.labels=null"]
    return load_config(CONFIG_DIR / name, [*fixed, *overrides])


def run_seed(
    seed: int, label_counts: list[int | None], overrides: list[str], console: Console
) -> dict[tuple[str, int | None], float]:
    """Test accuracy of every representation with every number of labels, for one seed."""
    task = AutoencoderTask()
    base = experiment_config(AUTOENCODERS["ae"], seed, overrides)
    data = load_data(base)
    n_train = len(data.inputs["train"])
    subsets = {
        n: dataclasses.replace(data, labelled=labelled_subset(n_train, n, seed))
        for n in label_counts
    }

    def probe(model: nn.Module | None, name: str) -> dict[tuple[str, int | None], float]:
        return {
            (name, n): probe_metrics(model, d, ["test"])[0]["test_acc"] for n, d in subsets.items()
        }

    results = probe(None, "raw") | probe(PCA(data.inputs["train"].float(), PCA_COMPONENTS), "pca")
    with tempfile.TemporaryDirectory() as tmp:
        for name, file in AUTOENCODERS.items():
            cfg = experiment_config(file, seed, overrides)
            seed_everything(seed)
            model = task.build_model(cfg, data)
            task.train_model(cfg, model, data, Path(tmp) / name, console=console)
            results |= probe(model, name)
        cfg = experiment_config(STACK, seed, overrides)
        seed_everything(seed)
        stack = task.build_model(cfg, data)
        task.pretrain(cfg, stack, data, Path(tmp) / "stack", console=console)
        results |= probe(stack, "stack")
        for n, subset in subsets.items():
            tuned = copy.deepcopy(stack)
            seed_everything(seed)
            task.train_model(cfg, tuned, subset, Path(tmp) / f"stack_{n}", console=console)
            metrics = task.classify(cfg, tuned, data.inputs["test"], data.targets["test"], "test")
            results[("stack_finetuned", n)] = metrics["test_acc"]
    return results


def label_name(n: int | None) -> str:
    return "all" if n is None else str(n)


def summarize(
    runs: list[dict[tuple[str, int | None], float]], label_counts: list[int | None]
) -> dict[str, float]:
    """``{rep}_{labels}_acc`` (mean) and ``{rep}_{labels}_std`` over the seeds."""
    summary: dict[str, float] = {}
    for rep in REPRESENTATIONS:
        for n in label_counts:
            values = [run[(rep, n)] for run in runs]
            key = f"{rep}_{label_name(n)}"
            summary[f"{key}_acc"] = statistics.mean(values)
            summary[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
    return summary


def markdown_table(summary: dict[str, float], label_counts: list[int | None]) -> str:
    header = "| representation | " + " | ".join(f"{label_name(n)} labels" for n in label_counts)
    lines = [header + " |", "|---|" + "---:|" * len(label_counts)]
    for rep in REPRESENTATIONS:
        keys = [f"{rep}_{label_name(n)}" for n in label_counts]
        cells = [f"{summary[f'{k}_acc']:.1f} ± {summary[f'{k}_std']:.1f}" for k in keys]
        lines.append(f"| {rep} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(summary: dict[str, float], label_counts: list[int | None], path: Path) -> None:
    """Grouped bars: test accuracy of each representation, one bar per label count."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 3.6))
    width = 0.8 / len(label_counts)
    positions = np.arange(len(REPRESENTATIONS))
    for i, n in enumerate(label_counts):
        means = [summary[f"{rep}_{label_name(n)}_acc"] for rep in REPRESENTATIONS]
        stds = [summary[f"{rep}_{label_name(n)}_std"] for rep in REPRESENTATIONS]
        ax.bar(
            positions + i * width,
            means,
            width,
            yerr=stds,
            capsize=3,
            label=f"{label_name(n)} labels",
        )
    ax.set_xticks(positions + width * (len(label_counts) - 1) / 2, REPRESENTATIONS, rotation=20)
    ax.set_ylabel("MR test accuracy (%)")
    ax.set_ylim(50, max(summary[k] for k in summary if k.endswith("_acc")) + 5)
    ax.axhline(50, color="gray", linewidth=0.5)
    ax.legend(loc="upper left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def parse_labels(text: str) -> int | None:
    return None if text == "all" else int(text)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--labels",
        nargs="+",
        type=parse_labels,
        default=[500, None],
        help="labelled training examples: numbers and/or 'all'",
    )
    parser.add_argument("--seeds", type=int, default=3, help="seeds 1..N")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        help="override a key of every config (e.g. trainer.max_steps=5 for a smoke run)",
    )
    parser.add_argument("--plot", type=Path, help="write a bar chart PNG here")
    parser.add_argument("--json", action="store_true", help="last line: the results as JSON")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    console = Console(stderr=True, quiet=True)
    start = time.perf_counter()
    runs = []
    for seed in range(1, args.seeds + 1):
        runs.append(run_seed(seed, args.labels, args.overrides, console))
        print(f"seed {seed} done after {time.perf_counter() - start:.0f} s", file=sys.stderr)
    summary = summarize(runs, args.labels)
    print(markdown_table(summary, args.labels))
    if args.plot is not None:
        plot(summary, args.labels, args.plot)
    if args.json:
        result = summary | {"seeds": float(args.seeds), "seconds": time.perf_counter() - start}
        print(json.dumps(result))


if __name__ == "__main__":
    main()
