"""Task ``translate`` end to end on a small generated parallel corpus (a word-for-word
"language" with reordering): CLI train, eval (split, --data/--ref, --set), predict (empty
lines, unknown characters, very long sources, --beam), plot --kind attention, subword
models in the run dir, bad input."""

from __future__ import annotations

import gzip
import json
import random
from pathlib import Path

import numpy as np
import pytest
import yaml
from typer.testing import CliRunner

from seqlab.cli import app
from seqlab.data import sources
from seqlab.errors import ConfigError
from seqlab.loader import load_config
from seqlab.rundir import RunDir
from seqlab.tasks import TASKS

runner = CliRunner()
REPO = Path(__file__).resolve().parents[2]
WORDS = {  # source word -> target word
    "der": "the", "hund": "dog", "katze": "cat", "mann": "man", "frau": "woman",
    "läuft": "runs", "springt": "jumps", "schläft": "sleeps", "rot": "red", "groß": "big",
    "im": "in the", "park": "park", "haus": "house", "schnell": "quickly",
}  # fmt: skip
NOUNS = ["hund", "katze", "mann", "frau"]
VERBS = ["läuft", "springt", "schläft"]
PLACES = ["park", "haus"]


def pair(rng: random.Random) -> tuple[str, str]:
    noun, verb, place = rng.choice(NOUNS), rng.choice(VERBS), rng.choice(PLACES)
    words = ["der", rng.choice(["rot", "groß"]), noun, verb, "im", place]
    if rng.random() < 0.5:
        words.insert(4, "schnell")
    source = " ".join(words).capitalize() + "."
    target = " ".join(WORDS[w] for w in words).capitalize() + "."
    return source, target


def write_corpus(root: Path) -> None:
    folder = root / "multi30k"
    folder.mkdir(parents=True)
    rng = random.Random(0)
    for split, count in (("train", 400), ("val", 40), ("test_2016_flickr", 40)):
        pairs = [pair(rng) for _ in range(count)]
        for lang, side in (("de", 0), ("en", 1)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as out:
                out.write("".join(p[side] + "\n" for p in pairs))


@pytest.fixture
def data_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "data"
    write_corpus(root)
    monkeypatch.setenv("SEQLAB_DATA", str(root))
    monkeypatch.setattr(sources, "search_roots", lambda: [root.resolve()])
    return root


def write_config(tmp_path: Path, **data: object) -> Path:
    cfg = yaml.safe_load((REPO / "configs" / "multi30k_deen_bahdanau.yaml").read_text())
    cfg["data"].update({"tokenizer": "word", "min_count": 1, "eval_batch_size": 16, **data})
    cfg["model"].update(
        embedding_size=24, encoder_hidden_size=24, hidden_size=32, attention_size=16, dropout=0
    )
    cfg["optim"] = {"name": "adam", "lr": 0.01}
    cfg["trainer"].update(
        epochs=6, batch_size=20, progress=False, precision="fp32", checkpoint_every=0
    )
    path = tmp_path / "mt.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A run trained once for the tests of this module (its data root, its run dir)."""
    tmp = tmp_path_factory.mktemp("translate")
    root = tmp / "data"
    write_corpus(root)
    patch = pytest.MonkeyPatch()
    patch.setenv("SEQLAB_DATA", str(root))
    patch.setattr(sources, "search_roots", lambda: [root.resolve()])
    run = tmp / "run"
    result = runner.invoke(
        app, ["train", str(write_config(tmp)), "--out", str(run), "--set", "trainer.threads=1"]
    )
    assert result.exit_code == 0, result.output
    yield root, run
    patch.undo()


def test_training_learns_the_toy_language(trained: tuple[Path, Path]) -> None:
    _, run = trained
    metrics = json.loads(RunDir(run).metrics.read_text())
    assert metrics["val_bleu_greedy"] > 60, metrics
    assert metrics["val_ppl"] < 2.0
    assert "test_bleu" not in metrics  # test is decoded once, by seqlab eval --split test
    history = [json.loads(line) for line in RunDir(run).metrics_log.read_text().splitlines()]
    assert all("val_bleu_greedy" in row for row in history)  # the checkpoint is chosen on it
    assert RunDir(run).side_vocab("de").is_file() and RunDir(run).side_vocab("en").is_file()


def test_eval_reports_bleu_chrf_and_perplexity_with_signature(trained: tuple[Path, Path]) -> None:
    _, run = trained
    result = runner.invoke(app, ["eval", str(run), "--split", "test", "--json"])
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    for key in ("test_bleu", "test_chrf", "test_bleu_tok_lc", "test_bleu_moses", "test_ppl"):
        assert key in metrics
    assert metrics["test_bleu"] > 60 and metrics["test_chrf"] > 70
    assert "nrefs:1|case:mixed|eff:no|tok:13a" in result.output
    report = json.loads(RunDir(run).bleu_report("test").read_text())
    assert report["scores"]["bleu"] == pytest.approx(metrics["test_bleu"])
    lines = RunDir(run).translations("test").read_text().splitlines()
    assert len(lines) == 40 and lines[0][0].isupper()  # detokenised, cased


def test_eval_beam_from_set_and_parallel_files(trained: tuple[Path, Path], tmp_path: Path) -> None:
    root, run = trained
    src, ref = tmp_path / "src.de", tmp_path / "ref.en"
    with (
        gzip.open(root / "multi30k" / "val.de.gz", "rt") as s,
        gzip.open(root / "multi30k" / "val.en.gz", "rt") as r,
    ):
        src.write_text(s.read())
        ref.write_text(r.read())
    result = runner.invoke(
        app,
        ["eval", str(run), "--data", str(src), "--ref", str(ref), "--json",
         "--set", "data.beam_size=3"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["file_bleu"] > 60
    assert "beam 3" in result.output
    val = runner.invoke(app, ["eval", str(run), "--split", "val", "--json"])
    val_metrics = json.loads(val.stdout.strip().splitlines()[-1])
    assert metrics["file_ppl"] == pytest.approx(val_metrics["val_ppl"], rel=1e-5)


def test_mismatched_parallel_files_name_both_files_and_counts(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = trained
    src, ref = tmp_path / "a.de", tmp_path / "b.en"
    src.write_text("Der hund läuft im park.\nDer mann schläft.\n")
    ref.write_text("The dog runs in the park.\n")
    result = runner.invoke(app, ["eval", str(run), "--data", str(src), "--ref", str(ref)])
    assert result.exit_code != 0
    assert f"{src} has 2 lines, {ref} has 1" in result.output
    assert "Traceback" not in result.output
    missing = runner.invoke(app, ["eval", str(run), "--ref", str(ref)])
    assert missing.exit_code != 0 and "--ref REFERENCE needs --data SOURCE" in missing.output


def test_predict_handles_empty_long_and_unknown_input(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    _, run = trained
    long_source = " ".join(["Der hund läuft schnell im park"] * 100)
    lines = ["Der rot hund läuft im park.", "", "Der 日本 mann ☃ schläft im haus.", long_source]
    source = tmp_path / "in.de"
    source.write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["predict", str(run), str(source), "--beam", "2"])
    assert result.exit_code == 0, result.output
    out = result.stdout.splitlines()
    assert len(out) == 4
    assert out[0] == "The red dog runs in the park."
    assert out[1] == ""  # an empty source gives an empty line, in its place
    assert "man" in out[2]
    assert 0 < len(out[3].split()) <= 250 * 1.5 + 10
    assert "3 source tokens not in the vocabulary" in result.output
    assert "1 sources cut to data.max_source_length=250" in result.output


def test_attention_plot(trained: tuple[Path, Path], tmp_path: Path) -> None:
    _, run = trained
    out = tmp_path / "attention.png"
    result = runner.invoke(
        app,
        ["plot", str(run), "--kind", "attention", "--text", "Der groß katze springt im haus.",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 5000
    empty = runner.invoke(app, ["plot", str(run), "--kind", "attention", "--text", " "])
    assert empty.exit_code != 0 and "--text" in empty.output


def test_subword_models_are_trained_into_the_run_dir(data_root: Path, tmp_path: Path) -> None:
    for joint, names in ((False, ("de", "en")), (True, ("joint",))):
        cfg = load_config(
            write_config(tmp_path, tokenizer="sentencepiece", vocab_size=40, joint_vocab=joint)
        )
        run = tmp_path / f"run_{joint}"
        run.mkdir()
        task = TASKS.get("translate")
        data = task.setup(cfg, run, train=True)
        for name in names:
            assert RunDir(run).subword_model(name).is_file()
        pieces = data.source_tokenizer.encode("Der hund läuft im park.")
        assert data.source_tokenizer.decode(pieces) == "Der hund läuft im park."
        assert (data.source_vocab is data.target_vocab) == joint
        again = task.setup(cfg, run, train=False)  # loads the saved models and vocabularies
        assert again.source_vocab.itos == data.source_vocab.itos
        assert again.splits["val"].source == data.splits["val"].source


CONFIGS = [
    "multi30k_deen_noattn",
    "multi30k_deen_bahdanau",
    "multi30k_ende_luong",
    "multi30k_deen_transformer",
]


@pytest.mark.parametrize("config", CONFIGS)
def test_configs_load(config: str) -> None:
    cfg = load_config(REPO / "configs" / f"{config}.yaml")
    expected = "transformer" if "transformer" in config else "seq2seq"
    assert cfg.task == "translate" and cfg.model.name == expected
    assert cfg.eval.metric == "val_bleu_greedy" and cfg.data.test_split == "test_2016_flickr"
    assert cfg.data.beam_size == 1  # the beam is chosen on dev after training


@pytest.mark.slow
@pytest.mark.parametrize("config", CONFIGS)
def test_configs_run_from_the_cli(config: str, data_root: Path, tmp_path: Path) -> None:
    """Each config, as written (bf16, SentencePiece), trains two steps and evaluates."""
    run = tmp_path / config
    result = runner.invoke(
        app,
        ["train", str(REPO / "configs" / f"{config}.yaml"), "--out", str(run), "--json",
         "--set", "trainer.max_steps=2", "--set", "data.vocab_size=60",
         "--set", "trainer.progress=false"],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["steps"] == 2 and "val_bleu" in metrics and "val_bleu_greedy" in metrics


def test_beam_choice_on_dev(trained: tuple[Path, Path]) -> None:
    from seqlab.experiments.beam_choice import choose

    _, run = trained
    result = choose(run, [1, 2], [0.0, 1.0])
    pairs = [(r["beam"], r["length_penalty"]) for r in result["rows"]]
    assert pairs == [(1, 0.0), (2, 0.0), (2, 1.0)]  # alpha means nothing to greedy
    assert result["chosen"]["val_bleu"] == max(r["val_bleu"] for r in result["rows"])
    assert json.loads((run / "beam_choice.json").read_text())["chosen"] == result["chosen"]


def test_mt_speed_measures_both_precisions(data_root: Path, tmp_path: Path) -> None:
    from seqlab.experiments.mt_speed import measure

    config = write_config(tmp_path)
    result = measure(config, ["trainer.batch_size=8"], pairs=40, steps=1)
    assert result["fp32_tokens_per_cpu_s"] > 0 and result["bf16_tokens_per_cpu_s"] > 0
    assert result["bf16_speedup"] == pytest.approx(
        result["bf16_tokens_per_cpu_s"] / result["fp32_tokens_per_cpu_s"]
    )


def test_loading_a_run_writes_nothing(trained: tuple[Path, Path]) -> None:
    """`seqlab serve`/`predict` load a run read-only: its files stay byte-identical (the
    data report is written only when training)."""
    from seqlab.evaluation import LoadedRun

    _, run = trained

    def snapshot() -> dict[str, tuple[bytes, int]]:
        return {
            str(p): (p.read_bytes(), p.stat().st_mtime_ns) for p in run.rglob("*") if p.is_file()
        }

    before = snapshot()
    assert LoadedRun.load(run).model is not None
    assert snapshot() == before


def test_a_transformer_learns_the_toy_language_beside_the_recurrent_model(
    data_root: Path, tmp_path: Path
) -> None:
    """The same task, data and decoding API with ``model.name: transformer``: it trains
    from the CLI, beam search decodes it, and its cross-attention is drawn."""
    cfg = yaml.safe_load((REPO / "configs" / "multi30k_deen_transformer.yaml").read_text())
    cfg["data"].update(tokenizer="word", min_count=1, eval_batch_size=16)
    cfg["model"].update(
        d_model=32, num_heads=2, encoder_layers=1, decoder_layers=1, dim_feedforward=64,
        dropout=0.0, label_smoothing=0.0,
    )  # fmt: skip
    cfg["optim"].update(lr=0.005, warmup_steps=20)
    cfg["trainer"].update(
        epochs=6, batch_size=20, progress=False, precision="fp32", checkpoint_every=0
    )
    config = tmp_path / "mt_transformer.yaml"
    config.write_text(yaml.safe_dump(cfg))
    run = tmp_path / "run"
    result = runner.invoke(
        app, ["train", str(config), "--out", str(run), "--set", "trainer.threads=1", "--json"]
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["val_bleu_greedy"] > 60, metrics
    result = runner.invoke(
        app, ["eval", str(run), "--split", "test", "--set", "data.beam_size=3", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout.strip().splitlines()[-1])["test_bleu"] > 60
    out = tmp_path / "attention.png"
    result = runner.invoke(
        app,
        ["plot", str(run), "--kind", "attention", "--text", "Der rot hund läuft im park.",
         "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    assert out.stat().st_size > 0


def test_the_end_of_training_decodes_each_set_of_weights_once(
    data_root: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With beam 1 and the checkpoint chosen on greedy BLEU, the last evaluation and the
    best weights' final metrics share one greedy decoding per set of weights."""
    task = TASKS.get("translate")
    decoded: list[int] = []
    real = type(task).translate_text

    def counting(self, cfg, model, data, sources):  # type: ignore[no-untyped-def]
        decoded.append(len(sources))
        return real(self, cfg, model, data, sources)

    monkeypatch.setattr(type(task), "translate_text", counting)
    config = write_config(tmp_path)
    result = runner.invoke(
        app,
        ["train", str(config), "--out", str(tmp_path / "run"), "--set", "trainer.epochs=1"],
    )
    assert result.exit_code == 0, result.output
    history = RunDir(tmp_path / "run").metrics_log.read_text().splitlines()
    # one decoding per evaluation; the best weights are the last or an earlier evaluation's
    assert len(history) <= len(decoded) <= len(history) + 1, (len(history), decoded)
    metrics = json.loads(RunDir(tmp_path / "run").metrics.read_text())
    assert metrics["val_bleu"] == metrics["val_bleu_greedy"]


# ----------------------------------------------------------------------- curriculum


def curriculum_config(tmp_path: Path, **curriculum: object) -> Path:
    return write_config(tmp_path, curriculum={"schedule": "competence", **curriculum})


def test_competence_curriculum_trains_shortest_pairs_first(data_root: Path, tmp_path: Path) -> None:
    path = curriculum_config(tmp_path, steps=50, c0=0.2)
    cfg = load_config(path)
    task = TASKS.get("translate")
    data = task.setup(cfg, tmp_path, train=True)
    train = data.splits["train"]
    lengths = sorted(len(s) + len(t) for s, t in zip(train.source, train.target, strict=True))
    cut = lengths[int(0.2 * len(lengths)) - 1]  # the 20% quantile of source + target tokens
    first = next(iter(task.train_batches(cfg, data, 0)))
    pairs = first.source.lengths + (first.target_out != 0).sum(1) - 1  # less EOS
    assert int(pairs.max()) <= cut < lengths[-1]
    run = tmp_path / "run"
    result = runner.invoke(
        app,
        ["train", str(path), "--out", str(run), "--json"]
        + ["--set", "trainer.max_steps=2", "--set", "trainer.threads=1"],
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output.strip().splitlines()[-1])["steps"] == 2


@pytest.mark.slow  # three CLI runs
def test_curriculum_resume_draws_the_same_batches(data_root: Path, tmp_path: Path) -> None:
    path = curriculum_config(tmp_path, schedule="baby_steps", steps=6, buckets=3)
    common = ["--set", "trainer.threads=1", "--set", "trainer.eval_every=3", "--json"]
    whole, parts = tmp_path / "whole", tmp_path / "parts"
    for args in (
        ["--out", str(whole), "--set", "trainer.max_steps=6"],
        ["--out", str(parts), "--set", "trainer.max_steps=3"],
        ["--out", str(parts), "--set", "trainer.max_steps=6", "--resume"],
    ):
        result = runner.invoke(app, ["train", str(path), *args, *common])
        assert result.exit_code == 0, result.output
    logs = [
        [json.loads(line) for line in RunDir(run).metrics_log.read_text().splitlines()]
        for run in (whole, parts)
    ]
    assert [r["step"] for r in logs[0]] == [3, 6] == [r["step"] for r in logs[1]]
    assert logs[1][-1]["val_loss"] == pytest.approx(logs[0][-1]["val_loss"], rel=1e-5)


def test_lm_loss_curriculum_scores_pairs_with_a_finished_run(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    _, scorer = trained
    cfg = load_config(curriculum_config(tmp_path, score="lm_loss", run=str(scorer)))
    task = TASKS.get("translate")
    data = task.setup(cfg, tmp_path, train=True)
    losses = task.scorer_losses(cfg, data, scorer)
    assert len(losses) == len(data.splits["train"].source)
    assert all(np.isfinite(losses)) and min(losses) >= 0 and max(losses) > min(losses)
    sampler = task.curriculum_sampler(cfg, data)
    ranked = [losses[i] for i in sampler.order]
    assert ranked == sorted(losses)
    # a scorer whose vocabulary differs (fewer training pairs: words missing) is refused
    curriculum = {"schedule": "competence", "score": "lm_loss", "run": str(scorer)}
    other = load_config(write_config(tmp_path, curriculum=curriculum, max_train_pairs=5))
    (tmp_path / "small").mkdir()
    small = task.setup(other, tmp_path / "small", train=True)
    with pytest.raises(ConfigError, match="another source vocabulary"):
        task.scorer_losses(other, small, scorer)
    with pytest.raises(ConfigError, match="not a finished run dir"):
        task.scorer_losses(cfg, data, tmp_path)
