"""The three scale parameterizations: distributions and KLs against torch.distributions."""

import math

import pytest
import torch
from torch.distributions import Normal, kl_divergence

from vaezoo.distributions import DiagonalGaussian, SlashedNormal, StandardNormal, kl_per_dim
from vaezoo.parameterizations import PARAMETERIZATIONS, gaussian_from_raw


def raw(seed=0, shape=(64, 8)):
    g = torch.Generator().manual_seed(seed)
    return 2 * torch.randn(shape, generator=g, dtype=torch.float64), 2 * torch.randn(shape, generator=g, dtype=torch.float64)


@pytest.mark.parametrize("name", ["exp", "softplus", "stdplus"])
def test_kl_matches_torch_distributions(name):
    h_loc, h_scale = raw()
    q = gaussian_from_raw(name, h_loc, h_scale)
    reference = kl_divergence(Normal(q.loc, q.scale), Normal(0.0, 1.0)).sum(-1)
    torch.testing.assert_close(kl_divergence(q, StandardNormal(8, dtype=torch.float64)), reference)


@pytest.mark.parametrize("name", ["exp", "softplus", "stdplus"])
def test_log_prob_and_rsample_match_normal(name):
    h_loc, h_scale = raw(1)
    q = gaussian_from_raw(name, h_loc, h_scale)
    z = q.rsample((3,), generator=torch.Generator().manual_seed(0))
    assert z.shape == (3, 64, 8)
    torch.testing.assert_close(q.log_prob(z), Normal(q.loc, q.scale).log_prob(z).sum(-1))
    torch.testing.assert_close(q.entropy(), Normal(q.loc, q.scale).entropy().sum(-1))


def test_stdplus_kl_is_squared_amplitude():
    a, b = raw(2)
    q = gaussian_from_raw("stdplus", a, b)
    assert isinstance(q, SlashedNormal)
    torch.testing.assert_close(kl_per_dim(q, StandardNormal(8, dtype=torch.float64)), a**2 + b**2)
    # the generic closed form, evaluated from (loc, scale), agrees with the amplitude identity
    generic = DiagonalGaussian(q.loc, q.log_scale)
    torch.testing.assert_close(kl_divergence(generic, StandardNormal(8, dtype=torch.float64)), (a**2 + b**2).sum(-1))


def test_stdplus_mean_and_scale_map():
    a, b = raw(3)
    q = gaussian_from_raw("stdplus", a, b)
    torch.testing.assert_close(q.loc, math.sqrt(2) * a)
    assert torch.all((q.scale < 1) == (b < 0))


def test_kl_between_two_gaussians():
    q = DiagonalGaussian(torch.tensor([[0.3, -1.0]]), torch.tensor([[0.2, -0.5]]))
    p = DiagonalGaussian(torch.tensor([1.0, 2.0]), torch.tensor([0.1, 0.4]))
    expected = kl_divergence(Normal(q.loc, q.scale), Normal(p.loc, p.scale)).sum(-1)
    torch.testing.assert_close(kl_divergence(q, p), expected)


def test_unknown_parameterization_names_allowed_values():
    with pytest.raises(ValueError, match=r"unknown parameterization 'sigmoid'.*'exp'.*'softplus'.*'stdplus'"):
        PARAMETERIZATIONS.get("sigmoid")
