r"""R2-G2: the Rao-Blackwellised reparameterisation gradient.

Lam, Bui, Deligiannidis & Teh 2025, "Rao-Blackwellised Reparameterisation Gradients"
(arXiv:2506.07687, NeurIPS 2025); methods.md §3.

Setting: a Gaussian v = mu + sigma (.) eps, eps ~ N(0, I_n), meets a linear map W, giving the
pre-activation  a = W v = W mu + z,  z = A eps,  A = W diag(sigma)  (m x n). Everything downstream
of the map sees eps only through z, and the reparameterisation (RT) gradient is linear in eps
given z, so replacing eps by its conditional mean

    eps* = E[eps | z] = A^T (A A^T)^+ z        (the minimum-norm solution of A e = z)

gives an estimator with the same mean and no more variance (Rao-Blackwell). Algorithm:

1. z = A eps  (the forward value is exactly the RT forward);
2. beta = CG(A A^T, z)  (matrix-vector products only; at most rank(A) steps in exact arithmetic);
3. eps* = A^T beta;
4. z* = A eps*  with beta, eps* held constant;
5. output = (W mu + z) in value, with the gradient of W mu + z*:
   grad_sigma = eps* (.) W^T g,  grad_mu = W^T g,  grad_W = g (mu + sigma (.) eps*)^T.

Closed forms, used instead of the solve where they exist:

* Mean-field linear layer (Gaussian weights W_ij, input x, each example conditioned on its own
  pre-activations): A for output unit i of example b is the row x_b (.) sigma_i, so
  eps*_bij = sigma_ij x_bj z_bi / s_bi^2 with s_bi^2 = sum_j x_bj^2 sigma_ij^2: R2-G2 is exactly
  the local reparameterization trick (``vaezoo/lrt.py``), at LRT's cost.
* A with full column rank (n <= m and rank n: e.g. a 50-dim latent feeding 200 units):
  A^T (A A^T)^+ A = I, so eps* = eps and R2-G2 is RT; this is detected and the solve skipped.
* A small dense A (a Gaussian latent feeding a linear layer): eps* = pinv(A) z, batched.

Convolutions have no closed form: one output channel c of example b has pre-activations over the
H'W' output positions that share the k*k*C_in kernel entries, A_bc = P_b^T diag(sigma_c) with P_b
the (k*k*C_in) x (H'W') patch matrix. Where H'W' < k*k*C_in (upper layers) A has more columns than
rows and the reduction is real; eps* comes from batched conjugate gradient over all (b, c) at once,
with a relative-residual tolerance and an iteration cap taken from the model config. A truncated
solve biases the gradient, so a solve that stops at the cap is reported (``SolveInfo``) and warned
about by the estimator rather than ignored.

Design choice (documented on the cards): R2-G2 in a Bayesian layer conditions each example on its
own pre-activations, i.e. it Rao-Blackwellises the RT with one weight draw per example. That RT has
the same expected loss as the one-draw-per-batch RT (``rt``) and, in a linear layer, the same
cost as LRT thanks to the closed form.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .lrt import lrt_linear


@dataclass
class SolveInfo:
    """Diagnostics of one batched solve: systems solved, CG iterations, worst relative residual."""

    systems: int = 0
    iterations: int = 0
    max_relative_residual: float = 0.0
    converged: bool = True


def swap_gradient(value, surrogate):
    """``value`` in the forward pass, the gradient of ``surrogate`` in the backward pass (exactly)."""
    return value.detach() + (surrogate - surrogate.detach())


def conjugate_gradient(matvec, rhs, tolerance, max_iterations):
    """Batched conjugate gradient for M beta = rhs, M symmetric positive semi-definite.

    Systems run along the leading dimensions, vectors along the last one; ``matvec`` applies M to
    a batch of vectors. A consistent singular system (rhs in the range of M) converges to the
    solution in that range. Each system stops once ||r|| <= tolerance * ||rhs||.
    Returns (beta, iterations, max relative residual, converged).
    """
    beta = torch.zeros_like(rhs)
    residual = rhs.clone()
    direction = residual.clone()
    rr = (residual * residual).sum(-1, keepdim=True)
    target = tolerance**2 * rr
    iterations = 0
    while iterations < max_iterations:
        active = rr > target
        if not bool(active.any()):
            break
        m_direction = matvec(direction)
        curvature = (direction * m_direction).sum(-1, keepdim=True)
        # Finished systems take zero steps (their curvature may be 0, hence the inner where).
        alpha = torch.where(active, rr / torch.where(active, curvature, torch.ones_like(curvature)), 0.0)
        beta = beta + alpha * direction
        residual = residual - alpha * m_direction
        rr_new = (residual * residual).sum(-1, keepdim=True)
        ratio = torch.where(active, rr_new / torch.where(active, rr, torch.ones_like(rr)), 0.0)
        direction = residual + ratio * direction
        rr = rr_new
        iterations += 1
    norm_rhs = (rhs * rhs).sum(-1, keepdim=True).sqrt()
    relative = torch.where(norm_rhs > 0, rr.sqrt() / torch.where(norm_rhs > 0, norm_rhs, 1.0), 0.0)
    worst = float(relative.max()) if relative.numel() else 0.0
    return beta, iterations, worst, bool((rr <= target).all())


def r2g2_linear(x, weight_loc, weight_scale, bias, noise):
    """R2-G2 for a mean-field Gaussian linear layer: the closed form, which is the LRT.

    ``noise`` (B, out) is z / s, the standardized per-example pre-activation noise.
    """
    return lrt_linear(x, weight_loc, weight_scale, bias, noise)


def conditional_noise_dense(matrix, z):
    """eps* = A^+ z = A^T (A A^T)^+ z for a batch of small dense maps A (..., m, n), z (..., m)."""
    return (torch.linalg.pinv(matrix) @ z.unsqueeze(-1)).squeeze(-1)


def has_full_column_rank(matrix):
    """Whether a single (m, n) matrix has rank n (numerical rank, torch's default tolerance)."""
    rows, cols = matrix.shape
    return cols <= rows and int(torch.linalg.matrix_rank(matrix.detach())) == cols


def r2g2_latent_linear(loc, scale, sample, weight, bias):
    """R2-G2 for a Gaussian latent v = loc + scale (.) eps (..., n) feeding ``F.linear(v, weight, bias)``.

    The forward value is the RT value ``F.linear(sample, weight, bias)``. If ``weight`` (m, n) has
    full column rank this IS the RT path (no solve). Otherwise A = weight diag(scale) per example and
    eps* = pinv(A) z. eps is recovered from the sample as (sample - loc) / scale; ``sample`` may carry
    extra leading sample dimensions over loc and scale.
    """
    value = F.linear(sample, weight, bias)
    if not torch.is_grad_enabled() or has_full_column_rank(weight):
        return value
    loc, scale = loc.expand_as(sample), scale.expand_as(sample)
    with torch.no_grad():
        eps = (sample - loc) / scale
        n = eps.shape[-1]
        matrix = weight.unsqueeze(0) * scale.reshape(-1, 1, n)
        z = (matrix @ eps.reshape(-1, n, 1)).squeeze(-1)
        eps_star = conditional_noise_dense(matrix, z).reshape(eps.shape)
    surrogate = F.linear(loc + scale * eps_star, weight, bias)
    return swap_gradient(value, surrogate)


def _full_rank_examples(patches, live):
    """Per example, whether the live rows of P_b (those not identically zero) are linearly independent,
    i.e. A_bc restricted to its nonzero columns has full column rank (diag(sigma_c) > 0 does not
    change the rank).

    Cholesky of the float64 Gram P_b P_b^T, with the dead rows' diagonal set to the largest diagonal:
    rank is full iff every pivot (the squared distance of a row from the span of the previous rows)
    exceeds the float64 round-off of the Gram, n * eps * max diag. Repeated or collinear rows fail;
    data-level near-collinearity, which is real rank at the data's precision, passes.
    """
    gram = patches.double() @ patches.double().transpose(1, 2)
    diagonal = torch.diagonal(gram, dim1=-2, dim2=-1)
    largest = diagonal.amax(-1, keepdim=True).clamp_min(1.0)
    gram = gram + torch.diag_embed(torch.where(live, 0.0, largest.double()))
    factor, info = torch.linalg.cholesky_ex(gram)
    pivots = torch.diagonal(factor, dim1=-2, dim2=-1).square()
    threshold = patches.shape[1] * torch.finfo(torch.float64).eps * largest.squeeze(-1)
    return (info == 0) & (pivots.amin(-1) > threshold)


def r2g2_conv2d(x, weight_loc, weight_scale, bias, stride, padding, noise, tolerance, max_iterations):
    """R2-G2 for a mean-field Gaussian conv2d (square kernel, dilation 1, one group).

    Args:
        x: (B, C_in, H, W) input. weight_loc, weight_scale: (C_out, C_in, k, k). bias: (C_out,) or None.
        noise: (B, C_out, C_in*k*k) standard normal, one kernel draw per example (the wrapped RT).
        tolerance, max_iterations: CG stopping rule (relative residual, iteration cap).

    Returns (output of shape (B, C_out, H', W'), SolveInfo). The output equals the per-example RT
    convolution in value. Closed forms first: a kernel entry whose input is zero at every position
    (a dead channel, a zero image) is a zero column of A_bc, so its eps* is 0; where the remaining
    columns are independent (only possible where k*k*C_in <= H'W'), eps* = eps on them and no solve
    runs. The other examples get eps* = A^T beta from batched CG on A A^T beta = z, run in float64
    (in float32 the ill-conditioned systems of real feature maps stall above useful tolerances).
    """
    batch, c_out = x.shape[0], weight_loc.shape[0]
    kernel = weight_loc.shape[-1]
    mean = F.conv2d(x, weight_loc, bias, stride, padding)
    patches = F.unfold(x, kernel, padding=padding, stride=stride)  # (B, n, L)
    scale = weight_scale.reshape(c_out, -1)  # (C_out, n)
    n, positions = patches.shape[1], patches.shape[2]
    perturbation = (noise * scale) @ patches  # z: (B, C_out, L)
    value = mean + perturbation.reshape(mean.shape)
    info = SolveInfo()
    if not torch.is_grad_enabled():
        return value, info
    with torch.no_grad():
        detached = patches.detach()
        live = detached.abs().amax(-1) > 0  # (B, n)
        if n <= positions:
            needs_solve = ~_full_rank_examples(detached, live)
        else:
            needs_solve = torch.ones(batch, dtype=torch.bool, device=x.device)
        if not bool(needs_solve.any()) and bool(live.all()):
            return value, info  # every A_bc has full column rank: R2-G2 is exactly this RT
        eps_star = noise * live.unsqueeze(1)
        if bool(needs_solve.any()):
            sub_patches = detached[needs_solve].double()  # (B', n, L)
            sub_patches_t = sub_patches.transpose(1, 2)
            variance = scale.detach().double().square()

            def apply_gram(v):  # A A^T v for every (b, c): P_b^T diag(sigma_c^2) P_b v
                return ((v @ sub_patches_t) * variance) @ sub_patches

            z = perturbation.detach()[needs_solve].double()
            beta, iterations, residual, converged = conjugate_gradient(apply_gram, z, tolerance, max_iterations)
            eps_star[needs_solve] = ((beta @ sub_patches_t) * scale.detach().double()).to(noise.dtype)
            info = SolveInfo(int(needs_solve.sum()) * c_out, iterations, residual, converged)
    surrogate = mean + ((eps_star * scale) @ patches).reshape(mean.shape)
    return swap_gradient(value, surrogate), info
