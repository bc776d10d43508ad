r"""Autoencoders, each written from its equations: dense (tied or untied weights), sparse,
denoising, variational, and a deep stack pretrained greedily layer by layer.

Shapes: B batch, D input features, K code units, H hidden units, C classes, N examples.
Row vectors as in ``torch.nn`` (``x W^T``); ``σ`` is the logistic sigmoid, ``⊙`` the
elementwise product.

Dense autoencoder (:class:`Autoencoder`)::

    h = f(x W_e^T + b_e)          (B, K)  the code; f = sigmoid | tanh | relu | linear
    a = h W_d^T + b_d             (B, D)  decoder pre-activation
    x̂ = a (sse)  or  σ(a) (bce)   (B, D)  the reconstruction
    tied weights: W_d = W_e^T     (one K×D matrix; b_d stays separate)

Reconstruction losses, summed over the D features of an example, averaged over the batch:

    sse:  ‖x̂ − x‖²
    bce:  −Σ_d [x_d log x̂_d + (1 − x_d) log(1 − x̂_d)]    (cross-entropy, x in [0, 1])

With a linear f and ``sse`` the optimum spans the principal subspace of the data: the
columns of W_d (and the rows of W_e) span the top-K principal directions of the centered
inputs (Baldi & Hornik 1989); the tests check this against numpy's SVD.

Sparse (:class:`SparseAutoencoder`): loss + λ Σ_k |h_k|. Denoising
(:class:`DenoisingAutoencoder`): x̃ ~ q(x̃ | x) (masking: each x_d set to 0 with
probability p; gaussian: x + ε, ε ~ N(0, s² I)), x̂ = g(W_d f(W_e x̃ + b_e) + b_d), loss
against the clean x. Variational (:class:`VariationalAutoencoder`): q(z|x) = N(μ, σ²),
z = μ + σ ⊙ ε, loss = reconstruction(x̂(z), x) + β KL(q(z|x) ‖ N(0, I)). Stacked
(:class:`StackedAutoencoder`): encoders pretrained one at a time as autoencoders of the
previous layer's codes (:meth:`StackedAutoencoder.layer_autoencoder`; the loop that trains
them lives in the task layer), then a classifier head and supervised fine-tuning of the
whole.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from seqlab.contract import LossOutput

Activation = Literal["sigmoid", "tanh", "relu", "linear"]
Reconstruction = Literal["sse", "bce"]
Noise = Literal["mask", "gaussian"]

_ACTIVATIONS: dict[str, type[nn.Module]] = {
    "sigmoid": nn.Sigmoid,
    "tanh": nn.Tanh,
    "relu": nn.ReLU,
    "linear": nn.Identity,
}


def _check(activation: str, loss: str) -> None:
    if activation not in _ACTIVATIONS:
        raise ValueError(f"activation must be one of {sorted(_ACTIVATIONS)}, got {activation!r}")
    if loss not in ("sse", "bce"):
        raise ValueError(f"loss must be 'sse' or 'bce', got {loss!r}")


def reconstruction_error(logits: Tensor, target: Tensor, loss: Reconstruction) -> Tensor:
    """(B,) per-example error of the decoder pre-activation ``logits`` (B, D) against
    ``target`` (B, D): ``sse`` ‖a − x‖², ``bce`` the cross-entropy of σ(a) (computed from
    the logits, which is stable where σ(a) saturates)."""
    if loss == "sse":
        return (logits - target).pow(2).sum(-1)
    return F.binary_cross_entropy_with_logits(logits, target, reduction="none").sum(-1)


class Autoencoder(nn.Module):
    """Dense autoencoder ``x -> h = f(W_e x + b_e) -> x̂ = g(W_d h + b_d)`` (module docstring).

    ``encoder`` is ``nn.Linear(D, K)``; untied, ``decoder`` is ``nn.Linear(K, D)``; tied,
    the decoder multiplies by ``encoder.weight`` transposed and has only ``decoder_bias``.
    """

    decoder: nn.Linear | None
    decoder_bias: nn.Parameter | None

    def __init__(
        self,
        input_size: int,
        code_size: int,
        activation: Activation = "sigmoid",
        tied: bool = False,
        loss: Reconstruction = "sse",
    ) -> None:
        super().__init__()
        if input_size <= 0 or code_size <= 0:
            raise ValueError(
                f"input_size and code_size must be positive, got {input_size}, {code_size}"
            )
        _check(activation, loss)
        self.input_size, self.code_size = input_size, code_size
        self.tied, self.loss_name = tied, loss
        self.encoder = nn.Linear(input_size, code_size)
        self.activation = _ACTIVATIONS[activation]()
        if tied:
            self.decoder = None
            self.decoder_bias = nn.Parameter(torch.zeros(input_size))
        else:
            self.decoder = nn.Linear(code_size, input_size)
            self.decoder_bias = None

    def encode(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, K) the code h = f(x W_e^T + b_e)."""
        return self.activation(self.encoder(x))

    def decoder_logits(self, code: Tensor) -> Tensor:
        """(B, K) -> (B, D) the decoder pre-activation a = h W_d^T + b_d."""
        if self.decoder is not None:
            return self.decoder(code)
        return F.linear(code, self.encoder.weight.t(), self.decoder_bias)  # W_d = W_e^T

    def decode(self, code: Tensor) -> Tensor:
        """(B, K) -> (B, D) the reconstruction x̂ (σ(a) for ``bce``)."""
        logits = self.decoder_logits(code)
        return torch.sigmoid(logits) if self.loss_name == "bce" else logits

    def reconstruct(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, D) x̂ = decode(encode(x))."""
        return self.decode(self.encode(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def predict(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def reconstruction_error(self, x: Tensor) -> Tensor:
        """(B, D) -> (B,) the per-example reconstruction loss of x."""
        return reconstruction_error(self.decoder_logits(self.encode(x)), x, self.loss_name)

    def loss(self, x: Tensor) -> LossOutput:
        """Mean over the batch of the reconstruction loss; ``x`` is (B, D)."""
        return LossOutput(self.reconstruction_error(x).mean(), x.shape[0])


class SparseAutoencoder(Autoencoder):
    """Autoencoder with an L1 penalty on the code: loss = error(x̂, x) + λ Σ_k |h_k|.

    With ``relu`` units (the default here) the penalty drives codes to exactly zero.
    """

    def __init__(
        self,
        input_size: int,
        code_size: int,
        activation: Activation = "relu",
        tied: bool = False,
        loss: Reconstruction = "sse",
        l1: float = 1e-3,
    ) -> None:
        super().__init__(input_size, code_size, activation, tied, loss)
        if l1 < 0:
            raise ValueError(f"l1 must be >= 0, got {l1}")
        self.l1 = l1

    def loss(self, x: Tensor) -> LossOutput:
        code = self.encode(x)  # (B, K)
        error = reconstruction_error(self.decoder_logits(code), x, self.loss_name)  # (B,)
        return LossOutput((error + self.l1 * code.abs().sum(-1)).mean(), x.shape[0])


class DenoisingAutoencoder(Autoencoder):
    """Reconstruct the clean x from a corrupted x̃ (Vincent et al. 2008).

    ``noise="mask"``: x̃_d = x_d · m_d with m_d ~ Bernoulli(1 − ``noise_level``) (a
    destroyed input is set to 0, no rescaling); ``noise="gaussian"``: x̃ = x + ε,
    ε ~ N(0, ``noise_level``² I). Corruption is applied in training mode only (like
    dropout), so evaluation measures the reconstruction of clean inputs.
    """

    def __init__(
        self,
        input_size: int,
        code_size: int,
        activation: Activation = "sigmoid",
        tied: bool = False,
        loss: Reconstruction = "sse",
        noise: Noise = "mask",
        noise_level: float = 0.3,
    ) -> None:
        super().__init__(input_size, code_size, activation, tied, loss)
        if noise not in ("mask", "gaussian"):
            raise ValueError(f"noise must be 'mask' or 'gaussian', got {noise!r}")
        if noise_level < 0 or (noise == "mask" and noise_level >= 1):
            raise ValueError("noise_level must be in [0, 1) for masking, >= 0 for gaussian")
        self.noise, self.noise_level = noise, noise_level

    def corrupt(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, D) a draw of x̃ ~ q(x̃ | x) from torch's global generator."""
        if self.noise == "mask":
            keep = torch.rand_like(x) >= self.noise_level
            return x * keep
        return x + self.noise_level * torch.randn_like(x)

    def loss(self, x: Tensor) -> LossOutput:
        noisy = self.corrupt(x) if self.training else x
        logits = self.decoder_logits(self.encode(noisy))
        return LossOutput(reconstruction_error(logits, x, self.loss_name).mean(), x.shape[0])


class VariationalAutoencoder(nn.Module):
    r"""Variational autoencoder (Kingma & Welling 2014) with a Gaussian posterior::

        e      = f(x W_h^T + b_h)                      (B, H)  (e = x without a hidden layer)
        μ      = e W_μ^T + b_μ,  log σ² = e W_v^T + b_v    (B, K)
        z      = μ + σ ⊙ ε,      ε ~ N(0, I)           (B, K)  reparameterisation
        x̂      = g(f(z W_g^T + b_g) W_o^T + b_o)       (B, D)
        KL     = ½ Σ_k (μ_k² + σ_k² − log σ_k² − 1)     KL(N(μ, σ²) ‖ N(0, I)), closed form
        loss   = error(x̂, x) + β KL

    For β = 1 the loss is the negative ELBO: with ``bce`` of a Bernoulli decoder, with
    ``sse`` of a Gaussian decoder of variance ½ (up to a constant).

    ``encode`` returns μ (the deterministic code); ``reconstruct`` decodes μ; ``loss`` draws
    one ε per example from torch's global generator; ``sample(n)`` decodes z ~ N(0, I).
    """

    def __init__(
        self,
        input_size: int,
        code_size: int,
        hidden_size: int | None = 256,
        activation: Activation = "tanh",
        loss: Reconstruction = "bce",
        beta: float = 1.0,
    ) -> None:
        super().__init__()
        if input_size <= 0 or code_size <= 0 or (hidden_size is not None and hidden_size <= 0):
            raise ValueError("input_size, code_size and hidden_size must be positive")
        _check(activation, loss)
        if beta < 0:
            raise ValueError(f"beta must be >= 0, got {beta}")
        self.input_size, self.code_size = input_size, code_size
        self.loss_name, self.beta = loss, beta
        width = hidden_size or input_size
        if hidden_size is None:
            self.hidden: nn.Module = nn.Identity()
            self.decoder: nn.Module = nn.Linear(code_size, input_size)
        else:
            self.hidden = nn.Sequential(nn.Linear(input_size, width), _ACTIVATIONS[activation]())
            self.decoder = nn.Sequential(
                nn.Linear(code_size, width),
                _ACTIVATIONS[activation](),
                nn.Linear(width, input_size),
            )
        self.mu = nn.Linear(width, code_size)
        self.logvar = nn.Linear(width, code_size)

    def posterior(self, x: Tensor) -> tuple[Tensor, Tensor]:
        """(B, D) -> μ (B, K), log σ² (B, K) of q(z | x)."""
        hidden = self.hidden(x)
        return self.mu(hidden), self.logvar(hidden)

    def encode(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, K) the posterior mean μ."""
        return self.posterior(x)[0]

    @staticmethod
    def reparameterize(mu: Tensor, logvar: Tensor) -> Tensor:
        """z = μ + σ ⊙ ε with ε ~ N(0, I): a sample of q(z|x) differentiable in μ, σ."""
        return mu + torch.exp(0.5 * logvar) * torch.randn_like(mu)

    @staticmethod
    def kl_divergence(mu: Tensor, logvar: Tensor) -> Tensor:
        """(B, K), (B, K) -> (B,) KL(N(μ, σ²) ‖ N(0, I)) = ½ Σ_k (μ² + σ² − log σ² − 1)."""
        return 0.5 * (mu.pow(2) + logvar.exp() - logvar - 1).sum(-1)

    def decoder_logits(self, z: Tensor) -> Tensor:
        """(B, K) -> (B, D) the decoder pre-activation."""
        return self.decoder(z)

    def decode(self, z: Tensor) -> Tensor:
        """(B, K) -> (B, D) x̂ (σ of the logits for ``bce``)."""
        logits = self.decoder_logits(z)
        return torch.sigmoid(logits) if self.loss_name == "bce" else logits

    def reconstruct(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, D) the decoding of the posterior mean."""
        return self.decode(self.encode(x))

    def forward(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def predict(self, x: Tensor) -> Tensor:
        return self.reconstruct(x)

    def loss(self, x: Tensor) -> LossOutput:
        """Mean over the batch of error(x̂(z), x) + β KL, one z per example."""
        mu, logvar = self.posterior(x)
        z = self.reparameterize(mu, logvar)
        error = reconstruction_error(self.decoder_logits(z), x, self.loss_name)  # (B,)
        kl = self.kl_divergence(mu, logvar)  # (B,)
        return LossOutput((error + self.beta * kl).mean(), x.shape[0])

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """(n, D) decodings of z ~ N(0, I), z (n, K)."""
        device = self.mu.weight.device
        z = torch.randn(n, self.code_size, generator=generator, device=device)
        return self.decode(z)


class LabelledBatch(NamedTuple):
    inputs: Tensor
    """(B, D) input vectors."""
    labels: Tensor
    """(B,) class index."""

    def to(self, device: torch.device | str) -> LabelledBatch:
        """The same batch on ``device``."""
        return LabelledBatch(self.inputs.to(device), self.labels.to(device))


class StackedAutoencoder(nn.Module):
    """A deep encoder ``h_0 = x, h_l = f(h_{l-1} W_l^T + b_l)`` with a softmax classifier
    on the last code: ``logits = dropout(h_L) W_c^T + b_c`` (B, C).

    Greedy layer-wise pretraining (Hinton & Salakhutdinov 2006; Bengio et al. 2007):
    layer l is the encoder of an autoencoder (:meth:`layer_autoencoder`) trained on the
    codes h_{l-1} of the layers below (fixed), its decoder then discarded. The module only
    provides the pieces; the training loop is the task's (``seqlab.tasks.layerwise``, one
    Trainer fit per layer). ``loss(batch)`` is the supervised cross-entropy for
    fine-tuning all layers and the head together.
    """

    def __init__(
        self,
        input_size: int,
        hidden_sizes: Sequence[int],
        num_classes: int,
        activation: Activation = "sigmoid",
        tied: bool = False,
        loss: Reconstruction = "bce",
        dropout: float = 0.0,
        noise_level: float = 0.0,
    ) -> None:
        super().__init__()
        if not hidden_sizes or min(hidden_sizes) <= 0 or input_size <= 0 or num_classes < 2:
            raise ValueError("need input_size > 0, positive hidden_sizes and num_classes >= 2")
        _check(activation, loss)
        if not 0.0 <= dropout < 1.0 or not 0.0 <= noise_level < 1.0:
            raise ValueError("dropout and noise_level must be in [0, 1)")
        sizes = [input_size, *hidden_sizes]
        self.encoders = nn.ModuleList(
            nn.Linear(n_in, n_out) for n_in, n_out in zip(sizes, sizes[1:], strict=False)
        )
        self.activation_name, self.tied, self.loss_name = activation, tied, loss
        self.noise_level = noise_level
        self.activation = _ACTIVATIONS[activation]()
        self.dropout = nn.Dropout(dropout)
        self.classifier = nn.Linear(sizes[-1], num_classes)

    def encode(self, x: Tensor, depth: int | None = None) -> Tensor:
        """(B, D) -> (B, K_depth) the code after the first ``depth`` layers (all: None)."""
        code = x
        for encoder in list(self.encoders)[:depth]:
            code = self.activation(encoder(code))
        return code

    def logits(self, batch: LabelledBatch) -> Tensor:
        """(B, C)"""
        return self.classifier(self.dropout(self.encode(batch.inputs)))

    def loss(self, batch: LabelledBatch) -> LossOutput:
        return LossOutput(F.cross_entropy(self.logits(batch), batch.labels), len(batch.labels))

    def predict(self, batch: LabelledBatch) -> Tensor:
        """(B,) the most probable class."""
        return self.logits(batch).argmax(-1)

    def layer_autoencoder(self, index: int) -> Autoencoder:
        """An autoencoder around layer ``index``'s encoder (the same ``nn.Linear``, shared:
        training the autoencoder trains the stack's layer) with a fresh decoder; denoising
        with masking noise when ``noise_level`` > 0. It reconstructs the codes of the
        layers below: the first layer with ``loss``, deeper layers with ``bce`` for sigmoid
        codes in (0, 1) and ``sse`` otherwise."""
        encoder = self.encoders[index]
        assert isinstance(encoder, nn.Linear)
        loss: Reconstruction = (
            self.loss_name
            if index == 0
            else ("bce" if self.activation_name == "sigmoid" else "sse")
        )
        args = (encoder.in_features, encoder.out_features, self.activation_name, self.tied, loss)
        ae: Autoencoder = (
            DenoisingAutoencoder(*args, noise="mask", noise_level=self.noise_level)
            if self.noise_level > 0
            else Autoencoder(*args)
        )
        ae.encoder = encoder
        return ae.to(encoder.weight.device)


__all__ = [
    "Autoencoder",
    "DenoisingAutoencoder",
    "LabelledBatch",
    "SparseAutoencoder",
    "StackedAutoencoder",
    "VariationalAutoencoder",
    "reconstruction_error",
]
