"""Tiny trained runs shared by the export and service tests (each trains in a second or two),
built once per session (the bAbI run once per module: it sets the data root meanwhile)."""

from __future__ import annotations

import gzip
import random
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from seqlab.data import sources
from seqlab.loader import from_dict
from seqlab.runs import train

TEXT = "the cat sat on the mat .\nthe dog sat on the log .\na cat saw a dog .\n" * 20
POS = ["a fine moving film", "great acting", "funny and wise", "a joy", "smart and lovely"]
NEG = ["a dull tired mess", "bad acting", "boring and stupid", "a chore", "dumb and tedious"]
TAGGED = [
    [("the", "DET"), ("dog", "NOUN"), ("runs", "VERB"), (".", "PUNCT")],
    [("a", "DET"), ("cat", "NOUN"), ("sleeps", "VERB")],
    [("the", "DET"), ("cat", "NOUN"), ("runs", "VERB"), (".", "PUNCT")],
    [("dogs", "NOUN"), ("sleep", "VERB"), (".", "PUNCT")],
]
PEOPLE = ["mary", "john", "sandra", "daniel"]
PLACES = ["garden", "kitchen", "office", "hallway", "bedroom"]
TRAINER = {"progress": False, "threads": 1}
GERMAN = {  # a toy language, word for word: source word -> target words
    "der": "the", "hund": "dog", "katze": "cat", "mann": "man", "frau": "woman",
    "läuft": "runs", "springt": "jumps", "schläft": "sleeps", "rot": "red", "groß": "big",
    "im": "in the", "park": "park", "haus": "house", "schnell": "quickly",
}  # fmt: skip


def _train(run: Path, raw: dict[str, Any]) -> Path:
    raw = {"eval": {"metric": "val_loss", "mode": "min"}} | raw
    train(from_dict(raw), run)
    return run


def lm_run(root: Path, level: str = "word", cell: str = "lstm", layers: int = 2) -> Path:
    corpus = root / f"corpus_{level}.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    model = {"name": "rnn", "cell": cell, "embedding_size": 12, "hidden_size": 12}
    return _train(
        root / f"lm_{level}_{cell}",
        {
            "task": "lm_rnn",
            "data": {"dataset": str(corpus), "level": level, "bptt": 8, "eval_batch_size": 2},
            "model": model | {"num_layers": layers},
            "optim": {"name": "adam", "lr": 0.01},
            "trainer": TRAINER | {"epochs": 2, "batch_size": 4},
        },
    )


def transformer_run(root: Path) -> Path:
    """Word-level decoder-only Transformer LM (2 layers, block 12)."""
    corpus = root / "corpus_word.txt"
    corpus.write_text(TEXT, encoding="utf-8")
    model = {"name": "transformer", "d_model": 16, "num_heads": 2, "num_layers": 2}
    return _train(
        root / "lm_transformer",
        {
            "task": "lm_rnn",
            "data": {"dataset": str(corpus), "level": "word", "bptt": 8, "eval_batch_size": 2},
            "model": model | {"dim_feedforward": 32, "block_size": 12, "dropout": 0.0},
            "optim": {"name": "adam", "lr": 0.01},
            "trainer": TRAINER | {"epochs": 2, "batch_size": 4},
        },
    )


def classify_run(root: Path, model: dict[str, Any]) -> Path:
    data = root / "reviews.tsv"
    lines = [f"pos\t{t}" for t in POS] + [f"neg\t{t}" for t in NEG]
    data.write_text("\n".join(lines * 4) + "\n", encoding="utf-8")
    return _train(
        root / f"classify_{model['name']}",
        {
            "task": "classify",
            "data": {
                "dataset": str(data),
                "encoding": "utf-8",
                "val_fraction": 0.2,
                "test_fraction": 0.2,
            },
            "model": model,
            "optim": {"name": "adam", "lr": 0.01},
            "trainer": TRAINER | {"epochs": 8, "batch_size": 8},
            "eval": {"metric": "val_acc", "mode": "max"},
        },
    )


def conllu(sentences: list[list[tuple[str, str]]]) -> str:
    blocks = []
    for i, sentence in enumerate(sentences):
        lines = [f"# sent_id = s{i}"]
        for j, (word, tag) in enumerate(sentence, 1):
            lines.append(f"{j}\t{word}\t_\t{tag}\t_\t_\t0\troot\t_\t_")
        blocks.append("\n".join(lines) + "\n")
    return "\n".join(blocks) + "\n"


def tagger_run(root: Path, chars: str = "lstm", output: str = "crf") -> Path:
    train_file, dev = root / "train.conllu", root / "dev.conllu"
    train_file.write_text(conllu(TAGGED * 3))
    dev.write_text(conllu(TAGGED[:2]))
    return _train(
        root / f"tagger_{chars}_{output}",
        {
            "task": "tagging",
            "data": {"train": str(train_file), "dev": str(dev), "test": str(dev)},
            "model": {
                "name": "tagger",
                "embedding_size": 8,
                "hidden_size": 8,
                "chars": chars,
                "char_embedding_size": 6,
                "char_hidden_size": 5,
                "dropout": 0.0,
                "output": output,
            },
            "optim": {"name": "adam", "lr": 0.03},
            "trainer": TRAINER | {"epochs": 12, "batch_size": 4},
            "eval": {"metric": "val_acc", "mode": "max"},
        },
    )


def babi_files(root: Path) -> Path:
    """Task-1 stories (where is X?) under ``root/babi/en``; returns ``root``."""
    folder = root / "babi" / "en"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for split, count in (("train", 60), ("test", 10)):
        lines: list[str] = []
        for _ in range(count):
            story: list[str] = []
            where: dict[str, tuple[str, int]] = {}
            for _ in range(2):
                for _ in range(2):
                    person, place = rng.choice(PEOPLE), rng.choice(PLACES)
                    story.append(f"{len(story) + 1} {person.title()} went to the {place}.")
                    where[person] = (place, len(story))
                person = rng.choice(sorted(where))
                place, fact = where[person]
                story.append(f"{len(story) + 1} Where is {person.title()}? \t{place}\t{fact}")
            lines += story
        (folder / f"qa1_single-supporting-fact_{split}.txt").write_text("\n".join(lines) + "\n")
    return root


def babi_run(root: Path) -> Path:
    """Needs ``SEQLAB_DATA`` (and the search roots) pointing at :func:`babi_files`' root."""
    return _train(
        root / "babi",
        {
            "task": "babi_qa",
            "data": {"tasks": [1], "memory_size": 10},
            "model": {"name": "memn2n", "embedding_size": 12, "hops": 2, "random_noise": 0.0},
            "optim": {"name": "adam", "lr": 0.02},
            "trainer": TRAINER | {"epochs": 6, "batch_size": 16},
        },
    )


def parallel_files(root: Path) -> Path:
    """``root/multi30k/{split}.{de,en}.gz`` of the toy language; returns ``root``."""
    folder = root / "multi30k"
    folder.mkdir(parents=True, exist_ok=True)
    rng = random.Random(0)
    for split, count in (("train", 300), ("val", 20), ("test_2016_flickr", 20)):
        pairs = []
        for _ in range(count):
            words = ["der", rng.choice(["rot", "groß"]), rng.choice(["hund", "katze", "mann"])]
            words += [rng.choice(["läuft", "springt", "schläft"]), "im"]
            words += [rng.choice(["park", "haus"])]
            if rng.random() < 0.5:
                words.insert(4, "schnell")
            target = " ".join(GERMAN[w] for w in words)
            pairs.append((" ".join(words).capitalize() + ".", target.capitalize() + "."))
        for lang, side in (("de", 0), ("en", 1)):
            with gzip.open(folder / f"{split}.{lang}.gz", "wt", encoding="utf-8") as out:
                out.write("".join(p[side] + "\n" for p in pairs))
    return root


def translate_run(root: Path) -> Path:
    """A GRU encoder-decoder with additive attention (Bahdanau style) on the toy language;
    needs the data root of :func:`parallel_files` (set by the fixture)."""
    return _train(
        root / "translate",
        {
            "task": "translate",
            "data": {"tokenizer": "word", "min_count": 1, "eval_batch_size": 16},
            "model": {
                "name": "seq2seq",
                "embedding_size": 16,
                "encoder_hidden_size": 16,
                "hidden_size": 24,
                "attention_size": 12,
                "dropout": 0.0,
            },
            "optim": {"name": "adam", "lr": 0.02},
            "trainer": TRAINER | {"epochs": 5, "batch_size": 20, "checkpoint_every": 0},
        },
    )


@contextmanager
def data_root(root: Path) -> Iterator[None]:
    """Datasets found under ``root`` only, while the context is open."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SEQLAB_DATA", str(root))
        patch.setattr(sources, "search_roots", lambda: [root.resolve()])
        yield


@pytest.fixture(scope="module")
def translate(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained translate run on the toy language; its data root stays set while the
    module's tests load it (LoadedRun reads the parallel files)."""
    root = parallel_files(tmp_path_factory.mktemp("translate_data"))
    with data_root(root):
        yield translate_run(tmp_path_factory.mktemp("translate_run"))


@pytest.fixture(scope="module")
def babi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A trained MemN2N run on generated task-1 stories; the data root stays set while the
    module's tests load it (LoadedRun reads the training files for the memory size)."""
    root = babi_files(tmp_path_factory.mktemp("babi_data"))
    with data_root(root):
        yield babi_run(tmp_path_factory.mktemp("babi_run"))


@pytest.fixture(scope="session")
def runs_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def lm_word(runs_root: Path) -> Path:
    """Word-level 2-layer LSTM language model."""
    return lm_run(runs_root, "word", "lstm", 2)


@pytest.fixture(scope="session")
def lm_char(runs_root: Path) -> Path:
    """Character-level 1-layer GRU language model."""
    return lm_run(runs_root, "char", "gru", 1)


@pytest.fixture(scope="session")
def lm_transformer(runs_root: Path) -> Path:
    return transformer_run(runs_root)


@pytest.fixture(scope="session")
def cnn(runs_root: Path) -> Path:
    return classify_run(
        runs_root, {"name": "cnn", "embedding_size": 16, "maps": 8, "widths": [1, 2, 3]}
    )


@pytest.fixture(scope="session")
def bilstm(runs_root: Path) -> Path:
    """A 2-layer BiLSTM classifier (packed by length) with attention pooling."""
    return classify_run(
        runs_root,
        {
            "name": "rnn",
            "embedding_size": 12,
            "hidden_size": 8,
            "num_layers": 2,
            "pooling": "attention",
            "attention_size": 6,
            "dropout": 0.0,
        },
    )


@pytest.fixture(scope="session")
def tagger_crf(runs_root: Path) -> Path:
    """BiLSTM-CRF tagger with char-BiLSTM features."""
    return tagger_run(runs_root, "lstm", "crf")


@pytest.fixture(scope="session")
def tagger_cnn(runs_root: Path) -> Path:
    """BiLSTM softmax tagger with char-CNN features."""
    return tagger_run(runs_root, "cnn", "softmax")


@pytest.fixture(scope="module")
def make_lm() -> Any:
    """:func:`lm_run`, for a test that needs a language model of its own."""
    return lm_run


@contextmanager
def live_server(service: Any) -> Iterator[str]:
    """Run ``service`` with uvicorn on a free loopback port in a thread; yields its URL."""
    import uvicorn

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(service, host="127.0.0.1", port=port, log_level="error"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("uvicorn did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.fixture(scope="module")
def serve_live() -> Any:
    """:func:`live_server`, for tests that need a real HTTP server."""
    return live_server
