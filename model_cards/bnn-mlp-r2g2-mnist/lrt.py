"""The local reparameterization trick (LRT) for a mean-field Gaussian linear layer.

Kingma, Salimans & Welling 2015, "Variational Dropout and the Local Reparameterization Trick".
With W_ij ~ N(mu_ij, sigma_ij^2) independent, each example's pre-activation is Gaussian:

    a_bi = x_b . mu_i + b_i + s_bi xi_bi,   s_bi = sqrt(sum_j x_bj^2 sigma_ij^2),   xi ~ N(0, 1),

so it is sampled directly, per example, instead of sampling the weights. This is the same
distribution as giving every example its own weight draw, so the expected loss (the ELBO's data
term) is unchanged. It is exact only where the pre-activations of one example are independent
given the input: linear layers, not convolutions (whose output positions share the kernel).

It is also the R2-G2 estimator of that layer (Lam et al. 2025; see ``vaezoo/r2g2.py``).
"""

import torch
import torch.nn.functional as F


def lrt_linear(x, weight_loc, weight_scale, bias, noise):
    """LRT pre-activations for inputs x (B, in) given per-output noise xi of shape (B, out)."""
    variance = F.linear(x * x, weight_scale * weight_scale)
    # sqrt has an infinite derivative at 0 (an all-zero input row); the pre-activation noise and its
    # gradient are exactly 0 there, which the double where() keeps finite.
    positive = variance > 0
    std = torch.where(positive, torch.sqrt(torch.where(positive, variance, torch.ones_like(variance))), 0.0)
    return F.linear(x, weight_loc, bias) + std * noise
