"""Configuration of the single-stochastic-layer VAE (``model_type = "vae"``)."""

from transformers import PreTrainedConfig

from .decoders import DECODERS
from .kl_amplitude import check_amplitude_normalization
from .likelihoods import LIKELIHOODS
from .networks import ACTIVATIONS
from .objectives import OBJECTIVES
from .parameterizations import PARAMETERIZATIONS
from .posteriors import POSTERIORS
from .priors import PRIORS
from .registry import ValidatedConfigMixin, as_list, check_choice, check_positive


class VAEConfig(ValidatedConfigMixin, PreTrainedConfig):
    r"""A VAE with MLP encoder q(z|x) and decoder p(x|z).

    Defaults are the IWAE paper's 1-layer architecture for 28x28 images: 784-200-200-50 tanh, a
    factorized Bernoulli decoder, a standard normal prior.

    Args:
        image_size, num_channels: image geometry; the MLPs see ``num_channels * image_size**2`` inputs.
        encoder_hidden, decoder_hidden: hidden widths of the encoder / decoder MLPs.
        latent_dim: number of latent dimensions K.
        activation: hidden activation (see ``vaezoo.networks.ACTIVATIONS``).
        parameterization: posterior scale map, ``exp`` | ``softplus`` | ``stdplus`` (Slashed Normal);
            every Gaussian of every posterior uses it.
        posterior: ``vaezoo.posteriors.POSTERIORS`` name: ``gaussian`` | ``iaf`` | ``mixture`` | ``rme``.
        prior: ``vaezoo.priors.PRIORS`` name: ``standard_normal`` | ``mog`` | ``vampprior``.
        likelihood: ``vaezoo.likelihoods.LIKELIHOODS`` name: ``bernoulli`` (binary pixels) |
            ``discretized_logistic`` (8-bit grey pixels).
        decoder_type: ``vaezoo.decoders.DECODERS`` name: ``mlp`` (factorized) | ``pixelcnn`` (autoregressive)
            (not ``decoder``: transformers reads a config attribute of that name as a text sub-config).
        objective: ``vaezoo.objectives.OBJECTIVES`` name: ``elbo`` (loss = D + beta R), ``iwae``
            (loss = -IWAE_k with k = ``train_samples``) or ``target_rate`` (D + beta |R - target_rate|).
        beta: weight of the rate (``elbo``) or of the rate penalty (``target_rate``); must be 1 for ``iwae``.
        target_rate: the rate in nats the ``target_rate`` objective aims at (required by it, else None).
        train_samples: importance samples k per example during training (per component for mixtures).
        num_components: Gaussian components M of the ``mixture`` and ``rme`` posteriors.
        iaf_steps, iaf_hidden: number of IAF steps and the hidden widths of each step's MADE.
        rme_barrier: the barrier C in min(KL(q_m || Q_{m-1}), C) of the RME objective (nats).
        rme_stage_steps: optimizer steps per RME stage (one component added per stage).
        rme_freeze_previous: whether earlier RME components stop training when a new one is added.
        rme_weight_hidden: hidden widths of the RME weight network w(x).
        mog_components: components of the ``mog`` prior. vampprior_pseudo_inputs: pseudo-inputs of
            the ``vampprior``.
        pixelcnn_layers, pixelcnn_channels, pixelcnn_kernel_size, pixelcnn_cond_channels: masked
            convolutions (the first 7x7 type A, the rest ``pixelcnn_kernel_size`` type B), their
            width, and the channels of the z feature map.
        amplitude_normalization: KL-amplitude normalization of the stdplus Gaussian posterior (``none`` |
            ``instance`` | ``batch`` | ``feature`` | ``*_mean_only``); see ``vaezoo.kl_amplitude``. With one,
            the ``elbo`` loss pays only the rate the normalization does not fix; the ``iwae`` loss stays -IWAE_k
            (the normalization then only constrains q). ``target_rate`` is then the normalization's delta.
        target_rate_mode, target_rate_extra_init, normalization_momentum: ``fixed`` | ``learnable`` |
            ``committed`` target, and the running-statistic momentum of ``batch`` / ``feature``.
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
        posterior="gaussian",
        decoder_type="mlp",
        target_rate=None,
        num_components=5,
        iaf_steps=2,
        iaf_hidden=(200, 200),
        rme_barrier=5.0,
        rme_stage_steps=10000,
        rme_freeze_previous=False,
        rme_weight_hidden=(100,),
        mog_components=10,
        vampprior_pseudo_inputs=500,
        pixelcnn_layers=4,
        pixelcnn_channels=32,
        pixelcnn_kernel_size=3,
        pixelcnn_cond_channels=4,
        amplitude_normalization="none",
        target_rate_mode="fixed",
        target_rate_extra_init=1.0,
        normalization_momentum=0.1,
        **kwargs,
    ):
        self.image_size = image_size
        self.num_channels = num_channels
        self.encoder_hidden = as_list("encoder_hidden", encoder_hidden)
        self.decoder_hidden = as_list("decoder_hidden", decoder_hidden)
        self.latent_dim = latent_dim
        self.activation = activation
        self.parameterization = parameterization
        self.prior = prior
        self.likelihood = likelihood
        self.objective = objective
        self.beta = beta
        self.train_samples = train_samples
        self.posterior = posterior
        self.decoder_type = decoder_type
        self.target_rate = target_rate
        self.num_components = num_components
        self.iaf_steps = iaf_steps
        self.iaf_hidden = as_list("iaf_hidden", iaf_hidden)
        self.rme_barrier = rme_barrier
        self.rme_stage_steps = rme_stage_steps
        self.rme_freeze_previous = rme_freeze_previous
        self.rme_weight_hidden = as_list("rme_weight_hidden", rme_weight_hidden)
        self.mog_components = mog_components
        self.vampprior_pseudo_inputs = vampprior_pseudo_inputs
        self.pixelcnn_layers = pixelcnn_layers
        self.pixelcnn_channels = pixelcnn_channels
        self.pixelcnn_kernel_size = pixelcnn_kernel_size
        self.pixelcnn_cond_channels = pixelcnn_cond_channels
        self.amplitude_normalization = amplitude_normalization
        self.target_rate_mode = target_rate_mode
        self.target_rate_extra_init = target_rate_extra_init
        self.normalization_momentum = normalization_momentum
        super().__init__(**kwargs)
        self.validate()

    def validate(self):
        """Raise a ValueError naming the first invalid field and its allowed values."""
        check_positive("image_size", self.image_size)
        check_positive("num_channels", self.num_channels)
        check_positive("latent_dim", self.latent_dim)
        check_positive("train_samples", self.train_samples)
        for field in ("num_components", "iaf_steps", "rme_stage_steps", "mog_components", "vampprior_pseudo_inputs"):
            check_positive(field, getattr(self, field))
        for field in ("pixelcnn_layers", "pixelcnn_channels", "pixelcnn_kernel_size", "pixelcnn_cond_channels"):
            check_positive(field, getattr(self, field))
        for field in ("encoder_hidden", "decoder_hidden", "iaf_hidden", "rme_weight_hidden"):
            for width in as_list(field, getattr(self, field)):
                check_positive(field, width)
        if not self.iaf_hidden:
            raise ValueError("iaf_hidden=[] is not valid; expected at least one hidden width for the MADE")
        if self.pixelcnn_kernel_size % 2 == 0:
            raise ValueError(f"pixelcnn_kernel_size={self.pixelcnn_kernel_size!r} is not valid; expected an odd integer")
        check_positive("rme_barrier", self.rme_barrier, minimum=0, integer=False)
        if not isinstance(self.rme_freeze_previous, bool):
            raise ValueError(f"rme_freeze_previous={self.rme_freeze_previous!r} is not valid; expected true or false")
        check_choice("activation", self.activation, ACTIVATIONS.names())
        check_choice("parameterization", self.parameterization, PARAMETERIZATIONS.names())
        check_choice("prior", self.prior, PRIORS.names())
        check_choice("likelihood", self.likelihood, LIKELIHOODS.names())
        check_choice("objective", self.objective, OBJECTIVES.names())
        check_choice("posterior", self.posterior, POSTERIORS.names())
        check_choice("decoder_type", self.decoder_type, DECODERS.names())
        if self.decoder_type == "pixelcnn" and self.num_channels != 1:
            raise ValueError(f"num_channels={self.num_channels!r} is not valid with decoder_type='pixelcnn'; expected 1")
        if self.prior == "vampprior" and self.posterior == "iaf":
            raise ValueError(
                "prior='vampprior' is not valid with posterior='iaf': the VampPrior density needs q(z|u) of "
                "an arbitrary z, which an IAF does not provide; expected posterior in ['gaussian', 'mixture', 'rme']"
            )
        # target_rate is the target_rate objective's aim or the normalization's delta, never both.
        check_amplitude_normalization(self, target_rate_used_elsewhere=self.objective == "target_rate")
        if self.objective == "target_rate":
            check_positive("target_rate", self.target_rate, minimum=0, integer=False)
            check_choice("amplitude_normalization", self.amplitude_normalization, ["none"])
        if self.amplitude_normalization != "none":
            check_choice("posterior", self.posterior, ["gaussian"])
        check_positive("beta", self.beta, minimum=0, integer=False)
        if self.objective == "iwae" and self.beta != 1:
            raise ValueError(f"beta={self.beta!r} is not valid with objective='iwae'; the IWAE bound needs beta=1")
