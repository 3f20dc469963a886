"""stdplus against its defining equation, the Lambert W closed form, gradcheck and extreme inputs."""

import math

import numpy as np
import pytest
import torch
from scipy.special import lambertw

import vaezoo
from vaezoo import log_stdplus, stdplus

GRID = torch.cat([torch.linspace(-30, 30, 601), torch.linspace(-0.05, 0.05, 101)]).double()


def test_public_api():
    assert vaezoo.stdplus is stdplus and vaezoo.log_stdplus is log_stdplus


def test_defining_equation_and_branches():
    y = stdplus(GRID)
    x2 = GRID**2
    log_y = log_stdplus(GRID)
    # y^2 - 2 log y - 1 = x^2, written with log y so it stays exact where y underflows
    residual = torch.exp(2 * log_y) - 2 * log_y - 1 - x2
    assert residual.abs().max() < 1e-9 * (1 + x2).max()
    assert torch.all(y[GRID < 0] < 1) and torch.all(y[GRID > 0] > 1)
    assert stdplus(torch.zeros(1, dtype=torch.float64)).item() == 1.0


def test_matches_lambert_w_closed_form():
    x = np.concatenate([np.linspace(-5, -0.1, 50), np.linspace(0.1, 5, 50)])
    branch = np.where(x < 0, 0, -1)
    expected = np.sqrt(-np.array([lambertw(-np.exp(-1 - v * v), int(k)).real for v, k in zip(x, branch)]))
    got = stdplus(torch.tensor(x)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-12)


def test_pade_region_is_continuous_with_newton_region():
    eps = 1e-9
    for edge in (0.04, -0.04):
        inside, outside = torch.tensor([edge * (1 - eps)]).double(), torch.tensor([edge * (1 + eps)]).double()
        assert abs(log_stdplus(inside) - log_stdplus(outside)).item() < 1e-10


def test_gradcheck():
    x = torch.cat([GRID[::7], torch.tensor([0.0, 1e-6, -1e-6, 0.039, -0.041])]).double().requires_grad_()
    assert torch.autograd.gradcheck(log_stdplus, (x,), eps=1e-7, atol=1e-7)


def test_gradient_limit_at_zero():
    x = torch.zeros(1, dtype=torch.float64, requires_grad=True)
    log_stdplus(x).backward()
    assert x.grad.item() == pytest.approx(1 / math.sqrt(2), abs=1e-12)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_extremes_are_finite(dtype):
    x = torch.tensor([-1e4, -1e3, -13.5, -1.0, 0.0, 1.0, 13.5, 1e3, 1e4], dtype=dtype, requires_grad=True)
    log_y = log_stdplus(x)
    log_y.sum().backward()
    assert torch.isfinite(log_y).all() and torch.isfinite(x.grad).all()
    # asymptotics: log y ~ -(x^2 + 1)/2 for x -> -inf, y ~ |x| for x -> +inf
    assert log_y[0].item() == pytest.approx(-(1e8 + 1) / 2, rel=1e-6)
    assert torch.exp(log_y[-1]).item() == pytest.approx(1e4, rel=1e-3)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_half_precision_computes_in_float32(dtype):
    x = torch.tensor([-300.0, -2.0, -0.01, 0.0, 0.01, 2.0, 300.0])
    x_half = x.to(dtype).requires_grad_()
    log_y = log_stdplus(x_half)
    log_y.sum().backward()
    assert log_y.dtype == dtype and torch.isfinite(log_y).all() and torch.isfinite(x_half.grad).all()
    reference = log_stdplus(x_half.detach().float())
    torch.testing.assert_close(log_y.float(), reference.to(dtype).float())


def test_under_autocast():
    x = torch.linspace(-100, 100, 50, requires_grad=True)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = log_stdplus(torch.nn.functional.linear(x[None], torch.eye(50)))
    out.float().sum().backward()
    assert torch.isfinite(out.float()).all() and torch.isfinite(x.grad).all()


def test_rejects_integer_input():
    with pytest.raises(TypeError, match="floating-point"):
        log_stdplus(torch.arange(3))
