"""The VAE: q(z|x) = posterior(x), p(z) = prior, p(x|z) = decoder(z), each chosen by name in the config
(Gaussian / IAF / mixture / RME posteriors, standard normal / MoG / VampPrior priors, MLP / PixelCNN
decoders with Bernoulli or discretized-logistic pixels).

Kingma & Welling 2014; importance-weighted objective from Burda et al. 2016 (IWAE); rate and
distortion reported separately as in Alemi et al. 2018 ("Fixing a Broken ELBO").
The API follows diffusers' AutoencoderKL: ``encode`` returns the posterior distribution,
``decode`` returns the likelihood p(x|z).
"""

from dataclasses import dataclass
from typing import Optional

import torch
from transformers import PreTrainedModel
from transformers.utils import ModelOutput

from .bounds import rate, sample_with_log_prob, weighted_samples
from .configuration_vae import VAEConfig
from .decoders import DECODERS
from .initialization import init_module
from .inputs import flatten_images
from .likelihoods import LIKELIHOODS
from .objectives import OBJECTIVES
from .posteriors import POSTERIORS
from .priors import PRIORS


@dataclass
class VAEOutput(ModelOutput):
    """Per-batch means (``loss``, ``elbo``, ``rate``, ``distortion``) and per-example values.

    ``elbo = -(distortion + rate)``; ``iwae`` is the k-sample bound when ``train_samples > 1``.
    ``latents`` are the draws the bound used: (k, B, K), or (M k, B, K) for mixture posteriors
    (k draws from each component).
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
        init_module(module)


class VAEModel(VAEPreTrainedModel):
    def __init__(self, config: VAEConfig):
        super().__init__(config)
        self.encoder = POSTERIORS.get(config.posterior)(config)
        self.decoder = DECODERS.get(config.decoder_type)(config)
        self.prior = PRIORS.get(config.prior)(config)
        self.post_init()

    def _flatten(self, pixel_values):
        x = flatten_images(pixel_values, self.config.num_pixels, dtype=self.dtype)
        LIKELIHOODS.get(self.config.likelihood).check_support(x)
        return x

    def encode(self, pixel_values):
        """q(z | x) as a distribution object (rsample / mean; log_prob except for flows)."""
        return self.encoder(self._flatten(pixel_values))

    def decode(self, z):
        """p(x | z) as a distribution over flattened images."""
        return self.decoder(z)

    def prior_distribution(self):
        return self.prior(self.dtype, self.device, encoder=self.encoder)

    def begin_step(self, step):
        """Training-loop hook before optimizer step ``step``: staged posteriors (RME) switch stages."""
        self.encoder.begin_step(step)

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
        z, log_q = sample_with_log_prob(self.encode(x), num_samples, generator)
        log_px_z = self.decode(z).log_prob(x)
        return log_px_z, log_q - self.prior_distribution().log_prob(z)

    def forward(self, pixel_values, generator=None, return_dict=True):
        config = self.config
        x = self._flatten(pixel_values)
        posterior = self.encode(x)
        prior = self.prior_distribution()
        z, log_q, log_weight = weighted_samples(posterior, config.train_samples, generator)
        log_px_z = self.decode(z).log_prob(x)
        weight = log_weight.exp()
        distortion = -(weight * log_px_z).sum(0)
        kl = rate(posterior, prior, z, log_q, log_weight)
        elbo = -(distortion + kl)
        iwae = torch.logsumexp(log_weight + log_px_z - log_q + prior.log_prob(z), 0)
        # With a KL-amplitude normalization the objective pays only the rate it does not fix.
        loss = OBJECTIVES.get(config.objective)(distortion, self.encoder.penalized_rate(posterior, kl), iwae, config)
        auxiliary = self.encoder.auxiliary_loss(
            x, lambda latents: self.decode(latents).log_prob(x), prior, config.train_samples, generator
        )
        if auxiliary is not None:
            loss = loss + auxiliary.mean()
        out = VAEOutput(
            loss=loss,
            elbo=elbo.mean(),
            rate=kl.mean(),
            distortion=distortion.mean(),
            iwae=iwae.mean() if config.train_samples > 1 else None,
            elbo_per_example=elbo,
            rate_per_example=kl,
            distortion_per_example=distortion,
            latents=z,
        )
        return out if return_dict else out.to_tuple()
