"""The amortized diagonal Gaussian posterior q(z|x) = N(mu(x), sigma(x)^2), and the posterior interface.

Every posterior (``vaezoo.posteriors.POSTERIORS``) is an nn.Module built from the model config that maps
flattened inputs (B, D) to a distribution with event shape (latent_dim,). Posteriors with a staged
training schedule (RME) also use the two hooks of ``Posterior``.
"""

from torch import nn

from .kl_amplitude import amplitude_normalization_from_config
from .networks import MLP
from .parameterizations import gaussian_from_raw


class Posterior(nn.Module):
    """Hooks the model calls on its posterior; the defaults are those of a posterior trained by the
    model's objective alone, with no schedule."""

    def begin_step(self, step):
        """Called before optimizer step ``step`` (training contract); staged posteriors switch stages here."""

    def penalized_rate(self, posterior, rate):
        """The per-example rate the objective pays (the KL-amplitude normalization fixes part of it)."""
        return rate

    def auxiliary_loss(self, x, log_likelihood, prior, num_samples, generator=None):
        """Per-example loss added to the model's objective (B,), or None when there is none.

        ``log_likelihood(z)`` returns log p(x | z) for latents z of shape (k, B, K)."""
        return None


class GaussianConditional(MLP):
    """MLP(h) -> (h_loc, h_scale) -> diagonal Gaussian over ``latent_dim`` dimensions through the scale
    parameterization ``parameterization`` (exp / softplus / stdplus, methods.md §1)."""

    def __init__(self, in_features, hidden, latent_dim, activation, parameterization):
        super().__init__(in_features, hidden, 2 * latent_dim, activation)
        self.parameterization = parameterization

    def raw(self, x):
        """The raw outputs (h_loc, h_scale); for stdplus they are the KL amplitude (a, b)."""
        return super().forward(x).chunk(2, dim=-1)

    def forward(self, x):
        return gaussian_from_raw(self.parameterization, *self.raw(x))


class GaussianPosterior(Posterior):
    """The VAE's q(z|x) (Kingma & Welling 2014): a Gaussian conditional on x with the config's
    ``encoder_hidden`` widths, ``latent_dim`` and ``parameterization``, and the KL-amplitude
    normalization of the Slashed Normal (``vaezoo.kl_amplitude``) between the raw outputs and q."""

    def __init__(self, config, in_features=None):
        super().__init__()
        in_features = config.num_pixels if in_features is None else in_features
        self.conditional = GaussianConditional(
            in_features, config.encoder_hidden, config.latent_dim, config.activation, config.parameterization
        )
        self.amplitude_normalization = amplitude_normalization_from_config(config, config.latent_dim)

    def forward(self, x):
        h_loc, h_scale = self.amplitude_normalization(*self.conditional.raw(x))
        return gaussian_from_raw(self.conditional.parameterization, h_loc, h_scale)

    def penalized_rate(self, posterior, rate):
        return self.amplitude_normalization.penalized_rate(posterior, rate)
