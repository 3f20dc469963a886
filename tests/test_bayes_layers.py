"""Bayesian layers: KL in closed form, initialization, estimator argument, and BayesConv2d with
R2-G2 against an explicit dense construction of the per-(example, channel) maps A_bc."""

import math

import pytest
import torch
import torch.nn.functional as F
from torch.distributions import Normal, kl_divergence
from transformers import initialization as init

from vaezoo.bayes_layers import BayesConv2d, BayesLinear
from vaezoo.estimators import ESTIMATORS, make_estimator

D = torch.float64


def _layer(cls, *args, **kwargs):
    torch.manual_seed(0)
    layer = cls(*args, **kwargs).double()
    layer.initialize(init)
    return layer


@pytest.mark.parametrize("parameterization", ["exp", "softplus", "stdplus"])
@pytest.mark.parametrize("prior_scale", [1.0, 0.3])
def test_kl_is_the_closed_form_gaussian_kl_and_initial_scale_is_honoured(parameterization, prior_scale):
    layer = _layer(BayesLinear, 4, 3, parameterization=parameterization, prior_scale=prior_scale, initial_scale=0.05)
    q = layer.weight_distribution()
    torch.testing.assert_close(q.scale, torch.full_like(q.scale, 0.05))
    with torch.no_grad():  # move away from the initial point so every term of the KL matters
        layer.weight_raw_scale.add_(0.3 * torch.randn_like(layer.weight_raw_scale))
    q = layer.weight_distribution()
    want = kl_divergence(Normal(q.loc, q.scale), Normal(torch.zeros_like(q.loc), prior_scale)).sum()
    torch.testing.assert_close(layer.kl(), want, rtol=1e-10, atol=1e-10)


def test_stdplus_layer_kl_is_the_squared_amplitude():
    layer = _layer(BayesLinear, 4, 3, parameterization="stdplus", prior_scale=0.5)
    want = layer.weight_raw_loc.square().sum() + layer.weight_raw_scale.square().sum()
    torch.testing.assert_close(layer.kl(), want)


def test_initial_means_follow_he_initialization():
    layer = _layer(BayesLinear, 400, 300, parameterization="stdplus", prior_scale=0.5)
    std = layer.weight_distribution().loc.std().item()
    assert abs(std - math.sqrt(2 / 400)) < 0.02 * math.sqrt(2 / 400)


def test_estimator_is_a_constructor_argument():
    assert type(BayesLinear(3, 2, estimator="flipout").estimator).__name__ == "Flipout"
    instance = make_estimator("r2g2", "conv2d")
    assert BayesConv2d(1, 2, 3, estimator=instance).estimator is instance
    with pytest.raises(ValueError, match="estimator='lrt' is not valid; expected one of"):
        BayesConv2d(1, 2, 3, estimator="lrt")
    with pytest.raises(ValueError, match="parameterization"):
        BayesLinear(3, 2, parameterization="sigmoid")


def _dense_patch_maps(x, kernel_shape, padding):
    """P_b^T (B, L, n) built column by column from convolutions with one-hot kernels (no unfold)."""
    n = math.prod(kernel_shape)
    one_hot = torch.eye(n, dtype=x.dtype).reshape(n, *kernel_shape)
    return F.conv2d(x, one_hot, None, 1, padding).flatten(2).transpose(1, 2)


@pytest.mark.parametrize("solver", ["direct", "cg"])
def test_bayes_conv2d_r2g2_matches_a_dense_reference(solver):
    g = torch.Generator().manual_seed(0)
    estimator = ESTIMATORS.get("r2g2")(solver=solver, tolerance=1e-13)
    layer = _layer(BayesConv2d, 2, 3, 3, padding=1, estimator=estimator, initial_scale=0.2)
    with torch.no_grad():
        layer.weight_raw_scale.add_(0.5 * torch.randn(layer.weight_raw_scale.shape, dtype=D, generator=g))
    x = torch.rand(2, 2, 3, 3, dtype=D, generator=g).requires_grad_()  # L = 9 positions < n = 18
    upstream = torch.randn(2, 3, 3, 3, dtype=D, generator=g)
    params = (x, layer.weight_raw_loc, layer.weight_raw_scale, layer.bias)

    out = layer(x, torch.Generator().manual_seed(7))
    assert layer.estimator.last_solve.systems == 6 and layer.estimator.last_solve.converged
    got = torch.autograd.grad((out * upstream).sum(), params)

    # Reference: the same noise (one randn of shape (B, C_out, n)), dense A_bc, eps* = pinv(A) z.
    noise = torch.randn((2, 3, 18), dtype=D, generator=torch.Generator().manual_seed(7))
    weight = layer.weight_distribution()
    maps = _dense_patch_maps(x, (2, 3, 3), 1)[:, None] * weight.scale.reshape(1, 3, 1, 18)  # (B, C, L, n)
    z = (maps @ noise.unsqueeze(-1)).squeeze(-1)
    eps_star = (torch.linalg.pinv(maps.detach()) @ z.detach().unsqueeze(-1)).squeeze(-1)
    mean = F.conv2d(x, weight.loc, layer.bias, 1, 1)
    value = mean + z.reshape(mean.shape)
    surrogate = mean + (maps @ eps_star.unsqueeze(-1)).reshape(mean.shape)
    reference = value.detach() + surrogate - surrogate.detach()
    want = torch.autograd.grad((reference * upstream).sum(), params, retain_graph=True)

    torch.testing.assert_close(out, reference, rtol=1e-12, atol=1e-12)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)
    # and the Rao-Blackwellised scale gradient differs from the plain per-example RT one
    rt = torch.autograd.grad((value * upstream).sum(), layer.weight_raw_scale)[0]
    assert not torch.allclose(got[2], rt, rtol=1e-3)
