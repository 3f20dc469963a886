"""The importance-weighted NLL estimator on a model whose marginal likelihood is known exactly.

Linear-Gaussian VAE: p(z) = N(0, I), p(x|z) = N(Wz + b, s^2 I)  =>  p(x) = N(b, W W^T + s^2 I).
With a deliberately imperfect Gaussian encoder, IWAE_K must approach log p(x) from below as K grows.
"""

import math
from types import SimpleNamespace

import torch
from torch.distributions import MultivariateNormal

from vaezoo.bounds import LogMeanExpAccumulator, logmeanexp
from vaezoo.distributions import DiagonalGaussian, StandardNormal
from vaezoo.evaluation import evaluate_generative

D, K_LAT = 6, 3


class LinearGaussianVAE(torch.nn.Module):
    """Implements the generative evaluation contract (log_weights, encode, config.num_pixels)."""

    evaluation_kind = "generative"

    def __init__(self, seed=0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.W = torch.randn(D, K_LAT, generator=g, dtype=torch.float64)
        self.b = torch.rand(D, generator=g, dtype=torch.float64)
        self.log_s = math.log(0.3)
        self.config = SimpleNamespace(num_pixels=D)
        self.dummy = torch.nn.Parameter(torch.zeros(1, dtype=torch.float64))

    def encode(self, x):
        """An approximate posterior: the exact posterior N(mu, S), S = (I + W^T W / s^2)^-1,
        mu = S W^T (x - b) / s^2, with its mean shifted and its diagonal scale inflated 1.5x,
        so a single sample gives a loose bound and importance weighting has work to do."""
        s2 = math.exp(2 * self.log_s)
        cov = torch.linalg.inv(torch.eye(K_LAT, dtype=x.dtype) + self.W.T @ self.W / s2)
        mu = (x - self.b) @ self.W @ cov.T / s2 + 0.2
        log_scale = torch.log(1.5 * cov.diagonal().sqrt()).expand_as(mu)
        return DiagonalGaussian(mu, log_scale)

    def log_weights(self, x, num_samples, generator=None):
        q = self.encode(x)
        z = q.rsample((num_samples,), generator=generator)
        lik = DiagonalGaussian(z @ self.W.T + self.b, torch.full_like(z @ self.W.T, self.log_s))
        prior = StandardNormal(K_LAT, dtype=x.dtype)
        return lik.log_prob(x), q.log_prob(z) - prior.log_prob(z)

    def exact_log_marginal(self, x):
        cov = self.W @ self.W.T + math.exp(2 * self.log_s) * torch.eye(D, dtype=torch.float64)
        return MultivariateNormal(self.b, cov).log_prob(x)


class Points:
    name, split, hub_id = "synthetic", "test", "synthetic"

    def __init__(self, x):
        self.images = x

    def __len__(self):
        return len(self.images)

    def pixels(self, batch, generator=None):
        return batch


def test_iwae_5000_matches_exact_marginal_likelihood():
    torch.manual_seed(0)
    model = LinearGaussianVAE()
    cov = model.W @ model.W.T + 0.09 * torch.eye(D, dtype=torch.float64)
    x = MultivariateNormal(model.b, cov).sample((40,))
    exact_nll = -model.exact_log_marginal(x).mean().item()
    loose = evaluate_generative(model, Points(x), iwae_samples=1, seed=0)
    tight = evaluate_generative(model, Points(x), iwae_samples=5000, seed=0)
    assert loose["nll"] > exact_nll + 0.5  # a single sample is a loose bound here...
    assert abs(tight["nll"] - exact_nll) < 0.01  # ...and K = 5000 recovers log p(x)
    assert tight["nll"] >= exact_nll - 0.01  # it is an upper bound on the NLL (up to MC error)
    assert tight["elbo"] == -(tight["distortion"] + tight["rate"])


def test_streaming_logmeanexp_equals_one_shot():
    log_w = 50 * torch.randn(301, 7, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    acc = LogMeanExpAccumulator()
    for chunk in log_w.split(13):
        acc.update(chunk)
    torch.testing.assert_close(acc.value(), logmeanexp(log_w), rtol=0, atol=1e-12)


def test_chunked_evaluation_agrees_within_monte_carlo_error(monkeypatch):
    import vaezoo.evaluation as ev

    model = LinearGaussianVAE()
    x = model.b + torch.randn(10, D, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    one = evaluate_generative(model, Points(x), iwae_samples=2000, batch_size=10, seed=3)
    monkeypatch.setattr(ev, "MAX_ROWS", 70)  # forces 7-sample chunks
    many = evaluate_generative(model, Points(x), iwae_samples=2000, batch_size=10, seed=3)
    assert abs(one["nll"] - many["nll"]) < 0.02
