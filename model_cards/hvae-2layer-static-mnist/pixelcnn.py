"""A small PixelCNN decoder p(x|z) = prod_i p(x_i | x_<i, z): van den Oord et al., "Pixel Recurrent
Neural Networks", ICML 2016 (masked convolutions), conditioned on z as in "Conditional Image
Generation with PixelCNN Decoders" (2016); the "powerful decoder" of Alemi et al. 2018.

Pixels are ordered in raster order (row by row). The first convolution has mask type A (a pixel
sees only the pixels above it and to its left), the following ones type B (also the centre of the
previous feature map, which already excludes the pixel itself), then a 1x1 convolution to the
per-pixel parameters of any pixel likelihood (``vaezoo.likelihoods``). z enters through one linear
map to a ``pixelcnn_cond_channels`` x H x W feature map, added to every layer through a 1x1
convolution (z is not autoregressive, so this path is unmasked). ``log_prob(x)`` runs teacher-forced
in one pass; sampling is sequential, one network pass per pixel. Single-channel images only.
"""

import torch
from torch import nn
from torch.distributions import Distribution

from .likelihoods import LIKELIHOODS
from .networks import ACTIVATIONS

#: kernel of the first (mask type A) convolution, as in the PixelCNN paper
FIRST_KERNEL_SIZE = 7


class MaskedConv2d(nn.Conv2d):
    """Same-padded convolution whose kernel is zero at and after the centre (type A) or after the
    centre (type B) in raster order; the mask is a persistent buffer."""

    def __init__(self, in_channels, out_channels, kernel_size, mask_type):
        super().__init__(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
        self.mask_type = mask_type
        self.register_buffer("mask", self.build_mask())

    def build_mask(self):
        k = self.kernel_size[0]
        mask = torch.ones(k, k, dtype=self.weight.dtype)
        centre = k // 2
        mask[centre, centre + (self.mask_type == "B") :] = 0
        mask[centre + 1 :] = 0
        return mask.expand_as(self.weight).clone()

    def forward(self, x):
        return self._conv_forward(x, self.weight * self.mask, self.bias)


class PixelCNNDecoder(nn.Module):
    """z -> the autoregressive likelihood p(x | z) (a distribution over flattened images)."""

    def __init__(self, config):
        super().__init__()
        self.image_size, self.likelihood = config.image_size, config.likelihood
        channels, cond = config.pixelcnn_channels, config.pixelcnn_cond_channels
        self.cond_channels = cond
        self.cond = nn.Linear(config.latent_dim, cond * config.image_size**2)
        self.convs = nn.ModuleList(
            [MaskedConv2d(config.num_channels, channels, FIRST_KERNEL_SIZE, "A")]
            + [MaskedConv2d(channels, channels, config.pixelcnn_kernel_size, "B") for _ in range(config.pixelcnn_layers - 1)]
        )
        self.cond_proj = nn.ModuleList(nn.Conv2d(cond, channels, 1) for _ in self.convs)
        self.activation = ACTIVATIONS.get(config.activation)()
        params = LIKELIHOODS.get(config.likelihood).params_per_pixel
        self.out = nn.Conv2d(channels, params * config.num_channels, 1)

    def network(self, images, cond_map):
        """Raw per-pixel parameters (N, params * D) of images (N, C, H, W) given z-maps (N, c, H, W);
        output for pixel i depends on pixels < i only."""
        h = images
        for conv, proj in zip(self.convs, self.cond_proj):
            h = self.activation(conv(h) + proj(cond_map))
        return self.out(h).flatten(1)

    def forward(self, z):
        s = self.image_size
        return AutoregressiveImage(self, self.cond(z).reshape(*z.shape[:-1], self.cond_channels, s, s))


class AutoregressiveImage(Distribution):
    """p(x | z) = prod_i p(x_i | x_<i, z) over flattened images, from a ``PixelCNNDecoder``."""

    def __init__(self, decoder, cond_map):
        self.decoder, self.cond_map = decoder, cond_map
        num_pixels = cond_map.shape[-1] * cond_map.shape[-2]
        super().__init__(cond_map.shape[:-3], torch.Size([num_pixels]), validate_args=False)

    def _pixel_likelihood(self, x):
        """The per-pixel likelihood of teacher-forced x (..., D), broadcast against the batch of z."""
        batch = torch.broadcast_shapes(x.shape[:-1], self.batch_shape)
        x = x.expand(*batch, x.shape[-1])
        cond = self.cond_map.expand(*batch, *self.cond_map.shape[-3:])
        s = self.decoder.image_size
        raw = self.decoder.network(x.reshape(-1, 1, s, s), cond.reshape(-1, *cond.shape[-3:]))
        return LIKELIHOODS.get(self.decoder.likelihood)(raw.reshape(*batch, raw.shape[-1])), x

    def log_prob(self, x):
        likelihood, x = self._pixel_likelihood(x)
        return likelihood.log_prob(x)

    @property
    def mean(self):
        raise NotImplementedError(
            "an autoregressive decoder has no closed-form mean image; draw samples instead (sample(mean=False))"
        )

    def sample(self, sample_shape=torch.Size(), generator=None):
        """Ancestral sampling in raster order: one network pass per pixel."""
        with torch.no_grad():
            shape = torch.Size(sample_shape) + self.batch_shape
            x = torch.zeros(*shape, self.event_shape[0], dtype=self.cond_map.dtype, device=self.cond_map.device)
            for i in range(x.shape[-1]):
                likelihood, _ = self._pixel_likelihood(x)
                x[..., i] = likelihood.sample(generator=generator)[..., i]
            return x
