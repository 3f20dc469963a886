"""PixelCNN decoder (causal masks, normalization), the discretized logistic likelihood, target-rate objective."""

import itertools
import math

import pytest
import torch

from vaezoo import VAEConfig, VAEModel
from vaezoo.likelihoods import DiscretizedLogisticImage

PIXELCNN = dict(decoder="pixelcnn", pixelcnn_layers=3, pixelcnn_channels=8, pixelcnn_cond_channels=2,
                encoder_hidden=[16], decoder_hidden=[16], latent_dim=3)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


@pytest.mark.parametrize("likelihood", ["bernoulli", "discretized_logistic"])
def test_pixelcnn_is_causal(likelihood):
    """Changing pixel j never changes the parameters (hence the likelihood terms) of pixels <= j."""
    model = VAEModel(VAEConfig(image_size=6, likelihood=likelihood, **PIXELCNN)).double()
    decoder = model.decoder
    z = torch.randn(1, 3, dtype=torch.float64)
    cond = decoder.cond(z).reshape(1, 2, 6, 6)
    params = LIKELIHOOD_PARAMS[likelihood]
    x = torch.randint(0, 2, (1, 1, 6, 6)).double()
    base = decoder.network(x, cond).reshape(params, 36)
    for j in range(36):
        x2 = x.clone().flatten()
        x2[j] = 1 - x2[j]
        out = decoder.network(x2.reshape(1, 1, 6, 6), cond).reshape(params, 36)
        torch.testing.assert_close(out[:, : j + 1], base[:, : j + 1], rtol=0, atol=0)
        if j < 35:  # the next pixel does see pixel j (the mask is not over-restrictive)
            assert not torch.equal(out[:, j + 1], base[:, j + 1]) or j % 6 == 5
    # per-pixel likelihood terms of pixels < j are unchanged (Bernoulli terms written out)
    if likelihood == "bernoulli":
        flat = x.flatten()
        x2 = flat.clone()
        x2[20] = 1 - x2[20]
        terms = lambda v: -torch.nn.functional.binary_cross_entropy_with_logits(  # noqa: E731
            decoder.network(v.reshape(1, 1, 6, 6), cond)[0], v, reduction="none"
        )
        torch.testing.assert_close(terms(x2)[:20], terms(flat)[:20], rtol=0, atol=0)


LIKELIHOOD_PARAMS = {"bernoulli": 1, "discretized_logistic": 2}


def test_pixelcnn_likelihood_is_normalized():
    """sum over all 2^(2x2) binary images of p(x | z) = 1 for an autoregressive Bernoulli decoder."""
    model = VAEModel(VAEConfig(image_size=2, **PIXELCNN)).double()
    images = torch.tensor(list(itertools.product([0.0, 1.0], repeat=4)), dtype=torch.float64)
    z = torch.randn(2, 1, 3, dtype=torch.float64)
    log_p = model.decode(z).log_prob(images)
    assert log_p.shape == (2, 16)
    torch.testing.assert_close(torch.logsumexp(log_p, -1), torch.zeros(2, dtype=torch.float64))


def test_pixelcnn_vae_trains_and_samples():
    config = VAEConfig(image_size=4, train_samples=2, **PIXELCNN)
    model = VAEModel(config)
    x = (torch.rand(3, 16) > 0.5).float()
    out = model(x, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is not None for p in model.decoder.parameters())
    images = model.sample(5, generator=torch.Generator().manual_seed(0), mean=False)
    assert images.shape == (5, 1, 4, 4) and set(images.unique().tolist()) <= {0.0, 1.0}
    a, b = model.log_weights(x, 4, generator=torch.Generator().manual_seed(0))
    assert a.shape == b.shape == (4, 3)
    with pytest.raises(NotImplementedError, match="mean"):
        model.sample(2)


def brute_force_discretized_logistic(x, loc, scale):
    """P(bin of x) from the logistic CDF written out, edge bins open."""
    cdf = lambda t: 0.5 * (1 + math.tanh((t - loc) / (2 * scale)))  # noqa: E731
    h = 0.5 / 255
    upper = 1.0 if x > 1 - h else cdf(x + h)
    lower = 0.0 if x < h else cdf(x - h)
    return math.log(upper - lower) if upper > lower else -math.inf


def test_discretized_logistic_matches_cdf_differences_and_normalizes():
    levels = torch.arange(256, dtype=torch.float64) / 255
    for loc, log_scale in [(0.3, -3.0), (0.0, -1.0), (1.2, -5.0), (0.5, -9.0), (-0.4, 0.5)]:
        params = torch.tensor([loc, log_scale], dtype=torch.float64).expand(256, 2)
        dist = DiscretizedLogisticImage(params)
        log_p = dist.log_prob(levels.unsqueeze(-1))
        torch.testing.assert_close(torch.logsumexp(log_p, 0), torch.tensor(0.0, dtype=torch.float64))
        for k in (0, 1, 77, 128, 254, 255):
            want = brute_force_discretized_logistic(k / 255, loc, math.exp(log_scale))
            if want > -30:  # where float64 CDF differences are still exact
                torch.testing.assert_close(log_p[k].item(), want, rtol=1e-7, atol=1e-9)
        # exact mean: sum_k (k/255) P(k)
        torch.testing.assert_close(dist.mean[0, 0], (log_p.exp() * levels).sum())


def test_discretized_logistic_tails_are_finite_and_samples_follow_the_masses():
    params = torch.tensor([[0.5, -12.0]], dtype=torch.float32)
    far = DiscretizedLogisticImage(params).log_prob(torch.tensor([[0.0]]))
    assert torch.isfinite(far) and far < -1000
    params = torch.tensor([0.4, -2.5], dtype=torch.float64).expand(1, 2)
    dist = DiscretizedLogisticImage(params)
    draws = dist.sample((50000,), generator=torch.Generator().manual_seed(0))
    assert torch.all((draws * 255 - (draws * 255).round()).abs() < 1e-9)
    levels = torch.arange(256, dtype=torch.float64) / 255
    probs = dist.log_prob(levels.unsqueeze(-1)).exp()
    counts = torch.stack([(draws.round(decimals=6) == round(v, 6)).double().mean() for v in levels.tolist()])
    assert (counts - probs).abs().max() < 0.005
    with pytest.raises(ValueError, match="k/255"):
        DiscretizedLogisticImage.check_support(torch.tensor([[0.5]]))


def test_grey_vae_with_discretized_logistic_and_gradients_are_finite():
    config = VAEConfig(likelihood="discretized_logistic", image_size=4, encoder_hidden=[8], decoder_hidden=[8], latent_dim=2)
    model = VAEModel(config)
    x = torch.randint(0, 256, (5, 16)).float() / 255
    out = model(x)
    out.loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters())
    with pytest.raises(ValueError, match="binary"):
        VAEModel(VAEConfig(image_size=4, encoder_hidden=[8], decoder_hidden=[8]))(x)


def test_target_rate_objective_penalizes_the_distance_to_the_target():
    kw = dict(image_size=4, encoder_hidden=[8], decoder_hidden=[8], latent_dim=2)
    x = (torch.rand(5, 16) > 0.5).float()
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(objective="target_rate", target_rate=3.0, beta=2.0, **kw))
    out = model(x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, out.distortion + 2.0 * (out.rate - 3.0).abs())
    with pytest.raises(ValueError, match="target_rate"):
        VAEConfig(objective="target_rate", **kw)
    with pytest.raises(ValueError, match="target_rate"):
        VAEConfig(target_rate=2.0, **kw)
