"""VampPrior: Tomczak & Welling, "VAE with a VampPrior", AISTATS 2018.

p(z) = (1/P) sum_p q(z | u_p): the aggregate posterior of P learnable pseudo-inputs u_p run through
the model's own encoder. As in the paper the pseudo-inputs are hardtanh(0, 1) of free parameters
initialized from N(0.05, 0.01^2), so they live in pixel space.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .mixture import Mixture

PSEUDO_INPUT_INIT_MEAN, PSEUDO_INPUT_INIT_STD = 0.05, 0.01


class VampPrior(nn.Module):
    """Prior module: ``forward(dtype, device, encoder)`` returns the mixture of encoder posteriors at
    the ``vampprior_pseudo_inputs`` pseudo-inputs (``encoder`` maps (P, D) inputs to q(z|u))."""

    def __init__(self, config):
        super().__init__()
        self.pseudo_inputs = nn.Parameter(torch.empty(config.vampprior_pseudo_inputs, config.num_pixels))

    def forward(self, dtype, device, encoder=None):
        if encoder is None:
            raise ValueError("the vampprior is defined through the encoder; pass encoder= (the model's posterior module)")
        u = F.hardtanh(self.pseudo_inputs, 0.0, 1.0)
        posteriors = encoder(u)
        return Mixture(posteriors, torch.zeros(u.shape[0], dtype=dtype, device=device))
