"""Deep Variational Information Bottleneck classifier (Alemi, Fischer, Dillon & Murphy 2017).

Encoder q(z|x) = N(mu(x), diag sigma(x)^2) from an MLP with two heads (h_loc, h_scale) and a named
scale parameterization (``vaezoo/parameterizations.py``); decoder q(y|z) = softmax(W z + b);
prior r(z) = N(0, I). Training minimizes E_q[-log q(y|z)] + beta KL(q(z|x) || r(z)); the rate
KL(q(z|x) || r(z)) is reported per example in nats. Prediction averages the decoder's class
probabilities over S posterior samples: log (1/S) sum_s softmax(W z_s + b).

Slashed Normal variant (``amplitude_normalization`` != 'none', ``vaezoo/kl_amplitude.py``): the stdplus
encoder's raw outputs are the KL amplitude, normalized so the rate is a chosen delta (e.g. r log C nats);
the loss then pays beta times only the rate the normalization does not fix (``penalized_rate``), which is
zero for a full normalization with a fixed target: the fixed-rate VIB has no KL term.

``posterior_from_encoder_output`` is the single step from the encoder's raw outputs to q(z|x); the
amplitude normalization sits there.
"""

from dataclasses import dataclass
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .bounds import logmeanexp, rate
from .configuration_vib import VIBConfig
from .distributions import StandardNormal
from .estimators import GaussianLinear
from .inputs import check_labels, flatten_images
from .kl_amplitude import amplitude_normalization_from_config, init_amplitude_normalization
from .networks import ACTIVATIONS, MLP
from .parameterizations import gaussian_from_raw, raw_scale_for
from .score_function import score_function_surrogate


@dataclass
class VIBOutput(ModelOutput):
    """``logits`` (B, C) of this forward's first posterior sample; ``nll`` the mean cross-entropy
    over samples and batch; ``rate`` the mean KL(q(z|x) || N(0, I)) per example (nats);
    ``loss = nll + beta * penalized rate`` (the full rate without amplitude normalization)."""

    loss: Optional[torch.Tensor] = None
    logits: Optional[torch.Tensor] = None
    nll: Optional[torch.Tensor] = None
    rate: Optional[torch.Tensor] = None
    accuracy: Optional[torch.Tensor] = None
    rate_per_example: Optional[torch.Tensor] = None


class VIBPreTrainedModel(PreTrainedModel):
    config_class = VIBConfig
    base_model_prefix = "vib"
    main_input_name = "pixel_values"
    evaluation_kind = "classifier"

    def _init_weights(self, module):
        # from_pretrained builds on the meta device: every tensor not in the checkpoint must be set here.
        if isinstance(module, nn.Linear):
            init.normal_(module.weight, std=module.in_features**-0.5)
            init.zeros_(module.bias)
        if module is getattr(self, "scale_head", None):
            # The posterior starts at scale initial_scale (Deep VIB: softplus(rho - 5)).
            init.constant_(module.bias, raw_scale_for(self.config.parameterization, self.config.initial_scale))
        init_amplitude_normalization(module)


class VIBModel(VIBPreTrainedModel):
    def __init__(self, config: VIBConfig):
        super().__init__(config)
        hidden = config.encoder_hidden
        self.encoder = nn.Sequential(
            MLP(config.num_pixels, hidden[:-1], hidden[-1], config.activation), ACTIVATIONS.get(config.activation)()
        )
        self.loc_head = nn.Linear(hidden[-1], config.latent_dim)
        self.scale_head = nn.Linear(hidden[-1], config.latent_dim)
        self.amplitude_normalization = amplitude_normalization_from_config(config, config.latent_dim)
        self.decoder = GaussianLinear(config.latent_dim, config.num_classes, estimator=config.estimator)
        self.post_init()

    def encoder_output(self, x):
        """Raw encoder outputs (h_loc, h_scale), each (B, K), for flattened inputs x."""
        features = self.encoder(x)
        return self.loc_head(features), self.scale_head(features)

    def posterior_from_encoder_output(self, h_loc, h_scale):
        """q(z | x) from the raw encoder outputs (the one step a posterior variant replaces)."""
        return gaussian_from_raw(self.config.parameterization, *self.amplitude_normalization(h_loc, h_scale))

    def encode(self, pixel_values):
        """q(z | x) as a distribution object (rsample / log_prob / mean)."""
        x = flatten_images(pixel_values, self.config.num_pixels, dtype=self.dtype)
        return self.posterior_from_encoder_output(*self.encoder_output(x))

    def prior_distribution(self):
        weight = self.loc_head.weight
        return StandardNormal(self.config.latent_dim, dtype=weight.dtype, device=weight.device)

    def _sample_logits(self, posterior, num_samples, generator):
        z = posterior.rsample((num_samples,), generator=generator)
        return self.decoder(posterior, z, generator), z

    def forward(self, pixel_values, labels=None, generator=None, return_dict=True):
        config = self.config
        posterior = self.encode(pixel_values)
        logits, z = self._sample_logits(posterior, config.train_samples, generator)  # (S, B, C)
        kl = rate(posterior, self.prior_distribution(), z)
        loss = nll = accuracy = None
        if labels is not None:
            labels = check_labels(labels, config.num_classes, logits.shape[1])
            targets = labels.expand(logits.shape[0], -1)
            nll_per_sample = F.cross_entropy(logits.transpose(1, 2), targets, reduction="none")  # (S, B)
            nll = nll_per_sample.mean()
            penalized = self.amplitude_normalization.penalized_rate(posterior, kl)
            loss = nll + config.beta * penalized.mean() + score_function_surrogate(self, nll_per_sample)
            accuracy = (logits[0].argmax(-1) == labels).float().mean()
        out = VIBOutput(loss=loss, logits=logits[0], nll=nll, rate=kl.mean(), accuracy=accuracy, rate_per_example=kl)
        return out if return_dict else out.to_tuple()

    def predictive_log_probs(self, pixel_values, num_samples, generator=None):
        """log (1/S) sum_s softmax(W z_s + b), z_s ~ q(z|x), shape (B, C)."""
        logits, _ = self._sample_logits(self.encode(pixel_values), num_samples, generator)
        return logmeanexp(F.log_softmax(logits, -1), dim=0)
