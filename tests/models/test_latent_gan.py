"""The latent GAN's pieces: WGAN-GP's gradient penalty, shapes, standardisation, clipping."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from seqlab.errors import ConfigError
from seqlab.models.latent_gan import LatentGAN, LatentGANConfig, gradient_penalty

CFG = LatentGANConfig(noise_size=6, hidden_size=12, num_layers=2, critic_iters=2)


def linear_critic(weight: torch.Tensor) -> nn.Linear:
    critic = nn.Linear(weight.numel(), 1)
    with torch.no_grad():
        critic.weight.copy_(weight[None, :])
    return critic


def test_penalty_is_zero_for_a_unit_gradient_critic_and_positive_otherwise() -> None:
    real, fake = torch.randn(16, 5), torch.randn(16, 5)
    draw = torch.Generator().manual_seed(0)
    unit = torch.tensor([0.6, 0.0, 0.8, 0.0, 0.0])  # ||w|| = 1: gradient norm 1 everywhere
    critic = lambda x: linear_critic(unit)(x).squeeze(-1)  # noqa: E731
    assert float(gradient_penalty(critic, real, fake, draw).detach()) == pytest.approx(
        0.0, abs=1e-12
    )
    double = lambda x: linear_critic(2 * unit)(x).squeeze(-1)  # noqa: E731
    # ||grad|| = 2 everywhere: (2 - 1)^2 = 1 whatever the mix
    assert float(gradient_penalty(double, real, fake, draw).detach()) == pytest.approx(1.0)
    model = LatentGAN(CFG, 5)
    assert float(gradient_penalty(model.critic, real, fake, draw).detach()) > 0.0


def test_penalty_gradient_reaches_the_critic() -> None:
    model = LatentGAN(CFG, 5)
    penalty = gradient_penalty(model.critic, torch.randn(8, 5), torch.randn(8, 5))
    penalty.backward()
    # every weight shapes the critic's input gradient (the output bias does not)
    weights = [p for name, p in model.critic.named_parameters() if name.endswith("weight")]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in weights)


def test_shapes_standardisation_and_losses() -> None:
    torch.manual_seed(0)
    codes = 3.0 + 2.0 * torch.randn(50, 7)
    model = LatentGAN(CFG, 7)
    model.set_code_scale(codes)
    standard = model.standardise(codes)
    assert torch.allclose(standard.mean(0), torch.zeros(7), atol=1e-5)
    assert torch.allclose(standard.std(0), torch.ones(7), atol=1e-5)
    noise = model.noise(10)
    assert noise.shape == (10, 6) and model.generator(noise).shape == (10, 7)
    assert model.critic(standard).shape == (50,)
    loss, distance = model.critic_loss(standard[:10], noise)
    assert loss.ndim == 0 and not distance.requires_grad
    # the critic loss moves the critic only, the generator loss reaches the generator
    loss.backward()
    assert all(p.grad is None for p in model.generator.parameters())
    model.zero_grad()
    model.generator_loss(noise).backward()
    assert all(p.grad is not None for p in model.generator.parameters())
    # samples come back in the codes' own scale
    samples = model.sample(4, torch.Generator().manual_seed(1))
    again = model.sample(4, torch.Generator().manual_seed(1))
    assert samples.shape == (4, 7) and torch.equal(samples, again)
    assert model.generator.training  # sample() leaves the mode as it found it


def test_clip_bounds_every_critic_weight() -> None:
    model = LatentGAN(LatentGANConfig(penalty="clip", clip_value=0.01, hidden_size=8), 4)
    model.clip_critic()
    assert max(float(p.detach().abs().max()) for p in model.critic.parameters()) <= 0.01


def test_config_errors() -> None:
    with pytest.raises(ConfigError, match="critic_iters"):
        LatentGANConfig(critic_iters=0).validate()
    with pytest.raises(ConfigError, match="gp_weight"):
        LatentGANConfig(gp_weight=-1.0).validate()
