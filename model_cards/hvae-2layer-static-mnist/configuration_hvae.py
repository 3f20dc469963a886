"""Configuration of the hierarchical VAE with L stochastic layers (``model_type = "hvae"``)."""

from transformers import PreTrainedConfig

from .estimators import estimators_for
from .likelihoods import LIKELIHOODS
from .networks import ACTIVATIONS
from .objectives import OBJECTIVES
from .parameterizations import PARAMETERIZATIONS
from .registry import ValidatedConfigMixin, as_list, check_choice, check_positive


#: estimators for the decoder's latent-to-hidden layer: the score function also implements that
#: place but needs its per-example loss fed back, which the HVAE objective does not do.
DECODER_ESTIMATORS = ("r2g2", "rt")


class HVAEConfig(ValidatedConfigMixin, PreTrainedConfig):
    r"""A hierarchical VAE, IWAE-style (Burda et al. 2016, appendix; methods.md §5).

    Inference bottom-up q(z_1|x) q(z_2|z_1) ... q(z_L|z_{L-1}); generation top-down p(z_L) = N(0, I),
    p(z_l | z_{l+1}), p(x | z_1). Every conditional is an MLP; conditional l of the inference path
    has hidden widths ``hidden_dims[l]``, its generative mirror the same widths reversed. Defaults
    are the IWAE paper's two-layer model: 784-200-200-100 (z_1), 100-100-100-50 (z_2), tanh.

    Args:
        image_size, num_channels: image geometry.
        latent_dims: sizes of z_1 .. z_L (L = len, 1 to 3), e.g. [50] or [100, 50] or [50, 50].
        hidden_dims: one list of hidden widths per stochastic layer (same length as latent_dims).
        activation: hidden activation (``vaezoo.networks.ACTIVATIONS``).
        parameterization: scale map of every Gaussian conditional, ``exp`` | ``softplus`` | ``stdplus``;
            default ``exp`` as in the IWAE paper (with ``stdplus`` the conditional priors' scales start
            far apart, since stdplus amplitudes are measured against N(0, 1): measured initial rates of
            ~1e4 nats on the lower layers).
        likelihood: pixel likelihood of p(x | z_1) (``bernoulli`` for binarized images).
        decoder_estimator: gradient estimator at the latent-to-hidden layer of p(x | z_1), ``rt`` or
            ``r2g2`` (the R2-G2 paper's HVAE setting; ``vaezoo.estimators``). Where latent_dims[0] <=
            the first decoder width that layer's weight has full column rank and R2-G2 is exactly RT
            (detected, no solve); it differs only for a wider latent (e.g. 100 -> 50).
        objective, beta, target_rate, train_samples: as in ``VAEConfig`` (``vaezoo.objectives``).
    """

    model_type = "hvae"
    max_layers = 3

    def __init__(
        self,
        image_size=28,
        num_channels=1,
        latent_dims=(100, 50),
        hidden_dims=((200, 200), (100, 100)),
        activation="tanh",
        parameterization="exp",
        likelihood="bernoulli",
        decoder_estimator="rt",
        objective="elbo",
        beta=1.0,
        target_rate=None,
        train_samples=1,
        **kwargs,
    ):
        self.image_size = image_size
        self.num_channels = num_channels
        self.latent_dims = as_list("latent_dims", latent_dims)
        self.hidden_dims = [as_list("hidden_dims", widths) for widths in as_list("hidden_dims", hidden_dims)]
        self.activation = activation
        self.parameterization = parameterization
        self.likelihood = likelihood
        self.decoder_estimator = decoder_estimator
        self.objective = objective
        self.beta = beta
        self.target_rate = target_rate
        self.train_samples = train_samples
        super().__init__(**kwargs)
        self.validate()

    @property
    def num_layers(self):
        return len(self.latent_dims)

    def validate(self):
        """Raise a ValueError naming the first invalid field and its allowed values."""
        check_positive("image_size", self.image_size)
        check_positive("num_channels", self.num_channels)
        check_positive("train_samples", self.train_samples)
        if not 1 <= len(as_list("latent_dims", self.latent_dims)) <= self.max_layers:
            raise ValueError(f"latent_dims={self.latent_dims!r} is not valid; expected 1 to {self.max_layers} layer sizes")
        for width in self.latent_dims:
            check_positive("latent_dims", width)
        if len(as_list("hidden_dims", self.hidden_dims)) != len(self.latent_dims):
            raise ValueError(
                f"hidden_dims={self.hidden_dims!r} is not valid; expected one list of widths per stochastic "
                f"layer ({len(self.latent_dims)})"
            )
        for widths in self.hidden_dims:
            if not as_list("hidden_dims", widths):
                raise ValueError("hidden_dims has an empty list; expected at least one hidden width per conditional")
            for width in widths:
                check_positive("hidden_dims", width)
        check_choice("activation", self.activation, ACTIVATIONS.names())
        check_choice("parameterization", self.parameterization, PARAMETERIZATIONS.names())
        check_choice("likelihood", self.likelihood, LIKELIHOODS.names())
        check_choice("decoder_estimator", self.decoder_estimator, [n for n in estimators_for("latent_linear") if n in DECODER_ESTIMATORS])
        check_choice("objective", self.objective, OBJECTIVES.names())
        check_positive("beta", self.beta, minimum=0, integer=False)
        if self.objective == "iwae" and self.beta != 1:
            raise ValueError(f"beta={self.beta!r} is not valid with objective='iwae'; the IWAE bound needs beta=1")
        if self.objective == "target_rate":
            check_positive("target_rate", self.target_rate, minimum=0, integer=False)
        elif self.target_rate is not None:
            raise ValueError(f"target_rate={self.target_rate!r} is not valid with objective={self.objective!r}; expected null")
