"""Autoencoders: the PCA proof, tied weights, sparsity, corruption, the VAE's KL and
sampling, the stack's layer autoencoders, and the shared model battery."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.linalg import subspace_angles
from torch import Tensor, nn

from seqlab.nn.autoencoder import (
    Autoencoder,
    DenoisingAutoencoder,
    LabelledBatch,
    SparseAutoencoder,
    StackedAutoencoder,
    VariationalAutoencoder,
)
from seqlab.testing import (
    assert_all_parameters_get_gradient,
    assert_overfits,
    assert_save_load_identical,
)

D, K = 12, 4


def binary_inputs(n: int = 10, seed: int = 0) -> Tensor:
    generator = torch.Generator().manual_seed(seed)
    return (torch.rand(n, D, generator=generator) < 0.4).float()


# ----------------------------------------------------------------------------- PCA proof


def low_rank_data(n: int = 400, d: int = 12, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    """Rank-k signal with distinct variances + isotropic noise + an offset; returns the
    data (n, d) and numpy's top-k right singular vectors of the centered data (d, k)."""
    rng = np.random.default_rng(0)
    basis = np.linalg.qr(rng.normal(size=(d, k)))[0]
    signal = rng.normal(size=(n, k)) * np.array([3.0, 2.0, 1.5]) @ basis.T
    data = signal + 0.1 * rng.normal(size=(n, d)) + 2.0 * rng.normal(size=d)
    _, _, vt = np.linalg.svd(data - data.mean(0), full_matrices=False)
    return data, vt[:k].T


def fit_lbfgs(model: nn.Module, x: Tensor, iterations: int = 200) -> None:
    optimizer = torch.optim.LBFGS(
        model.parameters(),
        lr=1.0,
        max_iter=iterations,
        line_search_fn="strong_wolfe",
        tolerance_grad=1e-9,
        tolerance_change=1e-12,
    )

    def closure() -> Tensor:
        optimizer.zero_grad()
        loss = model.loss(x).loss
        loss.backward()
        return loss

    optimizer.step(closure)  # type: ignore[arg-type]


@pytest.mark.parametrize("tied", [False, True], ids=["untied", "tied"])
def test_linear_autoencoder_with_sse_learns_the_principal_subspace(tied: bool) -> None:
    data, principal = low_rank_data()
    torch.manual_seed(0)
    ae = Autoencoder(12, 3, activation="linear", tied=tied, loss="sse").double()
    x = torch.tensor(data)
    fit_lbfgs(ae, x)
    decoder = ae.encoder.weight.T if ae.decoder is None else ae.decoder.weight  # (D, K)
    encoder = ae.encoder.weight.T  # (D, K): the directions the code reads
    for weights in (decoder, encoder):
        angles = np.degrees(subspace_angles(weights.detach().numpy(), principal))
        assert angles.max() < 1.0, angles
    # Eckart-Young: the error is PCA's, the sum of the discarded squared singular values.
    singular = np.linalg.svd(data - data.mean(0), compute_uv=False)
    pca_error = float((singular[3:] ** 2).sum() / len(data))
    assert float(ae.loss(x).loss.detach()) == pytest.approx(pca_error, rel=1e-3)


def test_the_angle_check_rejects_untrained_weights() -> None:
    """The angle check has teeth: random weights are far from the principal subspace."""
    _, principal = low_rank_data()
    torch.manual_seed(0)
    ae = Autoencoder(12, 3, activation="linear")
    angles = np.degrees(subspace_angles(ae.decoder.weight.detach().numpy(), principal))  # type: ignore[union-attr]
    assert angles.max() > 20.0


# ----------------------------------------------------------------------------- tied / untied


def test_tied_decoder_is_the_transposed_encoder() -> None:
    torch.manual_seed(0)
    tied = Autoencoder(D, K, activation="tanh", tied=True, loss="bce")
    untied = Autoencoder(D, K, activation="tanh", tied=False, loss="bce")
    assert {n for n, _ in tied.named_parameters()} == {
        "encoder.weight",
        "encoder.bias",
        "decoder_bias",
    }
    assert (
        sum(p.numel() for p in untied.parameters()) - sum(p.numel() for p in tied.parameters())
        == D * K
    )
    x = binary_inputs()
    with torch.no_grad():
        tied.decoder_bias.uniform_(-1, 1)  # type: ignore[union-attr]
        code = torch.tanh(x @ tied.encoder.weight.T + tied.encoder.bias)
        expected = torch.sigmoid(code @ tied.encoder.weight + tied.decoder_bias)
        torch.testing.assert_close(tied.reconstruct(x), expected)
        # bce from the logits equals the textbook cross-entropy of the reconstruction.
        manual = -(x * expected.log() + (1 - x) * (1 - expected).log()).sum(-1).mean()
        torch.testing.assert_close(tied.loss(x).loss, manual)


def test_sse_is_the_sum_of_squared_errors() -> None:
    torch.manual_seed(0)
    ae = Autoencoder(D, K, activation="sigmoid", loss="sse")
    x = binary_inputs()
    with torch.no_grad():
        expected = (ae.reconstruct(x) - x).pow(2).sum(-1).mean()
        torch.testing.assert_close(ae.loss(x).loss, expected)
    assert ae.loss(x).n == 10


# ----------------------------------------------------------------------------- sparse


def train(model: nn.Module, x: Tensor, steps: int, lr: float = 1e-2) -> None:
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for _ in range(steps):
        optimizer.zero_grad()
        model.loss(x).loss.backward()
        optimizer.step()


def test_l1_on_the_code_makes_it_sparser() -> None:
    x = binary_inputs(200, seed=1)
    zeros = {}
    for l1 in (0.0, 0.2):
        torch.manual_seed(0)
        ae = SparseAutoencoder(D, 16, activation="relu", loss="sse", l1=l1)
        train(ae, x, steps=300)
        with torch.no_grad():
            zeros[l1] = float((ae.encode(x) == 0).float().mean())
            code_l1 = float(ae.encode(x).abs().sum(-1).mean())
            error = float(ae.reconstruction_error(x).mean())
            total = float(ae.loss(x).loss)
        assert total == pytest.approx(error + l1 * code_l1, rel=1e-5)
    assert zeros[0.2] > zeros[0.0] + 0.15, zeros
    assert error < 0.05 * float(x.var(0).sum())  # still a good code, not a collapse


# ----------------------------------------------------------------------------- denoising


def test_masking_noise_zeroes_a_fraction_p_of_the_inputs() -> None:
    ae = DenoisingAutoencoder(1000, K, noise="mask", noise_level=0.3)
    x = torch.ones(100, 1000)
    torch.manual_seed(0)
    noisy = ae.corrupt(x)
    assert set(noisy.unique().tolist()) == {0.0, 1.0}
    assert float((noisy == 0).float().mean()) == pytest.approx(0.3, abs=0.005)
    zeros_stay_zero = ae.corrupt(torch.zeros(10, 1000))
    assert bool((zeros_stay_zero == 0).all())


def test_gaussian_noise_has_the_given_std() -> None:
    ae = DenoisingAutoencoder(1000, K, noise="gaussian", noise_level=0.5)
    x = torch.rand(100, 1000)
    torch.manual_seed(0)
    delta = ae.corrupt(x) - x
    assert float(delta.mean()) == pytest.approx(0.0, abs=0.005)
    assert float(delta.std()) == pytest.approx(0.5, rel=0.01)


def test_denoising_loss_reconstructs_the_clean_input_from_the_corrupted_one() -> None:
    torch.manual_seed(0)
    ae = DenoisingAutoencoder(D, K, loss="bce", noise="mask", noise_level=0.5)
    x = binary_inputs()
    ae.train()
    torch.manual_seed(3)
    loss = ae.loss(x).loss
    torch.manual_seed(3)
    noisy = ae.corrupt(x)
    assert not torch.equal(noisy, x)
    logits = ae.decoder_logits(ae.encode(noisy))
    clean_target = nn.functional.binary_cross_entropy_with_logits(logits, x, reduction="none")
    torch.testing.assert_close(loss, clean_target.sum(-1).mean())
    ae.eval()  # no corruption at evaluation: the plain reconstruction error
    torch.testing.assert_close(ae.loss(x).loss, ae.reconstruction_error(x).mean())


# ----------------------------------------------------------------------------- VAE


def test_vae_kl_closed_form_matches_monte_carlo() -> None:
    generator = torch.Generator().manual_seed(0)
    mu = torch.randn(3, 4, generator=generator, dtype=torch.float64)
    logvar = torch.randn(3, 4, generator=generator, dtype=torch.float64) * 0.5
    closed = VariationalAutoencoder.kl_divergence(mu, logvar)
    std = torch.exp(0.5 * logvar)
    z = mu + std * torch.randn(200_000, 3, 4, generator=generator, dtype=torch.float64)
    log_q = torch.distributions.Normal(mu, std).log_prob(z).sum(-1)  # (S, 3)
    log_p = torch.distributions.Normal(0.0, 1.0).log_prob(z).sum(-1)
    monte_carlo = (log_q - log_p).mean(0)
    torch.testing.assert_close(closed, monte_carlo, rtol=0.02, atol=0.01)
    zero = VariationalAutoencoder.kl_divergence(torch.zeros(2, 4), torch.zeros(2, 4))
    assert zero.tolist() == [0.0, 0.0]


def test_vae_loss_is_reconstruction_plus_beta_kl_at_the_sampled_code() -> None:
    torch.manual_seed(0)
    vae = VariationalAutoencoder(D, K, hidden_size=8, loss="bce", beta=0.5)
    x = binary_inputs()
    torch.manual_seed(5)
    loss = vae.loss(x).loss
    mu, logvar = vae.posterior(x)
    torch.manual_seed(5)
    z = vae.reparameterize(mu, logvar)
    error = nn.functional.binary_cross_entropy_with_logits(
        vae.decoder_logits(z), x, reduction="none"
    ).sum(-1)
    torch.testing.assert_close(loss, (error + 0.5 * vae.kl_divergence(mu, logvar)).mean())
    torch.testing.assert_close(vae.encode(x), mu)


def test_vae_reparameterisation_has_the_posterior_moments() -> None:
    mu, logvar = torch.full((200_000, 2), 1.5), torch.tensor([[math.log(4.0), 0.0]])
    torch.manual_seed(0)
    z = VariationalAutoencoder.reparameterize(mu, logvar.expand_as(mu))
    torch.testing.assert_close(z.mean(0), torch.tensor([1.5, 1.5]), atol=0.02, rtol=0)
    torch.testing.assert_close(z.std(0), torch.tensor([2.0, 1.0]), atol=0.02, rtol=0)


@pytest.mark.parametrize("hidden_size", [None, 8])
def test_vae_sampling_shapes_and_range(hidden_size: int | None) -> None:
    torch.manual_seed(0)
    vae = VariationalAutoencoder(D, K, hidden_size=hidden_size, loss="bce")
    samples = vae.sample(7, generator=torch.Generator().manual_seed(1))
    assert samples.shape == (7, D)
    assert bool(((samples > 0) & (samples < 1)).all())
    again = vae.sample(7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(samples, again, atol=0, rtol=0)
    sse = VariationalAutoencoder(D, K, hidden_size=hidden_size, loss="sse")
    assert sse.sample(3).shape == (3, D) and vae.encode(binary_inputs()).shape == (10, K)


# ----------------------------------------------------------------------------- stacked


def test_a_layers_autoencoder_shares_the_stacks_encoder() -> None:
    torch.manual_seed(0)
    stack = StackedAutoencoder(D, [8, 6, 4], num_classes=2, activation="sigmoid", loss="bce")
    ae = stack.layer_autoencoder(1)
    assert ae.loss_name == "bce"  # sigmoid codes are in (0, 1)
    assert ae.encoder is stack.encoders[1] and ae.decoder is not None
    assert (ae.encoder.in_features, ae.decoder.out_features) == (8, 8)
    # One step on the layer's reconstruction of the codes below moves the stack's layer,
    # and only that layer: the stack keeps what its layer autoencoder learns.
    before = [p.detach().clone() for p in stack.parameters()]
    codes = stack.encode(binary_inputs(16, seed=2), depth=1).detach()
    optimizer = torch.optim.SGD(ae.parameters(), lr=1.0)
    ae.loss(codes).loss.backward()
    optimizer.step()
    changed = [not torch.equal(a, b) for a, b in zip(before, stack.parameters(), strict=True)]
    assert changed == [False, False, True, True, False, False, False, False]
    assert stack.encode(binary_inputs()).shape == (10, 4)


def test_stack_with_relu_units_reconstructs_its_codes_with_sse_and_can_denoise() -> None:
    stack = StackedAutoencoder(D, [8, 4], 3, activation="relu", loss="bce", noise_level=0.2)
    first, second = stack.layer_autoencoder(0), stack.layer_autoencoder(1)
    assert (first.loss_name, second.loss_name) == ("bce", "sse")
    assert isinstance(first, DenoisingAutoencoder) and first.noise_level == 0.2


# ----------------------------------------------------------------------------- battery


def build(name: str) -> nn.Module:
    torch.manual_seed(0)
    if name == "untied":
        return Autoencoder(D, 16, activation="sigmoid", loss="bce")
    if name == "tied":
        return Autoencoder(D, 16, activation="tanh", tied=True, loss="sse")
    if name == "sparse":
        return SparseAutoencoder(D, 16, activation="relu", loss="sse", l1=1e-4)
    if name == "denoising":
        return DenoisingAutoencoder(D, 16, noise="gaussian", noise_level=0.05, loss="sse")
    if name == "vae":
        return VariationalAutoencoder(D, K, hidden_size=16, loss="sse", beta=1e-3)
    return StackedAutoencoder(D, [16, 8], num_classes=2, dropout=0.1)


MODELS = ["untied", "tied", "sparse", "denoising", "vae", "stacked"]


@pytest.mark.parametrize("name", MODELS)
def test_battery(name: str, tmp_path: Path) -> None:
    x = binary_inputs()
    batch: Tensor | LabelledBatch = x
    model = build(name)
    if isinstance(model, StackedAutoencoder):
        batch = LabelledBatch(x, torch.tensor([0, 1] * 5))
        assert model.logits(batch).shape == (10, 2) and model.predict(batch).shape == (10,)
    else:
        assert model.encode(x).shape[0] == 10 and model.predict(x).shape == (10, D)

    def outputs(m: nn.Module) -> Tensor:
        return m.logits(batch) if isinstance(m, StackedAutoencoder) else m.reconstruct(x)

    assert_all_parameters_get_gradient(model, batch)
    assert_save_load_identical(model, lambda: build(name), outputs, tmp_path)
    # Memorising 10 examples: reconstruction (or classification) loss near zero.
    below = {"vae": 0.3}.get(name, 0.05)
    assert_overfits(build(name), batch, steps=600, lr=3e-2, below=below)
