"""Priors / marginals p(z), chosen by name. Each is an nn.Module whose ``forward(dtype, device,
encoder=None)`` returns the prior distribution (event shape (latent_dim,)), so learnable priors own
their parameters; ``encoder`` (the model's posterior module) is used by priors defined through it
(VampPrior) and ignored by the others."""

import torch
from torch import nn

from .distributions import DiagonalGaussian, StandardNormal
from .mixture import Mixture
from .registry import Registry
from .vampprior import VampPrior

PRIORS = Registry("prior")


@PRIORS.register("standard_normal")
class StandardNormalPrior(nn.Module):
    """p(z) = N(0, I)."""

    def __init__(self, config):
        super().__init__()
        self.latent_dim = config.latent_dim

    def forward(self, dtype, device, encoder=None):
        return StandardNormal(self.latent_dim, dtype=dtype, device=device)


@PRIORS.register("mog")
class MixtureOfGaussiansPrior(nn.Module):
    """Learnable p(z) = sum_c softmax(logits)_c N(mu_c, diag(sigma_c^2)) with ``mog_components``
    components (the "MoG prior" baseline of Tomczak & Welling 2018); means start at N(0, 1) draws,
    scales at 1, weights uniform (set in the model's ``_init_weights``)."""

    def __init__(self, config):
        super().__init__()
        shape = (config.mog_components, config.latent_dim)
        self.loc = nn.Parameter(torch.empty(shape))
        self.log_scale = nn.Parameter(torch.empty(shape))
        self.logits = nn.Parameter(torch.empty(config.mog_components))

    def forward(self, dtype, device, encoder=None):
        return Mixture(DiagonalGaussian(self.loc, self.log_scale), self.logits)


PRIORS.register("vampprior")(VampPrior)
