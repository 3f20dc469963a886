"""Priors / marginals p(z), chosen by name. Each is an nn.Module whose ``forward()`` returns the
prior distribution (event shape (latent_dim,)), so learnable priors own their parameters."""

from torch import nn

from .distributions import StandardNormal
from .registry import Registry

PRIORS = Registry("prior")


@PRIORS.register("standard_normal")
class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, config):
        super().__init__()
        self.latent_dim = config.latent_dim

    def forward(self, dtype, device):
        return StandardNormal(self.latent_dim, dtype=dtype, device=device)
