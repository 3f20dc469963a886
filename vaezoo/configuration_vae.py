"""Configuration of the single-stochastic-layer VAE (``model_type = "vae"``)."""

from transformers import PreTrainedConfig

from .kl_amplitude import check_amplitude_normalization
from .likelihoods import LIKELIHOODS
from .networks import ACTIVATIONS
from .parameterizations import PARAMETERIZATIONS
from .priors import PRIORS
from .registry import check_choice, check_positive

OBJECTIVES = ("elbo", "iwae")


class VAEConfig(PreTrainedConfig):
    r"""A VAE with MLP encoder q(z|x) and decoder p(x|z).

    Defaults are the IWAE paper's 1-layer architecture for 28x28 images: 784-200-200-50 tanh, a
    factorized Bernoulli decoder, a standard normal prior.

    Args:
        image_size, num_channels: image geometry; the MLPs see ``num_channels * image_size**2`` inputs.
        encoder_hidden, decoder_hidden: hidden widths of the encoder / decoder MLPs.
        latent_dim: number of latent dimensions K.
        activation: hidden activation (see ``vaezoo.networks.ACTIVATIONS``).
        parameterization: posterior scale map, ``exp`` | ``softplus`` | ``stdplus`` (Slashed Normal).
        prior: ``vaezoo.priors.PRIORS`` name. likelihood: ``vaezoo.likelihoods.LIKELIHOODS`` name.
        objective: ``elbo`` (loss = D + beta * R) or ``iwae`` (loss = -IWAE_k with k = ``train_samples``).
        beta: weight of the rate in the ``elbo`` objective (beta-VAE); must be 1 for ``iwae``.
        train_samples: importance samples k per example during training.
        amplitude_normalization: KL-amplitude normalization of the stdplus posterior (``none`` |
            ``instance`` | ``batch`` | ``feature`` | ``*_mean_only``); see ``vaezoo.kl_amplitude``. With one,
            the ``elbo`` loss pays only the rate the normalization does not fix; the ``iwae`` loss stays -IWAE_k
            (the normalization then only constrains q).
        target_rate, target_rate_mode, target_rate_extra_init, normalization_momentum: the target rate
            delta in nats per example (``fixed`` | ``learnable`` | ``committed``) and the running-statistic
            momentum of ``batch`` / ``feature``; see ``vaezoo.kl_amplitude``.
    """

    model_type = "vae"

    def __init__(
        self,
        image_size=28,
        num_channels=1,
        encoder_hidden=(200, 200),
        decoder_hidden=(200, 200),
        latent_dim=50,
        activation="tanh",
        parameterization="stdplus",
        prior="standard_normal",
        likelihood="bernoulli",
        objective="elbo",
        beta=1.0,
        train_samples=1,
        amplitude_normalization="none",
        target_rate=None,
        target_rate_mode="fixed",
        target_rate_extra_init=1.0,
        normalization_momentum=0.1,
        **kwargs,
    ):
        self.image_size = image_size
        self.num_channels = num_channels
        self.encoder_hidden = list(encoder_hidden)
        self.decoder_hidden = list(decoder_hidden)
        self.latent_dim = latent_dim
        self.activation = activation
        self.parameterization = parameterization
        self.prior = prior
        self.likelihood = likelihood
        self.objective = objective
        self.beta = beta
        self.train_samples = train_samples
        self.amplitude_normalization = amplitude_normalization
        self.target_rate = target_rate
        self.target_rate_mode = target_rate_mode
        self.target_rate_extra_init = target_rate_extra_init
        self.normalization_momentum = normalization_momentum
        super().__init__(**kwargs)
        self.validate()

    @property
    def num_pixels(self):
        return self.num_channels * self.image_size * self.image_size

    def validate(self):
        """Raise a ValueError naming the first invalid field and its allowed values."""
        check_positive("image_size", self.image_size)
        check_positive("num_channels", self.num_channels)
        check_positive("latent_dim", self.latent_dim)
        check_positive("train_samples", self.train_samples)
        for field in ("encoder_hidden", "decoder_hidden"):
            for width in getattr(self, field):
                check_positive(field, width)
        check_choice("activation", self.activation, ACTIVATIONS.names())
        check_choice("parameterization", self.parameterization, PARAMETERIZATIONS.names())
        check_choice("prior", self.prior, PRIORS.names())
        check_choice("likelihood", self.likelihood, LIKELIHOODS.names())
        check_choice("objective", self.objective, OBJECTIVES)
        if isinstance(self.beta, bool) or not isinstance(self.beta, (int, float)) or self.beta < 0:
            raise ValueError(f"beta={self.beta!r} is not valid; expected a number >= 0")
        if self.objective == "iwae" and self.beta != 1:
            raise ValueError(f"beta={self.beta!r} is not valid with objective='iwae'; the IWAE bound needs beta=1")
        check_amplitude_normalization(self)
