"""Configuration of the Bayesian neural-network classifier (``model_type = "bnn"``)."""

from transformers import PreTrainedConfig

from .bayes_networks import BNN_ARCHITECTURES
from .estimators import estimators_for
from .networks import ACTIVATIONS
from .parameterizations import PARAMETERIZATIONS
from .r2g2 import R2G2_SOLVERS
from .registry import ValidatedConfigMixin, as_list, check_choice, check_number, check_positive


class BNNConfig(ValidatedConfigMixin, PreTrainedConfig):
    r"""A classifier whose weights are mean-field Gaussian (Bayes by backprop), trained on the ELBO

        loss = E_q[-log p(y | x, W)] + KL(q(W) || p(W)) / num_train_examples

    per example, the KL spread evenly over the training set. Defaults are the R2-G2 paper's BNN
    (784-1024-1024-10 ReLU, every layer Gaussian) with the R2-G2 estimator.

    Args:
        architecture: ``mlp`` or ``cnn`` (see ``vaezoo.bayes_networks``).
        image_size, num_channels, num_classes: input geometry and number of classes.
        hidden: widths of the hidden BayesLinear layers (for ``cnn``: the dense head after the convs).
        conv_channels, kernel_size: ``cnn`` only; each conv is same-padded and followed by a 2x2 max-pool.
        activation: ``vaezoo.networks.ACTIVATIONS`` name.
        estimator: gradient estimator of every Bayesian layer (``vaezoo.estimators.ESTIMATORS``;
            ``lrt`` is exact for linear layers only, so not valid with ``cnn``).
        parameterization: posterior scale map of the weights (``exp`` | ``softplus`` | ``stdplus``).
        prior_scale: standard deviation s0 of the N(0, s0^2) weight prior.
        initial_scale: posterior standard deviation of every weight at initialization.
        num_train_examples: N in KL / N (the size of the training set).
        test_samples: posterior samples averaged by the predictive distribution at evaluation.
        r2g2_solver: how R2-G2 computes eps* in convolutions (``vaezoo.r2g2.R2G2_SOLVERS``): ``direct``
            (exact projection, default) or ``cg`` (conjugate gradient, for maps too large for ``direct``).
        cg_tolerance, cg_max_iterations: stopping rule of the ``cg`` solver.
        score_baseline_decay: decay of the score-function estimator's moving-average baseline.
    """

    model_type = "bnn"

    def __init__(
        self,
        architecture="mlp",
        image_size=28,
        num_channels=1,
        num_classes=10,
        hidden=(1024, 1024),
        conv_channels=(16, 32, 64),
        kernel_size=3,
        activation="relu",
        estimator="r2g2",
        parameterization="softplus",
        prior_scale=1.0,
        initial_scale=1e-3,
        num_train_examples=60000,
        test_samples=10,
        r2g2_solver="direct",
        cg_tolerance=1e-4,
        cg_max_iterations=100,
        score_baseline_decay=0.9,
        **kwargs,
    ):
        self.architecture = architecture
        self.image_size = image_size
        self.num_channels = num_channels
        self.num_classes = num_classes
        self.hidden = as_list("hidden", hidden)
        self.conv_channels = as_list("conv_channels", conv_channels)
        self.kernel_size = kernel_size
        self.activation = activation
        self.estimator = estimator
        self.parameterization = parameterization
        self.prior_scale = prior_scale
        self.initial_scale = initial_scale
        self.num_train_examples = num_train_examples
        self.test_samples = test_samples
        self.r2g2_solver = r2g2_solver
        self.cg_tolerance = cg_tolerance
        self.cg_max_iterations = cg_max_iterations
        self.score_baseline_decay = score_baseline_decay
        super().__init__(**kwargs)
        self.validate()

    def validate(self):
        """Raise a ValueError naming the first invalid field and its allowed values."""
        check_choice("architecture", self.architecture, BNN_ARCHITECTURES.names())
        for field in ("image_size", "num_channels", "num_train_examples", "test_samples", "cg_max_iterations"):
            check_positive(field, getattr(self, field))
        check_positive("num_classes", self.num_classes, minimum=2)
        for field in ("hidden", "conv_channels"):
            for width in as_list(field, getattr(self, field)):
                check_positive(field, width)
        check_positive("kernel_size", self.kernel_size)
        architecture = BNN_ARCHITECTURES.get(self.architecture)
        architecture.check_config(self)
        check_choice("activation", self.activation, ACTIVATIONS.names())
        check_choice("parameterization", self.parameterization, PARAMETERIZATIONS.names())
        for place in architecture.places:
            check_choice("estimator", self.estimator, estimators_for(place))
        check_number("prior_scale", self.prior_scale)
        check_number("initial_scale", self.initial_scale)
        check_choice("r2g2_solver", self.r2g2_solver, R2G2_SOLVERS.names())
        check_number("cg_tolerance", self.cg_tolerance)
        check_number("score_baseline_decay", self.score_baseline_decay, strict=False, maximum=1, strict_maximum=True)
