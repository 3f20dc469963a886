"""Variational bounds: the ELBO decomposition (rate, distortion) and the IWAE bound.

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) = -(D + R)                 (Fixing a Broken ELBO)
IWAE_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)],  z_i ~ q(z|x)       (Burda et al. 2016)
IWAE_k is a lower bound on log p(x) that tightens monotonically in k; with k = 5000 it is the
test NLL the zoo reports (methods.md §5).
"""

import math

import torch
from torch.distributions import kl_divergence


def rate(posterior, prior, z, log_q=None, log_weight=None):
    """Per-example KL(q || p), shape (B,): closed form when a KL is registered for the pair, else
    the Monte Carlo estimate sum_i w_i [log q(z_i) - log p(z_i)] over the posterior samples z of shape
    (k, B, K) already drawn (mixture priors and posteriors, flows). ``log_q`` (k, B) is log q(z) when
    the sampler already computed it (flows have no cheap log_prob of an arbitrary z); ``log_weight``
    (k, B) are the log weights of a weighted sample (``weighted_samples``), uniform 1/k by default."""
    try:
        return kl_divergence(posterior, prior)
    except NotImplementedError:
        log_q = posterior.log_prob(z) if log_q is None else log_q
        log_ratio = log_q - prior.log_prob(z)
        return log_ratio.mean(0) if log_weight is None else (log_weight.exp() * log_ratio).sum(0)


def sample_with_log_prob(posterior, num_samples, generator=None):
    """k = ``num_samples`` draws z ~ q (k, B, K) and log q(z) (k, B). Flows define
    ``rsample_with_log_prob`` (sample and density from one pass); other distributions rsample then
    evaluate log_prob."""
    if hasattr(posterior, "rsample_with_log_prob"):
        return posterior.rsample_with_log_prob(num_samples, generator)
    z = posterior.rsample((num_samples,), generator=generator)
    return z, posterior.log_prob(z)


def weighted_samples(posterior, num_samples, generator=None):
    """(z, log q(z), log w) with E_q[f(z)] ~= sum_i w_i f(z_i), all with leading sample axis.

    Mixtures define ``rsample_weighted`` (stratified over components: sum_m w_m E_{q_m}[f], which
    keeps the gradient of the mixture weights, methods.md §2); otherwise w_i = 1/k."""
    if hasattr(posterior, "rsample_weighted"):
        return posterior.rsample_weighted(num_samples, generator)
    z, log_q = sample_with_log_prob(posterior, num_samples, generator)
    return z, log_q, torch.full_like(log_q, -math.log(num_samples))


def logmeanexp(log_w, dim=0):
    """log (1/k) sum_i exp(log_w_i) along ``dim``, stably."""
    return torch.logsumexp(log_w, dim) - math.log(log_w.shape[dim])


class LogMeanExpAccumulator:
    """Streaming logmeanexp over chunks of importance samples (keeps memory bounded at k = 5000)."""

    def __init__(self):
        self.total, self.count = None, 0

    def update(self, log_w):
        chunk = torch.logsumexp(log_w, 0)
        self.total = chunk if self.total is None else torch.logaddexp(self.total, chunk)
        self.count += log_w.shape[0]

    def value(self):
        return self.total - math.log(self.count)
