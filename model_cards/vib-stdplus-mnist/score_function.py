"""The score-function (REINFORCE) estimator with a moving-average baseline.

Williams 1992; for variational inference e.g. Ranganath, Gerrish & Blei 2014 ("black-box VI").
For v ~ q_phi, grad_phi E_q[L(v)] = E_q[(L(v) - b) grad_phi log q_phi(v)] for any baseline b that
does not depend on the current draw. The sample is used with no pathwise gradient (v is detached);
the layer records log q(v) and the model turns it into a surrogate loss once the loss is known:

    surrogate = mean[(L - b).detach() * log q(v)],   added to the loss as surrogate - surrogate.detach()

so the reported loss keeps its value while its gradient gains the score term. ``b`` is an
exponential moving average of past batch losses (bias-corrected like Adam's moments), updated
after it is used, so it never depends on the draw it multiplies. It is kept as plain Python
floats: it is training state, not part of the model, and is not saved.

Shapes: a weight shared by the batch records a scalar log q(W), which multiplies the batch-mean
loss; a per-example latent records log q(v_b) of shape (..., B), which multiplies each example's
own loss. Both are ``mean((loss_per_example - b) * log_q)`` by broadcasting.
"""

import torch
import torch.nn.functional as F
from torch import nn

from .registry import check_number


class ScoreFunction(nn.Module):
    """REINFORCE for every place a Gaussian meets a linear map (linear, conv2d, latent -> linear)."""

    places = ("linear", "conv2d", "latent_linear")

    def __init__(self, baseline_decay=0.9):
        super().__init__()
        check_number("baseline_decay", baseline_decay, strict=False, maximum=1, strict_maximum=True)
        self.baseline_decay = baseline_decay
        self._baseline_sum = 0.0
        self._baseline_weight = 0.0
        self.pending_log_prob = None

    @classmethod
    def from_config(cls, config):
        return cls(baseline_decay=config.score_baseline_decay)

    @property
    def baseline(self):
        return self._baseline_sum / self._baseline_weight if self._baseline_weight > 0 else 0.0

    def _record(self, log_prob):
        # Evaluation passes (no grad) need no score term and must not leave one behind.
        self.pending_log_prob = log_prob if torch.is_grad_enabled() else None

    def linear(self, x, weight, bias, generator=None):
        sample = weight.sample(generator=generator)
        self._record(weight.log_prob(sample).sum())
        return F.linear(x, sample, bias)

    def conv2d(self, x, weight, bias, stride, padding, generator=None):
        sample = weight.sample(generator=generator)
        self._record(weight.log_prob(sample).sum())
        return F.conv2d(x, sample, bias, stride, padding)

    def latent_linear(self, distribution, sample, weight, bias, generator=None):
        value = sample.detach()
        self._record(distribution.log_prob(value))
        return F.linear(value, weight, bias)

    def surrogate(self, loss_per_example):
        """Zero-valued term whose gradient is the score-function gradient of the recorded draw."""
        log_prob, self.pending_log_prob = self.pending_log_prob, None
        if log_prob is None:
            return 0.0
        loss = loss_per_example.detach()
        term = ((loss - self.baseline) * log_prob).mean()
        decay = self.baseline_decay
        self._baseline_sum = decay * self._baseline_sum + (1 - decay) * float(loss.mean())
        self._baseline_weight = decay * self._baseline_weight + (1 - decay)
        return term - term.detach()


def score_function_surrogate(model, loss_per_example):
    """Sum of the surrogate terms of every score-function estimator in ``model`` (0 if none).

    ``loss_per_example`` is the data term whose expectation the estimators differentiate, with a
    shape that broadcasts against each recorded log q (per example, or (samples, batch)).
    """
    return sum(
        (module.surrogate(loss_per_example) for module in model.modules() if isinstance(module, ScoreFunction)), 0.0
    )
