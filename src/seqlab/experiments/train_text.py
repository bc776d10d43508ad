"""The training sentences of a ``classify`` config as plain text, for a source model.

``python -m seqlab.experiments.train_text CONFIG OUT [--set key=value ...]``

Writes one sentence per line (tokens joined by spaces, lowercased as the config says) of
the config's training split with every label (``data.train_fraction`` is set to 1: the
text of the sentences whose labels a few-labels run leaves out is still unlabelled text),
never its validation or test sentences. A language model or sequence autoencoder trained
on that file (``task: lm_rnn`` with ``data.dataset: OUT``) is an in-domain transfer source
for ``model.init_from`` (docs/results/methodology.md, "Transfer").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from seqlab.errors import ConfigError
from seqlab.io import atomic_write_text
from seqlab.loader import load_config
from seqlab.tasks.sentence_classify import SentenceClassifyTask


def train_sentences(config: str, overrides: list[str]) -> list[list[str]]:
    """The tokens of every training sentence of the ``classify`` config (all labels)."""
    cfg = load_config(config, [*overrides, "data.train_fraction=1.0"])
    if cfg.task != "classify":
        raise ConfigError(f"{config}: a {cfg.task!r} config; train_text reads classify configs")
    with tempfile.TemporaryDirectory() as scratch:
        data = SentenceClassifyTask().setup(cfg, Path(scratch), train=True)
    return [tokens for tokens in data.splits["train"][0] if tokens]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("config")
    parser.add_argument("out", type=Path)
    parser.add_argument("--set", dest="overrides", action="append", default=[])
    args = parser.parse_args(argv)
    sentences = train_sentences(args.config, args.overrides)
    atomic_write_text(args.out, "".join(" ".join(s) + "\n" for s in sentences))
    print(f"{len(sentences)} training sentences -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
