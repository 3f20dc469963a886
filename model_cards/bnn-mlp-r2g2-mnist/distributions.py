"""Diagonal Gaussian distributions in the torch.distributions style (rsample / log_prob / KL).

Scales are stored as log-scales: the Slashed Normal scale s0*stdplus(x) underflows in float32 for
x below about -13 while its log stays finite. ``event_shape`` is the latent size, so ``log_prob``
returns one number per example, and ``kl_divergence`` likewise (sum over latent dimensions);
``kl_per_dim`` keeps the dimensions for per-dimension rate reports.
"""

import math

import torch
from torch.distributions import Distribution, constraints, register_kl

_LOG_2PI = math.log(2 * math.pi)


class DiagonalGaussian(Distribution):
    """N(loc, diag(exp(log_scale))^2) with event shape (K,)."""

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, loc, log_scale):
        self.loc, self.log_scale = torch.broadcast_tensors(loc, log_scale)
        super().__init__(self.loc.shape[:-1], self.loc.shape[-1:], validate_args=False)

    @property
    def scale(self):
        return self.log_scale.exp()

    @property
    def mean(self):
        return self.loc

    @property
    def variance(self):
        return (2 * self.log_scale).exp()

    def rsample(self, sample_shape=torch.Size(), generator=None):
        shape = torch.Size(sample_shape) + self.loc.shape
        eps = torch.randn(shape, dtype=self.loc.dtype, device=self.loc.device, generator=generator)
        return self.loc + self.scale * eps

    def sample(self, sample_shape=torch.Size(), generator=None):
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def log_prob(self, value):
        z = (value - self.loc) * torch.exp(-self.log_scale)
        return (-0.5 * z * z - self.log_scale - 0.5 * _LOG_2PI).sum(-1)

    def entropy(self):
        return (self.log_scale + 0.5 * (1 + _LOG_2PI)).sum(-1)

    def expand_dims(self, n):
        """The same distribution with a leading sample axis of size n (for importance sampling)."""
        return DiagonalGaussian(self.loc.expand(n, *self.loc.shape), self.log_scale.expand(n, *self.loc.shape))


class StandardNormal(DiagonalGaussian):
    """The N(0, I) prior over K dimensions (no batch shape; broadcasts against any batch)."""

    def __init__(self, dim, dtype=torch.float32, device=None):
        zeros = torch.zeros(dim, dtype=dtype, device=device)
        super().__init__(zeros, zeros)


class SlashedNormal(DiagonalGaussian):
    """Slashed Normal posterior with its KL amplitude (a, b) to the standard normal prior.

    loc = sqrt(2) a, scale = stdplus(sqrt(2) b), so KL(q || N(0, I)) = sum_k a_k^2 + b_k^2 exactly
    (Slashed Normal paper; methods.md §1). The amplitude is kept so the KL is read off, not recomputed.
    """

    def __init__(self, amplitude_loc, amplitude_scale, log_scale):
        self.amplitude_loc, self.amplitude_scale = amplitude_loc, amplitude_scale
        super().__init__(math.sqrt(2.0) * amplitude_loc, log_scale)


def kl_per_dim(q: DiagonalGaussian, p: DiagonalGaussian) -> torch.Tensor:
    """Per-dimension closed-form KL(q || p) between diagonal Gaussians."""
    if isinstance(q, SlashedNormal) and isinstance(p, StandardNormal):
        return q.amplitude_loc.square() + q.amplitude_scale.square()
    log_ratio = q.log_scale - p.log_scale
    mean_term = (q.loc - p.loc) * torch.exp(-p.log_scale)
    return 0.5 * (torch.exp(2 * log_ratio) + mean_term.square() - 1) - log_ratio


@register_kl(DiagonalGaussian, DiagonalGaussian)
def _kl_diagonal_gaussian(q, p):
    return kl_per_dim(q, p).sum(-1)
