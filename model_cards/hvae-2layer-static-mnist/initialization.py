"""Initial values of every parameter and buffer type the models use, for ``_init_weights``.

``from_pretrained`` builds models on the meta device and then calls ``_init_weights`` on each
module, skipping tensors loaded from the checkpoint, so every tensor a module owns must be set here
(masks included, though they are also saved)."""

from torch import nn
from transformers import initialization as init

from .iaf import MaskedLinear
from .kl_amplitude import init_amplitude_normalization
from .pixelcnn import MaskedConv2d
from .priors import MixtureOfGaussiansPrior
from .rme import RecursiveMixturePosterior
from .vampprior import PSEUDO_INPUT_INIT_MEAN, PSEUDO_INPUT_INIT_STD, VampPrior


def init_module(module):
    """LeCun-normal weights (std fan_in^-1/2) and zero biases for linear and convolution layers; the
    documented starts of masks, mixture priors, pseudo-inputs and the RME stage counter."""
    if isinstance(module, (nn.Linear, nn.Conv2d)):
        init.normal_(module.weight, std=(module.weight[0].numel()) ** -0.5)
        init.zeros_(module.bias)
    if isinstance(module, (MaskedLinear, MaskedConv2d)):
        init.copy_(module.mask, module.build_mask())
    if isinstance(module, MixtureOfGaussiansPrior):
        init.normal_(module.loc)
        init.zeros_(module.log_scale)
        init.zeros_(module.logits)
    if isinstance(module, VampPrior):
        init.normal_(module.pseudo_inputs, mean=PSEUDO_INPUT_INIT_MEAN, std=PSEUDO_INPUT_INIT_STD)
    if isinstance(module, RecursiveMixturePosterior):
        init.constant_(module.num_active, 1)
    init_amplitude_normalization(module)
