"""``model.init_from``: read a finished run as a transfer source and start a model from it.

The run's task says what it offers (``SOURCES``, by task name):

* ``word2vec``: its vectors (``vectors.bin``, else ``vectors.txt``);
* ``lm_rnn`` (``model.name: rnn``): its embedding and its recurrent stack (ULMFiT's
  start; Howard & Ruder, 2018);
* ``seq_autoencode``: its encoder's embedding and recurrent stack (Dai & Le, 2015); a
  ``reverse_source`` encoder starts the backward direction.

``models/transfer.py`` maps the vocabularies by word and checks the sizes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

from rich.console import Console
from safetensors.torch import load_file
from torch import Tensor, nn

from seqlab.config import ExperimentConfig, read_yaml
from seqlab.data.vocab import Vocab
from seqlab.embeddings.vectors_io import WordVectors, load_word2vec
from seqlab.errors import ConfigError
from seqlab.models.transfer import TransferSource, TransferTarget, transfer
from seqlab.registry import Registry
from seqlab.rundir import RunDir

Reader = Callable[[str, RunDir, dict[str, Any]], TransferSource]


def _weights(path: str, files: RunDir) -> dict[str, Tensor]:
    if not files.best_weights.is_file():
        raise ConfigError(f"model.init_from {path}: no {files.best_weights.name}; train it first")
    return load_file(str(files.best_weights))


def _encoder(
    path: str, kind: str, files: RunDir, model: dict[str, Any], prefix: str, backward: bool
) -> TransferSource:
    """A recurrent encoder saved as ``embedding.weight`` and ``{prefix}.*``."""
    weights = _weights(path, files)
    itos = Vocab.load(files.vocab).itos
    embedding = weights["embedding.weight"]
    recurrent = {
        k.removeprefix(f"{prefix}."): v for k, v in weights.items() if k.startswith(f"{prefix}.")
    }
    return TransferSource(
        path,
        kind,
        WordVectors(itos, embedding.float().numpy()),
        recurrent,
        cell=model.get("cell", "lstm"),
        hidden_size=int(model["hidden_size"]),
        num_layers=int(model["num_layers"]),
        backward=backward,
    )


def _language_model(path: str, files: RunDir, config: dict[str, Any]) -> TransferSource:
    model = config.get("model") or {}
    if model.get("name", "rnn") != "rnn":
        raise ConfigError(
            f"model.init_from {path}: a {model.get('name')!r} language model; init_from "
            "takes the recurrent one (model.name: rnn)"
        )
    if (config.get("data") or {}).get("level") == "char":
        raise ConfigError(f"model.init_from {path}: a character-level language model")
    return _encoder(path, "language model", files, model, "rnn", backward=False)


def _autoencoder(path: str, files: RunDir, config: dict[str, Any]) -> TransferSource:
    model = config.get("model") or {}
    backward = bool(model.get("reverse_source", False))
    return _encoder(path, "sequence autoencoder's encoder", files, model, "encoder", backward)


def _word2vec(path: str, files: RunDir, config: dict[str, Any]) -> TransferSource:
    for file in (files.vectors_binary, files.vectors_text):
        if file.is_file():
            return TransferSource(path, "word2vec vectors", load_word2vec(file))
    raise ConfigError(f"model.init_from {path}: no {files.vectors_binary.name}; train it first")


SOURCES: Registry[Reader] = Registry("transfer source")
SOURCES.register("lm_rnn", _language_model)
SOURCES.register("seq_autoencode", _autoencoder)
SOURCES.register("word2vec", _word2vec)


def read_source(path: str) -> TransferSource:
    """The transfer source of the run dir ``path``."""
    files = RunDir(Path(path))
    if not files.config.is_file():
        raise ConfigError(f"model.init_from {path}: not a run dir (no config.yaml)")
    config = read_yaml(files.config)
    task = config.get("task")
    if task not in SOURCES:
        raise ConfigError(
            f"model.init_from {path}: a {task!r} run; it must be one of {', '.join(SOURCES)}"
        )
    return SOURCES.get(str(task))(path, files, config)


def start_from(cfg: ExperimentConfig, model: nn.Module, itos: Sequence[str]) -> None:
    """Apply ``model.init_from`` (when the model's config has it and it is set) to a fresh
    model whose word embedding rows follow ``itos``; prints the report line."""
    path = getattr(cfg.model, "init_from", None)
    if path is None:
        return
    line = transfer(cast(TransferTarget, model), itos, read_source(str(path)))
    Console(stderr=True).print(line, highlight=False)
