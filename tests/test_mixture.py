"""Mixture distributions, mixture posteriors and mixture priors (MoG, VampPrior) against brute force."""

import math

import pytest
import torch

from vaezoo import VAEConfig, VAEModel
from vaezoo.bounds import rate, weighted_samples
from vaezoo.distributions import DiagonalGaussian
from vaezoo.mixture import Mixture



@pytest.fixture(autouse=True)
def float64_and_seeded():
    """Exact comparisons in float64; fixed seed for the networks' initial weights."""
    previous = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    torch.manual_seed(0)
    yield
    torch.set_default_dtype(previous)


def brute_force_log_density(loc, log_scale, logits, z):
    """log sum_m w_m prod_k N(z_k; mu_mk, s_mk) by explicit enumeration of components and dimensions."""
    weights = torch.softmax(logits, -1)
    total = 0.0
    for m in range(loc.shape[0]):
        density = weights[m]
        for k in range(loc.shape[1]):
            s = log_scale[m, k].exp()
            density = density * torch.exp(-0.5 * ((z[k] - loc[m, k]) / s) ** 2) / (s * math.sqrt(2 * math.pi))
        total = total + density
    return torch.log(total)


def toy_mixture(batch=(), m=3, k=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    loc = torch.randn(*batch, m, k, generator=g)
    log_scale = 0.3 * torch.randn(*batch, m, k, generator=g)
    logits = torch.randn(*batch, m, generator=g)
    return loc, log_scale, logits


def test_mixture_log_prob_matches_enumeration():
    loc, log_scale, logits = toy_mixture(batch=(4,))
    q = Mixture(DiagonalGaussian(loc, log_scale), logits)
    z = torch.randn(5, 4, 2, generator=torch.Generator().manual_seed(1))
    got = q.log_prob(z)
    assert got.shape == (5, 4)
    for i in range(5):
        for b in range(4):
            want = brute_force_log_density(loc[b], log_scale[b], logits[b], z[i, b])
            torch.testing.assert_close(got[i, b], want)


def test_mixture_sampling_frequencies_and_mean():
    loc = torch.tensor([[-10.0], [0.0], [10.0]])
    q = Mixture(DiagonalGaussian(loc, torch.zeros(3, 1)), torch.log(torch.tensor([0.2, 0.5, 0.3])))
    z = q.sample((20000,), generator=torch.Generator().manual_seed(0))
    freq = torch.stack([(z < -5).double().mean(), ((z > -5) & (z < 5)).double().mean(), (z > 5).double().mean()])
    torch.testing.assert_close(freq, torch.tensor([0.2, 0.5, 0.3]), atol=0.015, rtol=0)
    torch.testing.assert_close(q.mean, torch.tensor([-10 * 0.2 + 10 * 0.3]))


def test_stratified_samples_weights_and_gradient():
    loc, log_scale, logits = toy_mixture(batch=(3,))
    logits.requires_grad_(True)
    q = Mixture(DiagonalGaussian(loc, log_scale), logits)
    z, log_q, log_w = weighted_samples(q, 4, torch.Generator().manual_seed(0))
    assert z.shape == (12, 3, 2) and log_q.shape == log_w.shape == (12, 3)
    torch.testing.assert_close(log_w.exp().sum(0), torch.ones(3))
    torch.testing.assert_close(log_q, q.log_prob(z))
    # draws 4m..4m+3 come from component m: the weight of a draw is w_m / 4
    torch.testing.assert_close(log_w[4:8], (q.log_weights[:, 1] - math.log(4)).expand(4, 3))
    # E_Q[z] = sum_m w_m mu_m; the stratified estimate is exact in expectation and carries a weight gradient
    (log_w.exp().unsqueeze(-1) * z).sum().backward()
    assert logits.grad is not None and logits.grad.abs().sum() > 0


def test_mixture_kl_monte_carlo_matches_quadrature():
    loc, log_scale, logits = toy_mixture(m=3, k=1)
    q = Mixture(DiagonalGaussian(loc, log_scale), logits)
    p = DiagonalGaussian(torch.tensor([0.5]), torch.tensor([0.2]))
    grid = torch.linspace(-15, 15, 200001).unsqueeze(-1)
    log_q, log_p = q.log_prob(grid), p.log_prob(grid)
    exact = torch.trapezoid(log_q.exp() * (log_q - log_p), grid.squeeze(-1))
    z, lq, lw = weighted_samples(q, 20000, torch.Generator().manual_seed(0))
    estimate = rate(q, p, z, lq, lw)
    torch.testing.assert_close(estimate, exact, atol=0.03, rtol=0)


def test_mog_prior_density_is_the_mixture():
    model = VAEModel(VAEConfig(prior="mog", mog_components=4, latent_dim=3, encoder_hidden=[8], decoder_hidden=[8]))
    prior = model.prior_distribution()
    z = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float32)
    module = model.prior
    for i in range(6):
        want = brute_force_log_density(module.loc.double(), module.log_scale.double(), module.logits.double(), z[i].double())
        torch.testing.assert_close(prior.log_prob(z[i]).double(), want, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("posterior", ["gaussian", "mixture"])
def test_vampprior_density_is_the_mixture_of_encoder_posteriors(posterior):
    config = VAEConfig(
        prior="vampprior", vampprior_pseudo_inputs=5, posterior=posterior, num_components=2,
        image_size=4, latent_dim=3, encoder_hidden=[8], decoder_hidden=[8],
    )
    model = VAEModel(config).double()
    prior = model.prior_distribution()
    z = torch.randn(7, 3, generator=torch.Generator().manual_seed(0))
    u = model.prior.pseudo_inputs.clamp(0, 1)
    per_input = torch.stack([model.encoder(u[p : p + 1]).log_prob(z.unsqueeze(1)).squeeze(1) for p in range(5)])
    want = torch.logsumexp(per_input, 0) - math.log(5)
    torch.testing.assert_close(prior.log_prob(z), want)
    # the pseudo-inputs learn through the prior density
    prior.log_prob(z).sum().backward()
    assert model.prior.pseudo_inputs.grad.abs().sum() > 0


def test_mixture_posterior_with_identical_heads_equals_gaussian_elbo():
    """With all M heads equal, Q = q_1: the mixture ELBO (per-component form) equals the Gaussian ELBO."""
    kw = dict(image_size=4, latent_dim=3, encoder_hidden=[8], decoder_hidden=[8], parameterization="exp")
    mix = VAEModel(VAEConfig(posterior="mixture", num_components=3, **kw)).double()
    gauss = VAEModel(VAEConfig(**kw)).double()
    with torch.no_grad():
        gauss.decoder.load_state_dict(mix.decoder.state_dict())
        conditional = gauss.encoder.conditional  # the Gaussian's MLP; its normalization is 'none' here
        conditional[0].load_state_dict(mix.encoder[0].state_dict())
        last = mix.encoder[-1]
        k = 3
        # head m's outputs are rows [6m, 6m+6) (loc then scale); make every head equal to head 0
        for m in range(1, 3):
            last.weight[6 * m : 6 * m + 6] = last.weight[:6]
            last.bias[6 * m : 6 * m + 6] = last.bias[:6]
        conditional[-1].weight.copy_(last.weight[: 2 * k])
        conditional[-1].bias.copy_(last.bias[: 2 * k])
    x = (torch.rand(5, 16, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    # same noise for both: 2000 draws per component vs 6000 Gaussian draws
    mix.config.train_samples, gauss.config.train_samples = 2000, 6000
    out_m = mix(x, generator=torch.Generator().manual_seed(1))
    out_g = gauss(x, generator=torch.Generator().manual_seed(1))
    # log Q(z) = log q_1(z) exactly; the rate is Monte Carlo for the mixture, closed form for the Gaussian
    z = out_m.latents
    torch.testing.assert_close(mix.encode(x).log_prob(z), gauss.encode(x).log_prob(z))
    torch.testing.assert_close(out_m.rate_per_example, out_g.rate_per_example, atol=0.05, rtol=0)
    torch.testing.assert_close(out_m.elbo_per_example, out_g.elbo_per_example, atol=0.1, rtol=0)


@pytest.mark.parametrize("posterior", ["mixture", "rme"])
def test_iwae_for_mixtures_matches_elbo_at_k1_and_tightens(posterior):
    kw = dict(image_size=4, latent_dim=2, encoder_hidden=[8], decoder_hidden=[8], num_components=3)
    model = VAEModel(VAEConfig(posterior=posterior, **kw)).double().eval()
    model.encoder.num_active.fill_(3) if posterior == "rme" else None
    x = (torch.rand(4, 16, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    g = torch.Generator().manual_seed(0)

    def bound(k, reps):
        a, b = model.log_weights(x, k * reps, generator=g)
        log_w = (a - b).reshape(reps, k, -1)
        return (torch.logsumexp(log_w, 1) - math.log(k)).mean(0)

    model.config.train_samples = 2000
    elbo = model(x, generator=g).elbo_per_example
    b1, b50 = bound(1, 8000), bound(50, 200)
    # IWAE_1 with z ~ Q (component drawn per sample) estimates the same ELBO as the stratified
    # per-component form; IWAE_k increases with k
    torch.testing.assert_close(b1, elbo, atol=0.3, rtol=0)
    assert torch.all(b50 > b1 + 0.1)


@pytest.mark.parametrize(
    "posterior,prior",
    [("mixture", "standard_normal"), ("rme", "mog"), ("iaf", "standard_normal"), ("gaussian", "vampprior"), ("iaf", "mog")],
)
def test_importance_weights_are_unbiased_against_quadrature(posterior, prior):
    """With one latent dimension p(x) = int p(x|z) p(z) dz is computable on a grid. The importance
    weights of ``log_weights`` (the evaluation contract) must satisfy E_q[w] = p(x), which holds only
    if log q(z|x) is the exact density of the draws; their log-mean-exp (the IWAE bound) approaches
    log p(x)."""
    config = VAEConfig(
        posterior=posterior, prior=prior, image_size=3, latent_dim=1, encoder_hidden=[8], decoder_hidden=[8],
        num_components=3, mog_components=3, vampprior_pseudo_inputs=4, iaf_hidden=[4],
    )
    model = VAEModel(config).double().eval()
    with torch.no_grad():
        # a flatter model keeps the weights' variance (hence the test's standard error) small
        for parameter in model.parameters():
            parameter.mul_(0.3)
    if posterior == "rme":
        model.encoder.num_active.fill_(3)
    x = (torch.rand(3, 9, generator=torch.Generator().manual_seed(0)) > 0.5).double()
    grid = torch.linspace(-12, 12, 20001).reshape(-1, 1, 1).expand(-1, 3, 1)
    n = 20000
    with torch.no_grad():
        log_joint = model.decode(grid).log_prob(x) + model.prior_distribution().log_prob(grid)
        exact = torch.logsumexp(log_joint, 0) + math.log(24 / 20000)
        a, b = model.log_weights(x, n, generator=torch.Generator().manual_seed(0))
    ratio = torch.exp(a - b - exact)
    standard_error = ratio.std(0) / math.sqrt(n)
    assert torch.all(standard_error < 0.01)
    assert torch.all((ratio.mean(0) - 1).abs() < 4 * standard_error)
    iwae = torch.logsumexp(a - b, 0) - math.log(n)
    torch.testing.assert_close(iwae, exact, atol=0.1, rtol=0)
