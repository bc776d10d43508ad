"""Sentence classifiers (many-to-one): a recurrent classifier and the text CNN of Kim (2014).

.. code-block:: text

    RNN:  h = Recurrent(E[w])  (B, T, D·H)  ->  pool(h)  (B, D·H)  ->  W dropout(.) + b  (B, K)
          pool: last state at the true length | mean | max | attention (nn/pooling.py)
    CNN:  c_w = relu(conv_w(E[w]))  for each width w (x maps filters)   (B, maps, T')
          z = [ pool_t c_w ]_w                                            (B, |widths|·maps)
          logits = W dropout(z) + b, rows of W rescaled to L2 norm <= max_norm

Text-CNN variants (Kim, 2014): ``rand`` (embeddings learned from scratch), ``static``
(pretrained, frozen), ``non-static`` (pretrained, fine-tuned), ``multichannel`` (two
copies, one frozen and one fine-tuned, each filter applied to both and summed). The
pretrained vectors are loaded by the task (``load_pretrained``) after building the model.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, NamedTuple, cast

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded
from seqlab.embeddings.pretrained import PretrainedReport, load_pretrained
from seqlab.errors import ConfigError
from seqlab.nn.conv import (
    MaskedConv1d,
    Padding,
    apply_max_norm,
    masked_max_over_time,
    masked_mean_over_time,
)
from seqlab.nn.distill import UNLABELLED, distillation_loss
from seqlab.nn.pooling import AttentionPooling, last_state, max_pool, mean_pool
from seqlab.nn.recurrent import Recurrent


class SoftTargets(NamedTuple):
    """A teacher's softened class distribution for distillation (``nn/distill.py``)."""

    probs: Tensor  # (B, K) softmax(teacher logits / temperature)
    temperature: float
    alpha: float

    def to(self, device: torch.device | str) -> SoftTargets:
        return SoftTargets(self.probs.to(device), self.temperature, self.alpha)


class ClassifyBatch(NamedTuple):
    words: Padded  # ids (B, T), lengths (B,), mask (B, T)
    labels: Tensor  # (B,) label ids (UNLABELLED = -1: only a soft target)
    soft: SoftTargets | None = None
    """Training on a teacher's soft targets (knowledge distillation) when given."""

    def to(self, device: torch.device | str) -> ClassifyBatch:
        soft = None if self.soft is None else self.soft.to(device)
        return ClassifyBatch(self.words.to(device), self.labels.to(device), soft)


@dataclass(frozen=True)
class RNNClassifierConfig:
    name: str = "rnn"
    embedding_size: int = 300
    cell: Literal["lstm", "gru", "rnn_tanh"] = "lstm"
    hidden_size: int = 150
    num_layers: int = 1
    bidirectional: bool = True
    pooling: Literal["last", "mean", "max", "attention"] = "last"
    attention_size: int = 100
    dropout: float = 0.5
    vectors: str | None = None
    """word2vec file for the embedding (fine-tuned), e.g. a ``seqlab train w2v`` run's."""
    embedding_init: Literal["normal", "uniform"] = "normal"
    """Initial embedding: ``normal`` N(0, 1) (torch's default), or ``uniform`` U(-0.25, 0.25)
    as Kim (2014) initialises words without pretrained vectors."""
    init_from: str | None = None
    """A run dir to start from (``tasks/transfer.py``): a ``word2vec`` run's vectors, or the
    embedding (the words both vocabularies share) and recurrent layers of an ``lm_rnn``
    language model (ULMFiT) or a ``seq_autoencode`` encoder (Dai & Le, 2015; a backwards
    encoder starts the backward direction). Cell, sizes and layers must match. Everything
    is then trained, unless ``optim.freeze`` / ``optim.gradual_unfreeze`` say otherwise."""

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")


@dataclass(frozen=True)
class TextCNNConfig:
    name: str = "cnn"
    variant: Literal["rand", "static", "non-static", "multichannel"] = "rand"
    vectors: str | None = None
    """word2vec file (text or binary) for the static / non-static / multichannel variants."""
    embedding_size: int = 300
    widths: tuple[int, ...] = (3, 4, 5)
    maps: int = 100
    layers: int = 1
    """Convolution layers per width (stacked; 'same' padding recommended beyond 1)."""
    stride: int = 1
    dilation: int = 1
    padding: Padding = "valid"
    """``valid``, ``same``, or ``full`` (wide convolution, as Kim's code pads sentences)."""
    separable: bool = False
    pooling: Literal["max", "mean"] = "max"
    """``max``: max-over-time (Kim); ``mean``: global average pooling."""
    pool_padding: bool = False
    """Max-pool over all-padding windows too, as Kim's code does (it pads every sentence to
    the longest): a feature never falls below ``relu(bias)`` (one layer, max pooling)."""
    init: Literal["torch", "kim"] = "torch"
    """``torch``: PyTorch's default initialisation; ``kim``: zero convolution biases and a
    zero output layer, as Kim's (2014) Theano code (embeddings are U(-0.25, 0.25) either way)."""
    dropout: float = 0.5
    max_norm: float | None = 3.0

    def validate(self) -> None:
        if self.pool_padding and (self.pooling != "max" or self.layers != 1):
            raise ConfigError("model.pool_padding needs model.pooling: max and model.layers: 1")
        if not self.widths or min(self.widths) < 1 or self.maps < 1 or self.layers < 1:
            raise ConfigError("model.widths, model.maps and model.layers must be >= 1")
        if self.variant != "rand" and self.vectors is None:
            raise ConfigError(f"model.variant {self.variant!r} needs model.vectors (a w2v file)")
        if self.variant == "rand" and self.vectors is not None:
            raise ConfigError(
                "model.variant 'rand' learns its embeddings from scratch: drop model.vectors, "
                "or set model.variant to non-static (fine-tuned), static or multichannel"
            )
        if not 0.0 <= self.dropout < 1.0:
            raise ConfigError("model.dropout must be in [0, 1)")


def _kim_uniform_(embedding: nn.Embedding) -> None:
    """Kim (2014): U(-0.25, 0.25) for words without pretrained vectors; row 0 (padding)
    stays a zero vector."""
    with torch.no_grad():
        nn.init.uniform_(embedding.weight, -0.25, 0.25)
        embedding.weight[0].zero_()


class SentenceClassifier(nn.Module):
    """The shared loss/predict of both classifiers over ``logits(batch)`` (B, K).

    The logits are computed from the word embeddings in two steps, ``embed`` and
    ``logits_from_embeddings``, so that adversarial training (``seqlab.nn.adversarial``)
    can perturb the embeddings in between (``seqlab.contract.EmbeddingPerturbable``).
    """

    embedding: nn.Embedding

    def embed(self, batch: ClassifyBatch) -> tuple[Tensor, Tensor]:
        """The word embeddings (B, T, E) and the mask (B, T), True at words."""
        ids, _, mask = batch.words
        return self.embedding(ids), mask

    def logits_from_embeddings(self, batch: ClassifyBatch, embedded: Tensor) -> Tensor:
        """Class scores (B, K) from the (possibly perturbed) embeddings (B, T, E)."""
        raise NotImplementedError

    def logits(self, batch: ClassifyBatch) -> Tensor:
        """Class scores (B, K)."""
        return self.logits_from_embeddings(batch, self.embed(batch)[0])

    def loss(self, batch: ClassifyBatch) -> LossOutput:
        """Mean cross-entropy over the batch's labelled examples; with soft targets, the
        distillation loss of Hinton et al. (2015) (``seqlab.nn.distill``)."""
        return self.loss_from_logits(batch, self.logits(batch))

    def loss_from_logits(self, batch: ClassifyBatch, logits: Tensor) -> LossOutput:
        """``loss`` from given logits (B, K). Without soft targets, ``UNLABELLED`` rows
        (virtual adversarial training on unlabelled text) count for nothing; a batch of
        them only has loss 0 over n = 0 examples."""
        if batch.soft is None:
            labelled = int((batch.labels != UNLABELLED).sum())
            if labelled == len(batch.labels):
                return LossOutput(F.cross_entropy(logits, batch.labels), labelled)
            summed = F.cross_entropy(logits, batch.labels, ignore_index=UNLABELLED, reduction="sum")
            return LossOutput(summed / max(labelled, 1), labelled)
        soft = batch.soft
        loss = distillation_loss(logits, soft.probs, batch.labels, soft.temperature, soft.alpha)
        return LossOutput(loss, len(batch.labels))

    def predict(self, batch: ClassifyBatch) -> Tensor:
        """Label ids (B,)."""
        return self.logits(batch).argmax(dim=1)

    def load_vectors(self, itos: Sequence[str], vectors: str | Path) -> PretrainedReport:
        """Initialise the word embedding from a word2vec file (rows in ``itos`` order);
        the vectors are fine-tuned."""
        return load_pretrained(self.embedding, itos, vectors)


class RNNClassifier(SentenceClassifier):
    """``RNNClassifier(cfg, num_words, num_labels)``; word id 0 is padding."""

    def __init__(self, cfg: RNNClassifierConfig, num_words: int, num_labels: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(num_words, cfg.embedding_size, padding_idx=0)
        if cfg.embedding_init == "uniform":
            _kim_uniform_(self.embedding)
        self.rnn = Recurrent(
            cfg.cell,
            cfg.embedding_size,
            cfg.hidden_size,
            cfg.num_layers,
            dropout=cfg.dropout,
            bidirectional=cfg.bidirectional,
        )
        size = (2 if cfg.bidirectional else 1) * cfg.hidden_size
        self.attention = (
            AttentionPooling(size, cfg.attention_size) if cfg.pooling == "attention" else None
        )
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(size, num_labels)

    def encode(self, batch: ClassifyBatch, embedded: Tensor) -> Tensor:
        """Sentence vectors (B, D·H) from the word embeddings (B, T, E)."""
        _, lengths, mask = batch.words
        output, _ = self.rnn(self.dropout(embedded), lengths=lengths.cpu())
        if self.attention is not None:
            return self.attention(output, mask)
        if self.cfg.pooling == "mean":
            return mean_pool(output, mask)
        if self.cfg.pooling == "max":
            return max_pool(output, mask)
        return last_state(output, lengths, self.cfg.bidirectional)

    def logits_from_embeddings(self, batch: ClassifyBatch, embedded: Tensor) -> Tensor:
        return self.out(self.dropout(self.encode(batch, embedded)))


class TextCNN(SentenceClassifier):
    """``TextCNN(cfg, num_words, num_labels)``; word id 0 is padding (a zero vector)."""

    def __init__(self, cfg: TextCNNConfig, num_words: int, num_labels: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.embedding = nn.Embedding(num_words, cfg.embedding_size, padding_idx=0)
        self.static_embedding = (
            nn.Embedding(num_words, cfg.embedding_size, padding_idx=0)
            if cfg.variant == "multichannel"
            else None
        )
        for embedding in (self.embedding, self.static_embedding):
            if embedding is not None:
                _kim_uniform_(embedding)
        self.branches = nn.ModuleList()
        for width in cfg.widths:
            layers = nn.ModuleList()
            for layer in range(cfg.layers):
                layers.append(
                    MaskedConv1d(
                        cfg.embedding_size if layer == 0 else cfg.maps,
                        cfg.maps,
                        width,
                        stride=cfg.stride,
                        dilation=cfg.dilation,
                        padding=cfg.padding,
                        separable=cfg.separable,
                    )
                )
            self.branches.append(layers)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out = nn.Linear(len(cfg.widths) * cfg.maps, num_labels)
        if cfg.init == "kim":
            with torch.no_grad():
                for module in self.modules():
                    if isinstance(module, nn.Conv1d) and module.bias is not None:
                        module.bias.zero_()
                self.out.weight.zero_()
                self.out.bias.zero_()

    def load_vectors(self, itos: Sequence[str], vectors: str | Path) -> PretrainedReport:
        """Initialise the embedding from a word2vec file: frozen for ``static``, fine-tuned
        otherwise; the second (static) channel of ``multichannel`` is always frozen."""
        report = load_pretrained(self.embedding, itos, vectors, freeze=self.cfg.variant == "static")
        if self.static_embedding is not None:
            load_pretrained(self.static_embedding, itos, vectors, freeze=True)
        return report

    def logits_from_embeddings(self, batch: ClassifyBatch, embedded: Tensor) -> Tensor:
        ids, _, mask = batch.words
        channels = [embedded.transpose(1, 2)]  # (B, E, T)
        if self.static_embedding is not None:
            channels.append(self.static_embedding(ids).transpose(1, 2))
        pool = masked_max_over_time if self.cfg.pooling == "max" else masked_mean_over_time
        pooled = []
        for layers in self.branches:
            features, feature_mask = self._branch(cast(nn.ModuleList, layers), channels, mask)
            branch = pool(features, feature_mask)  # (B, maps)
            if self.cfg.pool_padding:
                # a window over padding only: the convolution's response to zero
                # vectors, relu(bias) (summed over multichannel's channels)
                zeros = [c.new_zeros(1, c.shape[1], 1) for c in channels]
                padding, _ = self._branch(cast(nn.ModuleList, layers), zeros, mask.new_ones(1, 1))
                branch = torch.maximum(branch, padding[:, :, 0])
            pooled.append(branch)
        if self.cfg.max_norm is not None:
            apply_max_norm(self.out.weight, self.cfg.max_norm)
        return self.out(self.dropout(torch.cat(pooled, dim=1)))

    @staticmethod
    def _branch(
        layers: nn.ModuleList, channels: list[Tensor], mask: Tensor
    ) -> tuple[Tensor, Tensor]:
        """One width's convolution stack: channels [(B, E, T)], mask (B, T) ->
        (features (B, maps, T'), mask (B, T'))."""
        features, feature_mask = channels, mask
        for conv in layers:
            outputs = [conv(channel, feature_mask) for channel in features]
            # multichannel: the same filters over both channels, summed (Kim, 2014)
            summed = torch.stack([o for o, _ in outputs]).sum(0)
            features, feature_mask = [F.relu(summed)], outputs[0][1]
        return features[0], feature_mask
