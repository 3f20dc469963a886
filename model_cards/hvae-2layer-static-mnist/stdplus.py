"""stdplus: the scale map of the Slashed Normal parameterization.

Slashed Normal (methods.md §1): a Gaussian posterior N(mu0 + sqrt(2) s0 a, (s0 stdplus(sqrt(2) b))^2)
has KL to the prior N(mu0, s0^2) equal to exactly a^2 + b^2 ("KL amplitude").

``stdplus(x)`` is the positive root y of  y^2 - 2 log y - 1 = x^2  with y < 1 for x < 0 and
y > 1 for x > 0 (y(0) = 1).  Closed form y^2 = -W(-exp(-1 - x^2)) (Lambert W, branch W0 for x < 0,
W_-1 for x > 0) is ill-conditioned at x = 0, so we evaluate it stably:

* |x| < 0.04: Pade approximant of log y (error ~3e-13)
      log y ~= (x/sqrt2 + x^2/4 + x^3/(90 sqrt2)) / (1 + 5x/(6 sqrt2) + 17x^2/180)
* otherwise Newton on r = log y^2 solving e^r - r - 1 = x^2 from r0 = 2 log((x + sqrt(x^2+4))/2),
  with numerator and denominator scaled by e^{-max(r, 0)} so nothing overflows.

We return log y (``log_stdplus``) because y underflows in float32 for x below about -13.
Gradient: d log y / dx = x / expm1(2 log y), with the Pade derivative near 0 (limit 1/sqrt 2).
Half-precision inputs are evaluated in float32 and cast back.
"""

import math

import torch
from torch.autograd.function import once_differentiable

_PADE_RADIUS = 0.04
_SQRT2 = math.sqrt(2.0)


def _pade(x):
    """Pade value P/Q and derivative of log y near x = 0."""
    p = x / _SQRT2 + x * x / 4 + x**3 / (90 * _SQRT2)
    q = 1 + 5 * x / (6 * _SQRT2) + 17 * x * x / 180
    dp = 1 / _SQRT2 + x / 2 + x * x / (30 * _SQRT2)
    dq = 5 / (6 * _SQRT2) + 17 * x / 90
    return p / q, (dp * q - p * dq) / (q * q)


def _newton_log_y(x, iterations):
    x2 = x * x
    root = torch.sqrt(x2 + 4)
    # x + sqrt(x^2+4) loses all digits for x << 0; 4/(sqrt(x^2+4) - x) is the same number, exact there.
    inner = torch.where(x >= 0, x + root, 4 / (root - x))
    r = 2 * torch.log(inner / 2)
    for _ in range(iterations):
        scale = torch.exp(-torch.clamp(r, min=0))
        f = torch.exp(r) * scale - (r + 1 + x2) * scale
        df = torch.exp(r) * scale - scale
        r = r - f / df
    return r / 2


def _compute_dtype(x):
    return torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype


class _LogStdplus(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x):
        xc = x.to(_compute_dtype(x))
        near = xc.abs() < _PADE_RADIUS
        iterations = 5 if xc.dtype == torch.float64 else 4
        # The unused branch of each where() sees a harmless input, so no NaN leaks into gradients.
        far_x = torch.where(near, torch.ones_like(xc), xc)
        near_x = torch.where(near, xc, torch.zeros_like(xc))
        pade_value, _ = _pade(near_x)
        log_y = torch.where(near, pade_value, _newton_log_y(far_x, iterations))
        ctx.save_for_backward(xc, log_y)
        return log_y.to(x.dtype)

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, log_y = ctx.saved_tensors
        near = x.abs() < _PADE_RADIUS
        _, pade_grad = _pade(torch.where(near, x, torch.zeros_like(x)))
        safe_x = torch.where(near, torch.ones_like(x), x)
        safe_log_y = torch.where(near, torch.ones_like(log_y), log_y)
        far_grad = safe_x / torch.expm1(2 * safe_log_y)
        grad = torch.where(near, pade_grad, far_grad)
        return (grad_out.to(grad.dtype) * grad).to(grad_out.dtype)


def log_stdplus(x: torch.Tensor) -> torch.Tensor:
    """log stdplus(x): the log-scale of the Slashed Normal (differentiable, stable for all x)."""
    if not torch.is_tensor(x) or not torch.is_floating_point(x):
        raise TypeError(f"log_stdplus expects a floating-point tensor, got {type(x).__name__}")
    return _LogStdplus.apply(x)


def stdplus(x: torch.Tensor) -> torch.Tensor:
    """stdplus(x) = y > 0 with y^2 - 2 log y - 1 = x^2 and sign(log y) = sign(x)."""
    return torch.exp(log_stdplus(x))
