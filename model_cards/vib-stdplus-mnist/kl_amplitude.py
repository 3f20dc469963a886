r"""KL-amplitude normalization and target rates for Slashed Normal posteriors (methods.md §1).

With the stdplus parameterization the encoder's raw outputs (a, b) of shape (N, K) are the KL
amplitude psi = a + ib: KL(q(z|x_n) || N(0, I)) = sum_k a_nk^2 + b_nk^2 exactly. Rescaling psi
therefore sets the rate to a chosen number delta (nats per example) instead of penalizing it:
psi = sqrt(delta) * normalize(psi~). Each normalization divides psi~ by the square root of one
"rate statistic" S of psi~ and multiplies by sqrt(delta):

| name       | S (rate of psi~ that is set to delta)        | after normalization (training mode)        |
|------------|-----------------------------------------------|--------------------------------------------|
| `none`     | -                                             | psi unchanged; the loss keeps the full KL  |
| `instance` | S_n = sum_k |psi~_nk|^2 (per example)         | every example has rate exactly delta       |
| `batch`    | S = (1/N) sum_nk |psi~_nk|^2 = ||psi~||_F^2/N | the batch-mean rate is exactly delta       |
| `feature`  | S_k = K (1/N) sum_n |psi~_nk|^2 (per dim)     | each dim's batch-mean rate is delta / K    |

`feature` generalizes BN-VAE (Zhu et al. 2020): no dimension can reach zero rate, so none collapses.
Unlike BatchNorm it only rescales (no centering): centering would change the rate it controls.
`batch` and `feature` keep an exponential running average of S (``running_statistic``, a persistent
buffer saved with the weights; momentum as in BatchNorm) that replaces the batch statistic in eval
mode, so a test example's code does not depend on the other examples in its batch.

`*_mean_only` variants compute S from a alone and rescale only a; b (the scale part) stays free.
The target then means: the rate carried by the means, sum_k a_k^2, equals delta (per example /
batch mean / delta/K per dim as above), and the total rate is delta + sum_k b_k^2 >= delta.

Objective (design choice, stated on the cards): with a normalized amplitude the rate needs no
penalty, so the loss is D + beta * R_free where R_free is the part of the rate the normalization
does not fix: 0 for a full normalization with a fixed target (loss = distortion alone), sum_k b_k^2
for the mean_only variants, plus delta itself when the target is learnable or committed (otherwise a
learned delta would grow without bound, since more rate always lowers the distortion). In training
mode R = delta + R_free exactly on average over the batch, so this loss is the beta-ELBO minus the
constant beta * (fixed delta): the same gradients, without differentiating a constant. The rate R
is still measured and reported.

Target rate delta (``TargetRate``), in nats per example: ``fixed`` (delta0), ``learnable``
(|theta|, theta starts at delta0) or ``committed`` (delta0 + |theta|, a rate of at least delta0, as
in delta-VAE's committed rate; theta starts at ``extra_init`` > 0 because d|theta|/dtheta = 0 at 0).
delta0 is given in nats, or for a C-class classifier as r * log C (a rate of r times the label
entropy of a uniform prior). Nothing here is VAE-specific: the VIB classifier uses the same modules.
"""

import math

import torch
from torch import nn
from transformers import initialization as init

from .registry import Registry, check_choice, check_number

AMPLITUDE_NORMALIZATIONS = Registry("amplitude_normalization")
TARGET_RATES = Registry("target_rate_mode")
#: added to the statistic S so an all-zero amplitude maps to zero with finite gradients instead of NaN;
#: the controlled rate is delta * S / (S + EPS), exact to float32 round-off for any S above ~1e-5 nats
EPS = 1e-12


# ---- target rate ---------------------------------------------------------------------------------


def target_rate_nats(nats=None, classes=None, ratio=None):
    """delta0 in nats per example: ``nats`` directly, or ``ratio * log(classes)`` for a classifier."""
    if (nats is None) == (ratio is None):
        raise ValueError(f"give exactly one of target_rate (nats) or target_rate_ratio (r); got {nats!r} and {ratio!r}")
    if nats is not None:
        check_number("target_rate", nats, minimum=0, strict=True)
        return float(nats)
    check_number("target_rate_ratio", ratio, minimum=0, strict=True)
    if isinstance(classes, bool) or not isinstance(classes, int) or classes < 2:
        raise ValueError(f"num_classes={classes!r} is not valid with target_rate_ratio; expected an integer >= 2")
    return float(ratio) * math.log(classes)


class TargetRate(nn.Module):
    """delta in nats per example. ``forward()`` returns delta, ``penalty()`` the part the loss prices."""

    is_learned = False

    def __init__(self, nats, extra_init=1.0):
        super().__init__()
        self.nats = nats

    def penalty(self):
        """Rate the objective must still pay for: a learned delta is paid for, a fixed one is not."""
        return self() if self.is_learned else torch.zeros(())


@TARGET_RATES.register("fixed")
class FixedTargetRate(TargetRate):
    """delta = delta0."""

    def forward(self):
        return torch.tensor(self.nats)


@TARGET_RATES.register("learnable")
class LearnableTargetRate(TargetRate):
    """delta = |theta|, theta starts at delta0."""

    is_learned = True

    def __init__(self, nats, extra_init=1.0):
        super().__init__(nats)
        self.learned = nn.Parameter(torch.tensor(self.initial_learned_value()))

    def initial_learned_value(self):
        return self.nats

    def forward(self):
        return self.learned.abs()


@TARGET_RATES.register("committed")
class CommittedTargetRate(TargetRate):
    """delta = delta0 + |theta|: at least delta0 nats; theta starts at ``extra_init``."""

    is_learned = True

    def __init__(self, nats, extra_init=1.0):
        super().__init__(nats)
        self.extra_init = extra_init
        self.learned = nn.Parameter(torch.tensor(self.initial_learned_value()))

    def initial_learned_value(self):
        return float(self.extra_init)

    def forward(self):
        return self.nats + self.learned.abs()


# ---- normalizations ------------------------------------------------------------------------------


@AMPLITUDE_NORMALIZATIONS.register("none")
class NoNormalization(nn.Module):
    """Raw amplitudes; the objective pays the full rate."""

    def forward(self, a, b):
        return a, b

    def penalized_rate(self, posterior, rate):
        return rate


class AmplitudeNormalization(nn.Module):
    """psi = sqrt(delta) psi~ / sqrt(S(psi~)); subclasses define the statistic S (module docstring)."""

    mean_only = False
    running = False

    def __init__(self, latent_dim, target_rate, momentum=0.1):
        super().__init__()
        self.latent_dim = latent_dim
        self.target_rate = target_rate
        self.momentum = momentum
        if self.running:
            self.register_buffer("running_statistic", torch.ones(self.statistic_shape()))

    def statistic(self, squared):
        """S from the per-entry squared amplitudes (N, K), broadcastable against them."""
        raise NotImplementedError

    def forward(self, a, b):
        # Half precision (autocast) is normalized in float32 and returned as float32: the rate is a^2 + b^2 of
        # these numbers, so they carry it at float32 accuracy.
        a, b = (t.float() if t.dtype in (torch.float16, torch.bfloat16) else t for t in (a, b))
        squared = a.square() if self.mean_only else a.square() + b.square()
        if self.running and not self.training:
            statistic = self.running_statistic.to(squared)
        else:
            statistic = self.statistic(squared)
            if self.running:
                with torch.no_grad():
                    self.running_statistic.lerp_(statistic.detach().to(self.running_statistic.dtype), self.momentum)
        scale = torch.sqrt(self.target_rate().to(squared) / (statistic + EPS))  # .to: dtype and device
        return a * scale, (b if self.mean_only else b * scale)

    def penalized_rate(self, posterior, rate):
        """R_free per example: the rate the normalization does not fix (module docstring)."""
        free = posterior.amplitude_scale.square().sum(-1) if self.mean_only else torch.zeros_like(rate)
        return free + self.target_rate.penalty().to(rate)


@AMPLITUDE_NORMALIZATIONS.register("instance")
class InstanceNormalization(AmplitudeNormalization):
    """S_n = per-example rate of psi~: every example gets rate delta."""

    def statistic(self, squared):
        return squared.sum(-1, keepdim=True)


@AMPLITUDE_NORMALIZATIONS.register("batch")
class BatchNormalization(AmplitudeNormalization):
    """S = batch-mean rate of psi~: psi = sqrt(N delta) psi~ / ||psi~||_F."""

    running = True

    def statistic_shape(self):
        return (1,)

    def statistic(self, squared):
        return squared.sum(-1).mean().reshape(1)


@AMPLITUDE_NORMALIZATIONS.register("feature")
class FeatureNormalization(AmplitudeNormalization):
    """S_k = K * batch-mean rate of dim k: each dimension gets rate delta / K on average."""

    running = True

    def statistic_shape(self):
        return (self.latent_dim,)

    def statistic(self, squared):
        return self.latent_dim * squared.mean(0)


@AMPLITUDE_NORMALIZATIONS.register("instance_mean_only")
class InstanceMeanOnlyNormalization(InstanceNormalization):
    mean_only = True


@AMPLITUDE_NORMALIZATIONS.register("batch_mean_only")
class BatchMeanOnlyNormalization(BatchNormalization):
    mean_only = True


@AMPLITUDE_NORMALIZATIONS.register("feature_mean_only")
class FeatureMeanOnlyNormalization(FeatureNormalization):
    mean_only = True


# ---- config fields -------------------------------------------------------------------------------
# A model config that offers amplitude normalization has the fields amplitude_normalization,
# target_rate, target_rate_mode, target_rate_extra_init, normalization_momentum, parameterization and
# prior; a classifier may give target_rate_ratio and num_classes instead of target_rate.


def check_amplitude_normalization(config, target_rate_used_elsewhere=False):
    """Config validation: raise a ValueError naming the offending field. Every field is checked even
    with 'none', so a saved config cannot carry an invalid value that a later override would activate.
    ``target_rate_used_elsewhere``: the config also reads ``target_rate`` for something else (the VAE's
    ``target_rate`` objective), so with 'none' it need not be null."""
    name = config.amplitude_normalization
    check_choice("amplitude_normalization", name, AMPLITUDE_NORMALIZATIONS.names())
    check_choice("target_rate_mode", config.target_rate_mode, TARGET_RATES.names())
    check_number("target_rate_extra_init", config.target_rate_extra_init, minimum=0, strict=True)
    check_number("normalization_momentum", config.normalization_momentum, minimum=0, strict=True, maximum=1)
    nats, ratio = config.target_rate, getattr(config, "target_rate_ratio", None)
    if name == "none":
        if ratio is not None or (nats is not None and not target_rate_used_elsewhere):
            field = "target_rate" if nats is not None else "target_rate_ratio"
            raise ValueError(f"{field} is only used with amplitude_normalization != 'none'; remove it or pick a normalization")
        return
    if config.parameterization != "stdplus":
        raise ValueError(
            f"amplitude_normalization={name!r} needs parameterization='stdplus' (got {config.parameterization!r}): "
            "only the Slashed Normal's raw outputs are a KL amplitude whose squared norm is the rate"
        )
    # A config without a ``prior`` field (the VIB classifier) always uses N(0, I).
    prior = getattr(config, "prior", "standard_normal")
    if prior != "standard_normal":
        raise ValueError(
            f"amplitude_normalization={name!r} needs prior='standard_normal' (got {prior!r}): "
            "the KL amplitude is defined relative to N(0, I)"
        )
    target_rate_nats(nats, getattr(config, "num_classes", None), ratio)


def amplitude_normalization_from_config(config, latent_dim):
    """The normalization module a validated config asks for (``NoNormalization`` for 'none')."""
    name = config.amplitude_normalization
    if name == "none":
        return NoNormalization()
    nats = target_rate_nats(config.target_rate, getattr(config, "num_classes", None),
                            getattr(config, "target_rate_ratio", None))
    target = TARGET_RATES.get(config.target_rate_mode)(nats, config.target_rate_extra_init)
    return AMPLITUDE_NORMALIZATIONS.get(name)(latent_dim, target, config.normalization_momentum)


def init_amplitude_normalization(module):
    """For a model's ``_init_weights``: from_pretrained builds on the meta device, so every tensor
    this file adds is set here (``init`` skips tensors that were loaded from the checkpoint)."""
    if isinstance(module, AmplitudeNormalization) and module.running:
        init.ones_(module.running_statistic)
    if isinstance(module, TargetRate) and module.is_learned:
        init.constant_(module.learned, module.initial_learned_value())
