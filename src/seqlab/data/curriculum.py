"""Curriculum learning (Bengio et al., 2009): easy training examples first.

Each training example has a difficulty score (its length, or its loss under a finished
run; the task computes them). The examples are ranked easiest first (ties broken by a
seeded permutation), and at optimizer update ``t`` a batch is drawn uniformly from the
easiest ``available(t)`` of the N examples:

* ``none``: all N at every update (the task keeps its usual batching instead);
* ``baby_steps``: the ranking cut into ``buckets`` equal slices, released one after
  another over ``steps`` updates (slice k joins the pool at update ``(k-1) * steps /
  buckets``): the pool grows by one bucket at a time (Spitkovsky et al.'s "baby steps");
* ``competence`` (Platanios et al., 2019): the competence

      c(t) = min(1, sqrt(t (1 - c0^2) / T + c0^2)),   T = ``steps``

  is the fraction of the ranking that may be sampled: the examples whose difficulty CDF
  is at most c(t). c(0) = c0 and c(T) = 1.

A batch depends only on the seed and the update index, so a resumed run draws the same
batches, whatever epoch it stops in. An "epoch" of a curriculum is as many batches as the
plain epoch has (``ceil(N / batch_size)``, rounded up to a multiple of
``trainer.accumulate``, so that update ``t`` is batch ``t * accumulate`` of the run).
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from seqlab.errors import ConfigError

Schedule = Literal["none", "baby_steps", "competence"]
Score = Literal["length", "source_length", "lm_loss"]


@dataclass(frozen=True)
class CurriculumConfig:
    """``data.curriculum`` of the tasks that train on independent examples."""

    schedule: Schedule = "none"
    """``none`` (the task's usual shuffled batches), ``baby_steps`` or ``competence``."""
    score: Score = "length"
    """Difficulty of an example: ``length`` (tokens of source and target, or of the text),
    ``source_length`` (translation: source tokens only) or ``lm_loss`` (mean loss per
    token of the example under the finished run ``run``)."""
    run: str | None = None
    """``lm_loss``: the finished run dir that scores the examples (same task, same
    vocabulary)."""
    steps: int = 1000
    """T: the optimizer update at which every example is available."""
    c0: float = 0.01
    """``competence``: the fraction of easiest examples available at update 0, in (0, 1]."""
    buckets: int = 5
    """``baby_steps``: how many slices of the ranking are released one after another."""

    def validate(self) -> None:
        if self.schedule == "none":
            return
        if self.steps < 1:
            raise ConfigError(f"data.curriculum.steps must be >= 1, got {self.steps}")
        if not 0.0 < self.c0 <= 1.0:
            raise ConfigError(f"data.curriculum.c0 must be in (0, 1], got {self.c0}")
        if self.buckets < 1:
            raise ConfigError(f"data.curriculum.buckets must be >= 1, got {self.buckets}")
        if self.score == "lm_loss" and not self.run:
            raise ConfigError(
                "data.curriculum.score=lm_loss needs data.curriculum.run: the finished run "
                "dir whose per-example loss ranks the training examples"
            )


def competence(step: int, steps: int, c0: float) -> float:
    """Platanios et al.'s square-root competence c(t) = min(1, sqrt(t (1 - c0^2)/T + c0^2))."""
    return min(1.0, math.sqrt(step * (1.0 - c0 * c0) / steps + c0 * c0))


def difficulty_order(scores: Sequence[float], seed: int) -> np.ndarray:
    """Example indices (N,), easiest (lowest score) first; equal scores in an order fixed
    by ``seed``."""
    values = np.asarray(scores, dtype=np.float64)
    if values.ndim != 1 or values.size == 0:
        raise ConfigError("a curriculum needs one difficulty score per training example")
    if not np.isfinite(values).all():
        raise ConfigError("data.curriculum: a difficulty score is not finite")
    tie_break = np.random.default_rng(seed).permutation(values.size)
    return np.lexsort((tie_break, values))  # last key is the primary one


def batches_per_epoch(examples: int, batch_size: int, accumulate: int) -> int:
    """The batches of a curriculum epoch: as many as a plain epoch has, rounded up to a
    multiple of ``accumulate`` (so that update t is batch ``t * accumulate`` of the run)."""
    return math.ceil(math.ceil(examples / batch_size) / accumulate) * accumulate


class CurriculumSampler:
    """Batches of example indices drawn at each optimizer update from the easiest part of
    the training set that the schedule allows (see the module docstring)."""

    def __init__(
        self,
        scores: Sequence[float],
        cfg: CurriculumConfig,
        batch_size: int,
        seed: int,
        accumulate: int = 1,
    ) -> None:
        if cfg.schedule == "none":
            raise ConfigError("CurriculumSampler needs a schedule other than 'none'")
        if batch_size < 1 or accumulate < 1:
            raise ConfigError(
                f"batch_size and accumulate must be >= 1, got {batch_size}, {accumulate}"
            )
        self.cfg = cfg
        self.batch_size = batch_size
        self.seed = seed
        self.accumulate = accumulate
        self.order = difficulty_order(scores, seed)  # (N,) easiest first
        self.batches_per_epoch = batches_per_epoch(len(self.order), batch_size, accumulate)

    def __len__(self) -> int:
        return len(self.order)

    def sized(self, batch_size: int, accumulate: int) -> CurriculumSampler:
        """This curriculum (same ranking, seed and schedule) cut into batches of
        ``batch_size``, ``accumulate`` of them per optimizer update: itself when it is cut
        so already. A process of an N-process group draws batches of ``batch_size / N``,
        N x ``accumulate`` of them per update (``TrainedTask._batches``)."""
        if (batch_size, accumulate) == (self.batch_size, self.accumulate):
            return self
        other = copy.copy(self)
        other.batch_size, other.accumulate = batch_size, accumulate
        other.batches_per_epoch = batches_per_epoch(len(self.order), batch_size, accumulate)
        return other

    def fraction(self, step: int) -> float:
        """The share of the ranking available at optimizer update ``step`` (from 0)."""
        cfg = self.cfg
        if cfg.schedule == "competence":
            return competence(step, cfg.steps, cfg.c0)
        released = min(cfg.buckets, step * cfg.buckets // cfg.steps + 1)  # baby_steps
        return released / cfg.buckets

    def available(self, step: int) -> int:
        """How many of the easiest examples may be drawn at update ``step`` (at least 1)."""
        return max(1, min(len(self.order), math.ceil(self.fraction(step) * len(self.order))))

    def batch(self, step: int, part: int = 0) -> list[int]:
        """The example indices of batch ``part`` of update ``step``: drawn uniformly without
        replacement from the easiest ``available(step)`` (with replacement when fewer than a
        batch are available); the same for the same seed, step and part."""
        pool = self.order[: self.available(step)]
        rng = np.random.default_rng([self.seed, step, part])
        picked = rng.choice(pool.size, size=self.batch_size, replace=pool.size < self.batch_size)
        return [int(i) for i in pool[picked]]

    def epoch(self, epoch: int) -> list[list[int]]:
        """The batches of ``epoch`` (counted from 0): ``batches_per_epoch`` of them, batch
        ``j`` belonging to update ``(epoch * batches_per_epoch + j) // accumulate``."""
        first = epoch * self.batches_per_epoch
        return [
            self.batch((first + j) // self.accumulate, (first + j) % self.accumulate)
            for j in range(self.batches_per_epoch)
        ]
