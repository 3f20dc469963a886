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
