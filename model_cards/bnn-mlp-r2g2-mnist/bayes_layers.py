"""Bayesian layers with mean-field Gaussian weights: BayesLinear and BayesConv2d.

Weight posterior q(W) = prod N(mu, sigma^2), prior p(W) = prod N(0, s0^2) (``prior_scale`` s0).
The layer stores raw parameters in prior units: the standardized weight W / s0 has the posterior
``gaussian_from_raw(parameterization, raw_loc, raw_scale)`` (exp / softplus / stdplus, see
``vaezoo/parameterizations.py``) against the prior N(0, 1). Because KL is invariant under the common
rescaling,

    KL(q(W) || N(0, s0^2)) = KL(q(W / s0) || N(0, 1)),

which is the parameterization's closed form (exactly a^2 + b^2 for the Slashed Normal). Blundell et
al. 2015 ("Weight Uncertainty in Neural Networks"). Biases are deterministic parameters.

How a weight sample meets the input (RT, LRT, Flipout, R2-G2, score function) is the ``estimator``
constructor argument: a name from ``vaezoo.estimators.ESTIMATORS`` or an estimator module.
"""

import math

import torch
from torch import nn

from .distributions import DiagonalGaussian, StandardNormal, kl_per_dim
from .estimators import make_estimator
from .parameterizations import PARAMETERIZATIONS, gaussian_from_raw, raw_scale_for
from .registry import check_choice


class BayesianLayer(nn.Module):
    """Shared parameter handling of the Bayesian layers (raw loc / raw scale / deterministic bias).

    Args:
        weight_shape: shape of the weight tensor; ``fan_in`` its number of inputs per output.
        parameterization: ``exp`` | ``softplus`` | ``stdplus``.
        prior_scale: s0 of the N(0, s0^2) weight prior.
        initial_scale: posterior standard deviation of every weight at initialization.
        estimator, place, config: see ``vaezoo.estimators.make_estimator``.
    Initial posterior means are N(0, 2 / fan_in) (He initialization, the layers feed ReLUs); the
    values are applied by the owning model's ``_init_weights`` (``initialize``), as transformers
    builds models on the meta device.
    """

    def __init__(
        self, weight_shape, fan_in, bias, parameterization, prior_scale, initial_scale, estimator, place, config
    ):
        super().__init__()
        check_choice("parameterization", parameterization, PARAMETERIZATIONS.names())
        if not prior_scale > 0 or not initial_scale > 0:
            raise ValueError(f"prior_scale={prior_scale!r} and initial_scale={initial_scale!r} must be > 0")
        self.parameterization = parameterization
        self.prior_scale = float(prior_scale)
        self.weight_raw_loc = nn.Parameter(torch.empty(weight_shape))
        self.weight_raw_scale = nn.Parameter(torch.empty(weight_shape))
        self.bias = nn.Parameter(torch.empty(weight_shape[0])) if bias else None
        zero = torch.zeros((), dtype=torch.float64, device="cpu")
        # loc is linear in the raw loc (gain 1, or sqrt 2 for stdplus).
        gain = float(gaussian_from_raw(parameterization, zero + 1, zero).loc)
        self.initial_raw_loc_std = math.sqrt(2.0 / fan_in) / (self.prior_scale * gain)
        self.initial_raw_scale = raw_scale_for(parameterization, initial_scale / self.prior_scale)
        self.place = place  # where the estimator is used: "linear" or "conv2d"
        self.estimator = make_estimator(estimator, place, config)

    def initialize(self, init):
        """Set every parameter with ``transformers.initialization`` (skips tensors already loaded)."""
        init.normal_(self.weight_raw_loc, std=self.initial_raw_loc_std)
        init.constant_(self.weight_raw_scale, self.initial_raw_scale)
        if self.bias is not None:
            init.zeros_(self.bias)

    def standardized_posterior(self):
        """q(W / s0), the posterior in prior units (its KL to N(0, 1) is the layer's KL)."""
        return gaussian_from_raw(self.parameterization, self.weight_raw_loc, self.weight_raw_scale)

    def weight_distribution(self):
        """q(W) as a DiagonalGaussian of the weight's shape."""
        q = self.standardized_posterior()
        return DiagonalGaussian(self.prior_scale * q.loc, q.log_scale + math.log(self.prior_scale))

    def kl(self):
        """KL(q(W) || p(W)) in nats, summed over the weights (closed form)."""
        q = self.standardized_posterior()
        prior = StandardNormal(q.loc.shape[-1], dtype=q.loc.dtype, device=q.loc.device)
        return kl_per_dim(q, prior).sum()


class BayesLinear(BayesianLayer):
    """y = W x + b with W ~ q(W) mean-field Gaussian (out_features, in_features)."""

    def __init__(
        self,
        in_features,
        out_features,
        bias=True,
        estimator="rt",
        parameterization="softplus",
        prior_scale=1.0,
        initial_scale=1e-3,
        config=None,
    ):
        super().__init__(
            (out_features, in_features), in_features, bias, parameterization, prior_scale, initial_scale,
            estimator, "linear", config,
        )
        self.in_features, self.out_features = in_features, out_features

    def forward(self, x, generator=None):
        return self.estimator.linear(x, self.weight_distribution(), self.bias, generator)

    def extra_repr(self):
        return f"{self.in_features}, {self.out_features}, parameterization={self.parameterization}"


class BayesConv2d(BayesianLayer):
    """2-D convolution (square kernel, dilation 1, one group) with a mean-field Gaussian kernel."""

    def __init__(
        self,
        in_channels,
        out_channels,
        kernel_size,
        stride=1,
        padding=0,
        bias=True,
        estimator="rt",
        parameterization="softplus",
        prior_scale=1.0,
        initial_scale=1e-3,
        config=None,
    ):
        shape = (out_channels, in_channels, kernel_size, kernel_size)
        super().__init__(
            shape, in_channels * kernel_size * kernel_size, bias, parameterization, prior_scale, initial_scale,
            estimator, "conv2d", config,
        )
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x, generator=None):
        return self.estimator.conv2d(x, self.weight_distribution(), self.bias, self.stride, self.padding, generator)

    def extra_repr(self):
        return (
            f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
            f"padding={self.padding}, parameterization={self.parameterization}"
        )
