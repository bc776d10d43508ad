"""End-to-end memory network (MemN2N, Sukhbaatar, Szlam, Weston & Fergus, 2015), from the
equations of the paper's sections 2 and 4.1.

Shapes: B batch, M memories (sentences), T words per sentence, L question words,
d embedding size, V vocabulary, K hops. Word id 0 is padding; memories are given in story
order (oldest first), left-aligned, so ``story[b, :n_b]`` are the ``n_b`` real sentences.

.. code-block:: text

    m_i = sum_j l_j * A x_ij + T_A(i)          input memories       (B, M, d)
    c_i = sum_j l_j * C x_ij + T_C(i)          output memories      (B, M, d)
    u^1 = sum_j l_j * B q_j                    question             (B, d)
    p_i = softmax_i(u^T m_i)                   attention            (B, M)
    o   = sum_i p_i c_i                        response             (B, d)
    u^{k+1} = u^k + o^k      (layer-wise tying: H u^k + o^k)
    a^  = softmax(W u^{K+1})                   answer               (B, V)

* Position encoding (PE, section 4.1): ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` with words
  j = 1..J of a J-word sentence and embedding dimensions k = 1..d; bag of words: l = 1.
  ``position_code``: the authors' Matlab code's variant,
  ``l_kj = 1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J)`` with one J for every sentence (the
  longest sentence of the training data plus one, the code's time-word slot).
* Temporal encoding: ``T_A(i)``, ``T_C(i)`` are rows of learned (M_max, d) tables, where
  i = 0 is the most recent sentence (the paper indexes sentences in reverse order).
* Random noise (RN): while training, the time indices get random gaps, as if about
  ``noise`` x n empty memories were mixed into a story of n sentences (the reference
  code's ``randomize_time``).
* Tying: ``adjacent`` A^{k+1} = C^k, B = A^1, W^T = C^K (one table per hop boundary,
  K + 1 tables); ``layerwise`` A^1 = ... = A^K, C^1 = ... = C^K, separate B and W and a
  linear map H between hops. The temporal tables are tied like A and C.
* Empty slots: the paper pads every story with null sentences to a fixed memory size S
  (the null embedding is zero, so an empty slot scores ``u^T 0 = 0`` and adds nothing to
  o). With ``empty_slots=True`` the softmax runs over those S - n zero scores too:
  ``p_i = exp(s_i) / (sum_j exp(s_j) + S - n)``, as in the authors' code; with False it
  runs over the n sentences only.
* Linear start (LS): with :attr:`MemoryNetwork.softmax` off, ``p_i = u^T m_i`` (no
  softmax) until the caller turns it back on.

Every hop is a batched matrix product over (B, M, d); there is no loop over stories.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
from torch import Tensor, nn

Encoding = Literal["position", "position_code", "bow"]
Tying = Literal["adjacent", "layerwise"]


def position_encoding(lengths: Tensor, width: int, dim: int) -> Tensor:
    """The weights ``l_kj = (1 - j/J) - (k/d)(1 - 2j/J)`` of each word slot.

    lengths (...,) words per sentence J  ->  (..., width, dim); slot t holds word j = t + 1,
    and slots at or after a sentence's end are 0.
    """
    j = torch.arange(1, width + 1, device=lengths.device, dtype=torch.float32)  # (T,)
    k = torch.arange(1, dim + 1, device=lengths.device, dtype=torch.float32) / dim  # (d,)
    J = lengths.to(torch.float32).clamp(min=1).unsqueeze(-1)  # (..., 1)
    ratio = (j / J).unsqueeze(-1)  # (..., T, 1)
    weights = (1 - ratio) - k * (1 - 2 * ratio)  # (..., T, d)
    inside = (j <= J).unsqueeze(-1)  # (..., T, 1)
    return weights * inside


def code_position_encoding(length: int, width: int, dim: int) -> Tensor:
    """The Matlab code's weights ``1 + 4 (k - (d+1)/2)(j - (J+1)/2) / (d J)`` for word slots
    j = 1..width and a fixed J = ``length`` -> (width, dim)."""
    j = torch.arange(1, width + 1, dtype=torch.float32).unsqueeze(-1)  # (T, 1)
    k = torch.arange(1, dim + 1, dtype=torch.float32)  # (d,)
    return 1 + 4 * (k - (dim + 1) / 2) * (j - (length + 1) / 2) / (dim * length)


def encode_sentences(
    ids: Tensor, table: Tensor, dim: int, encoding: Encoding, length: int = 0
) -> Tensor:
    """``sum_j l_j * E x_j`` over the words of each sentence, for n tables at once.

    ids (N, T) word ids (0: padding), table (V, n*d) the n embedding tables side by side
    -> (N, n*d). Position encoding is linear in the word vectors,
    ``sum_j l_kj e_jk = sum_j (1 - j/J) e_jk - (k/d) sum_j (1 - 2j/J) e_jk``, so it is two
    weighted bags of words (``embedding_bag``): the (N, T, n*d) word vectors are never
    materialised. ``position_code`` is ``sum_j e_jk + c_k sum_j (j - (J+1)/2) e_jk`` with
    ``c_k = 4 (k - (d+1)/2) / (d J)`` and J = ``length``.
    """
    inside = (ids != 0).to(table.dtype)  # (N, T)
    if encoding == "bow":
        return nn.functional.embedding_bag(ids, table, per_sample_weights=inside, mode="sum")
    k = torch.arange(1, dim + 1, device=ids.device, dtype=table.dtype)  # (d,)
    k = k.repeat(table.size(-1) // dim)  # (n*d,)
    j = torch.arange(1, ids.size(-1) + 1, device=ids.device, dtype=table.dtype)  # (T,)
    if encoding == "position_code":
        bag = nn.functional.embedding_bag(ids, table, per_sample_weights=inside, mode="sum")
        centred = (j - (length + 1) / 2) * inside  # (N, T)
        tilt = nn.functional.embedding_bag(ids, table, per_sample_weights=centred, mode="sum")
        return bag + 4 * (k - (dim + 1) / 2) / (dim * length) * tilt
    J = inside.sum(-1, keepdim=True).clamp(min=1)  # (N, 1)
    first = (1 - j / J) * inside  # (N, T)
    second = (1 - 2 * j / J) * inside  # (N, T)
    k = k / dim
    bag_first = nn.functional.embedding_bag(ids, table, per_sample_weights=first, mode="sum")
    bag_second = nn.functional.embedding_bag(ids, table, per_sample_weights=second, mode="sum")
    return bag_first - k * bag_second


def time_indices(mask: Tensor, noise: float = 0.0) -> Tensor:
    """Time index of each memory, 0 for the most recent: mask (B, M) bool, left-aligned
    real memories -> (B, M) long (padding slots get 0).

    With ``noise`` > 0 the n real memories of a story take a random increasing subset of
    n + b slots, b drawn uniformly from 0..ceil(noise * n): the gaps are the empty memories
    of the paper's random noise, as the reference code implements it.
    """
    count = mask.sum(-1, keepdim=True)  # (B, 1)
    slot = torch.arange(mask.size(1), device=mask.device).expand_as(mask)  # (B, M)
    if noise <= 0:
        return ((count - 1 - slot) * mask).long()
    most = math.ceil(noise * mask.size(1))
    blanks = (torch.rand(count.shape, device=mask.device) * (torch.ceil(noise * count) + 1)).long()
    span = count + blanks  # (B, 1) slots to choose from
    width = mask.size(1) + most
    slots = torch.arange(width, device=mask.device).expand(mask.size(0), width)
    keys = torch.rand(slots.shape, device=mask.device).masked_fill(slots >= span, 2.0)
    chosen = keys.argsort(-1)[:, : mask.size(1)]  # (B, M): the first n are a random subset
    chosen = chosen.masked_fill(~mask, width).sort(-1).values  # real ones ascending
    # the oldest memory (slot 0) gets the largest chosen index, the newest the smallest
    newest_first = (count - 1 - slot).clamp(min=0)
    return (chosen.gather(1, newest_first) * mask).long()


class MemoryNetwork(nn.Module):
    """``MemoryNetwork(num_words, dim, hops, memory_size, ...)``: the K-hop memory and the
    answer layer. ``forward(story, question) -> (logits (B, V), attention (B, K, M))``."""

    softmax: Tensor
    sentence_length: Tensor

    def __init__(
        self,
        num_words: int,
        dim: int,
        hops: int,
        memory_size: int,
        *,
        encoding: Encoding = "position",
        temporal: bool = True,
        tying: Tying = "adjacent",
        noise: float = 0.0,
        init_std: float = 0.1,
        sentence_length: int = 0,
        empty_slots: bool = False,
    ) -> None:
        super().__init__()
        if hops < 1 or dim < 1 or memory_size < 1:
            raise ValueError("hops, dim and memory_size must be >= 1")
        self.hops, self.dim, self.memory_size = hops, dim, memory_size
        self.encoding: Encoding = encoding
        self.tying: Tying = tying
        self.noise = noise
        self.empty_slots = empty_slots
        if tying == "adjacent":
            # table k is C^k and A^{k+1}; table 0 is B = A^1, table K is W^T = C^K
            tables, self.b_table, self.w_table = hops + 1, 0, hops
            self.a_tables = list(range(hops))
            self.c_tables = list(range(1, hops + 1))
            self.H: nn.Linear | None = None
        else:  # layerwise: tables B, A, C, W
            tables, self.b_table, self.w_table = 4, 0, 3
            self.a_tables, self.c_tables = [1] * hops, [2] * hops
            self.H = nn.Linear(dim, dim, bias=False) if hops > 1 else None
        self.embeddings = nn.Parameter(torch.randn(tables, num_words, dim) * init_std)
        # the memory tables, in the order they are looked up together for the story
        self.memory_tables = sorted(set(self.a_tables) | set(self.c_tables))
        self.temporal: nn.Parameter | None = None
        if temporal:
            self.temporal = nn.Parameter(
                torch.randn(len(self.memory_tables), memory_size, dim) * init_std
            )
        if self.H is not None:
            nn.init.normal_(self.H.weight, std=init_std)
        self.register_buffer("softmax", torch.tensor(True))
        # J of ``position_code``, kept with the weights (a run evaluated on another file
        # keeps its training J)
        self.register_buffer(
            "sentence_length",
            torch.tensor(sentence_length),
            persistent=encoding == "position_code",
        )

    def memories(self, story: Tensor) -> tuple[Tensor, Tensor]:
        """story (B, M, T) ids -> (memory vectors (B, M, n, d) of the n memory tables, mask
        (B, M) of real memories)."""
        mask = (story != 0).any(-1)  # (B, M)
        n = len(self.memory_tables)
        table = self.embeddings[self.memory_tables]  # (n, V, d)
        table = table.permute(1, 0, 2).reshape(table.size(1), n * self.dim)  # (V, n d)
        flat = story.reshape(-1, story.size(-1))  # (B M, T)
        vectors = encode_sentences(flat, table, self.dim, self.encoding, self._length)  # (B M, n d)
        vectors = vectors.view(*story.shape[:2], n, self.dim)  # (B, M, n, d)
        if self.temporal is not None:
            noise = self.noise if self.training else 0.0
            time = time_indices(mask, noise).clamp(max=self.memory_size - 1)  # (B, M)
            vectors = vectors + self.temporal[:, time].permute(1, 2, 0, 3)  # (B, M, n, d)
        return vectors, mask

    def attend(self, scores: Tensor, mask: Tensor) -> Tensor:
        """Softmax of scores (B, M) over the real memories (mask (B, M)), with the
        ``memory_size - n`` empty slots' zero scores in the normaliser when
        ``empty_slots`` -> p (B, M), 0 at padding."""
        scores = scores.masked_fill(~mask, float("-inf"))
        if not self.empty_slots:
            return scores.softmax(-1)
        empty = (self.memory_size - mask.sum(-1, keepdim=True)).clamp(min=0)  # (B, 1)
        sink = torch.log(empty.to(scores.dtype))  # -inf when no slot is empty
        total = torch.logsumexp(torch.cat([scores, sink], -1), -1, keepdim=True)  # (B, 1)
        return torch.exp(scores - total)

    def question(self, question: Tensor) -> Tensor:
        """question (B, L) ids -> u^1 (B, d)."""
        table = self.embeddings[self.b_table]
        return encode_sentences(question, table, self.dim, self.encoding, self._length)

    @property
    def _length(self) -> int:
        return int(self.sentence_length)

    def forward(self, story: Tensor, question: Tensor) -> tuple[Tensor, Tensor]:
        """story (B, M, T), question (B, L) -> logits (B, V), attention (B, K, M)."""
        vectors, mask = self.memories(story)  # (B, M, n, d), (B, M)
        slot = {table: i for i, table in enumerate(self.memory_tables)}
        u = self.question(question)  # (B, d)
        attention = []
        for hop in range(self.hops):
            m = vectors[:, :, slot[self.a_tables[hop]]]  # (B, M, d)
            c = vectors[:, :, slot[self.c_tables[hop]]]  # (B, M, d)
            scores = torch.bmm(m, u.unsqueeze(-1)).squeeze(-1)  # (B, M)
            p = self.attend(scores, mask) if bool(self.softmax) else scores * mask
            o = torch.bmm(p.unsqueeze(1), c).squeeze(1)  # (B, d)
            u = (self.H(u) if self.H is not None else u) + o
            attention.append(p)
        logits = u @ self.embeddings[self.w_table].T  # (B, V)
        logits = logits.masked_fill(
            torch.arange(logits.size(-1), device=logits.device) == 0, float("-inf")
        )  # padding is never an answer
        return logits, torch.stack(attention, 1)
