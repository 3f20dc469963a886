"""Inverse autoregressive flow (IAF) posterior: Kingma, Salimans, Jozefowicz, Chen, Sutskever, Welling,
"Improved Variational Inference with Inverse Autoregressive Flow", NeurIPS 2016.

The encoder emits a diagonal Gaussian q(z_0 | x) (any scale parameterization) and a context h(x).
Each of T steps runs a MADE (Germain et al. 2015) on (z_{t-1}, h) giving (m_t, s_t), where output i
sees only z_{t-1, <i}, and applies the numerically stable IAF update

    sigma_t = sigmoid(s_t + GATE_OFFSET),   z_t = sigma_t * z_{t-1} + (1 - sigma_t) * m_t,

whose Jacobian is triangular with diagonal sigma_t, so

    log q(z_T | x) = log q(z_0 | x) - sum_t sum_i log sigma_{t,i}.

The ordering of z is reversed between steps (as in the paper) so every dimension can depend on
every other one after two steps. A sample and its log-density come from the same pass
(``rsample_with_log_prob``); the density of an arbitrary z would need K sequential inversions per
step and is not provided.
"""

import torch
import torch.nn.functional as F
from torch import nn
from torch.distributions import Distribution, constraints

from .gaussian_posterior import Posterior
from .networks import ACTIVATIONS, MLP
from .parameterizations import gaussian_from_raw

#: added to s before the sigmoid so each step starts close to the identity (sigmoid(2) = 0.88; the
#: paper recommends initializing s "sufficiently positive, such as close to +1 or +2")
GATE_OFFSET = 2.0
#: draws behind ``IAFDistribution.mean`` (a fixed-seed Monte Carlo estimate of E_q[z])
MEAN_SAMPLES = 128


class MaskedLinear(nn.Linear):
    """y = x (W * mask)^T + b, with the 0/1 mask a persistent buffer (saved with the weights)."""

    def __init__(self, in_degrees, out_degrees, strict):
        super().__init__(len(in_degrees), len(out_degrees))
        self.in_degrees, self.out_degrees, self.strict = list(in_degrees), list(out_degrees), strict
        self.register_buffer("mask", self.build_mask())

    def build_mask(self):
        """MADE connectivity: out unit j sees in unit i iff d_in(i) <= d_out(j) (< when ``strict``)."""
        out_d, in_d = torch.tensor(self.out_degrees)[:, None], torch.tensor(self.in_degrees)[None, :]
        return (in_d < out_d if self.strict else in_d <= out_d).to(self.weight.dtype)

    def forward(self, x):
        return F.linear(x, self.weight * self.mask, self.bias)


class MADE(nn.Module):
    """Autoregressive network z (K) [+ context h] -> (m, s) (K each) with output i depending on z_{<i} only.

    Input degrees are 1..K, hidden degrees cycle through 0..K-1 (degree-0 units see only the context),
    outputs have degrees 1..K with strict connections, so output i sees inputs of degree < i.
    """

    def __init__(self, latent_dim, hidden, context_dim, activation):
        super().__init__()
        in_degrees = list(range(1, latent_dim + 1))
        layers, previous = [], in_degrees
        for width in hidden:
            degrees = [k % latent_dim for k in range(width)]
            layers.append(MaskedLinear(previous, degrees, strict=False))
            previous = degrees
        self.hidden = nn.ModuleList(layers)
        self.context = nn.Linear(context_dim, hidden[0])
        self.activation = ACTIVATIONS.get(activation)()
        self.out = MaskedLinear(previous, in_degrees + in_degrees, strict=True)

    def forward(self, z, h):
        a = self.activation(self.hidden[0](z) + self.context(h))
        for layer in self.hidden[1:]:
            a = self.activation(layer(a))
        return self.out(a).chunk(2, dim=-1)


class IAFStep(nn.Module):
    def __init__(self, latent_dim, hidden, context_dim, activation):
        super().__init__()
        self.made = MADE(latent_dim, hidden, context_dim, activation)

    def forward(self, z, h):
        """(z_t, sum_i log sigma_i) for one step; the log-determinant of dz_t/dz_{t-1}."""
        m, s = self.made(z, h)
        gate = s + GATE_OFFSET
        sigma = torch.sigmoid(gate)
        return sigma * z + (1 - sigma) * m, F.logsigmoid(gate).sum(-1)


class IAFFlow(nn.ModuleList):
    def forward(self, z, h):
        """z_T and log |det dz_T/dz_0| (reversing the order of z between steps)."""
        log_det = torch.zeros(z.shape[:-1], dtype=z.dtype, device=z.device)
        for t, step in enumerate(self):
            if t > 0:
                z = z.flip(-1)
            z, step_log_det = step(z, h)
            log_det = log_det + step_log_det
        return z, log_det


class IAFDistribution(Distribution):
    """q(z_T | x): the flow applied to the Gaussian base q(z_0 | x) with context h."""

    arg_constraints = {}
    support = constraints.real_vector
    has_rsample = True

    def __init__(self, base, flow, context):
        self.base, self.flow, self.context = base, flow, context
        super().__init__(base.batch_shape, base.event_shape, validate_args=False)

    def rsample_with_log_prob(self, num_samples, generator=None):
        """z ~ q of shape (num_samples, *batch, K) and log q(z), from one pass through the flow."""
        z0 = self.base.rsample((num_samples,), generator=generator)
        z, log_det = self.flow(z0, self.context)
        return z, self.base.log_prob(z0) - log_det

    def rsample(self, sample_shape=torch.Size(), generator=None):
        z0 = self.base.rsample(sample_shape, generator=generator)
        return self.flow(z0, self.context)[0]

    def sample(self, sample_shape=torch.Size(), generator=None):
        with torch.no_grad():
            return self.rsample(sample_shape, generator)

    def log_prob(self, value):
        raise NotImplementedError(
            "the IAF density of an arbitrary z needs K sequential inversions per step; use "
            "rsample_with_log_prob (a sample and its log-density from one pass)"
        )

    @property
    def mean(self):
        """E_q[z] estimated with MEAN_SAMPLES draws from a fixed-seed generator (no closed form)."""
        generator = torch.Generator(device=self.base.loc.device).manual_seed(0)
        with torch.no_grad():
            return self.rsample((MEAN_SAMPLES,), generator=generator).mean(0)


class IAFPosterior(Posterior):
    """Encoder MLP(x) -> (Gaussian base q(z_0|x), context h(x)), then ``iaf_steps`` IAF steps, each a
    MADE with hidden widths ``iaf_hidden``; the context has ``iaf_hidden[0]`` units."""

    def __init__(self, config, in_features=None):
        super().__init__()
        in_features = config.num_pixels if in_features is None else in_features
        self.latent_dim, self.parameterization = config.latent_dim, config.parameterization
        context_dim = config.iaf_hidden[0]
        self.net = MLP(in_features, config.encoder_hidden, 2 * config.latent_dim + context_dim, config.activation)
        self.flow = IAFFlow(
            IAFStep(config.latent_dim, config.iaf_hidden, context_dim, config.activation) for _ in range(config.iaf_steps)
        )

    def forward(self, x):
        out = self.net(x)
        h_loc, h_scale, context = out.split([self.latent_dim, self.latent_dim, out.shape[-1] - 2 * self.latent_dim], -1)
        return IAFDistribution(gaussian_from_raw(self.parameterization, h_loc, h_scale), self.flow, context)
