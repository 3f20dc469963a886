"""VAEModel: objectives, decomposition, sampling and input validation."""

import pytest
import torch

from vaezoo import VAEConfig, VAEModel
from vaezoo.bounds import logmeanexp

SMALL = dict(encoder_hidden=[32], decoder_hidden=[32], latent_dim=4)


def binary_batch(n=8, seed=0):
    return torch.bernoulli(torch.full((n, 784), 0.3), generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("parameterization", ["exp", "softplus", "stdplus"])
def test_forward_decomposes_elbo(parameterization):
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(parameterization=parameterization, **SMALL))
    out = model(binary_batch(), generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.elbo_per_example, -(out.distortion_per_example + out.rate_per_example))
    torch.testing.assert_close(out.loss, out.distortion + out.rate)
    assert out.rate_per_example.shape == (8,) and torch.all(out.rate_per_example >= 0)


def test_rate_is_closed_form_kl():
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(parameterization="stdplus", **SMALL))
    x = binary_batch()
    a, b = model.encoder.conditional.raw(x)  # the raw encoder outputs (the KL amplitude)
    out = model(x)
    torch.testing.assert_close(out.rate_per_example, (a**2 + b**2).sum(-1))


def test_beta_weights_the_rate():
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(beta=0.25, **SMALL))
    out = model(binary_batch(), generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.loss, out.distortion + 0.25 * out.rate)


def test_iwae_objective_matches_log_weights():
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(objective="iwae", train_samples=5, **SMALL))
    x = binary_batch()
    out = model(x, generator=torch.Generator().manual_seed(3))
    log_px_z, log_ratio = model.log_weights(x, 5, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(out.loss, -logmeanexp(log_px_z - log_ratio).mean())
    assert out.iwae >= out.elbo - 1e-4  # IWAE_k >= ELBO on the same draws (Jensen)


def test_forward_is_seedable_and_gradients_flow():
    model = VAEModel(VAEConfig(**SMALL))
    x = binary_batch()
    a = model(x, generator=torch.Generator().manual_seed(5)).loss
    b = model(x, generator=torch.Generator().manual_seed(5)).loss
    assert a.item() == b.item()
    a.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())


def test_encode_decode_sample_shapes():
    model = VAEModel(VAEConfig(**SMALL))
    posterior = model.encode(binary_batch(3).reshape(3, 1, 28, 28))
    assert posterior.mean.shape == (3, 4)
    assert model.decode(posterior.mean).mean.shape == (3, 784)
    s1 = model.sample(5, generator=torch.Generator().manual_seed(0))
    s2 = model.sample(5, generator=torch.Generator().manual_seed(0))
    assert s1.shape == (5, 1, 28, 28) and torch.equal(s1, s2)


@pytest.mark.parametrize(
    "bad, message",
    [
        (torch.rand(4, 783).round(), r"shape \(batch, 784\)"),
        (torch.ones(4, 784, dtype=torch.uint8), "floating-point"),
        (torch.full((4, 784), float("nan")), "NaN"),
        (torch.full((4, 784), 2.0), r"\[0, 1\]"),
        (torch.full((4, 784), 0.5), "binary pixels"),
        (torch.zeros(0, 784), "empty batch"),
        ([[0.0] * 784], "torch.Tensor"),
    ],
)
def test_input_validation(bad, message):
    model = VAEModel(VAEConfig(**SMALL))
    with pytest.raises(ValueError, match=message):
        model(bad)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("parameterization", "sigmoid", "parameterization='sigmoid' is not valid; expected one of"),
        ("latent_dim", 0, "latent_dim=0 is not valid"),
        ("train_samples", -1, "train_samples=-1"),
        ("objective", "vi", "objective='vi'"),
        ("beta", -1.0, "beta=-1.0"),
        ("activation", "swishy", "activation='swishy'"),
    ],
)
def test_config_validation(field, value, message):
    with pytest.raises(ValueError, match=message):
        VAEConfig(**{**SMALL, field: value})


def test_iwae_requires_beta_one():
    with pytest.raises(ValueError, match="beta=1"):
        VAEConfig(objective="iwae", beta=0.5)
