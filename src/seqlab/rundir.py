"""The files of a run dir, named once.

A run dir is what ``seqlab train --out`` writes and every other command reads. Which
files a run holds depends on its task (a gradient-trained model has ``checkpoint.pt``
and ``best.safetensors``, an n-gram model ``counts.safetensors``, word2vec its vectors),
but each file has one name, here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class RunDir:
    """Paths of the files in the run dir ``path`` (nothing is read or created)."""

    path: Path

    @property
    def config(self) -> Path:
        """The run's full config (every default written out)."""
        return self.path / "config.yaml"

    @property
    def provenance(self) -> Path:
        """``run.json``: command, config hash, git commit, machine, times, status, final
        metrics (``seqlab.provenance``)."""
        return self.path / "run.json"

    @property
    def metrics_log(self) -> Path:
        """One JSON object per evaluation during training."""
        return self.path / "metrics.jsonl"

    @property
    def metrics(self) -> Path:
        """The final metrics of the best weights (mean and std over folds for CV)."""
        return self.path / "metrics.json"

    @property
    def checkpoint(self) -> Path:
        """The whole training state, for ``--resume`` (gradient-trained runs)."""
        return self.path / "checkpoint.pt"

    @property
    def best_weights(self) -> Path:
        """The weights with the best ``eval.metric`` (gradient-trained runs)."""
        return self.path / "best.safetensors"

    @property
    def counts(self) -> Path:
        """An n-gram model's counts."""
        return self.path / "counts.safetensors"

    @property
    def vocab(self) -> Path:
        """The token vocabulary (``Vocab.save``)."""
        return self.path / "vocab.json"

    @property
    def labels(self) -> Path:
        """Class names of a classifier, in label-id order."""
        return self.path / "labels.json"

    @property
    def chars(self) -> Path:
        """A tagger's character vocabulary."""
        return self.path / "chars.json"

    @property
    def tags(self) -> Path:
        """A tagger's tag set."""
        return self.path / "tags.json"

    @property
    def aux_tags(self) -> Path:
        """A multi-task tagger's second tag set."""
        return self.path / "aux_tags.json"

    @property
    def data_report(self) -> Path:
        """What data set-up found (sizes, unknown-word rates)."""
        return self.path / "data_report.json"

    @property
    def word_counts(self) -> Path:
        """word2vec's vocabulary with counts (one ``word<TAB>count`` per line)."""
        return self.path / "vocab.tsv"

    @property
    def vectors_text(self) -> Path:
        """word2vec vectors, text format."""
        return self.path / "vectors.txt"

    @property
    def vectors_binary(self) -> Path:
        """word2vec vectors, binary format."""
        return self.path / "vectors.bin"

    @property
    def lock(self) -> Path:
        """Held (an OS file lock) while a process trains in this run dir."""
        return self.path / ".lock"

    @property
    def export_dir(self) -> Path:
        """Where ``seqlab export`` writes by default: ``model.<format>``, ``model.json`` (the
        manifest: inputs, outputs, verification) and copies of the vocabularies."""
        return self.path / "export"

    @property
    def vocabularies(self) -> tuple[Path, ...]:
        """Every vocabulary or label file a run may hold (those a client of an exported
        model needs to turn text into ids and ids into labels)."""
        return (self.vocab, self.labels, self.chars, self.tags, self.aux_tags)

    def reconstruction(self, split: str) -> Path:
        """A sequence autoencoder's reconstruction by sentence length on ``split``."""
        return self.path / f"reconstruction_{split}.json"

    def tag_predictions(self, split: str) -> Path:
        """A tagger's gold and predicted tags on ``split`` (for the confusion plot)."""
        return self.path / f"tags_{split}.json"

    def side_vocab(self, side: str) -> Path:
        """A translation run's vocabulary of one language (or ``joint``)."""
        return self.path / f"vocab_{side}.json"

    def subword_model(self, side: str) -> Path:
        """A translation run's SentencePiece model of one language (or ``joint``)."""
        return self.path / f"spm_{side}.model"

    def translations(self, split: str) -> Path:
        """A translation run's detokenised output on ``split``, one line per source."""
        return self.path / f"translations_{split}.txt"

    def bleu_report(self, split: str) -> Path:
        """A translation run's scores on ``split`` with the sacreBLEU signatures."""
        return self.path / f"bleu_{split}.json"

    def fold(self, index: int) -> RunDir:
        """The run dir of fold ``index`` of a cross-validated run."""
        return RunDir(self.path / f"fold{index}")

    def pretrain_layer(self, layer: int) -> RunDir:
        """The run dir of the greedy pretraining of layer ``layer`` (from 1) of a stacked
        autoencoder, trained before the run's own training."""
        return RunDir(self.path / "pretrain" / f"layer{layer}")

    def plot(self, kind: str, suffix: str = ".png") -> Path:
        """Where ``seqlab plot --kind KIND`` writes by default."""
        return self.path / f"{kind}{suffix}"

    def samples(self, split: str) -> Path:
        """A latent GAN's generated sentences and its references' (``split``: which
        held-out sentences and which draw)."""
        return self.path / f"samples_{split}.json"
