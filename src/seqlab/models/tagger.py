"""Sequence tagger: word embeddings (+ character features), a recurrent stack, softmax
or CRF output (Huang et al., 2015; Lample et al., 2016; Plank et al., 2016).

.. code-block:: text

    x_t = [ E_word[w_t] ; char_features(w_t) ]                      (B, T, E + F)
    h   = Recurrent(cell, layers, bidirectional)(dropout(x))        (B, T, D·H)
    emissions = W dropout(h) + b                                    (B, T, K)
    softmax: p(y_t | x) = softmax(emissions_t)       CRF: p(y | x) ∝ exp(score(x, y))
    auxiliary: p(z_t | x) = softmax(W_aux dropout(h) + b_aux)       (B, T, K_aux)

``char_features``: ``cnn`` — char embeddings, a width-``char_width`` convolution and
max-over-characters (Ma & Hovy, 2016); ``lstm`` — the final states of a char BiLSTM
(Lample et al., 2016). An auxiliary softmax head (``num_aux_tags > 0``) predicts a second
tag column from the same states, e.g. XPOS next to UPOS, and adds ``aux_weight`` times its
cross-entropy to the loss (multi-task learning as in Plank et al., 2016).

Word dropout replaces training words by ``<unk>`` so that ``<unk>`` gets trained for the
words that test sentences bring and training never saw. ``word_dropout`` drops every word
with the same probability; ``word_dropout_alpha`` = α drops a word seen c times in training
with probability α / (c + α) (Kiperwasser & Goldberg, 2016), so mostly the rare words,
which resemble the unseen ones. With both, a word is dropped when either draw says so:
p = 1 − (1 − word_dropout)(1 − α / (c + α)).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, NamedTuple

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from seqlab.contract import LossOutput
from seqlab.data.batching import Padded
from seqlab.errors import ConfigError
from seqlab.nn.conv import MaskedConv1d, masked_max_over_time
from seqlab.nn.crf import CRF
from seqlab.nn.recurrent import Recurrent


@dataclass(frozen=True)
class TaggerConfig:
    name: str = "tagger"
    embedding_size: int = 100
    chars: Literal["none", "cnn", "lstm"] = "cnn"
    char_embedding_size: int = 30
    char_hidden_size: int = 50
    """Char-CNN filters, or char-LSTM hidden size per direction."""
    char_width: int = 3
    cell: Literal["lstm", "gru", "rnn_tanh"] = "lstm"
    hidden_size: int = 200
    num_layers: int = 2
    bidirectional: bool = True
    dropout: float = 0.5
    word_dropout: float = 0.0
    word_dropout_alpha: float = 0.0
    """α of the frequency-aware word dropout α / (c + α); 0 turns it off."""
    output: Literal["softmax", "crf"] = "softmax"
    aux_weight: float = 1.0
    """Weight of the auxiliary tag loss (used when the data gives a second tag column)."""
    init_from: str | None = None
    """A run dir to start from (``tasks/transfer.py``): a ``word2vec`` run's vectors, or the
    word embedding and recurrent layers of an ``lm_rnn`` language model or ``seq_autoencode``
    encoder (cell, sizes and layers must match; the character-feature inputs of layer 0
    keep their random start)."""

    def validate(self) -> None:
        if not 0.0 <= self.dropout < 1.0 or not 0.0 <= self.word_dropout < 1.0:
            raise ConfigError("model.dropout and model.word_dropout must be in [0, 1)")
        if self.aux_weight < 0:
            raise ConfigError("model.aux_weight must be >= 0")
        if self.word_dropout_alpha < 0:
            raise ConfigError("model.word_dropout_alpha must be >= 0")


class TaggerBatch(NamedTuple):
    words: Padded  # ids (B, T), lengths (B,), mask (B, T)
    chars: Tensor  # (B, T, C) char ids of each word, 0-padded
    char_lengths: Tensor  # (B, T) chars per word (0 at padded words)
    tags: Tensor  # (B, T) gold tag ids; -1 at padding and at tags unknown to the model
    aux_tags: Tensor | None = None  # (B, T) auxiliary tag ids, -1 as in ``tags``

    def to(self, device: torch.device | str) -> TaggerBatch:
        return TaggerBatch(
            self.words.to(device),
            self.chars.to(device),
            self.char_lengths.to(device),
            self.tags.to(device),
            None if self.aux_tags is None else self.aux_tags.to(device),
        )


class CharFeatures(nn.Module):
    """One vector (N, F) per word from its characters (N, C) with lengths (N,) >= 1."""

    def __init__(self, cfg: TaggerConfig, num_chars: int) -> None:
        super().__init__()
        self.kind = cfg.chars
        self.embedding = nn.Embedding(num_chars, cfg.char_embedding_size, padding_idx=0)
        self.conv: MaskedConv1d | None = None
        self.lstm: Recurrent | None = None
        if cfg.chars == "cnn":
            self.conv = MaskedConv1d(
                cfg.char_embedding_size, cfg.char_hidden_size, cfg.char_width, padding="same"
            )
            self.output_size = cfg.char_hidden_size
        else:
            self.lstm = Recurrent(
                "lstm", cfg.char_embedding_size, cfg.char_hidden_size, bidirectional=True
            )
            self.output_size = 2 * cfg.char_hidden_size

    def forward(self, chars: Tensor, lengths: Tensor) -> Tensor:
        embedded = self.embedding(chars)  # (N, C, Ec)
        mask = torch.arange(chars.shape[1], device=chars.device) < lengths.unsqueeze(1)
        if self.conv is not None:
            features, out_mask = self.conv(embedded.transpose(1, 2), mask)  # (N, F, C)
            return masked_max_over_time(features, out_mask)
        assert self.lstm is not None
        # final states: forward after the last character, backward after the first
        _, (h_n, _) = self.lstm(embedded, lengths=lengths.cpu())  # h_n (2, N, Hc)
        return torch.cat([h_n[0], h_n[1]], dim=1)


class Tagger(nn.Module):
    """``Tagger(cfg, num_words, num_chars, num_tags, unk_index, num_aux_tags=0,
    word_counts=None)``; word id 0 is padding. ``num_aux_tags > 0`` adds the auxiliary head
    ``aux_proj``. ``word_counts`` (num_words,) are the training counts of the vocabulary's
    words, needed when ``cfg.word_dropout_alpha > 0``."""

    def __init__(
        self,
        cfg: TaggerConfig,
        num_words: int,
        num_chars: int,
        num_tags: int,
        unk_index: int,
        num_aux_tags: int = 0,
        word_counts: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.cfg = cfg
        self.unk_index = unk_index
        self.word_drop: Tensor
        self.register_buffer(
            "word_drop", _word_drop_probability(cfg, num_words, word_counts), persistent=False
        )
        self.embedding = nn.Embedding(num_words, cfg.embedding_size, padding_idx=0)
        self.chars = CharFeatures(cfg, num_chars) if cfg.chars != "none" else None
        input_size = cfg.embedding_size + (self.chars.output_size if self.chars else 0)
        self.dropout = nn.Dropout(cfg.dropout)
        self.rnn = Recurrent(
            cfg.cell,
            input_size,
            cfg.hidden_size,
            cfg.num_layers,
            dropout=cfg.dropout,
            bidirectional=cfg.bidirectional,
        )
        directions = 2 if cfg.bidirectional else 1
        self.proj = nn.Linear(directions * cfg.hidden_size, num_tags)
        self.crf = CRF(num_tags) if cfg.output == "crf" else None
        self.aux_proj = (
            nn.Linear(directions * cfg.hidden_size, num_aux_tags) if num_aux_tags > 0 else None
        )

    def emissions(self, batch: TaggerBatch) -> Tensor:
        """Tag scores (B, T, K)."""
        return self.proj(self.states(batch))

    def aux_emissions(self, batch: TaggerBatch) -> Tensor:
        """Auxiliary tag scores (B, T, K_aux); needs ``num_aux_tags > 0``."""
        if self.aux_proj is None:
            raise ConfigError("this tagger has no auxiliary head (num_aux_tags = 0)")
        return self.aux_proj(self.states(batch))

    def states(self, batch: TaggerBatch) -> Tensor:
        """Dropped-out recurrent states (B, T, D·H) that the output heads read."""
        ids, lengths, mask = batch.words
        if self.training and (self.cfg.word_dropout > 0 or self.cfg.word_dropout_alpha > 0):
            drop = torch.rand(ids.shape, device=ids.device) < self.word_drop[ids]
            ids = ids.masked_fill(drop & mask, self.unk_index)
        inputs = self.embedding(ids)  # (B, T, E)
        if self.chars is not None:
            grid = self._char_grid(batch) if not torch.jit.is_tracing() else self._traced(batch)
            inputs = torch.cat([inputs, grid], dim=2)
        output, _ = self.rnn(self.dropout(inputs), lengths=lengths.cpu())  # (B, T, D·H)
        return self.dropout(output)

    def _char_grid(self, batch: TaggerBatch) -> Tensor:
        """Char features of every word (B, T, F), 0 at padding: only the real words, and
        each distinct spelling once: (U, C) with U <= N, the number of tokens in the batch;
        index_select's backward sums the gradients of repeated words, so values and
        gradients are those of running every token."""
        assert self.chars is not None
        mask = batch.words.mask
        spellings, which = torch.unique(batch.chars[mask], dim=0, return_inverse=True)
        lengths_n = batch.char_lengths[mask]  # (N,)
        spelling_lengths = lengths_n.new_zeros(len(spellings)).scatter_(0, which, lengths_n)
        feats = self.chars(spellings, spelling_lengths).index_select(0, which)  # (N, F)
        grid = feats.new_zeros(*mask.shape, feats.shape[1])  # (B, T, F)
        grid[mask] = feats
        return grid

    def _traced(self, batch: TaggerBatch) -> Tensor:
        """The same grid as :meth:`_char_grid` with shapes that follow the input (for
        TorchScript / ONNX export): every slot (B T, C) runs, padded words with one
        character step, and the padding rows are zeroed."""
        assert self.chars is not None
        mask = batch.words.mask
        chars = batch.chars.flatten(0, 1)  # (B T, C)
        lengths = batch.char_lengths.flatten().clamp(min=1)  # (B T,)
        feats = self.chars(chars, lengths)  # (B T, F)
        grid = feats.view(mask.shape[0], mask.shape[1], feats.shape[1])  # (B, T, F)
        return grid * mask.unsqueeze(2).to(grid.dtype)

    def loss(self, batch: TaggerBatch) -> LossOutput:
        """Mean negative log-likelihood per token (tags of -1 are left out), plus
        ``aux_weight`` times the auxiliary head's when the batch has ``aux_tags``."""
        states = self.states(batch)
        scores = self.proj(states)
        known = batch.tags >= 0
        tokens = int(known.sum())
        if self.crf is None:
            loss = F.cross_entropy(scores.flatten(0, 1), batch.tags.flatten(), ignore_index=-1)
        else:
            mask = batch.words.mask
            if not bool((known == mask).all()):
                raise ConfigError(
                    "CRF loss needs every tag known; evaluate unknown tags by accuracy"
                )
            nll = self.crf.nll(scores, batch.tags.clamp(min=0), mask)  # (B,)
            loss = nll.sum() / max(tokens, 1)
        if self.aux_proj is not None and batch.aux_tags is not None:
            aux = self.aux_proj(states)  # (B, T, K_aux)
            aux_loss = F.cross_entropy(aux.flatten(0, 1), batch.aux_tags.flatten(), ignore_index=-1)
            loss = loss + self.cfg.aux_weight * aux_loss
        return LossOutput(loss, tokens)

    def predict(self, batch: TaggerBatch) -> Tensor:
        """Tag ids (B, T), 0 at padding (argmax, or Viterbi with a CRF)."""
        return self.predict_both(batch)[0]

    def predict_both(self, batch: TaggerBatch) -> tuple[Tensor, Tensor | None]:
        """Main tag ids (B, T) as ``predict``, and the auxiliary head's argmax (B, T) or
        None without one; 0 at padding. One pass through the network."""
        states = self.states(batch)
        scores = self.proj(states)
        mask = batch.words.mask
        if self.crf is None:
            tags = scores.argmax(dim=2).masked_fill(~mask, 0)
        else:
            tags = self.crf.decode(scores, mask)
        if self.aux_proj is None:
            return tags, None
        return tags, self.aux_proj(states).argmax(dim=2).masked_fill(~mask, 0)


def _word_drop_probability(cfg: TaggerConfig, num_words: int, counts: Tensor | None) -> Tensor:
    """Per-word dropout probability (num_words,): 1 − (1 − word_dropout)(1 − α/(c + α))."""
    keep = torch.full((num_words,), 1.0 - cfg.word_dropout)
    if cfg.word_dropout_alpha > 0:
        if counts is None or counts.shape != (num_words,):
            raise ConfigError(
                "model.word_dropout_alpha needs the training count of every vocabulary word"
            )
        alpha = cfg.word_dropout_alpha
        keep = keep * (1.0 - alpha / (counts.double().clamp(min=0) + alpha)).float()
    return 1.0 - keep
