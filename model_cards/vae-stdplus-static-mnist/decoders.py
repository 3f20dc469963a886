"""Decoders z -> p(x | z), chosen by name (``decoder_type`` in the config): each module's forward returns
the likelihood distribution over flattened images.

| name       | p(x | z)                                                                  |
|------------|---------------------------------------------------------------------------|
| `mlp`      | pixels independent given z: MLP(z) -> per-pixel parameters (IWAE setup)   |
| `pixelcnn` | autoregressive over pixels given z (masked convolutions, ``pixelcnn.py``) |
"""

from .likelihoods import LIKELIHOODS
from .networks import MLP
from .pixelcnn import PixelCNNDecoder
from .registry import Registry

DECODERS = Registry("decoder_type")


@DECODERS.register("mlp")
class MLPDecoder(MLP):
    """Factorized likelihood(MLP(z)) with ``decoder_hidden`` hidden widths."""

    def __init__(self, config):
        params = LIKELIHOODS.get(config.likelihood).params_per_pixel
        super().__init__(config.latent_dim, config.decoder_hidden, params * config.num_pixels, config.activation)
        self.likelihood = config.likelihood

    def forward(self, z):
        return LIKELIHOODS.get(self.likelihood)(super().forward(z))


DECODERS.register("pixelcnn")(PixelCNNDecoder)
