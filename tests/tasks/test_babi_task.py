"""Task ``babi_qa`` end to end on small generated bAbI files: CLI train (joint, two tasks),
eval (also on any bAbI file), predict --story, plot --kind memory, and bad input."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data import sources
from seqlab.data.readers import read_babi
from seqlab.errors import ConfigError
from seqlab.evaluation import LoadedRun
from seqlab.loader import load_config
from seqlab.tasks import TASKS
from seqlab.tasks.babi_qa import BabiDataConfig, BabiQATask, split_stories

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["garden", "kitchen", "office", "hallway", "bedroom"]


@pytest.fixture(autouse=True)
def register(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(TASKS._items, "babi_qa", BabiQATask())


def story_lines(rng: random.Random, two_facts: bool) -> list[str]:
    """A task-1 story (where is X?) or, with ``two_facts``, a task-2-like one (where is
    the object X carries?), 4 statements and 2 questions."""
    lines: list[str] = []
    where: dict[str, tuple[str, int]] = {}
    for _ in range(2):
        for _ in range(2):
            person, place = rng.choice(PEOPLE), rng.choice(PLACES)
            lines.append(f"{len(lines) + 1} {person.title()} went to the {place}.")
            where[person] = (place, len(lines))
        person = rng.choice(sorted(where))
        place, fact = where[person]
        if two_facts:
            lines.append(f"{len(lines) + 1} {person.title()} got the apple.")
            lines.append(f"{len(lines) + 1} Where is the apple? \t{place}\t{len(lines)} {fact}")
        else:
            lines.append(f"{len(lines) + 1} Where is {person.title()}? \t{place}\t{fact}")
    return lines


def write_tasks(root: Path, stories: int = 80) -> None:
    folder = root / "babi" / "en"
    folder.mkdir(parents=True)
    rng = random.Random(0)
    for task, name in ((1, "single-supporting-fact"), (2, "two-supporting-facts")):
        for split, count in (("train", stories), ("test", stories // 4)):
            lines = [line for _ in range(count) for line in story_lines(rng, task == 2)]
            (folder / f"qa{task}_{name}_{split}.txt").write_text("\n".join(lines) + "\n")


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    write_tasks(root)
    monkeypatch.setenv("SEQLAB_DATA", str(root))
    # only this root: a checkout beside ../shared/data would otherwise find the real files
    monkeypatch.setattr(sources, "search_roots", lambda: [root.resolve()])
    return root


def write_config(tmp_path: Path) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "babi_1k_joint.yaml").read_text())
    cfg["data"]["tasks"] = [1, 2]
    cfg["model"].update(embedding_size=20, linear_start_epochs=2)
    cfg["optim"] = {"name": "adam", "lr": 0.02}
    cfg["trainer"].update(epochs=12, batch_size=16, progress=False, clip_norm=40)
    path = tmp_path / "babi.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


def last_json(output: str) -> dict[str, float]:
    result: dict[str, float] = json.loads(output.strip().splitlines()[-1])
    return result


def test_train_eval_predict_plot(tmp_path: Path, data_root: Path) -> None:
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--out", str(run), "--json"])
    assert result.exit_code == 0, result.output
    metrics = last_json(result.output)
    per_task = [metrics["test_error_qa1"], metrics["test_error_qa2"]]
    assert metrics["test_error"] == pytest.approx(sum(per_task) / 2)
    assert metrics["test_failed"] == sum(e > 5.0 for e in per_task)
    assert metrics["test_error_qa1"] < 25.0  # learned: chance is about 80% (5 places)
    # the support rate: the statement most attended at the last hop is a supporting fact
    loaded = LoadedRun.load(run)
    examples = loaded.data.splits["test"]
    answers = loaded.task.answer(loaded.cfg, loaded.model, loaded.data, examples)
    hits = [
        int(att[-1].argmax()) in e.supporting for e, (_, att) in zip(examples, answers, strict=True)
    ]
    assert metrics["test_support"] == pytest.approx(100.0 * sum(hits) / len(hits))
    assert metrics["test_support"] > 40.0  # chance: about 1 in 3 (2-6 statements, 1-2 facts)
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [h["linear_start"] for h in history[:3]] == [1.0, 1.0, 0.0]  # LS for 2 epochs

    test_file = data_root / "babi" / "en" / "qa1_single-supporting-fact_test.txt"
    result = runner.invoke(app, ["eval", str(run), "--data", str(test_file), "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["test_error_qa1"] == pytest.approx(metrics["test_error_qa1"])

    story = tmp_path / "story.txt"
    story.write_text("1 Mary went to the kitchen.\n2 John went to the garden.\n3 Where is Mary?\n")
    result = runner.invoke(app, ["predict", str(run), "--story", str(story)])
    assert result.exit_code == 0, result.output
    question, answer, attended = result.output.strip().split("\t")
    assert question == "Where is Mary?" and answer in PLACES
    assert all(i in ("1", "2") for i in attended.split())  # a statement id per hop
    assert len(attended.split()) == 3

    bad = tmp_path / "bad_story.txt"
    bad.write_text("1 Where is Mary?\n")
    result = runner.invoke(app, ["predict", str(run), "--story", str(bad)])
    assert result.exit_code == 2
    assert f"{bad}:1: a question before any statement" in result.output
    result = runner.invoke(app, ["plot", str(run), "--kind", "memory", "--story", str(story)])
    assert result.exit_code == 0, result.output
    assert (run / "memory.png").stat().st_size > 1000

    bad = tmp_path / "qa1_bad_test.txt"
    bad.write_text("1 Mary went to the moon.\n2 Where is Mary? \tmoon\t1\n")
    result = runner.invoke(app, ["eval", str(run), "--data", str(bad)])
    assert result.exit_code != 0
    assert "qa1_bad_test.txt:2: answer 'moon' names no word of the model's vocabulary" in (
        result.output
    )


def test_validation_holds_out_whole_stories(data_root: Path) -> None:
    examples = read_babi(data_root / "babi" / "en" / "qa1_single-supporting-fact_train.txt")
    train, val = split_stories(examples, 0.1, seed=1)
    assert len(val) == 2 * 8  # 10% of 80 stories, 2 questions each
    assert not {e.story_number for e in train} & {e.story_number for e in val}
    assert split_stories(examples, 0.1, seed=1) == (train, val)


def test_a_missing_task_alone_is_an_error_and_left_out_of_a_joint_run(
    tmp_path: Path, data_root: Path
) -> None:
    cfg = write_config(tmp_path)
    args = ["--set", "data.size=10k", "--set", "trainer.max_steps=2"]
    result = runner.invoke(
        app, ["train", str(cfg), "--out", str(tmp_path / "a"), *args, "--set", "data.tasks=[3]"]
    )
    assert result.exit_code != 0 and "bAbI 10k task 3 is not available" in result.output
    loaded = load_config(cfg, ["data.size=1k", "data.tasks=[1,2,3]"])
    data = BabiQATask().setup(loaded, tmp_path / "b", train=True)
    assert data.tasks == [1, 2] and data.report["not_available"] == [3]


def test_data_config_checks_the_tasks() -> None:
    with pytest.raises(ConfigError, match="distinct bAbI tasks"):
        BabiDataConfig(tasks=(0, 21)).validate()


@pytest.mark.parametrize(
    ("name", "size", "dim", "ls", "epochs"),
    [
        ("babi_1k_joint", "1k", 50, 30, 90),
        ("babi_10k_joint", "10k", 50, 10, 30),
        ("babi_10k_task", "10k", 20, 20, 120),
    ],
)
def test_configs_load_with_the_papers_recipe(
    name: str, size: str, dim: int, ls: int, epochs: int
) -> None:
    cfg = load_config(REPO / "configs" / f"{name}.yaml")
    assert (cfg.data.size, cfg.model.embedding_size, cfg.model.hops) == (size, dim, 3)
    assert (cfg.model.encoding, cfg.model.random_noise) == ("position_code", 0.1)
    assert cfg.model.empty_slots  # chosen on validation (1k joint)
    assert cfg.model.linear_start_epochs == ls and cfg.trainer.epochs == epochs
    # lr 0.005 during linear start, then 0.01 (x32: the paper's cost is summed over a batch)
    assert cfg.optim.lr_epochs[:2] == ((0, 0.16), (ls, 0.32))
    assert cfg.trainer.clip_norm * cfg.trainer.batch_size == 40.0


def test_config_dry_run(tmp_path: Path, data_root: Path) -> None:
    config = REPO / "configs" / "babi_1k_joint.yaml"
    overrides = ["--set", "data.tasks=[1,2]", "--set", "trainer.max_steps=3"]
    result = runner.invoke(
        app, ["train", str(config), "--out", str(tmp_path / "run"), *overrides, "--json"]
    )
    assert result.exit_code == 0, result.output
    assert last_json(result.output)["steps"] == 3


def test_eval_set_overrides_an_evaluation_setting(tmp_path: Path, data_root: Path) -> None:
    """`seqlab eval RUN --set data.eval_batch_size=7`: other batches, the same answers."""
    run = tmp_path / "run"
    result = runner.invoke(app, ["train", str(write_config(tmp_path)), "--out", str(run)])
    assert result.exit_code == 0, result.output
    plain = runner.invoke(app, ["eval", str(run), "--json"])
    result = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=7", "--json"])
    assert result.exit_code == 0, result.output
    assert last_json(result.output) == pytest.approx(last_json(plain.output), rel=1e-6)
    bad = runner.invoke(app, ["eval", str(run), "--set", "data.eval_batch_size=0"])
    assert bad.exit_code == 2 and "eval_batch_size" in bad.output
