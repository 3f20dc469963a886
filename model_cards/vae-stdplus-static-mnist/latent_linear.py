"""The decoder's latent-to-hidden linear layer h = W z + b, with the gradient estimator for the
Gaussian latent z chosen by name (``decoder_estimator``; methods.md §3).

This is the one place where R2-G2 was applied in hierarchical VAE decoders: z = loc + scale * eps
is drawn by the caller from ``distribution``; an estimator decides what flows backward through
W z (only that path; other uses of z keep their own gradient). Estimators here follow the
``latent_linear(distribution, sample, weight, bias, generator)`` signature of
``vaezoo.estimators``; this table holds the reparameterization (RT) path, which needs none of the
extra arguments.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .registry import Registry

LATENT_LINEAR_ESTIMATORS = Registry("decoder_estimator")


@LATENT_LINEAR_ESTIMATORS.register("rt")
def reparameterization_latent_linear(distribution, sample, weight, bias, generator=None):
    """RT: the gradient flows through z = loc + scale * eps as drawn."""
    return F.linear(sample, weight, bias)


class LatentLinear(nn.Module):
    """W z + b for a latent z drawn from ``distribution`` (a diagonal Gaussian), or for a given z
    (``distribution=None``: nothing was sampled here, so no estimator applies)."""

    def __init__(self, in_features, out_features, estimator):
        super().__init__()
        self.in_features, self.out_features, self.estimator = in_features, out_features, estimator
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features))

    def forward(self, sample, distribution=None, generator=None):
        if distribution is None:
            return F.linear(sample, self.weight, self.bias)
        return LATENT_LINEAR_ESTIMATORS.get(self.estimator)(distribution, sample, self.weight, self.bias, generator)
