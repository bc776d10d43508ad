"""bAbI question answering (task ``babi_qa``) with end-to-end memory networks.

* ``data.size``: ``1k`` (dataset ``babi``, ``en/``) or ``10k`` (``babi10k``, ``en-10k/``);
  ``data.tasks``: which of the 20 tasks, trained jointly when there are several (one model,
  one vocabulary) and alone when there is one (``--set data.tasks=[3]``).
* Validation: ``data.val_fraction`` (10%) of each task's training *stories*, drawn with
  ``data.split_seed``; every question of a story falls on the same side.
* Memory: the ``data.memory_size`` (50) most recent statements before each question.
* Words are lower-cased, punctuation dropped; an answer is one vocabulary entry, also a
  list (task 8, ``apple,football``) or a path (task 19, ``n,w``), as the papers score it.
  A test answer whose words are known but which never was a training answer (a list of
  three in task 8) counts as an error; one naming an unknown word is a DataError.
* ``evaluate``: loss, per-task error (%), mean error over the tasks, the number of failed
  tasks (error > 5%), and how often the memory most attended at the last hop is a
  labelled supporting fact (``support``, in %).
* A task whose file is missing (10k task 3's training file) is left out and listed in
  ``data_report.json`` as not available; asking for it alone is an error.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, cast

import numpy as np
import torch
from rich.console import Console
from torch import nn
from torch.nn import functional as F

from seqlab.config import ExperimentConfig
from seqlab.contract import ModelSpec
from seqlab.data.readers import BabiExample, babi_tokens, parse_babi, read_babi
from seqlab.data.sources import resolve
from seqlab.data.vocab import Vocab
from seqlab.errors import ConfigError, DataError, where
from seqlab.models.memn2n import BabiBatch, MemN2N, MemN2NConfig
from seqlab.registry import Registry
from seqlab.rundir import RunDir
from seqlab.tasks.base import TrainedTask, save_data_report

ALL_TASKS = tuple(range(1, 21))
UNSEEN_ANSWER = -100
"""The answer id of a question whose answer (a list or path of known words) never was an
answer in training: it counts as an error and is left out of the loss (cross-entropy's
``ignore_index``)."""
FAILED_ABOVE = 5.0
"""A task fails when its test error is above 5% (the bAbI papers' criterion)."""


@dataclass(frozen=True)
class BabiDataConfig:
    size: Literal["1k", "10k"] = "1k"
    tasks: tuple[int, ...] = ALL_TASKS
    memory_size: int = 50
    """The most recent statements kept in memory for each question."""
    val_fraction: float = 0.1
    split_seed: int = 1234
    eval_batch_size: int = 500

    def validate(self) -> None:
        bad = [t for t in self.tasks if t not in ALL_TASKS]
        if bad or not self.tasks or len(set(self.tasks)) != len(self.tasks):
            raise ConfigError(f"data.tasks must be distinct bAbI tasks 1-20, got {self.tasks}")
        if not 0.0 < self.val_fraction < 1.0:
            raise ConfigError("data.val_fraction must be in (0, 1)")
        if self.memory_size < 1 or self.eval_batch_size < 1:
            raise ConfigError("data.memory_size and data.eval_batch_size must be >= 1")

    @property
    def dataset(self) -> str:
        return "babi" if self.size == "1k" else "babi10k"


@dataclass(frozen=True)
class Encoded:
    """One question as ids: ``story`` (n, T) the kept statements (0-padded), ``question``
    (L,), the answer id, the supporting facts' positions in ``story`` and the task."""

    story: np.ndarray
    question: np.ndarray
    answer: int
    supporting: tuple[int, ...]
    task: int


@dataclass
class BabiData:
    vocab: Vocab
    memory_size: int
    tasks: list[int]
    splits: dict[str, list[Encoded]]
    examples: dict[str, list[BabiExample]]
    report: dict[str, object]

    @property
    def memory_slots(self) -> int:
        """S = min(memory_size, the longest training story): the memory's fixed size (the
        rows of the temporal tables, the slots the softmax runs over), as the authors' code
        sizes it."""
        held = [s for s in ("train", "val") if self.splits.get(s)] or list(self.splits)
        longest = max(e.story.shape[0] for s in held for e in self.splits[s])
        return min(self.memory_size, longest)

    @property
    def max_words(self) -> int:
        """The most words of a statement or question in training (and validation); the
        test split where there is nothing else (``--data``; the model keeps its own)."""
        held = [s for s in ("train", "val") if self.splits.get(s)] or list(self.splits)
        return max(max(e.story.shape[1], len(e.question)) for s in held for e in self.splits[s])


BABI_MODELS: Registry[ModelSpec[BabiData]] = Registry("bAbI model")
BABI_MODELS.register(
    "memn2n",
    ModelSpec(
        MemN2NConfig,
        lambda cfg, data: MemN2N(cfg.model, len(data.vocab), data.memory_slots, data.max_words),
    ),
)


def task_of(path: str | Path) -> int:
    """The task number in a bAbI file name (``qa8_lists-sets_test.txt`` -> 8), else 0."""
    found = re.match(r"qa(\d+)_", Path(path).name)
    return int(found.group(1)) if found else 0


def split_stories(
    examples: Sequence[BabiExample], fraction: float, seed: int
) -> tuple[list[BabiExample], list[BabiExample]]:
    """(train, val): ``fraction`` of the stories (at least one) go to validation."""
    stories = sorted({e.story_number for e in examples})
    count = max(1, round(fraction * len(stories)))
    held = set(random.Random(seed).sample(stories, count))
    return (
        [e for e in examples if e.story_number not in held],
        [e for e in examples if e.story_number in held],
    )


def encode(
    example: BabiExample, vocab: Vocab, memory_size: int, task: int, path: object
) -> Encoded:
    """Ids of the ``memory_size`` most recent statements, the question and the answer."""
    kept = example.story[-memory_size:]
    offset = len(example.story) - len(kept)
    sentences = [vocab.encode(babi_tokens(s)) or [vocab.unk_index] for s in kept]
    width = max(len(s) for s in sentences)
    story = np.zeros((len(sentences), width), dtype=np.int64)
    for i, ids in enumerate(sentences):
        story[i, : len(ids)] = ids
    question = np.asarray(vocab.encode(babi_tokens(example.question)) or [vocab.unk_index])
    answer = UNSEEN_ANSWER
    if example.answer:
        text = example.answer.lower()
        strange = [part for part in text.split(",") if part not in vocab]
        if strange:
            raise DataError(
                f"{where(path, example.line)}: answer {example.answer!r} names no word of the "
                f"model's vocabulary ({', '.join(strange)})"
            )
        if text in vocab:
            answer = vocab.index(text)
    supporting = tuple(i - offset for i in example.supporting_index if i >= offset)
    return Encoded(story, question, answer, supporting, task)


def collate(examples: Sequence[Encoded]) -> BabiBatch:
    """Pad a list of questions into one batch (memories, words and question words)."""
    count = len(examples)
    memories = max(e.story.shape[0] for e in examples)
    width = max(e.story.shape[1] for e in examples)
    length = max(len(e.question) for e in examples)
    story = np.zeros((count, memories, width), dtype=np.int64)
    question = np.zeros((count, length), dtype=np.int64)
    supporting = np.zeros((count, memories), dtype=bool)
    for i, e in enumerate(examples):
        story[i, : e.story.shape[0], : e.story.shape[1]] = e.story
        question[i, : len(e.question)] = e.question
        supporting[i, list(e.supporting)] = True
    return BabiBatch(
        torch.from_numpy(story),
        torch.from_numpy(question),
        torch.tensor([e.answer for e in examples]),
        torch.from_numpy(supporting),
        torch.tensor([e.task for e in examples]),
    )


class BabiQATask(TrainedTask[BabiData]):
    name = "babi_qa"
    data_config = BabiDataConfig
    models = BABI_MODELS
    default_model = "memn2n"

    # ---------------------------------------------------------------- data

    def read(self, dcfg: BabiDataConfig, report: dict[str, object]) -> dict[str, list]:
        """Raw examples per split (train/val/test), each with its task and file."""
        raw: dict[str, list[tuple[BabiExample, int, Path]]] = {"train": [], "val": [], "test": []}
        missing = []
        for task in dcfg.tasks:
            try:
                train_path = resolve(dcfg.dataset, f"qa{task}_train")
            except DataError as err:
                if len(dcfg.tasks) == 1:
                    raise DataError(
                        f"bAbI {dcfg.size} task {task} is not available: {err}"
                    ) from None
                missing.append(task)
                continue
            test_path = resolve(dcfg.dataset, f"qa{task}_test")
            train, val = split_stories(
                read_babi(train_path), dcfg.val_fraction, dcfg.split_seed + task
            )
            raw["train"] += [(e, task, train_path) for e in train]
            raw["val"] += [(e, task, train_path) for e in val]
            raw["test"] += [(e, task, test_path) for e in read_babi(test_path)]
        report["tasks"] = [t for t in dcfg.tasks if t not in missing]
        report["not_available"] = missing
        if missing:
            Console(stderr=True).print(
                f"data: bAbI {dcfg.size} task(s) {missing} not available (training file "
                "missing); left out of training and evaluation"
            )
        return raw

    def setup(
        self, cfg: ExperimentConfig, run_dir: Path, *, train: bool, fold: int | None = None
    ) -> BabiData:
        dcfg: BabiDataConfig = cfg.data
        report: dict[str, object] = {}
        raw = self.read(dcfg, report)
        if train:
            counts: Counter[str] = Counter()
            for e, _, _ in raw["train"] + raw["val"]:  # the words of the training files
                for sentence in e.story:
                    counts.update(babi_tokens(sentence))
                counts.update(babi_tokens(e.question))
                counts[e.answer.lower()] += 1  # a list or path is one answer...
                counts.update(e.answer.lower().split(","))  # ...of known words
            vocab = Vocab.from_counter(counts)
            vocab.save(RunDir(run_dir).vocab)
        else:
            vocab = Vocab.load(RunDir(run_dir).vocab)
        data = self._prepare(dcfg, vocab, raw, report)
        if train:  # a loaded run (eval, serve) leaves its run dir as it is
            save_data_report(run_dir, report)
        return data

    def _prepare(
        self,
        dcfg: BabiDataConfig,
        vocab: Vocab,
        raw: dict[str, list[tuple[BabiExample, int, Path]]],
        report: dict[str, object],
    ) -> BabiData:
        splits = {
            split: [encode(e, vocab, dcfg.memory_size, task, path) for e, task, path in items]
            for split, items in raw.items()
        }
        for split, items in raw.items():
            report[f"{split}_questions"] = len(items)
            report[f"{split}_stories_cut_to_memory_size"] = sum(
                len(e.story) > dcfg.memory_size for e, _, _ in items
            )
            report[f"{split}_answers_never_seen_in_training"] = sum(
                e.answer == UNSEEN_ANSWER for e in splits[split]
            )
        tasks = cast(list[int], report["tasks"])
        examples = {split: [e for e, _, _ in items] for split, items in raw.items()}
        return BabiData(vocab, dcfg.memory_size, tasks, splits, examples, report)

    def setup_eval(self, cfg: ExperimentConfig, run_dir: Path, data_path: str | None) -> BabiData:
        """The run's data with the file ``data_path`` as its test split (the training
        files are read too: the model's memory size and J come from them)."""
        data = self.setup(cfg, run_dir, train=False)
        if data_path is None:
            return data
        dcfg: BabiDataConfig = cfg.data
        path = resolve(data_path)
        task = task_of(path)
        examples = read_babi(path)
        data.splits["test"] = [
            encode(e, data.vocab, dcfg.memory_size, task, path) for e in examples
        ]
        data.examples["test"] = examples
        return data

    def splits(self, data: BabiData) -> list[str]:
        return [s for s in ("val", "test") if data.splits.get(s)]

    def train_batches(
        self, cfg: ExperimentConfig, data: BabiData, epoch: int
    ) -> Iterator[BabiBatch]:
        examples = data.splits["train"]
        order = list(range(len(examples)))
        random.Random(cfg.trainer.seed * 100_003 + epoch).shuffle(order)
        size = cfg.trainer.batch_size
        for start in range(0, len(order), size):
            chosen = [examples[i] for i in order[start : start + size]]
            yield collate(chosen).to(cfg.trainer.device)

    # ---------------------------------------------------------------- use

    def run(
        self, cfg: ExperimentConfig, model: nn.Module, examples: Sequence[Encoded]
    ) -> Iterator[tuple[BabiBatch, torch.Tensor, torch.Tensor]]:
        """(batch, logits (B, V), attention (B, K, M)) over ``examples`` in order."""
        dcfg: BabiDataConfig = cfg.data
        for start in range(0, len(examples), dcfg.eval_batch_size):
            batch = collate(examples[start : start + dcfg.eval_batch_size])
            batch = batch.to(cfg.trainer.device)
            logits, attention = model(batch)
            yield batch, logits, attention

    def evaluate(
        self, cfg: ExperimentConfig, model: nn.Module, data: BabiData, split: str
    ) -> dict[str, float]:
        examples = data.splits[split]
        if not examples:
            raise DataError(f"split {split!r} has no questions")
        was_training = model.training
        model.eval()
        loss_sum = 0.0
        wrong: Counter[int] = Counter()
        asked: Counter[int] = Counter()
        hits = labelled = 0
        with torch.no_grad():
            for batch, logits, attention in self.run(cfg, model, examples):
                loss_sum += float(
                    F.cross_entropy(
                        logits, batch.answers, reduction="sum", ignore_index=UNSEEN_ANSWER
                    )
                )
                errors = (logits.argmax(-1) != batch.answers).cpu()
                for task, error in zip(batch.tasks.tolist(), errors.tolist(), strict=True):
                    asked[task] += 1
                    wrong[task] += int(error)
                real = (batch.story != 0).any(-1)  # (B, M); linear start's weights can be < 0
                last = attention[:, -1].masked_fill(~real, float("-inf"))
                top = last.argmax(-1, keepdim=True)  # (B, 1) most attended at the last hop
                has_label = batch.supporting.any(-1)
                hits += int(batch.supporting.gather(1, top).squeeze(1)[has_label].sum())
                labelled += int(has_label.sum())
        model.train(was_training)
        per_task = {t: 100.0 * wrong[t] / asked[t] for t in sorted(asked)}
        metrics = {
            f"{split}_loss": loss_sum / len(examples),
            f"{split}_error": sum(per_task.values()) / len(per_task),
            f"{split}_failed": float(sum(e > FAILED_ABOVE for e in per_task.values())),
            f"{split}_support": 100.0 * hits / max(labelled, 1),
        }
        metrics.update({f"{split}_error_qa{t}": e for t, e in per_task.items()})
        return metrics

    def evaluate_in_training(
        self, cfg: ExperimentConfig, model: nn.Module, data: BabiData
    ) -> dict[str, float]:
        memn2n = cast(MemN2N, model)
        linear = memn2n.linear
        metrics = self.evaluate(cfg, model, data, "val")
        if linear and memn2n.linear_start_step(metrics["val_loss"]):
            Console(stderr=True).print("linear start ends: the softmax is back from the next step")
        return {**metrics, "linear_start": float(linear)}

    def answer(
        self, cfg: ExperimentConfig, model: nn.Module, data: BabiData, examples: Sequence[Encoded]
    ) -> list[tuple[str, np.ndarray]]:
        """(answer, attention (K, n) over each question's n memories) per question."""
        results = []
        with torch.no_grad():
            for batch, logits, attention in self.run(cfg, model, examples):
                for i, best in enumerate(logits.argmax(-1).tolist()):
                    n = int((batch.story[i] != 0).any(-1).sum())
                    results.append((data.vocab.itos[best], attention[i, :, :n].cpu().numpy()))
        return results

    def predict(
        self, cfg: ExperimentConfig, model: nn.Module, data: BabiData, lines: Iterable[str]
    ) -> Iterator[str]:
        """For each question of a bAbI story (``ID text`` lines; a question is a line with a
        TAB or ending in ``?``): ``question<TAB>answer<TAB>id of the most attended statement
        at each hop``."""
        dcfg: BabiDataConfig = cfg.data
        source = str(getattr(lines, "name", "<story>"))  # the file's name when given a file
        numbered = ((n, line.rstrip("\n")) for n, line in enumerate(lines, 1))
        examples = parse_babi(numbered, source, answers=False)
        if not examples:
            raise DataError(f"{source}: no questions (lines 'ID question?' after statements)")
        encoded = [encode(e, data.vocab, dcfg.memory_size, 0, source) for e in examples]
        for example, (answer, attention) in zip(
            examples, self.answer(cfg, model, data, encoded), strict=True
        ):
            offset = len(example.story) - attention.shape[1]
            ids = [str(example.story_ids[offset + int(hop.argmax())]) for hop in attention]
            yield f"{example.question}\t{answer}\t{' '.join(ids)}"
