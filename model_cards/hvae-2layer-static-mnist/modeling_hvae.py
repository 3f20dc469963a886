"""Hierarchical VAE with L = 1..3 stochastic layers (Burda et al. 2016, "Importance Weighted
Autoencoders", appendix architecture; methods.md §5).

    q(z_{1:L} | x) = q(z_1 | x) prod_{l>1} q(z_l | z_{l-1})            (bottom-up inference)
    p(x, z_{1:L})  = p(z_L) prod_{l<L} p(z_l | z_{l+1}) p(x | z_1)      (top-down generation)

with p(z_L) = N(0, I) and every other conditional a factorized Gaussian from an MLP. The rate splits
per layer, R = sum_l R_l with R_l = E_q[log q(z_l | z_{l-1}) - log p(z_l | z_{l+1})]: Monte Carlo
with the draws of the bound for l < L (p(z_l | z_{l+1}) depends on the draw of z_{l+1}, which depends
on z_l), and for the top layer E_{q(z_{L-1}|.)} KL(q(z_L | z_{L-1}) || N(0, I)) with the KL in
closed form. The first layer of p(x | z_1) is a ``GaussianLinear`` whose gradient estimator is the
config's ``decoder_estimator`` (``rt`` or ``r2g2``, ``vaezoo.estimators``).
"""

import math
from dataclasses import dataclass
from typing import Optional

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .bounds import rate
from .configuration_hvae import HVAEConfig
from .distributions import StandardNormal
from .estimators import GaussianLinear
from .gaussian_posterior import GaussianConditional
from .initialization import init_module
from .inputs import flatten_images
from .likelihoods import LIKELIHOODS
from .networks import ACTIVATIONS, MLP
from .objectives import OBJECTIVES


@dataclass
class HVAEOutput(ModelOutput):
    """Per-batch means and per-example values; ``rate = rate_per_layer.sum()``, ``elbo = -(distortion + rate)``.

    ``rate_per_layer`` has shape (L,) (layer 1 = closest to x); ``iwae`` is the k-sample bound when
    ``train_samples > 1``; ``latents`` are the draws z_1 .. z_L, each (k, B, K_l).
    """

    loss: Optional[torch.Tensor] = None
    elbo: Optional[torch.Tensor] = None
    rate: Optional[torch.Tensor] = None
    distortion: Optional[torch.Tensor] = None
    iwae: Optional[torch.Tensor] = None
    rate_per_layer: Optional[torch.Tensor] = None
    elbo_per_example: Optional[torch.Tensor] = None
    rate_per_example: Optional[torch.Tensor] = None
    distortion_per_example: Optional[torch.Tensor] = None
    rate_per_layer_per_example: Optional[torch.Tensor] = None
    latents: Optional[tuple] = None


class HVAEDecoder(nn.Module):
    """p(x | z_1): ``latent_to_hidden`` (the swappable estimator layer), activation, then an MLP to the
    pixel likelihood's parameters."""

    def __init__(self, config):
        super().__init__()
        widths = config.hidden_dims[0][::-1]
        self.latent_to_hidden = GaussianLinear(config.latent_dims[0], widths[0], estimator=config.decoder_estimator)
        self.activation = ACTIVATIONS.get(config.activation)()
        likelihood = LIKELIHOODS.get(config.likelihood)
        self.hidden_to_pixels = MLP(widths[0], widths[1:], likelihood.params_per_pixel * config.num_pixels, config.activation)
        self.likelihood = config.likelihood

    def forward(self, z1, distribution=None, generator=None):
        h = self.activation(self.latent_to_hidden(distribution, z1, generator))
        return LIKELIHOODS.get(self.likelihood)(self.hidden_to_pixels(h))


class HVAEPreTrainedModel(PreTrainedModel):
    config_class = HVAEConfig
    base_model_prefix = "hvae"
    main_input_name = "pixel_values"
    evaluation_kind = "generative"

    def _init_weights(self, module):
        # from_pretrained builds on the meta device: every tensor not in the checkpoint must be set here.
        init_module(module)


class HVAEModel(HVAEPreTrainedModel):
    def __init__(self, config: HVAEConfig):
        super().__init__(config)
        dims, hidden, act, par = config.latent_dims, config.hidden_dims, config.activation, config.parameterization
        inputs = [config.num_pixels] + dims[:-1]
        self.inference = nn.ModuleList(
            GaussianConditional(inputs[l], hidden[l], dims[l], act, par) for l in range(config.num_layers)
        )
        self.generative = nn.ModuleList(
            GaussianConditional(dims[l + 1], hidden[l + 1][::-1], dims[l], act, par) for l in range(config.num_layers - 1)
        )
        self.decoder = HVAEDecoder(config)
        self.post_init()

    def _flatten(self, pixel_values):
        x = flatten_images(pixel_values, self.config.num_pixels, dtype=self.dtype)
        LIKELIHOODS.get(self.config.likelihood).check_support(x)
        return x

    def top_prior(self):
        return StandardNormal(self.config.latent_dims[-1], dtype=self.dtype, device=self.device)

    def encode(self, pixel_values):
        """q(z_1 | x), the layer closest to the data (its mean feeds the active-units metric)."""
        return self.inference[0](self._flatten(pixel_values))

    def decode(self, z1, distribution=None, generator=None):
        """p(x | z_1); ``distribution`` is the Gaussian z_1 was drawn from, for the decoder's estimator."""
        return self.decoder(z1, distribution, generator)

    def _infer(self, x, num_samples, generator):
        """Bottom-up draws: lists of q(z_l | .) and z_l (k, B, K_l)."""
        posteriors, latents = [], []
        q = self.inference[0](x)
        z = q.rsample((num_samples,), generator=generator)
        posteriors.append(q)
        latents.append(z)
        for conditional in self.inference[1:]:
            q = conditional(z)
            z = q.rsample(generator=generator)
            posteriors.append(q)
            latents.append(z)
        return posteriors, latents

    def _log_priors(self, latents):
        """log p(z_l | z_{l+1}) for l < L and log p(z_L), each (k, B)."""
        conditionals = [p(z_above).log_prob(z) for p, z, z_above in zip(self.generative, latents[:-1], latents[1:])]
        return conditionals + [self.top_prior().log_prob(latents[-1])]

    @torch.no_grad()
    def sample(self, num_samples, generator=None, mean=True):
        """Ancestral sampling z_L ~ N(0, I), z_l ~ p(z_l | z_{l+1}), then the decoder's mean (or a sample)."""
        z = self.top_prior().sample((num_samples,), generator=generator)
        for conditional in reversed(self.generative):
            z = conditional(z).sample(generator=generator)
        likelihood = self.decode(z)
        x = likelihood.mean if mean else likelihood.sample(generator=generator)
        c, s = self.config.num_channels, self.config.image_size
        return x.reshape(num_samples, c, s, s)

    def log_weights(self, pixel_values, num_samples, generator=None):
        """Importance terms for k draws z_{1:L} ~ q, each (k, B): log p(x | z_1) and
        log q(z_{1:L} | x) - log p(z_{1:L}). log w = first - second."""
        x = self._flatten(pixel_values)
        posteriors, latents = self._infer(x, num_samples, generator)
        log_q = sum(q.log_prob(z) for q, z in zip(posteriors, latents))
        log_p = sum(self._log_priors(latents))
        return self.decode(latents[0], posteriors[0], generator).log_prob(x), log_q - log_p

    def forward(self, pixel_values, generator=None, return_dict=True):
        config = self.config
        x = self._flatten(pixel_values)
        k = config.train_samples
        posteriors, latents = self._infer(x, k, generator)
        log_px_z = self.decode(latents[0], posteriors[0], generator).log_prob(x)
        log_q = [q.log_prob(z) for q, z in zip(posteriors, latents)]
        log_p = self._log_priors(latents)
        lower = [(lq - lp).mean(0) for lq, lp in zip(log_q[:-1], log_p[:-1])]
        top = rate(posteriors[-1], self.top_prior(), latents[-1]).reshape(-1, x.shape[0]).mean(0)
        rate_per_layer = torch.stack(lower + [top], -1)  # (B, L)
        kl = rate_per_layer.sum(-1)
        distortion = -log_px_z.mean(0)
        elbo = -(distortion + kl)
        iwae = torch.logsumexp(log_px_z + sum(log_p) - sum(log_q), 0) - math.log(k)
        loss = OBJECTIVES.get(config.objective)(distortion, kl, iwae, config)
        out = HVAEOutput(
            loss=loss,
            elbo=elbo.mean(),
            rate=kl.mean(),
            distortion=distortion.mean(),
            iwae=iwae.mean() if k > 1 else None,
            rate_per_layer=rate_per_layer.mean(0),
            elbo_per_example=elbo,
            rate_per_example=kl,
            distortion_per_example=distortion,
            rate_per_layer_per_example=rate_per_layer,
            latents=tuple(latents),
        )
        return out if return_dict else out.to_tuple()
