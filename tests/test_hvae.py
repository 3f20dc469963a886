"""Hierarchical VAE: rate decomposition, bounds, the swappable decoder layer, config validation."""

import math

import pytest
import torch

from vaezoo import HVAEConfig, HVAEModel, VAEConfig, VAEModel
from vaezoo.estimators import GaussianLinear, Reparameterization

SMALL = dict(image_size=4, latent_dims=[6, 4, 3], hidden_dims=[[16, 16], [8, 8], [8]])


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def binary(n=5, pixels=16, seed=1):
    return (torch.rand(n, pixels, generator=torch.Generator().manual_seed(seed)) > 0.5).double()


@pytest.mark.parametrize("layers", [1, 2, 3])
@pytest.mark.parametrize("parameterization", ["exp", "softplus", "stdplus"])
def test_rate_per_layer_sums_to_total_and_elbo_decomposes(layers, parameterization):
    config = HVAEConfig(
        image_size=4, latent_dims=SMALL["latent_dims"][:layers], hidden_dims=SMALL["hidden_dims"][:layers],
        parameterization=parameterization, train_samples=3,
    )
    model = HVAEModel(config).double()
    x = binary()
    out = model(x, generator=torch.Generator().manual_seed(0))
    assert out.rate_per_layer.shape == (layers,)
    assert out.rate_per_layer_per_example.shape == (5, layers)
    torch.testing.assert_close(out.rate_per_layer_per_example.sum(-1), out.rate_per_example)
    torch.testing.assert_close(out.rate_per_layer.sum(), out.rate)
    torch.testing.assert_close(out.elbo_per_example, -(out.distortion_per_example + out.rate_per_example))
    assert out.iwae is not None and torch.all(torch.isfinite(out.loss))
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())


def test_total_rate_matches_log_density_ratio_of_the_joint():
    """E_q[sum_l R_l] = E_q[log q(z_{1:L}|x) - log p(z_{1:L})]: the per-layer estimators (closed-form top
    KL, Monte Carlo below) agree with the importance-weight terms of the evaluation contract."""
    model = HVAEModel(HVAEConfig(train_samples=20000, **SMALL)).double()
    x = binary(3)
    out = model(x, generator=torch.Generator().manual_seed(0))
    log_px_z, log_ratio = model.log_weights(x, 20000, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(out.rate_per_example, log_ratio.mean(0), atol=0.1, rtol=0)
    torch.testing.assert_close(out.distortion_per_example, -log_px_z.mean(0), atol=0.1, rtol=0)


def test_one_layer_hvae_is_the_vae():
    kw = dict(image_size=4, parameterization="exp")
    hvae = HVAEModel(HVAEConfig(latent_dims=[3], hidden_dims=[[8, 8]], **kw)).double()
    vae = VAEModel(VAEConfig(latent_dim=3, encoder_hidden=[8, 8], decoder_hidden=[8, 8], **kw)).double()
    with torch.no_grad():
        vae.encoder.conditional.load_state_dict(hvae.inference[0].state_dict())
        vae.decoder[0].weight.copy_(hvae.decoder.latent_to_hidden.weight)
        vae.decoder[0].bias.copy_(hvae.decoder.latent_to_hidden.bias)
        for i in (2, 4):
            vae.decoder[i].load_state_dict(hvae.decoder.hidden_to_pixels[i - 2].state_dict())
    x = binary()
    a = hvae(x, generator=torch.Generator().manual_seed(0))
    b = vae(x, generator=torch.Generator().manual_seed(0))
    for key in ("elbo_per_example", "rate_per_example", "distortion_per_example"):
        torch.testing.assert_close(a[key], b[key])


def test_iwae_bound_tightens_and_sampling_works():
    model = HVAEModel(HVAEConfig(**SMALL)).double()
    x = binary(4)
    g = torch.Generator().manual_seed(0)
    a, b = model.log_weights(x, 100 * 64, generator=g)
    log_w = (a - b).reshape(100, 64, 4)
    iwae_1 = log_w.mean((0, 1))
    iwae_64 = (torch.logsumexp(log_w, 1) - math.log(64)).mean(0)
    assert torch.all(iwae_64 > iwae_1)
    images = model.sample(3, generator=g)
    assert images.shape == (3, 1, 4, 4) and torch.all((images >= 0) & (images <= 1))


def test_decoder_latent_to_hidden_is_a_separate_estimator_layer():
    model = HVAEModel(HVAEConfig(**SMALL)).double()
    layer = model.decoder.latent_to_hidden
    assert isinstance(layer, GaussianLinear) and isinstance(layer.estimator, Reparameterization)
    x = binary(2)
    q = model.encode(x)
    z = q.rsample((1,), generator=torch.Generator().manual_seed(0))
    # RT through the layer = plain linear on the drawn z, gradient included
    grad = torch.autograd.grad(layer(q, z).sum(), q.loc, retain_graph=True)[0]
    want = torch.autograd.grad(torch.nn.functional.linear(z, layer.weight, layer.bias).sum(), q.loc)[0]
    torch.testing.assert_close(grad, want)


@pytest.mark.parametrize(
    "kwargs,field",
    [
        (dict(latent_dims=[5, 4, 3, 2], hidden_dims=[[4]] * 4), "latent_dims"),
        (dict(latent_dims=[5, 4], hidden_dims=[[4]]), "hidden_dims"),
        (dict(decoder_estimator="magic"), "decoder_estimator"),
        (dict(decoder_estimator="score"), "decoder_estimator"),
        (dict(parameterization="cube"), "parameterization"),
        (dict(objective="iwae", beta=0.5), "beta"),
    ],
)
def test_config_validation_names_the_field(kwargs, field):
    with pytest.raises(ValueError, match=field):
        HVAEConfig(**kwargs)
