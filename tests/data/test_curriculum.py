"""The curriculum sampler (seqlab.data.curriculum): competence, the order in which the
examples are released, determinism by seed and update, bad configurations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from seqlab.config import build_dataclass
from seqlab.data.curriculum import (
    CurriculumConfig,
    CurriculumSampler,
    competence,
    difficulty_order,
)
from seqlab.errors import ConfigError

SCORES = [float(n % 37) for n in range(1000)]  # lengths 0..36, many ties


def test_competence_is_c0_at_zero_and_one_at_t() -> None:
    assert competence(0, 500, 0.01) == pytest.approx(0.01)
    assert competence(500, 500, 0.01) == 1.0
    assert competence(10_000, 500, 0.01) == 1.0
    # square root: a quarter of the way, sqrt(0.25 (1 - c0^2) + c0^2)
    assert competence(125, 500, 0.1) == pytest.approx(math.sqrt(0.25 * 0.99 + 0.01))
    steps = [competence(t, 500, 0.01) for t in range(0, 600, 7)]
    assert steps == sorted(steps)


def test_order_is_easiest_first_with_seeded_ties() -> None:
    order = difficulty_order(SCORES, seed=3)
    ranked = [SCORES[i] for i in order]
    assert ranked == sorted(SCORES)
    assert sorted(order.tolist()) == list(range(len(SCORES)))
    again, other = difficulty_order(SCORES, seed=3), difficulty_order(SCORES, seed=4)
    assert np.array_equal(order, again) and not np.array_equal(order, other)


def test_competence_samples_only_under_the_quantile() -> None:
    cfg = CurriculumConfig(schedule="competence", steps=100, c0=0.1)
    sampler = CurriculumSampler(SCORES, cfg, batch_size=16, seed=1)
    for step in (0, 10, 40, 99, 100, 150):
        allowed = set(sampler.order[: math.ceil(competence(step, 100, 0.1) * 1000)].tolist())
        drawn = [i for part in range(5) for i in sampler.batch(step, part)]
        assert set(drawn) <= allowed
        assert len(sampler.batch(step)) == 16
    assert sampler.available(0) == 100
    assert sampler.available(100) == 1000
    # at t = 0 only the shortest tenth: lengths 0..3 (each 27 or 28 of 1000)
    assert max(SCORES[i] for i in sampler.batch(0)) <= 3


def test_baby_steps_release_the_shortest_bucket_first() -> None:
    cfg = CurriculumConfig(schedule="baby_steps", steps=100, buckets=4)
    sampler = CurriculumSampler(SCORES, cfg, batch_size=32, seed=1)
    assert [sampler.available(t) for t in (0, 24, 25, 50, 75, 99, 100, 500)] == [
        250,
        250,
        500,
        750,
        1000,
        1000,
        1000,
        1000,
    ]
    first = [SCORES[i] for part in range(8) for i in sampler.batch(0, part)]
    assert max(first) <= 9 and min(first) == 0  # the easiest quarter: lengths 0..9
    late = [SCORES[i] for part in range(8) for i in sampler.batch(80, part)]
    assert max(late) >= 30  # the whole set is out


def test_epochs_are_deterministic_and_follow_the_update_count() -> None:
    cfg = CurriculumConfig(schedule="competence", steps=40, c0=0.05)
    one = CurriculumSampler(SCORES, cfg, batch_size=50, seed=7, accumulate=2)
    two = CurriculumSampler(SCORES, cfg, batch_size=50, seed=7, accumulate=2)
    assert one.batches_per_epoch == 20  # ceil(1000 / 50), a multiple of accumulate
    assert one.epoch(1) == two.epoch(1)  # a resumed run draws the same batches
    assert one.epoch(1) != CurriculumSampler(SCORES, cfg, 50, seed=8, accumulate=2).epoch(1)
    # batch j of epoch e belongs to update (e * 20 + j) // 2
    assert one.epoch(1)[5] == one.batch((20 + 5) // 2, 1)
    first = [SCORES[i] for batch in one.epoch(0)[:2] for i in batch]
    assert max(first) <= 1  # update 0: the easiest 5% (lengths 0 and 1)


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"schedule": "anti"}, "schedule"),
        ({"schedule": "competence", "score": "perplexity"}, "score"),
        ({"schedule": "competence", "c0": 0.0}, r"c0 must be in \(0, 1\]"),
        ({"schedule": "competence", "c0": 1.5}, r"c0 must be in \(0, 1\]"),
        ({"schedule": "competence", "steps": 0}, "steps must be >= 1"),
        ({"schedule": "baby_steps", "buckets": 0}, "buckets must be >= 1"),
        ({"schedule": "competence", "score": "lm_loss"}, "needs data.curriculum.run"),
    ],
)
def test_bad_configs_are_clear_errors(raw: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        build_dataclass(CurriculumConfig, raw, "data.curriculum")


def test_non_finite_scores_are_refused() -> None:
    cfg = CurriculumConfig(schedule="competence")
    with pytest.raises(ConfigError, match="not finite"):
        CurriculumSampler([1.0, float("nan")], cfg, batch_size=2, seed=1)
