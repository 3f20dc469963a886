"""Gradient estimators: exact identities (float64) and statistical properties (fixed seeds, margins
from the Monte Carlo standard error)."""

import pytest
import torch
import torch.nn.functional as F
from transformers import initialization as init

from vaezoo.bayes_layers import BayesConv2d, BayesLinear
from vaezoo.distributions import DiagonalGaussian
from vaezoo.estimators import ESTIMATORS, GaussianLinear, estimators_for, make_estimator
from vaezoo.lrt import lrt_linear
from vaezoo.r2g2 import R2G2_SOLVERS, conjugate_gradient, r2g2_conv2d, swap_gradient
from vaezoo.score_function import score_function_surrogate

D = torch.float64


@pytest.fixture(autouse=True)
def single_thread():
    """Thousands of draws on tiny tensors: intra-op threads only add synchronization (x50 slower
    on a busy 2-core machine)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _pinv_noise(matrix, z):
    """Reference eps* = pinv(A) z for a batch of dense maps A (..., m, n), z (..., m)."""
    return (torch.linalg.pinv(matrix) @ z.unsqueeze(-1)).squeeze(-1)


def _grads(output, weights, params):
    return torch.autograd.grad((output * weights).sum(), params, retain_graph=True)


# ----------------------------------------------------------------------------- exact identities


def test_registry_and_places():
    assert ESTIMATORS.names() == ["flipout", "lrt", "r2g2", "rt", "score"]
    assert estimators_for("conv2d") == ["flipout", "r2g2", "rt", "score"]
    assert estimators_for("latent_linear") == ["r2g2", "rt", "score"]
    with pytest.raises(ValueError, match="estimator='lrt' is not valid"):
        make_estimator("lrt", "conv2d")
    with pytest.raises(ValueError, match="unknown estimator"):
        ESTIMATORS.get("reinforce")


def test_r2g2_linear_equals_lrt_through_the_generic_algorithm():
    """Generic R2-G2 (per-example weight noise eps, eps* = pinv(A) A eps with A = x_b (.) sigma_i)
    gives LRT's value and gradients when LRT is driven by xi = z / s (methods.md §3)."""
    g = torch.Generator().manual_seed(0)
    batch, n_in, n_out = 5, 7, 4
    x = torch.randn(batch, n_in, dtype=D, generator=g).requires_grad_()
    loc = torch.randn(n_out, n_in, dtype=D, generator=g).requires_grad_()
    scale = (0.1 + torch.rand(n_out, n_in, dtype=D, generator=g)).requires_grad_()
    bias = torch.randn(n_out, dtype=D, generator=g).requires_grad_()
    eps = torch.randn(batch, n_out, n_in, dtype=D, generator=g)
    upstream = torch.randn(batch, n_out, dtype=D, generator=g)
    params = (x, loc, scale, bias)

    # Generic: one 1 x n_in map per (example, output unit).
    matrix = (x[:, None, :] * scale[None]).unsqueeze(-2)  # (B, out, 1, in)
    z = (matrix.detach() @ eps.unsqueeze(-1)).squeeze(-1)  # (B, out, 1)
    eps_star = _pinv_noise(matrix.detach(), z)
    value = F.linear(x, loc, bias) + (x[:, None, :] * (loc + scale * eps)).sum(-1) - F.linear(x, loc)
    surrogate = F.linear(x, loc, bias) + (matrix @ eps_star.unsqueeze(-1)).squeeze(-1).squeeze(-1)
    generic = swap_gradient(value, surrogate)

    s = torch.sqrt(F.linear(x * x, scale * scale)).detach()
    lrt = lrt_linear(x, loc, scale, bias, z.squeeze(-1) / s)
    torch.testing.assert_close(lrt, generic, rtol=1e-12, atol=1e-12)
    for got, want in zip(_grads(lrt, upstream, params), _grads(generic, upstream, params)):
        torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-12)
    # and the estimator objects are that closed form
    a = ESTIMATORS.get("r2g2")().linear(x, DiagonalGaussian(loc, scale.log()), bias, torch.Generator().manual_seed(3))
    b = ESTIMATORS.get("lrt")().linear(x, DiagonalGaussian(loc, scale.log()), bias, torch.Generator().manual_seed(3))
    for got, want in zip(_grads(a, upstream, params), _grads(b, upstream, params)):
        torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_lrt_is_finite_for_an_all_zero_input_row():
    x = torch.zeros(2, 3, dtype=D)
    x[1] = 1.0
    scale = torch.full((4, 3), 0.5, dtype=D, requires_grad=True)
    out = lrt_linear(x, torch.zeros(4, 3, dtype=D), scale, None, torch.ones(2, 4, dtype=D))
    (grad,) = torch.autograd.grad(out.sum(), scale)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0


def _latent_setup(n, m, seed, rank_deficient=False):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(6, n, dtype=D, generator=g).requires_grad_()
    log_scale = (0.3 * torch.randn(6, n, dtype=D, generator=g)).requires_grad_()
    weight = torch.randn(m, n, dtype=D, generator=g)
    if rank_deficient:
        weight[:, 1] = weight[:, 0]
    weight.requires_grad_()
    bias = torch.randn(m, dtype=D, generator=g).requires_grad_()
    posterior = DiagonalGaussian(loc, log_scale)
    sample = posterior.rsample(generator=g)
    upstream = torch.randn(6, m, dtype=D, generator=g)
    return posterior, sample, weight, bias, upstream, (loc, log_scale, weight, bias)


def test_r2g2_equals_rt_for_a_full_column_rank_map():
    posterior, sample, weight, bias, upstream, params = _latent_setup(n=5, m=9, seed=1)
    rt = GaussianLinear(5, 9, estimator="rt").estimator.latent_linear(posterior, sample, weight, bias)
    r2 = GaussianLinear(5, 9, estimator="r2g2").estimator.latent_linear(posterior, sample, weight, bias)
    assert torch.equal(rt, r2)
    for got, want in zip(_grads(r2, upstream, params), _grads(rt, upstream, params)):
        assert torch.equal(got, want)
    # The solve it skips would return eps itself: any difference is solver error.
    eps = ((sample - posterior.loc) / posterior.scale).detach()
    matrix = weight.detach() * posterior.scale.detach()[:, None, :]
    z = (matrix @ eps.unsqueeze(-1)).squeeze(-1)
    torch.testing.assert_close(_pinv_noise(matrix, z), eps, rtol=1e-9, atol=1e-9)


def test_r2g2_latent_rank_deficient_map_keeps_value_and_changes_scale_gradient():
    posterior, sample, weight, bias, upstream, params = _latent_setup(n=5, m=9, seed=2, rank_deficient=True)
    rt = make_estimator("rt", "latent_linear").latent_linear(posterior, sample, weight, bias)
    r2 = make_estimator("r2g2", "latent_linear").latent_linear(posterior, sample, weight, bias)
    assert torch.equal(rt, r2)
    g_rt, g_r2 = _grads(rt, upstream, params), _grads(r2, upstream, params)
    torch.testing.assert_close(g_r2[0], g_rt[0])  # grad_mu = W^T g is unchanged
    assert not torch.allclose(g_r2[1], g_rt[1])  # grad_sigma uses eps*, which differs in the tied pair


def test_conjugate_gradient_matches_direct_solves():
    g = torch.Generator().manual_seed(0)
    factor = torch.randn(3, 6, 4, dtype=D, generator=g)
    gram = factor @ factor.transpose(1, 2)  # (3, 6, 6) of rank 4: singular
    rhs = (gram @ torch.randn(3, 6, 1, dtype=D, generator=g)).squeeze(-1)  # consistent
    def apply_gram(v):
        return (gram @ v.unsqueeze(-1)).squeeze(-1)

    beta, iterations, residual, converged = conjugate_gradient(apply_gram, rhs, 1e-12, 50)
    assert converged and residual <= 1e-12 and iterations <= 6
    # minimum-norm solution: the pseudo-inverse's
    torch.testing.assert_close(beta, (torch.linalg.pinv(gram) @ rhs.unsqueeze(-1)).squeeze(-1), rtol=1e-8, atol=1e-8)
    _, _, _, converged = conjugate_gradient(apply_gram, rhs, 1e-12, 1)
    assert not converged


def test_r2g2_conv_warns_when_the_solve_hits_the_cap():
    torch.manual_seed(0)
    estimator = ESTIMATORS.get("r2g2")(solver="cg", max_iterations=1)
    layer = BayesConv2d(4, 3, 3, padding=1, estimator=estimator, initial_scale=0.1)
    layer.initialize(init)
    x = torch.rand(2, 4, 3, 3)
    with pytest.warns(RuntimeWarning, match="biased"):
        layer(x).sum().backward()
    assert not layer.estimator.last_solve.converged


def test_r2g2_conv_skips_the_solve_when_every_patch_matrix_has_full_rank():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 2, 6, 6, dtype=D, generator=g)  # n = 18 <= L = 36 positions
    loc = torch.randn(2, 2, 3, 3, dtype=D, generator=g)
    scale = (torch.rand(2, 2, 3, 3, dtype=D, generator=g) + 0.1).requires_grad_()
    noise = torch.randn(3, 2, 18, dtype=D, generator=g)
    out, info = r2g2_conv2d(x, loc, scale, None, 1, 1, noise, R2G2_SOLVERS.get("direct")())
    assert info.systems == 0 and out.grad_fn is not None
    # A dead input channel (zero columns of A) has the closed form eps* = 0 there: still no solve,
    # and the scale gradient of those kernel entries is 0 either way.
    x[1, 1] = 0.0
    out, info = r2g2_conv2d(x, loc, scale, None, 1, 1, noise, R2G2_SOLVERS.get("direct")())
    assert info.systems == 0
    # Two identical channels make A rank-deficient without zero columns: that example is solved.
    x[2, 1] = x[2, 0]
    out, info = r2g2_conv2d(x, loc, scale, None, 1, 1, noise, R2G2_SOLVERS.get("direct")())
    assert info.systems == 2 and info.converged
    (grad,) = torch.autograd.grad(out.sum(), scale)
    assert torch.isfinite(grad).all()


# ----------------------------------------------------------------------------- statistics


def _draws(forward, params, num_calls, seed):
    """Flat gradients of ``num_calls`` independent calls of ``forward(generator)`` -> (calls, P).

    Each call averages the loss over a replicated batch, so its gradient is itself a mean of many
    estimator draws; the spread across calls gives the Monte Carlo standard error directly."""
    g = torch.Generator().manual_seed(seed)
    rows = []
    for _ in range(num_calls):
        loss = forward(g)
        rows.append(torch.cat([grad.flatten() for grad in torch.autograd.grad(loss, params)]))
    return torch.stack(rows)


def _assert_same_mean(a, b, max_z=5.0):
    """Elementwise two-sample z-test: every |mean difference| within max_z standard errors."""
    se = torch.sqrt(a.var(0) / a.shape[0] + b.var(0) / b.shape[0])
    z = (a.mean(0) - b.mean(0)).abs() / se.clamp_min(1e-12)
    assert z.max() < max_z, f"max z-score {z.max():.2f}"


def _bayes_layer(cls, estimator, seed, *args, **kwargs):
    torch.manual_seed(seed)
    layer = cls(*args, estimator=estimator, initial_scale=0.3, **kwargs).double()
    layer.initialize(init)
    return layer


COPIES = 50  # replicas of the batch per call (independent per-example noise where the estimator has it)


def test_flipout_and_lrt_match_rt_mean_gradient_on_a_linear_layer():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, dtype=D, generator=g).repeat(COPIES, 1)
    labels = torch.randint(0, 3, (8,), generator=g).repeat(COPIES)
    results = {}
    for name in ("rt", "lrt", "flipout"):
        layer = _bayes_layer(BayesLinear, name, 0, 5, 3)
        params = [layer.weight_raw_loc, layer.weight_raw_scale, layer.bias]
        results[name] = _draws(lambda gen: F.cross_entropy(layer(x, gen), labels), params, 300, seed=1)
    _assert_same_mean(results["lrt"], results["rt"])
    _assert_same_mean(results["flipout"], results["rt"])
    # and the point of both: less variance than the shared-draw RT
    assert results["lrt"].var(0).sum() < results["rt"].var(0).sum()
    assert results["flipout"].var(0).sum() < results["rt"].var(0).sum()


def test_flipout_matches_rt_mean_gradient_on_a_convolution():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(4, 2, 4, 4, dtype=D, generator=g).repeat(COPIES, 1, 1, 1)
    target = torch.randn(4, 3, 4, 4, dtype=D, generator=g).repeat(COPIES, 1, 1, 1)
    results = {}
    for name in ("rt", "flipout"):
        layer = _bayes_layer(BayesConv2d, name, 0, 2, 3, 3, padding=1)
        params = [layer.weight_raw_loc, layer.weight_raw_scale]
        results[name] = _draws(lambda gen: (torch.tanh(layer(x, gen)) - target).square().mean(), params, 300, seed=1)
    _assert_same_mean(results["flipout"], results["rt"])


def _per_example_rt_conv(x, layer, gen):
    """Reference RT with one kernel draw per example (the RT that conv R2-G2 wraps), as a grouped conv."""
    weight = layer.weight_distribution()
    batch, c_in = x.shape[:2]
    kernels = weight.rsample((batch,), generator=gen)  # (B, C_out, C_in, k, k)
    out = F.conv2d(x.reshape(1, batch * c_in, *x.shape[2:]), kernels.flatten(0, 1), None, 1, 1, groups=batch)
    return out.reshape(batch, -1, *out.shape[2:]) + layer.bias[:, None, None]


def test_r2g2_conv_is_unbiased_and_reduces_variance_where_n_exceeds_m():
    """Upper-layer regime: 3x3 output positions (m = 9) < k*k*C_in = 36 kernel entries (n)."""
    g = torch.Generator().manual_seed(0)
    x = torch.rand(3, 4, 3, 3, dtype=D, generator=g).repeat(COPIES, 1, 1, 1)
    target = torch.randn(3, 2, 3, 3, dtype=D, generator=g).repeat(COPIES, 1, 1, 1)
    forwards = {
        "rt": _bayes_layer(BayesConv2d, "rt", 0, 4, 2, 3, padding=1),
        "r2g2": _bayes_layer(BayesConv2d, "r2g2", 0, 4, 2, 3, padding=1),
        "per_example_rt": _bayes_layer(BayesConv2d, "rt", 0, 4, 2, 3, padding=1),
    }
    results = {}
    for name, layer in forwards.items():
        params = [layer.weight_raw_loc, layer.weight_raw_scale, layer.bias]

        def loss(gen):
            out = _per_example_rt_conv(x, layer, gen) if name == "per_example_rt" else layer(x, gen)
            return (torch.tanh(out) - target).square().mean()

        results[name] = _draws(loss, params, 300, seed=1)
    assert forwards["r2g2"].estimator.last_solve.systems == x.shape[0] * 2
    _assert_same_mean(results["r2g2"], results["rt"])
    _assert_same_mean(results["r2g2"], results["per_example_rt"])
    numel = forwards["rt"].weight_raw_loc.numel()
    var = {name: r[:, numel : 2 * numel].var(0).sum().item() for name, r in results.items()}
    # Rao-Blackwell: Var(E[X|Z]) <= Var(X). The sample variances of 300 calls are within ~20%; the
    # projection removes (n - m) / n = 3/4 of the noise directions, so the gap is far larger.
    assert var["r2g2"] < 0.5 * var["per_example_rt"], var
    assert var["r2g2"] < 0.5 * var["rt"], var


def test_score_function_is_unbiased_on_a_gaussian_with_closed_form_expected_loss():
    """v ~ N(mu, diag sigma^2), a = W v + b, L = ||a - c||^2:
    E L = ||W mu + b - c||^2 + sum_ij W_ij^2 sigma_j^2, differentiated exactly by autograd."""
    g = torch.Generator().manual_seed(0)
    loc = torch.randn(4, 3, dtype=D, generator=g).requires_grad_()
    log_scale = (0.2 * torch.randn(4, 3, dtype=D, generator=g)).requires_grad_()
    layer = GaussianLinear(3, 2, estimator="score").double()
    target = torch.randn(4, 2, dtype=D, generator=g)
    params = [loc, log_scale, layer.weight, layer.bias]

    def exact():
        mean = F.linear(loc, layer.weight, layer.bias)
        variance = F.linear(torch.exp(2 * log_scale), layer.weight.square())
        return ((mean - target).square() + variance).sum(-1).mean()

    want = torch.cat([grad.flatten() for grad in torch.autograd.grad(exact(), params)])

    def draw(gen):  # 1000 independent draws per call, averaged
        posterior = DiagonalGaussian(loc, log_scale)
        out = layer(posterior, posterior.rsample((1000,), generator=gen))
        per_example = (out - target).square().sum(-1)
        return per_example.mean() + score_function_surrogate(layer, per_example)

    grads = _draws(draw, params, 100, seed=1)
    se = grads.std(0) / grads.shape[0] ** 0.5
    z = (grads.mean(0) - want).abs() / se
    assert z.max() < 5.0, f"max z-score {z.max():.2f}"
    assert layer.estimator.baseline > 0  # the baseline tracked the loss


# ----------------------------------------------------------------------------- conv solvers


def _solver_case(seed, rank_deficient):
    """Patch matrices P_b (B, n, L) with dead entries, zero positions and (optionally) repeated
    channels; per-channel scales; noise."""
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(3, 3, 4, 4, dtype=D, generator=g)
    x[0, 2] = 0.0  # a dead channel: zero rows of P_0
    x[1, :, :2] = 0.0  # zero border: all-zero positions (zero rows of A)
    if rank_deficient:
        x[2, 1] = 2 * x[2, 0]  # collinear channels: rank-deficient A without zero columns
    patches = F.unfold(x, 3, padding=1)  # n = 27 > L = 16, and the n <= L regime below
    scale = 0.1 + torch.rand(2, 27, dtype=D, generator=g)
    noise = torch.randn(3, 2, 27, dtype=D, generator=g)
    return patches, scale, noise


def _dense_reference(patches, scale, noise):
    maps = patches.transpose(1, 2).unsqueeze(1) * scale.unsqueeze(-2)  # A_bc (B, C, L, n)
    return _pinv_noise(maps, (maps @ noise.unsqueeze(-1)).squeeze(-1))


@pytest.mark.parametrize("rank_deficient", [False, True])
@pytest.mark.parametrize("transpose", [False, True])
def test_direct_and_converged_cg_solvers_equal_the_dense_pseudo_inverse(rank_deficient, transpose):
    patches, scale, noise = _solver_case(0, rank_deficient)
    if transpose:  # n <= L: the direct solver's n x n Gram path (and its complement projection)
        patches = patches.transpose(1, 2)[:, :, :27].contiguous()  # (B, 16, 27)
        scale, noise = scale[:, :16], noise[..., :16]
    want = _dense_reference(patches, scale, noise)
    direct, info = R2G2_SOLVERS.get("direct")()(patches, scale, noise)
    assert info.converged and info.max_relative_residual < 1e-12
    torch.testing.assert_close(direct, want, rtol=1e-10, atol=1e-10)
    cg, info = R2G2_SOLVERS.get("cg")(1e-14, 500)(patches, scale, noise)
    assert info.converged
    torch.testing.assert_close(cg, want, rtol=1e-8, atol=1e-8)


def test_direct_solver_on_mnist_patches_satisfies_a_eps_star_equals_z_to_round_off():
    """Real feature maps are what stalls CG (rank-deficient, condition numbers ~1e10): the direct
    projection still satisfies A eps* = z to float64 round-off on them."""
    from vaezoo.data import load_images

    images = load_images("mnist-sample", "test", limit=6).images.reshape(-1, 1, 28, 28).to(D) / 255
    torch.manual_seed(0)
    first = _bayes_layer(BayesConv2d, "rt", 0, 1, 8, 3, padding=1)
    with torch.no_grad():
        hidden = F.max_pool2d(torch.relu(first(images)), 2)  # (6, 8, 14, 14): n = 72 <= L = 196
        upper = F.max_pool2d(hidden, 2)  # 7 x 7: n = 72 > L = 49
    g = torch.Generator().manual_seed(1)
    for features in (hidden, upper):
        patches = F.unfold(features, 3, padding=1)
        scale = 0.05 + 0.1 * torch.rand(4, patches.shape[1], dtype=D, generator=g)
        noise = torch.randn(patches.shape[0], 4, patches.shape[1], dtype=D, generator=g)
        eps_star, info = R2G2_SOLVERS.get("direct")()(patches, scale, noise)
        assert info.max_relative_residual < 1e-9, info
        # and it is a projection: applying it again changes nothing
        again, _ = R2G2_SOLVERS.get("direct")()(patches, scale, eps_star)
        torch.testing.assert_close(again, eps_star, rtol=1e-8, atol=1e-8)


def test_r2g2_solver_is_a_validated_config_field():
    from vaezoo.configuration_bnn import BNNConfig

    estimator = make_estimator("r2g2", "conv2d", BNNConfig(architecture="cnn", r2g2_solver="cg", cg_max_iterations=7))
    assert estimator.solver.max_iterations == 7
    assert type(make_estimator("r2g2", "conv2d", BNNConfig(architecture="cnn")).solver).__name__ == "DirectProjection"
    with pytest.raises(ValueError, match="r2g2_solver='lu' is not valid"):
        BNNConfig(r2g2_solver="lu")
