"""Decoder likelihoods p(x | z), chosen by name. ``decode(z)`` returns one of these distributions."""

import torch
import torch.nn.functional as F
from torch.distributions import Distribution, constraints

from .registry import Registry

LIKELIHOODS = Registry("likelihood")


@LIKELIHOODS.register("bernoulli")
class BernoulliImage(Distribution):
    """Factorized Bernoulli over D binary pixels (event shape (D,)), parameterized by logits."""

    arg_constraints = {"logits": constraints.real}
    support = constraints.independent(constraints.boolean, 1)
    #: number of logits the decoder must emit per pixel
    params_per_pixel = 1

    def __init__(self, logits):
        self.logits = logits
        super().__init__(logits.shape[:-1], logits.shape[-1:], validate_args=False)

    @staticmethod
    def check_support(x):
        """Raise a ValueError unless every pixel is 0 or 1."""
        if not torch.all((x == 0) | (x == 1)):
            bad = x[(x != 0) & (x != 1)].flatten()[:3].tolist()
            raise ValueError(
                f"the bernoulli likelihood needs binary pixels (0 or 1), got values such as {bad}; "
                "binarize the data (e.g. dataset 'static-binarized-mnist' or 'mnist-dynamic')"
            )

    @property
    def mean(self):
        return torch.sigmoid(self.logits)

    def sample(self, sample_shape=torch.Size(), generator=None):
        with torch.no_grad():
            probs = self.mean.expand(torch.Size(sample_shape) + self.logits.shape)
            return torch.bernoulli(probs, generator=generator)

    def log_prob(self, x):
        return -F.binary_cross_entropy_with_logits(self.logits, x.expand_as(self.logits), reduction="none").sum(-1)


@LIKELIHOODS.register("discretized_logistic")
class DiscretizedLogisticImage(Distribution):
    """Discretized logistic over D grey pixels with 256 levels x in {0, 1/255, ..., 1} (event shape (D,)).

    P(x) = F((x + h - mu) / s) - F((x - h - mu) / s) with F the logistic CDF and h = 1/510 half a bin;
    the edge bins are open (x = 0 takes all mass below 1/510, x = 1 all mass above 1 - 1/510), as in
    PixelCNN++ (Salimans et al. 2017), with one logistic per pixel. The decoder emits (mu, log s) per
    pixel: ``params`` (..., 2D) holds the D means then the D log-scales.
    """

    arg_constraints = {"loc": constraints.real, "log_scale": constraints.real}
    support = constraints.independent(constraints.unit_interval, 1)
    params_per_pixel = 2
    levels = 256

    def __init__(self, params):
        self.loc, self.log_scale = params.chunk(2, dim=-1)
        super().__init__(self.loc.shape[:-1], self.loc.shape[-1:], validate_args=False)

    @classmethod
    def check_support(cls, x):
        """Raise a ValueError unless every pixel is one of the 256 levels k / 255."""
        steps = x * (cls.levels - 1)
        off = (steps - steps.round()).abs() > 1e-3
        if off.any():
            raise ValueError(
                f"the discretized_logistic likelihood needs 8-bit grey pixels k/255, got values such as "
                f"{x[off].flatten()[:3].tolist()}; use a grey dataset (uint8 images / 255)"
            )

    def _edges(self):
        """Inner bin edges (k + 1/2) / 255, k = 0..254."""
        n = self.levels - 1
        return (torch.arange(n, dtype=self.loc.dtype, device=self.loc.device) + 0.5) / n

    @property
    def mean(self):
        # E[x] = (1/255) sum_k P(x > edge_k)
        inv_scale = torch.exp(-self.log_scale).unsqueeze(-1)
        return torch.sigmoid((self.loc.unsqueeze(-1) - self._edges()) * inv_scale).mean(-1)

    def sample(self, sample_shape=torch.Size(), generator=None):
        """A continuous logistic draw rounded to the nearest level and clamped (exactly the bin masses)."""
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.loc.shape
            tiny = torch.finfo(self.loc.dtype).eps
            u = torch.rand(shape, dtype=self.loc.dtype, device=self.loc.device, generator=generator)
            u = u.clamp(tiny, 1 - tiny)
            y = self.loc + self.log_scale.exp() * (torch.log(u) - torch.log1p(-u))
            n = self.levels - 1
            return (y * n).round().clamp(0, n) / n

    def log_prob(self, x):
        x, loc, log_scale = torch.broadcast_tensors(x, self.loc, self.log_scale)
        half = 0.5 / (self.levels - 1)
        inv_scale = torch.exp(-log_scale)
        upper = (x - loc + half) * inv_scale
        lower = (x - loc - half) * inv_scale
        log_cdf_upper, log_sf_lower = F.logsigmoid(upper), F.logsigmoid(-lower)
        # log(F(a) - F(b)) in the tail where it is precise: via F for x below mu, via 1 - F above it.
        # The branch torch.where discards can be log(0) (both CDFs saturated); the floor keeps its
        # gradient finite and only touches masses below 1e-38 of the bin's upper tail.
        tiny = torch.finfo(x.dtype).tiny
        below = log_cdf_upper + torch.log((-torch.expm1(F.logsigmoid(lower) - log_cdf_upper)).clamp_min(tiny))
        above = log_sf_lower + torch.log((-torch.expm1(F.logsigmoid(-upper) - log_sf_lower)).clamp_min(tiny))
        middle = torch.where(x < loc, below, above)
        terms = torch.where(x < half, log_cdf_upper, torch.where(x > 1 - half, log_sf_lower, middle))
        return terms.sum(-1)
