"""Bayesian network bodies for classification, chosen by name (``BNNConfig.architecture``).

* ``mlp``: in -> hidden... -> classes, BayesLinear layers (the R2-G2 paper's BNN is 784-1024-1024-10
  ReLU, every layer mean-field Gaussian).
* ``cnn``: for each entry of ``conv_channels`` a same-padded BayesConv2d, the activation and a 2x2
  max-pool, then the ``hidden`` BayesLinear layers and the classifier. With R2-G2 the upper conv
  layers, where the output positions H'W' are fewer than the kernel entries k*k*C_in, get the
  Rao-Blackwellisation (solver ``BNNConfig.r2g2_solver``: ``direct`` or ``cg``); lower layers have full-rank patch matrices and fall back
  to exactly the RT that R2-G2 wraps (detected per example, see ``vaezoo/r2g2.py``).
"""

from torch import nn

from .bayes_layers import BayesConv2d, BayesianLayer, BayesLinear
from .networks import ACTIVATIONS
from .registry import Registry

BNN_ARCHITECTURES = Registry("architecture")


class BayesSequential(nn.Sequential):
    """nn.Sequential that hands the random-number generator to its Bayesian layers."""

    #: estimator places the body contains (config validation checks the estimator implements them)
    places = ("linear",)

    @classmethod
    def check_config(cls, config):
        """Raise a ValueError for config fields this body cannot be built with (none by default)."""

    def forward(self, x, generator=None):
        for layer in self:
            x = layer(x, generator) if isinstance(layer, BayesianLayer) else layer(x)
        return x

    def bayesian_layers(self):
        return [layer for layer in self if isinstance(layer, BayesianLayer)]


def _layer_options(config):
    return dict(
        estimator=config.estimator,
        parameterization=config.parameterization,
        prior_scale=config.prior_scale,
        initial_scale=config.initial_scale,
        config=config,
    )


def _dense_layers(config, width):
    layers = []
    for hidden in config.hidden:
        layers += [BayesLinear(width, hidden, **_layer_options(config)), ACTIVATIONS.get(config.activation)()]
        width = hidden
    layers.append(BayesLinear(width, config.num_classes, **_layer_options(config)))
    return layers


@BNN_ARCHITECTURES.register("mlp")
class BayesMLP(BayesSequential):
    places = ("linear",)

    def __init__(self, config):
        super().__init__(*_dense_layers(config, config.num_pixels))


@BNN_ARCHITECTURES.register("cnn")
class BayesCNN(BayesSequential):
    places = ("linear", "conv2d")

    @classmethod
    def check_config(cls, config):
        if config.kernel_size % 2 == 0:
            raise ValueError(f"kernel_size={config.kernel_size!r} is not valid; expected an odd size (same padding)")
        if config.image_size // 2 ** len(config.conv_channels) < 1:
            raise ValueError(
                f"conv_channels={config.conv_channels!r} is not valid: {len(config.conv_channels)} 2x2 poolings "
                f"do not fit image_size={config.image_size}"
            )

    def __init__(self, config):
        layers = [nn.Unflatten(1, (config.num_channels, config.image_size, config.image_size))]
        channels, size, k = config.num_channels, config.image_size, config.kernel_size
        for width in config.conv_channels:
            layers += [
                BayesConv2d(channels, width, k, padding=k // 2, **_layer_options(config)),
                ACTIVATIONS.get(config.activation)(),
                nn.MaxPool2d(2),
            ]
            channels, size = width, size // 2
        layers.append(nn.Flatten())
        super().__init__(*layers, *_dense_layers(config, channels * size * size))
