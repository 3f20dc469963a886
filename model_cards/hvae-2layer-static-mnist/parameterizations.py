"""Posterior scale parameterizations, chosen by name (methods.md §1).

An encoder emits two raw numbers per latent dimension, (h_loc, h_scale). A parameterization turns
them into a diagonal Gaussian whose prior is N(0, I):

| name       | loc          | scale                                   | KL to N(0, 1) per dim  |
|------------|--------------|-----------------------------------------|------------------------|
| `exp`      | h_loc        | exp(h_scale / 2)  (h_scale = log-var)   | closed form            |
| `softplus` | h_loc        | softplus(h_scale) + 1e-4                 | closed form            |
| `stdplus`  | sqrt(2) h_loc| stdplus(sqrt(2) h_scale)  (Slashed Normal) | h_loc^2 + h_scale^2 |

The softplus floor (1e-4) is a design choice that keeps log-scale finite; exp and stdplus need none.
"""

import math

import torch
import torch.nn.functional as F

from .distributions import DiagonalGaussian, SlashedNormal
from .registry import Registry
from .stdplus import log_stdplus

PARAMETERIZATIONS = Registry("parameterization")
SOFTPLUS_FLOOR = 1e-4


@PARAMETERIZATIONS.register("exp")
def exp_gaussian(h_loc, h_scale):
    """Log-variance parameterization: sigma = exp(h/2)."""
    return DiagonalGaussian(h_loc, 0.5 * h_scale)


@PARAMETERIZATIONS.register("softplus")
def softplus_gaussian(h_loc, h_scale):
    """sigma = softplus(h) + floor."""
    return DiagonalGaussian(h_loc, torch.log(F.softplus(h_scale) + SOFTPLUS_FLOOR))


@PARAMETERIZATIONS.register("stdplus")
def stdplus_gaussian(h_loc, h_scale):
    """Slashed Normal: the raw outputs are the KL amplitude (a, b); KL = a^2 + b^2."""
    return SlashedNormal(h_loc, h_scale, log_stdplus(math.sqrt(2.0) * h_scale))


def gaussian_from_raw(name, h_loc, h_scale):
    """Build the posterior for parameterization ``name`` from raw encoder outputs."""
    return PARAMETERIZATIONS.get(name)(h_loc, h_scale)


def raw_scale_for(name, scale):
    """The raw scale output h with scale(h) == ``scale`` under parameterization ``name`` (raw loc 0).

    Used to initialize raw parameters at a chosen posterior scale. Every parameterization's scale is
    increasing in h, so this bisects in float64 on CPU (also inside ``from_pretrained``'s meta-device
    context) without a per-name inverse.
    """
    target = math.log(scale)
    zero = torch.zeros((), dtype=torch.float64, device="cpu")
    low, high = -60.0, 60.0

    def log_scale_at(h):
        return float(gaussian_from_raw(name, zero, zero + h).log_scale)

    if not log_scale_at(low) < target < log_scale_at(high):
        raise ValueError(f"scale={scale!r} is not reachable with parameterization {name!r}")
    for _ in range(100):
        middle = 0.5 * (low + high)
        low, high = (middle, high) if log_scale_at(middle) < target else (low, middle)
    return 0.5 * (low + high)
