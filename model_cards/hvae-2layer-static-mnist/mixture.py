"""Finite mixtures sum_m w_m q_m(z) of any component distribution (mixture posteriors, MoG prior, VampPrior).

log Q(z) = logsumexp_m (log w_m + log q_m(z)). Drawing from Q picks a component per draw (Gumbel-max
on the weight logits, seedable) and then draws from that component, so ``rsample`` is pathwise in the
components' parameters but carries no gradient to the weights. The ELBO of a mixture posterior is
therefore estimated in the per-component-expectation form (RME paper; methods.md §2)

    ELBO(Q) = sum_m w_m E_{q_m}[log p(x, z) - log Q(z | x)],

with reparameterized draws from every component (``rsample_weighted``): the weights enter linearly
and get exact gradients. The importance-weighted bound with these stratified draws,
log sum_{m,i} (w_m / k) p(x, z_mi) / Q(z_mi | x), is unbiased inside the log as well, hence also a
lower bound on log p(x).
"""

import math

import torch
from torch.distributions import Distribution, constraints

from .gaussian_posterior import Posterior
from .networks import MLP
from .parameterizations import gaussian_from_raw


class Mixture(Distribution):
    """Q(z) = sum_m softmax(logits)_m q_m(z).

    ``components`` has batch shape (..., M) and event shape (K,); ``logits`` has shape (..., M) (or
    broadcasts to it). Components may themselves be mixtures (a VampPrior over a mixture encoder).
    """

    arg_constraints = {"logits": constraints.real}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, components, logits):
        self.components = components
        self.logits = logits.expand(components.batch_shape)
        self.log_weights = torch.log_softmax(self.logits, -1)
        super().__init__(components.batch_shape[:-1], components.event_shape, validate_args=False)

    @property
    def num_components(self):
        return self.logits.shape[-1]

    @property
    def weights(self):
        return self.log_weights.exp()

    @property
    def mean(self):
        return (self.weights.unsqueeze(-1) * self.components.mean).sum(-2)

    def log_prob(self, value):
        return torch.logsumexp(self.log_weights + self.components.log_prob(value.unsqueeze(-2)), -1)

    def component_log_prob(self, value):
        """log q_m(z) for every component m, shape (..., M)."""
        return self.components.log_prob(value.unsqueeze(-2))

    def rsample(self, sample_shape=torch.Size(), generator=None):
        """z ~ Q: a component per draw by Gumbel-max, then its (reparameterized) draw."""
        shape = torch.Size(sample_shape) + self.logits.shape
        uniform = torch.rand(shape, dtype=self.logits.dtype, device=self.logits.device, generator=generator)
        index = (self.logits - torch.log(-torch.log(uniform.clamp_min(torch.finfo(uniform.dtype).tiny)))).argmax(-1)
        draws = self.components.rsample(sample_shape, generator=generator)  # (*sample, ..., M, K)
        index = index[..., None, None].expand(*index.shape, 1, draws.shape[-1])
        return draws.gather(-2, index).squeeze(-2)

    def sample(self, sample_shape=torch.Size(), generator=None):
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def rsample_weighted(self, num_samples, generator=None):
        """Stratified draws for E_Q[f] = sum_m w_m E_{q_m}[f]: ``num_samples`` reparameterized draws
        from every component. Returns z (M * num_samples, ..., K), log Q(z) and the log weight
        log(w_m / num_samples) of each draw, both (M * num_samples, ...)."""
        draws = self.components.rsample((num_samples,), generator=generator)  # (n, ..., M, K)
        z = draws.movedim(-2, 0).reshape(-1, *draws.shape[1:-2], draws.shape[-1])
        log_weight = self.log_weights.movedim(-1, 0).unsqueeze(1) - math.log(num_samples)
        log_weight = log_weight.expand(self.num_components, num_samples, *self.batch_shape).reshape(-1, *self.batch_shape)
        return z, self.log_prob(z), log_weight


class MixturePosterior(MLP, Posterior):
    """Jointly trained mixture of M diagonal Gaussian heads on one MLP trunk (the non-recursive
    baseline of the RME paper): the trunk's last linear layer emits M (h_loc, h_scale) pairs and M
    weight logits, q(z|x) = sum_m softmax(logits(x))_m N(mu_m(x), sigma_m(x)^2). Every head uses the
    configured scale parameterization."""

    def __init__(self, config, in_features=None):
        in_features = config.num_pixels if in_features is None else in_features
        out = config.num_components * (2 * config.latent_dim + 1)
        super().__init__(in_features, config.encoder_hidden, out, config.activation)
        self.num_components, self.latent_dim = config.num_components, config.latent_dim
        self.parameterization = config.parameterization

    def forward(self, x):
        out = super().forward(x)
        heads, logits = out.split([out.shape[-1] - self.num_components, self.num_components], dim=-1)
        h_loc, h_scale = heads.reshape(*heads.shape[:-1], self.num_components, 2 * self.latent_dim).chunk(2, dim=-1)
        return Mixture(gaussian_from_raw(self.parameterization, h_loc, h_scale), logits)
