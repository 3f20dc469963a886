"""Configuration of the Deep Variational Information Bottleneck classifier (``model_type = "vib"``)."""

from transformers import PreTrainedConfig

from .estimators import estimators_for
from .kl_amplitude import check_amplitude_normalization
from .networks import ACTIVATIONS
from .parameterizations import PARAMETERIZATIONS
from .registry import ValidatedConfigMixin, as_list, check_choice, check_number, check_positive


class VIBConfig(ValidatedConfigMixin, PreTrainedConfig):
    r"""Deep VIB (Alemi et al. 2017): stochastic encoder q(z|x), linear softmax decoder q(y|z),

        loss = E_q(z|x)[-log q(y | z)] + beta * KL(q(z|x) || N(0, I))   (per example, mean over the batch)

    or, with a KL-amplitude normalization, beta times only the rate the normalization does not fix.

    Defaults are the paper's MNIST setup: encoder 784-1024-1024-2K ReLU, K = 256, beta = 1e-3,
    12 posterior samples at test time, and a posterior scale that starts at softplus(-5)
    (the paper's softplus(rho - 5)); ``parameterization`` swaps the scale map (exp / softplus /
    stdplus) with everything else fixed.

    Args:
        image_size, num_channels, num_classes: input geometry and number of classes.
        encoder_hidden: hidden widths of the encoder MLP (non-empty); its two heads give (h_loc, h_scale).
        latent_dim: K. activation: ``vaezoo.networks.ACTIVATIONS`` name.
        parameterization: ``exp`` | ``softplus`` | ``stdplus`` (``vaezoo.parameterizations``).
        initial_scale: posterior standard deviation when the scale head outputs its initial bias.
        beta: weight of the rate KL(q(z|x) || p(z)).
        train_samples, test_samples: posterior samples per example in training / for prediction.
        estimator: gradient estimator where z meets the linear decoder (``rt`` | ``r2g2`` | ``score``;
            with K > C the decoder map has more columns than rows, so R2-G2 reduces variance).
        amplitude_normalization: KL-amplitude normalization of the Slashed Normal posterior (``none`` |
            ``instance`` | ``batch`` | ``feature`` | ``*_mean_only``; needs ``parameterization='stdplus'``;
            ``vaezoo.kl_amplitude``). With one, the loss is nll + beta * (the rate the normalization does
            not fix): the fixed-rate variant (full normalization, fixed target) has no KL term at all.
        target_rate, target_rate_ratio: the normalization's target rate delta, in nats per example or as
            r with delta = r * log(num_classes); exactly one with a normalization, neither without.
        target_rate_mode, target_rate_extra_init, normalization_momentum: ``fixed`` | ``learnable`` |
            ``committed`` target, and the running-statistic momentum of ``batch`` / ``feature``.
    """

    model_type = "vib"

    def __init__(
        self,
        image_size=28,
        num_channels=1,
        num_classes=10,
        encoder_hidden=(1024, 1024),
        latent_dim=256,
        activation="relu",
        parameterization="softplus",
        initial_scale=0.006715348489117967,
        beta=1e-3,
        train_samples=1,
        test_samples=12,
        estimator="rt",
        amplitude_normalization="none",
        target_rate=None,
        target_rate_ratio=None,
        target_rate_mode="fixed",
        target_rate_extra_init=1.0,
        normalization_momentum=0.1,
        **kwargs,
    ):
        self.image_size = image_size
        self.num_channels = num_channels
        self.num_classes = num_classes
        self.encoder_hidden = as_list("encoder_hidden", encoder_hidden)
        self.latent_dim = latent_dim
        self.activation = activation
        self.parameterization = parameterization
        self.initial_scale = initial_scale
        self.beta = beta
        self.train_samples = train_samples
        self.test_samples = test_samples
        self.estimator = estimator
        self.amplitude_normalization = amplitude_normalization
        self.target_rate = target_rate
        self.target_rate_ratio = target_rate_ratio
        self.target_rate_mode = target_rate_mode
        self.target_rate_extra_init = target_rate_extra_init
        self.normalization_momentum = normalization_momentum
        super().__init__(**kwargs)
        self.validate()

    def validate(self):
        """Raise a ValueError naming the first invalid field and its allowed values."""
        for field in ("image_size", "num_channels", "latent_dim", "train_samples", "test_samples"):
            check_positive(field, getattr(self, field))
        check_positive("num_classes", self.num_classes, minimum=2)
        if not as_list("encoder_hidden", self.encoder_hidden):
            raise ValueError("encoder_hidden=[] is not valid; expected at least one hidden width")
        for width in self.encoder_hidden:
            check_positive("encoder_hidden", width)
        check_choice("activation", self.activation, ACTIVATIONS.names())
        check_choice("parameterization", self.parameterization, PARAMETERIZATIONS.names())
        check_choice("estimator", self.estimator, estimators_for("latent_linear"))
        check_number("initial_scale", self.initial_scale)
        check_positive("beta", self.beta, minimum=0, integer=False)
        check_amplitude_normalization(self)
