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
* A dense A = W diag(sigma_b) (a Gaussian latent feeding a linear layer): eps* = A^+ A eps from one
  eigendecomposition of W's Gram and a small Cholesky solve per example (``DirectProjection``).

Convolutions have no closed form: one output channel c of example b has pre-activations over the
H'W' output positions that share the k*k*C_in kernel entries, A_bc = P_b^T diag(sigma_c) with P_b
the (k*k*C_in) x (H'W') patch matrix. Where H'W' < k*k*C_in (upper layers) A has more columns than
rows and the reduction is real. eps* = A^+ A eps (the minimum-norm solution of A e = z) comes from a
solver chosen by name (``R2G2_SOLVERS``, config field ``r2g2_solver``): ``direct`` (default) projects
exactly through one eigendecomposition per example and a Cholesky solve per (example, channel); ``cg`` runs batched
conjugate gradient on A A^T beta = z with a tolerance and an iteration cap, for maps too large for
the direct one. CG converges in O(cond(A)) iterations, and real images give very ill-conditioned patch
matrices (measured on MNIST: benchmarks/results/r2g2_cost.md), so a truncated solve, which biases
the gradient, is reported (``SolveInfo``) and warned about by the estimator rather than ignored.

Design choice (documented on the cards): R2-G2 in a Bayesian layer conditions each example on its
own pre-activations, i.e. it Rao-Blackwellises the RT with one weight draw per example. That RT has
the same expected loss as the one-draw-per-batch RT (``rt``) and, in a linear layer, the same
cost as LRT thanks to the closed form.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from .lrt import lrt_linear
from .registry import Registry, check_number, check_positive


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


def has_full_column_rank(matrix):
    """Whether a single (m, n) matrix has rank n (numerical rank, torch's default tolerance)."""
    rows, cols = matrix.shape
    return cols <= rows and int(torch.linalg.matrix_rank(matrix.detach())) == cols


def r2g2_latent_linear(loc, scale, sample, weight, bias):
    """R2-G2 for a Gaussian latent v = loc + scale (.) eps (..., n) feeding ``F.linear(v, weight, bias)``.

    The forward value is the RT value ``F.linear(sample, weight, bias)``. If ``weight`` (m, n) has
    full column rank this IS the RT path (no solve). Otherwise A = weight diag(scale) per example and
    eps* = A^+ A eps: the row space of A is diag(scale) range(weight^T), so ``DirectProjection``
    runs with weight^T as the one shared "patch matrix" (one eigendecomposition per call) and every example's scale
    as a "channel". eps is recovered from the sample as (sample - loc) / scale; ``sample`` may carry
    extra leading sample dimensions over loc and scale.
    """
    value = F.linear(sample, weight, bias)
    if not torch.is_grad_enabled() or has_full_column_rank(weight):
        return value
    loc, scale = loc.expand_as(sample), scale.expand_as(sample)
    with torch.no_grad():
        eps = (sample - loc) / scale
        n = eps.shape[-1]
        eps_star, _ = DirectProjection()(
            weight.detach().double().t().unsqueeze(0), scale.reshape(-1, n).double(), eps.reshape(1, -1, n).double()
        )
        eps_star = eps_star.reshape(eps.shape).to(eps.dtype)
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


def _relative_residual(patches, scale, eps_star, noise):
    """max over systems of ||A (eps* - eps)|| / ||A eps|| (A eps* = z is what eps* must satisfy)."""
    z = (noise * scale) @ patches
    error = ((eps_star - noise) * scale) @ patches
    norm_z = z.norm(dim=-1)
    relative = torch.where(norm_z > 0, error.norm(dim=-1) / torch.where(norm_z > 0, norm_z, 1.0), 0.0)
    return float(relative.max()) if relative.numel() else 0.0


R2G2_SOLVERS = Registry("r2g2_solver")


def _range_bases(patches):
    """Orthonormal bases of range(P_b) and of its complement, from the eigendecomposition of the
    smaller Gram (n x n: P P^T, or L x L: P^T P, then Q = P V Lambda^{-1/2}).

    Eigenvalues count as zero below dim * eps_float64 * lambda_max, the round-off of a float64 Gram:
    singular values below ~sqrt(dim * eps_float64) ~ 1e-7 of the largest (float32 precision, below
    which the float32 forward z = A eps does not determine the direction; dropping such a direction
    changes the gradient by O(its relative singular value)).
    Returns (range basis (B, n, r_max), complement basis (B, n, n - r_min) or None when n > L),
    bases zero-padded per example to the batch's largest size.
    """
    n, positions = patches.shape[1], patches.shape[2]
    transpose = n > positions
    gram = patches.transpose(1, 2) @ patches if transpose else patches @ patches.transpose(1, 2)
    values, vectors = torch.linalg.eigh(gram)  # ascending
    values, vectors = values.flip(-1), vectors.flip(-1)
    cutoff = gram.shape[-1] * torch.finfo(torch.float64).eps * values[:, :1].clamp_min(0)
    keep = values > cutoff
    rank = int(keep.sum(-1).max())
    kept = vectors[..., :rank] * keep[:, None, :rank]
    if transpose:
        root = torch.where(keep[:, :rank], values[:, :rank], 1.0).rsqrt()
        return (patches @ kept) * root.unsqueeze(1), None
    nullity = int((~keep).sum(-1).max())
    complement = vectors[..., n - nullity :] * (~keep)[:, None, n - nullity :]
    return kept, complement


def _project(basis, weights, noise, chunk_bytes):
    """Y (Y^T Y)^{-1} Y^T eps with Y = diag(weights_c) basis_b, for every (b, c); zero basis columns
    (padding) get an identity diagonal and contribute nothing. basis (B, n, r), weights (C, n).

    Y^T Y = sum_j weights_cj^2 q_bj q_bj^T is formed for all channels as one matrix product
    (C, n) @ (n, r^2) per example (measured ~3x faster than a broadcast batched product)."""
    size = basis.shape[-1]
    out = torch.zeros_like(noise)
    if size == 0:
        return out
    c_out, n = weights.shape
    padding = torch.diag_embed((basis.abs().amax(1) == 0).to(basis.dtype)).unsqueeze(1)  # (B, 1, r, r)
    squared = weights.square()
    step = max(1, chunk_bytes // (max(c_out, n) * size * size * basis.element_size()))
    for start in range(0, basis.shape[0], step):
        q = basis[start : start + step]  # (b, n, r)
        outer = (q.unsqueeze(-1) * q.unsqueeze(-2)).reshape(q.shape[0], n, size * size)
        gram = (squared @ outer).reshape(q.shape[0], c_out, size, size) + padding[start : start + step]
        rhs = (noise[start : start + step] * weights) @ q  # (b, C, r)
        coefficients = torch.cholesky_solve(rhs.unsqueeze(-1), torch.linalg.cholesky(gram)).squeeze(-1)
        out[start : start + step] = weights * (coefficients @ q.transpose(1, 2))
    return out


@R2G2_SOLVERS.register("direct")
class DirectProjection:
    r"""eps* = A^+ A eps, the orthogonal projection of eps onto the row space of A_bc = P_b^T diag(sigma_c).

    The row space of A_bc is D range(P_b), D = diag(sigma_c). One eigendecomposition per example
    (of the smaller Gram of P_b, ``_range_bases``) gives orthonormal bases Q_b of range(P_b) (rank r_b)
    and Q_b' of its complement, so all rank deficiency (dead kernel entries, all-zero or repeated
    patches, collinear channels) is resolved once per example, not per channel. Then, per (b, c),

        eps* = Y (Y^T Y)^{-1} Y^T eps,            Y = D Q_b           (r_b x r_b Cholesky), or
        eps* = eps - Z (Z^T Z)^{-1} Z^T eps,      Z = D^{-1} Q_b'     ((n - r_b) x (n - r_b)),

    whichever system is smaller for the batch (the complement of D range(P) is D^{-1} null(P^T)).
    Y^T Y has condition <= (max sigma / min sigma)^2, independent of the data's conditioning. Only
    eps is needed (never z, so nothing is divided by small singular values). Cost per (b, c) is
    ~ n k^2 + k^3 / 3 flops, k = min(r, n - r): no iterations, no tolerance. ``chunk_bytes`` bounds
    the (b, C, n, k) intermediate.
    """

    def __init__(self, chunk_bytes=2**26):
        self.chunk_bytes = chunk_bytes

    @classmethod
    def from_options(cls, tolerance, max_iterations):
        """The estimator's solver options: a direct solve has no tolerance or iteration cap."""
        return cls()

    def __call__(self, patches, scale, noise):
        basis, complement = _range_bases(patches)
        if complement is not None and complement.shape[-1] < basis.shape[-1]:
            out = noise - _project(complement, scale.reciprocal(), noise, self.chunk_bytes)
        else:
            out = _project(basis, scale, noise, self.chunk_bytes)
        info = SolveInfo(patches.shape[0] * scale.shape[0], 0, _relative_residual(patches, scale, out, noise), True)
        return out, info


@R2G2_SOLVERS.register("cg")
class ConjugateGradientProjection:
    r"""eps* = A^T beta with beta from batched CG on A A^T beta = z (matrix-vector products only).

    For maps too large for ``direct``'s per-example eigendecomposition. CG on the normal equations A A^T needs on
    the order of cond(A) iterations for a fixed error (the Gram squares the condition number), and
    the patch matrices of real images are very ill-conditioned (e.g. on MNIST the 14x14 layer's A has
    nonzero singular values spread over many orders of magnitude), so on real data it stops at the
    cap and the gradient is biased (reported in ``SolveInfo``; the estimator warns).

    Args:
        tolerance: stop once ||A A^T beta - z|| <= tolerance * ||z|| for every system.
        max_iterations: iteration cap.
    """

    def __init__(self, tolerance=1e-4, max_iterations=100):
        check_number("tolerance", tolerance)
        check_positive("max_iterations", max_iterations)
        self.tolerance, self.max_iterations = tolerance, max_iterations

    @classmethod
    def from_options(cls, tolerance, max_iterations):
        return cls(tolerance, max_iterations)

    def __call__(self, patches, scale, noise):
        patches_t = patches.transpose(1, 2)
        variance = scale.square()

        def apply_gram(v):  # A A^T v for every (b, c): P_b^T diag(sigma_c^2) P_b v
            return ((v @ patches_t) * variance) @ patches

        z = (noise * scale) @ patches
        beta, iterations, residual, converged = conjugate_gradient(apply_gram, z, self.tolerance, self.max_iterations)
        eps_star = (beta @ patches_t) * scale
        return eps_star, SolveInfo(patches.shape[0] * scale.shape[0], iterations, residual, converged)


def r2g2_conv2d(x, weight_loc, weight_scale, bias, stride, padding, noise, solver):
    """R2-G2 for a mean-field Gaussian conv2d (square kernel, dilation 1, one group).

    Args:
        x: (B, C_in, H, W) input. weight_loc, weight_scale: (C_out, C_in, k, k). bias: (C_out,) or None.
        noise: (B, C_out, C_in*k*k) standard normal, one kernel draw per example (the wrapped RT).
        solver: an ``R2G2_SOLVERS`` instance computing eps* = A^+ A eps in float64.

    Returns (output of shape (B, C_out, H', W'), SolveInfo). The output equals the per-example RT
    convolution in value. Closed forms first: a kernel entry whose input is zero at every position
    (a dead channel, a zero image) is a zero column of A_bc, so its eps* is 0; where the remaining
    columns are independent (only possible where k*k*C_in <= H'W'), eps* = eps on them and no solve
    runs. The other examples go to the solver, in float64.
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
            solved, info = solver(
                detached[needs_solve].double(), scale.detach().double(), noise.detach()[needs_solve].double()
            )
            eps_star[needs_solve] = solved.to(noise.dtype)
    surrogate = mean + ((eps_star * scale) @ patches).reshape(mean.shape)
    return swap_gradient(value, surrogate), info
