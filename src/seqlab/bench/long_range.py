"""Long-range benchmark: the adding problem and the copy task at T = 50, 100, 200.

One recurrent layer of 128 units -- Elman RNN (``rnn_tanh``), GRU, LSTM with forget-gate bias
1 (``lstm``) or with chrono initialisation for the sequence's length (``lstm_chrono``,
Tallec & Ollivier, 2018) -- and a linear read-out, all with the same optimiser, budget and
seed, are trained on fresh random batches until a validation batch says the task is
solved or the budget is spent, then scored on a fixed test set of 1000 sequences:

* adding problem (T steps): MSE of the sum predicted from the last hidden state; always
  predicting 1.0 scores 1/6 ≈ 0.167;
* copy task (10 symbols out of 8, a recall marker after a delay of T steps, then 10 steps
  to repeat them): cross-entropy and accuracy on the 10 recall steps, the only ones scored;
  a uniform guess scores ln 8 ≈ 2.08 nats and accuracy 1/8.

A run is *solved* when its loss falls below a tenth of the baseline's. ``steps`` is the
number of updates used (a multiple of 100 when the run stopped early).

``python -m seqlab.bench.long_range [--json] [--quick]``; the lead's CLI runs it as
``seqlab bench long-range``. The full run trains 24 models and takes hours on a 2-core CPU;
``--task/--model/--length`` select a part.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.bench.metadata import bench_metadata
from seqlab.bench.recurrent import print_report
from seqlab.data.synthetic import ADDING_BASELINE_MSE, adding_problem, copy_task
from seqlab.nn.recurrent import Recurrent

TASKS = ("adding", "copy")
MODELS = ("rnn_tanh", "gru", "lstm", "lstm_chrono")
LENGTHS = (50, 100, 200)
COPY_LENGTH = 10
COPY_SYMBOLS = 8
BASELINES = {"adding": ADDING_BASELINE_MSE, "copy": math.log(COPY_SYMBOLS)}
SOLVED_FRACTION = 0.1
"""A run counts as solved when its loss is below this fraction of the baseline's."""


@dataclass(frozen=True)
class Settings:
    hidden_size: int = 128
    batch_size: int = 64
    train_steps: int = 4000  # adding problem, at most: training stops once a validation
    # batch is solved
    copy_train_steps: int = 20000  # copy task, at most: models sit on the ln 8 plateau for
    # thousands of updates before they learn to recall (GRU at T=100: 13,100 updates)
    eval_every: int = 100
    lr: float = 3e-3  # Adam
    clip_norm: float = 1.0
    forget_bias: float = 1.0  # model "lstm"
    test_examples: int = 1000
    seed: int = 0


QUICK = Settings(
    hidden_size=16,
    batch_size=16,
    train_steps=20,
    copy_train_steps=20,
    eval_every=10,
    test_examples=64,
)


class SequenceModel(nn.Module):
    """A recurrent layer and a linear read-out of its last ``read_out`` steps:
    (B, T, I) -> (B, read_out, output_size)."""

    def __init__(self, rnn: Recurrent, output_size: int, read_out: int) -> None:
        super().__init__()
        self.rnn = rnn
        self.head = nn.Linear(rnn.hidden_size, output_size)
        self.read_out = read_out

    def forward(self, x: Tensor) -> Tensor:
        output, _ = self.rnn(x)  # (B, T, H)
        return self.head(output[:, -self.read_out :])


def make_model(task: str, model: str, steps: int, settings: Settings) -> SequenceModel:
    """``model`` (one of :data:`MODELS`) for ``task`` at length or delay ``steps``."""
    input_size = 2 if task == "adding" else COPY_SYMBOLS + 2
    total = steps if task == "adding" else steps + 2 * COPY_LENGTH  # sequence length
    hidden = settings.hidden_size
    if model == "lstm":
        rnn = Recurrent("lstm", input_size, hidden, forget_bias=settings.forget_bias)
    elif model == "lstm_chrono":
        rnn = Recurrent("lstm", input_size, hidden, chrono_init=total)
    elif model in ("rnn_tanh", "gru"):
        rnn = Recurrent(model, input_size, hidden)  # type: ignore[arg-type]
    else:
        raise ValueError(f"unknown model {model!r} (known: {', '.join(MODELS)})")
    if task == "adding":
        return SequenceModel(rnn, 1, 1)
    return SequenceModel(rnn, COPY_SYMBOLS, COPY_LENGTH)


def batch(task: str, size: int, steps: int, generator: torch.Generator) -> tuple[Tensor, Tensor]:
    """``size`` examples: adding, x (N, T, 2) and the sums (N,); copy, one-hot x
    (N, T + 20, 10) and the symbols to recall as classes 0..7 (N, 10)."""
    if task == "adding":
        return adding_problem(size, steps, generator)
    inputs, targets = copy_task(size, steps, COPY_LENGTH, COPY_SYMBOLS, generator)
    return F.one_hot(inputs, COPY_SYMBOLS + 2).float(), targets[:, -COPY_LENGTH:] - 1


def task_loss(task: str, prediction: Tensor, target: Tensor) -> Tensor:
    """MSE (adding) or mean cross-entropy over the recall steps (copy)."""
    if task == "adding":
        return F.mse_loss(prediction.flatten(), target)
    return F.cross_entropy(prediction.flatten(0, 1), target.flatten())


def train(task: str, model_name: str, steps: int, settings: Settings) -> tuple[SequenceModel, int]:
    """Train on ``task`` at length (adding) or delay (copy) ``steps``, checking a validation
    batch every ``eval_every`` updates; return the model and the updates used."""
    torch.manual_seed(settings.seed)
    generator = torch.Generator().manual_seed(settings.seed)
    valid_x, valid_y = batch(task, 256, steps, torch.Generator().manual_seed(settings.seed + 2))
    model = make_model(task, model_name, steps, settings)
    optimizer = torch.optim.Adam(model.parameters(), lr=settings.lr)
    budget = settings.copy_train_steps if task == "copy" else settings.train_steps
    for update in range(1, budget + 1):
        x, y = batch(task, settings.batch_size, steps, generator)
        loss = task_loss(task, model(x), y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(model.parameters(), settings.clip_norm)
        optimizer.step()
        if update % settings.eval_every == 0:
            with torch.no_grad():
                valid_loss = task_loss(task, model(valid_x), valid_y).item()
            if valid_loss < SOLVED_FRACTION * BASELINES[task]:
                return model, update
    return model, budget


def train_one(task: str, model_name: str, steps: int, settings: Settings) -> dict[str, object]:
    """Train one model and score it on the fixed test set: one row of the table."""
    start = time.perf_counter()
    model, updates = train(task, model_name, steps, settings)
    seconds = time.perf_counter() - start
    test_x, test_y = batch(task, settings.test_examples, steps, torch.Generator().manual_seed(1))
    with torch.no_grad():
        prediction = model(test_x)
        test_loss = task_loss(task, prediction, test_y).item()
    accuracy = None
    if task == "copy":
        accuracy = round((prediction.argmax(-1) == test_y).float().mean().item(), 4)
    baseline = BASELINES[task]
    return {
        "task": task,
        "T": steps,
        "model": model_name,
        "metric": "mse" if task == "adding" else "recall_ce",
        "test_loss": round(test_loss, 5),
        "baseline": round(baseline, 5),
        "recall_acc": accuracy,
        "solved": test_loss < SOLVED_FRACTION * baseline,
        "steps": updates,
        "seconds": round(seconds, 1),
    }


def run(
    quick: bool = False,
    *,
    tasks: Sequence[str] = TASKS,
    models: Sequence[str] = MODELS,
    lengths: Sequence[int] = LENGTHS,
    settings: Settings | None = None,
    progress: Callable[[dict[str, object]], None] | None = None,
) -> dict[str, object]:
    """Train every (task, T, model) and return the table plus the settings used;
    ``progress`` gets each row as soon as it is done."""
    if settings is None:
        settings = QUICK if quick else Settings()
    if quick:
        lengths = [10]
    table = []
    for task in tasks:
        for steps in lengths:
            for model in models:
                table.append(train_one(task, model, steps, settings))
                if progress is not None:
                    progress(table[-1])
    return {"settings": asdict(settings), "table": table, **bench_metadata("cpu")}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print the result as JSON last")
    parser.add_argument("--quick", action="store_true", help="tiny smoke-test run")
    parser.add_argument("--task", choices=TASKS, action="append", help="default: all")
    parser.add_argument("--model", choices=MODELS, action="append", help="default: all")
    parser.add_argument("--length", type=int, action="append", help="default: 50 100 200")
    parser.add_argument(
        "--train-steps",
        type=int,
        help=f"budget for every task (default: adding {Settings.train_steps}, "
        f"copy {Settings.copy_train_steps})",
    )
    args = parser.parse_args(argv)
    settings = QUICK if args.quick else Settings()
    if args.train_steps is not None:
        budget = {"train_steps": args.train_steps, "copy_train_steps": args.train_steps}
        settings = Settings(**(asdict(settings) | budget))
    result = run(
        args.quick,
        tasks=args.task or TASKS,
        models=args.model or MODELS,
        lengths=args.length or LENGTHS,
        settings=settings,
        progress=lambda row: print(json.dumps(row), file=sys.stderr, flush=True),
    )
    print_report(result, args.json)


if __name__ == "__main__":
    main()
