"""A GAN over the code space of a sequence autoencoder (two-stage ARAE; Zhao et al., 2018).

A generator maps Gaussian noise to codes, a critic scores codes; both are MLPs trained as
a Wasserstein GAN on the codes a frozen autoencoder gives its training sentences. New
sentences are the autoencoder's decoder run from generated codes.

.. code-block:: text

    generator:  z ~ N(0, I) (B, Z)  ->  MLP (ReLU, BatchNorm)  ->  c~ (B, D)
    critic:     c (B, D)            ->  MLP (LeakyReLU 0.2)    ->  f(c) (B,)
    critic loss:     E f(c~) - E f(c) + lambda E (||grad f(c^)||_2 - 1)^2,
                     c^ = eps c + (1 - eps) c~, eps ~ U(0, 1)           (WGAN-GP)
    generator loss:  -E f(c~)

With ``penalty: clip`` the critic's weights are clipped to [-clip_value, clip_value]
after each step instead (the original WGAN, as ARAE trained its critic). Codes are
standardised per dimension with the training codes' mean and standard deviation (buffers
``code_mean``, ``code_std``), so the penalty's unit gradient norm means the same for
every autoencoder; :meth:`LatentGAN.sample` returns codes in the autoencoder's own scale.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from seqlab.errors import ConfigError


@dataclass(frozen=True)
class LatentGANConfig:
    name: str = "mlp"
    noise_size: int = 100
    """Z, the size of the generator's Gaussian input (ARAE: 100)."""
    hidden_size: int = 300
    """Units of each hidden layer of the generator and the critic (ARAE: 300-300)."""
    num_layers: int = 2
    """Hidden layers of each MLP."""
    penalty: Literal["gp", "clip"] = "gp"
    """``gp``: WGAN-GP's gradient penalty (Gulrajani et al. 2017); ``clip``: the critic's
    weights clipped (Arjovsky et al. 2017, as in ARAE)."""
    gp_weight: float = 10.0
    """lambda of the gradient penalty."""
    clip_value: float = 0.01
    critic_iters: int = 5
    """Critic steps per generator step."""

    def validate(self) -> None:
        if min(self.noise_size, self.hidden_size, self.num_layers, self.critic_iters) < 1:
            raise ConfigError(
                "model.noise_size, model.hidden_size, model.num_layers and "
                "model.critic_iters must be at least 1"
            )
        if self.gp_weight < 0 or self.clip_value <= 0:
            raise ConfigError("model.gp_weight must be >= 0 and model.clip_value > 0")


def mlp(sizes: list[int], activation: nn.Module, batch_norm: bool) -> nn.Sequential:
    """Linear layers of ``sizes``, ``activation`` (and BatchNorm before it) between them."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            if batch_norm:
                layers.append(nn.BatchNorm1d(n_out))
            layers.append(activation)
    return nn.Sequential(*layers)


class Generator(nn.Module):
    """Noise (B, Z) -> standardised codes (B, D)."""

    def __init__(self, cfg: LatentGANConfig, code_size: int) -> None:
        super().__init__()
        sizes = [cfg.noise_size] + [cfg.hidden_size] * cfg.num_layers + [code_size]
        self.net = mlp(sizes, nn.ReLU(), batch_norm=True)

    def forward(self, noise: Tensor) -> Tensor:
        out: Tensor = self.net(noise)
        return out


class Critic(nn.Module):
    """Standardised codes (B, D) -> scores (B,)."""

    def __init__(self, cfg: LatentGANConfig, code_size: int) -> None:
        super().__init__()
        sizes = [code_size] + [cfg.hidden_size] * cfg.num_layers + [1]
        self.net = mlp(sizes, nn.LeakyReLU(0.2), batch_norm=False)

    def forward(self, code: Tensor) -> Tensor:
        out: Tensor = self.net(code)
        return out.squeeze(-1)


def gradient_penalty(
    critic: Callable[[Tensor], Tensor],
    real: Tensor,
    fake: Tensor,
    generator: torch.Generator | None = None,
) -> Tensor:
    """WGAN-GP's penalty E (||grad_c f(c^)||_2 - 1)^2 at c^ = eps real + (1 - eps) fake,
    eps ~ U(0, 1) per row; real, fake: (B, D). Zero for a critic whose gradient has norm 1
    everywhere (a linear critic with ||w|| = 1)."""
    eps = torch.rand(real.size(0), 1, generator=generator, device=real.device)
    mixed = (eps * real + (1 - eps) * fake).detach().requires_grad_(True)  # (B, D)
    scores = critic(mixed)  # (B,)
    (grad,) = torch.autograd.grad(scores.sum(), mixed, create_graph=True)  # (B, D)
    return ((grad.norm(2, dim=1) - 1) ** 2).mean()


class LatentGAN(nn.Module):
    """Generator and critic over codes of size ``code_size``, with the codes' per-dimension
    mean and standard deviation (set by :meth:`set_code_scale`)."""

    code_mean: Tensor  # (D,) buffer
    code_std: Tensor  # (D,) buffer

    def __init__(self, cfg: LatentGANConfig, code_size: int) -> None:
        super().__init__()
        self.cfg = cfg
        self.generator = Generator(cfg, code_size)
        self.critic = Critic(cfg, code_size)
        self.register_buffer("code_mean", torch.zeros(code_size))
        self.register_buffer("code_std", torch.ones(code_size))

    def set_code_scale(self, codes: Tensor) -> None:
        """Standardise with the mean and std of ``codes`` (N, D) (std floored at 1e-6)."""
        self.code_mean.copy_(codes.mean(0))
        self.code_std.copy_(codes.std(0).clamp(min=1e-6))

    def standardise(self, codes: Tensor) -> Tensor:
        """(B, D) autoencoder codes -> the standardised codes the GAN works on."""
        return (codes - self.code_mean) / self.code_std

    def noise(self, size: int, generator: torch.Generator | None = None) -> Tensor:
        """(size, Z) standard Gaussian noise on the model's device."""
        device = self.code_mean.device
        return torch.randn(size, self.cfg.noise_size, generator=generator, device=device)

    def critic_loss(
        self, real: Tensor, noise: Tensor, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(loss, Wasserstein estimate E f(real) - E f(fake)) for standardised real codes
        (B, D) and noise (B, Z); the generator is not updated by it."""
        with torch.no_grad():
            fake = self.generator(noise)
        distance = self.critic(real).mean() - self.critic(fake).mean()
        loss = -distance
        if self.cfg.penalty == "gp":
            loss = loss + self.cfg.gp_weight * gradient_penalty(self.critic, real, fake, generator)
        return loss, distance.detach()

    def generator_loss(self, noise: Tensor) -> Tensor:
        """-E f(G(z)) for noise (B, Z)."""
        return -self.critic(self.generator(noise)).mean()

    def clip_critic(self) -> None:
        """WGAN's weight clipping (``penalty: clip``), after each critic step."""
        with torch.no_grad():
            for weight in self.critic.parameters():
                weight.clamp_(-self.cfg.clip_value, self.cfg.clip_value)

    @torch.no_grad()
    def sample(self, size: int, generator: torch.Generator | None = None) -> Tensor:
        """(size, D) generated codes in the autoencoder's scale (eval-mode generator)."""
        was_training = self.generator.training
        self.generator.eval()
        codes = self.generator(self.noise(size, generator)) * self.code_std + self.code_mean
        self.generator.train(was_training)
        return codes
