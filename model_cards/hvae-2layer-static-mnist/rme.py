"""Recursive mixture estimator (RME) posterior: Kim & Pavlovic, "Recursive Inference for Variational
Autoencoders", NeurIPS 2020 (methods.md §2).

Q_M(z|x) = sum_m w_m(x) q_m(z|x), each q_m a diagonal Gaussian from its own encoder MLP (any scale
parameterization), w(x) = softmax of a small weight MLP restricted to the active components.
Components are added one at a time: stage m (1-based) covers optimizer steps
[(m-1) S, m S) with S = ``rme_stage_steps`` (the last stage runs to the end of training).
With Q_m = (1 - eps) Q_{m-1} + eps q, the functional gradient of KL(Q_m || p(z|x)) at eps = 0 is
-(ELBO(q) + KL(q || Q_{m-1})) + ELBO(Q_{m-1}), so in stage m >= 2

* the new component q_m maximizes  J_m = ELBO(q_m) + min(KL(q_m || Q_{m-1}), C)  (barrier
  C = ``rme_barrier``; the KL is estimated with the same reparameterized draws of q_m as its ELBO,
  against Q_{m-1} = the earlier components with the current weight logits renormalized over them,
  held fixed), and it enters the mixture ELBO with stopped gradients: J_m alone trains it;
* the weights, the decoder, the prior and (unless ``rme_freeze_previous``) the earlier components
  maximize the model's objective on ELBO(Q_m) (mixture ELBO in the per-component form, see
  ``vaezoo.mixture``). The decoder and prior also receive the gradient of ELBO(q_m) from J_m
  (design choice: both are lower bounds on log p(x)).

Stage 1 is a plain VAE (J_1 = ELBO(q_1) = ELBO(Q_1)). Out of training mode every active component
runs in the same forward pass, without stopped gradients: inference is one parallel pass. The
number of active components is a saved buffer, so a trained model reloads with all of them.
"""

import torch
from torch import nn

from .bounds import rate
from .distributions import DiagonalGaussian
from .gaussian_posterior import GaussianPosterior, Posterior
from .mixture import Mixture
from .networks import MLP


class RecursiveMixturePosterior(Posterior):
    def __init__(self, config, in_features=None):
        super().__init__()
        in_features = config.num_pixels if in_features is None else in_features
        self.components = nn.ModuleList(GaussianPosterior(config, in_features) for _ in range(config.num_components))
        self.weight_net = MLP(in_features, config.rme_weight_hidden, config.num_components, config.activation)
        self.barrier = config.rme_barrier
        self.stage_steps = config.rme_stage_steps
        self.freeze_previous = config.rme_freeze_previous
        self.register_buffer("num_active", torch.tensor(1))

    def begin_step(self, step):
        """Enter the stage of optimizer step ``step``: activate components 1..m and freeze the earlier
        ones (requires_grad False) when the recipe says so; the newest one always trains."""
        active = min(len(self.components), 1 + step // self.stage_steps)
        self.num_active.fill_(active)
        for m, component in enumerate(self.components):
            component.requires_grad_(not (self.freeze_previous and m < active - 1))

    def _mixture(self, gaussians, logits):
        loc = torch.stack([q.loc for q in gaussians], -2)
        log_scale = torch.stack([q.log_scale for q in gaussians], -2)
        return Mixture(DiagonalGaussian(loc, log_scale), logits[..., : len(gaussians)])

    def forward(self, x):
        """Q_m(z|x) over the m = ``num_active`` components."""
        active = int(self.num_active)
        gaussians = [component(x) for component in self.components[:active]]
        if self.training and active > 1:
            newest = gaussians[-1]
            gaussians[-1] = DiagonalGaussian(newest.loc.detach(), newest.log_scale.detach())
        return self._mixture(gaussians, self.weight_net(x))

    def auxiliary_loss(self, x, log_likelihood, prior, num_samples, generator=None):
        """-J_m per example for the newest component in training stages m >= 2, else None."""
        active = int(self.num_active)
        if not self.training or active == 1:
            return None
        newest = self.components[active - 1](x)
        with torch.no_grad():
            previous = self._mixture([c(x) for c in self.components[: active - 1]], self.weight_net(x))
        z = newest.rsample((num_samples,), generator=generator)
        log_q = newest.log_prob(z)
        elbo = log_likelihood(z).mean(0) - rate(newest, prior, z, log_q)
        divergence = (log_q - previous.log_prob(z)).mean(0)
        return -(elbo + divergence.clamp(max=self.barrier))
