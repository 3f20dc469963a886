"""The VAE: q(z|x) = parameterization(MLP_enc(x)), p(z) = prior, p(x|z) = likelihood(MLP_dec(z)).

Kingma & Welling 2014; importance-weighted objective from Burda et al. 2016 (IWAE); rate and
distortion reported separately as in Alemi et al. 2018 ("Fixing a Broken ELBO").
The API follows diffusers' AutoencoderKL: ``encode`` returns the posterior distribution,
``decode`` returns the likelihood p(x|z).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .bounds import logmeanexp, rate
from .configuration_vae import VAEConfig
from .inputs import flatten_images
from .kl_amplitude import amplitude_normalization_from_config, init_amplitude_normalization
from .likelihoods import LIKELIHOODS
from .networks import MLP
from .parameterizations import gaussian_from_raw
from .priors import PRIORS


@dataclass
class VAEOutput(ModelOutput):
    """Per-batch means (``loss``, ``elbo``, ``rate``, ``distortion``) and per-example values.

    ``elbo = -(distortion + rate)``; ``iwae`` is the k-sample bound when ``train_samples > 1``.
    """

    loss: Optional[torch.Tensor] = None
    elbo: Optional[torch.Tensor] = None
    rate: Optional[torch.Tensor] = None
    distortion: Optional[torch.Tensor] = None
    iwae: Optional[torch.Tensor] = None
    elbo_per_example: Optional[torch.Tensor] = None
    rate_per_example: Optional[torch.Tensor] = None
    distortion_per_example: Optional[torch.Tensor] = None
    latents: Optional[torch.Tensor] = None


class VAEPreTrainedModel(PreTrainedModel):
    config_class = VAEConfig
    base_model_prefix = "vae"
    main_input_name = "pixel_values"
    evaluation_kind = "generative"

    def _init_weights(self, module):
        # from_pretrained builds on the meta device: every tensor not in the checkpoint must be set here.
        if isinstance(module, torch.nn.Linear):
            init.normal_(module.weight, std=module.in_features**-0.5)
            init.zeros_(module.bias)
        init_amplitude_normalization(module)


class VAEModel(VAEPreTrainedModel):
    def __init__(self, config: VAEConfig):
        super().__init__(config)
        likelihood = LIKELIHOODS.get(config.likelihood)
        self.encoder = MLP(config.num_pixels, config.encoder_hidden, 2 * config.latent_dim, config.activation)
        self.decoder = MLP(
            config.latent_dim, config.decoder_hidden, likelihood.params_per_pixel * config.num_pixels, config.activation
        )
        self.prior = PRIORS.get(config.prior)(config)
        self.amplitude_normalization = amplitude_normalization_from_config(config, config.latent_dim)
        self.post_init()

    def _flatten(self, pixel_values):
        x = flatten_images(pixel_values, self.config.num_pixels)
        LIKELIHOODS.get(self.config.likelihood).check_support(x)
        return x

    def encode(self, pixel_values):
        """q(z | x) as a distribution object (rsample / log_prob / mean)."""
        x = self._flatten(pixel_values)
        h_loc, h_scale = self.amplitude_normalization(*self.encoder(x).chunk(2, dim=-1))
        return gaussian_from_raw(self.config.parameterization, h_loc, h_scale)

    def decode(self, z):
        """p(x | z) as a distribution over flattened images."""
        return LIKELIHOODS.get(self.config.likelihood)(self.decoder(z))

    def prior_distribution(self):
        weight = self.decoder[0].weight
        return self.prior(weight.dtype, weight.device)

    @torch.no_grad()
    def sample(self, num_samples, generator=None, mean=True):
        """Draw images from the model: z ~ p(z), then the decoder's mean (or a sample) as (n, C, H, W)."""
        z = self.prior_distribution().sample((num_samples,), generator=generator)
        likelihood = self.decode(z)
        x = likelihood.mean if mean else likelihood.sample(generator=generator)
        c, s = self.config.num_channels, self.config.image_size
        return x.reshape(num_samples, c, s, s)

    def log_weights(self, pixel_values, num_samples, generator=None):
        """Importance terms for k = ``num_samples`` draws z_i ~ q(z|x), each of shape (k, B):
        log p(x | z_i) and log q(z_i | x) - log p(z_i). log w_i = first - second."""
        x = self._flatten(pixel_values)
        posterior = self.encode(x)
        z = posterior.rsample((num_samples,), generator=generator)
        log_px_z = self.decode(z).log_prob(x)
        prior = self.prior_distribution()
        return log_px_z, posterior.log_prob(z) - prior.log_prob(z)

    def forward(self, pixel_values, generator=None, return_dict=True):
        config = self.config
        x = self._flatten(pixel_values)
        posterior = self.encode(x)
        prior = self.prior_distribution()
        z = posterior.rsample((config.train_samples,), generator=generator)
        log_px_z = self.decode(z).log_prob(x)
        distortion = -log_px_z.mean(0)
        kl = rate(posterior, prior, z)
        elbo = -(distortion + kl)
        iwae = None
        if config.train_samples > 1:
            iwae = logmeanexp(log_px_z - (posterior.log_prob(z) - prior.log_prob(z)))
        penalized_rate = self.amplitude_normalization.penalized_rate(posterior, kl)  # kl unless normalized
        loss = -iwae.mean() if config.objective == "iwae" else (distortion + config.beta * penalized_rate).mean()
        out = VAEOutput(
            loss=loss,
            elbo=elbo.mean(),
            rate=kl.mean(),
            distortion=distortion.mean(),
            iwae=None if iwae is None else iwae.mean(),
            elbo_per_example=elbo,
            rate_per_example=kl,
            distortion_per_example=distortion,
            latents=z,
        )
        return out if return_dict else out.to_tuple()
