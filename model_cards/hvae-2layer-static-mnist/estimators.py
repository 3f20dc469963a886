"""Gradient estimators for every place a Gaussian variable meets a linear map, chosen by name.

methods.md §3. An estimator decides how a sample is drawn and what flows backward; the places are

* ``linear(x, weight, bias, generator)``: Gaussian weights W ~ ``weight`` (a DiagonalGaussian of
  shape (out, in)) times a deterministic input x (B, in) -- a Bayesian linear layer;
* ``conv2d(x, weight, bias, stride, padding, generator)``: the same for a convolution kernel;
* ``latent_linear(distribution, sample, weight, bias, generator)``: a Gaussian latent
  ``sample = loc + scale * eps`` (drawn by the caller with ``rsample``, shape (..., n)) feeding a
  deterministic ``F.linear(sample, weight, bias)`` (e.g. a hierarchical VAE's latent-to-hidden layer).
  Only the gradient through this map changes; other uses of ``sample`` keep their own.

| name      | linear | conv2d | latent_linear | what flows backward                                            |
|-----------|--------|--------|---------------|----------------------------------------------------------------|
| `rt`      | yes    | yes    | yes           | the reparameterization path; one weight draw shared by the batch |
| `lrt`     | yes    |        |               | per-example pre-activations sampled directly (``lrt.py``)       |
| `flipout` | yes    | yes    |               | one draw, decorrelated by per-example signs (``flipout.py``)    |
| `r2g2`    | yes    | yes    | yes           | eps replaced by E[eps | pre-activation] (``r2g2.py``)           |
| `score`   | yes    | yes    | yes           | REINFORCE with a baseline (``score_function.py``)               |

All of them have the same expected loss, so they estimate the same gradient; a test checks it.
Biases of Bayesian layers are deterministic parameters (a design choice, as in TensorFlow
Probability's Flipout layers); only the weights are Gaussian.
"""

import warnings

import torch
import torch.nn.functional as F
from torch import nn

from .flipout import flipout_conv2d, flipout_linear, random_signs
from .lrt import lrt_linear
from .r2g2 import R2G2_SOLVERS, r2g2_conv2d, r2g2_latent_linear, r2g2_linear
from .registry import Registry, check_choice
from .score_function import ScoreFunction

ESTIMATORS = Registry("estimator")
PLACES = ("linear", "conv2d", "latent_linear")


def _normal(shape, like, generator):
    return torch.randn(shape, dtype=like.dtype, device=like.device, generator=generator)


class Estimator(nn.Module):
    """Base class: ``places`` lists the methods a subclass implements; the others raise."""

    places = ()

    @classmethod
    def from_config(cls, config):
        """Build with the options this estimator reads from a model config (none by default)."""
        return cls()

    def _unsupported(self, place):
        names = [name for name in ESTIMATORS.names() if place in ESTIMATORS.get(name).places]
        return ValueError(f"estimator {type(self).__name__} does not apply to {place}; use one of {names}")

    def linear(self, x, weight, bias, generator=None):
        raise self._unsupported("linear")

    def conv2d(self, x, weight, bias, stride, padding, generator=None):
        raise self._unsupported("conv2d")

    def latent_linear(self, distribution, sample, weight, bias, generator=None):
        raise self._unsupported("latent_linear")


@ESTIMATORS.register("rt")
class Reparameterization(Estimator):
    """The reparameterization trick; a Bayesian layer draws one weight sample per forward pass,
    shared by the batch (Blundell et al. 2015, "Weight Uncertainty in Neural Networks")."""

    places = PLACES

    def linear(self, x, weight, bias, generator=None):
        return F.linear(x, weight.rsample(generator=generator), bias)

    def conv2d(self, x, weight, bias, stride, padding, generator=None):
        return F.conv2d(x, weight.rsample(generator=generator), bias, stride, padding)

    def latent_linear(self, distribution, sample, weight, bias, generator=None):
        return F.linear(sample, weight, bias)


@ESTIMATORS.register("lrt")
class LocalReparameterization(Estimator):
    """Local reparameterization (Kingma et al. 2015): exact for linear layers only."""

    places = ("linear",)

    def linear(self, x, weight, bias, generator=None):
        noise = _normal(x.shape[:-1] + weight.loc.shape[:1], x, generator)
        return lrt_linear(x, weight.loc, weight.scale, bias, noise)


@ESTIMATORS.register("flipout")
class Flipout(Estimator):
    """Flipout (Wen et al. 2018): one weight perturbation per batch, sign-flipped per example."""

    places = ("linear", "conv2d")

    def linear(self, x, weight, bias, generator=None):
        perturbation = weight.scale * _normal(weight.loc.shape, x, generator)
        input_signs = random_signs(x.shape, x, generator)
        output_signs = random_signs(x.shape[:-1] + weight.loc.shape[:1], x, generator)
        return flipout_linear(x, weight.loc, perturbation, bias, input_signs, output_signs)

    def conv2d(self, x, weight, bias, stride, padding, generator=None):
        perturbation = weight.scale * _normal(weight.loc.shape, x, generator)
        input_signs = random_signs(x.shape[:2], x, generator)
        output_signs = random_signs((x.shape[0], weight.loc.shape[0]), x, generator)
        return flipout_conv2d(x, weight.loc, perturbation, bias, stride, padding, input_signs, output_signs)


@ESTIMATORS.register("r2g2")
class RaoBlackwellizedReparameterization(Estimator):
    """R2-G2 (Lam et al. 2025): closed forms for linear maps, a named solver for convolutions.

    Args:
        solver: an ``R2G2_SOLVERS`` name (``direct`` | ``cg``) or instance, used by convolutions.
        tolerance, max_iterations: the ``cg`` solver's stopping rule (stopping at the cap biases the
            gradient and raises a RuntimeWarning).
    The diagnostics of the last convolution solve are kept in ``last_solve`` (a ``SolveInfo``).
    """

    places = PLACES

    def __init__(self, solver="direct", tolerance=1e-4, max_iterations=100):
        super().__init__()
        if isinstance(solver, str):
            check_choice("r2g2_solver", solver, R2G2_SOLVERS.names())
            solver = R2G2_SOLVERS.get(solver).from_options(tolerance, max_iterations)
        self.solver = solver
        self.last_solve = None

    @classmethod
    def from_config(cls, config):
        return cls(config.r2g2_solver, config.cg_tolerance, config.cg_max_iterations)

    def linear(self, x, weight, bias, generator=None):
        noise = _normal(x.shape[:-1] + weight.loc.shape[:1], x, generator)
        return r2g2_linear(x, weight.loc, weight.scale, bias, noise)

    def conv2d(self, x, weight, bias, stride, padding, generator=None):
        c_out = weight.loc.shape[0]
        noise = _normal((x.shape[0], c_out, weight.loc[0].numel()), x, generator)
        out, self.last_solve = r2g2_conv2d(x, weight.loc, weight.scale, bias, stride, padding, noise, self.solver)
        if not self.last_solve.converged:
            warnings.warn(
                f"R2-G2 conjugate gradient stopped at max_iterations={self.solver.max_iterations} with relative "
                f"residual {self.last_solve.max_relative_residual:.2e} > tolerance={self.solver.tolerance}; the "
                "gradient is biased: use r2g2_solver='direct', or raise cg_max_iterations or cg_tolerance",
                RuntimeWarning,
                stacklevel=2,
            )
        return out

    def latent_linear(self, distribution, sample, weight, bias, generator=None):
        return r2g2_latent_linear(distribution.loc, distribution.scale, sample, weight, bias)


ESTIMATORS.register("score")(ScoreFunction)


def estimators_for(place):
    """Names of the estimators that implement ``place`` (one of ``PLACES``)."""
    check_choice("place", place, PLACES)
    return [name for name in ESTIMATORS.names() if place in ESTIMATORS.get(name).places]


def make_estimator(estimator, place, config=None):
    """An estimator module from a name (options read from ``config`` when given) or an instance,
    checked to implement ``place``."""
    if isinstance(estimator, str):
        check_choice("estimator", estimator, estimators_for(place))
        cls = ESTIMATORS.get(estimator)
        return cls() if config is None else cls.from_config(config)
    if place not in getattr(estimator, "places", ()):
        raise ValueError(
            f"estimator {type(estimator).__name__} does not apply to {place}; use one of {estimators_for(place)}"
        )
    return estimator


class GaussianLinear(nn.Linear):
    """A linear layer fed by a Gaussian latent, with the gradient estimator chosen by name.

    ``forward(distribution, sample)`` returns ``sample @ weight.T + bias`` in value; ``sample`` must
    be ``distribution.rsample()`` (loc + scale * eps), or ``distribution`` None for a given z. With ``estimator="r2g2"`` the gradient through
    this layer uses E[eps | pre-activation]; when ``weight`` has full column rank (in_features <=
    out_features, the usual latent-to-hidden case) that is exactly RT, and no solve is run.
    A subclass of ``nn.Linear`` so models' ``_init_weights`` for Linear covers its parameters.
    """

    def __init__(self, in_features, out_features, bias=True, estimator="rt", config=None):
        super().__init__(in_features, out_features, bias)
        self.estimator = make_estimator(estimator, "latent_linear", config)

    def forward(self, distribution, sample, generator=None):
        if distribution is None:  # a given z (e.g. ancestral sampling): nothing was drawn here
            return super().forward(sample)
        return self.estimator.latent_linear(distribution, sample, self.weight, self.bias, generator)
