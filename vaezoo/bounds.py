"""Variational bounds: the ELBO decomposition (rate, distortion) and the IWAE bound.

ELBO(x) = E_q[log p(x|z)] - KL(q(z|x) || p(z)) = -(D + R)                 (Fixing a Broken ELBO)
IWAE_k(x) = E[log (1/k) sum_i p(x, z_i) / q(z_i | x)],  z_i ~ q(z|x)       (Burda et al. 2016)
IWAE_k is a lower bound on log p(x) that tightens monotonically in k; with k = 5000 it is the
test NLL the zoo reports (methods.md §5).
"""

import math

import torch
from torch.distributions import kl_divergence


def rate(posterior, prior, z):
    """Per-example KL(q || p), shape (B,): closed form when a KL is registered for the pair, else
    the Monte Carlo estimate mean_i [log q(z_i) - log p(z_i)] over the posterior samples z of shape
    (k, B, K) already drawn (mixture priors and posteriors, flows)."""
    try:
        return kl_divergence(posterior, prior)
    except NotImplementedError:
        return (posterior.log_prob(z) - prior.log_prob(z)).mean(0)


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
