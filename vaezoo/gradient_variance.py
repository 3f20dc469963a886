"""Gradient variance of an estimator: for a fixed model, batch and estimator, how much the loss
gradient of each parameter group varies across estimator draws (the R2-G2 paper's Figure 1 metric).

For parameter group theta_k and draws d = 1..D of the estimator's noise (parameters and batch
fixed), with g_d the gradient of ``model(pixel_values, labels=labels, generator=...).loss``:

    variance_k = sum over the group's elements of the sample variance of g_d   (trace of the covariance)
    mean_sq_norm_k = ||mean_d g_d||^2      (the signal the variance is compared with)

Computed with Welford's update in float64, so D can be large without storing the draws.
"""

import contextlib

import torch

from .bayes_layers import BayesianLayer
from .estimators import make_estimator


def gradient_variance(model, pixel_values, labels, num_draws, generator=None, parameter_names=None):
    """Per named parameter: {"variance", "mean_sq_norm", "numel"} over ``num_draws`` >= 2 draws.

    ``parameter_names`` restricts the groups (default: every parameter that requires a gradient).
    """
    if num_draws < 2:
        raise ValueError(f"num_draws={num_draws!r} is not valid; expected an integer >= 2")
    named = {
        name: p
        for name, p in model.named_parameters()
        if p.requires_grad and (parameter_names is None or name in parameter_names)
    }
    if parameter_names is not None and set(parameter_names) - set(named):
        raise ValueError(f"unknown parameter names {sorted(set(parameter_names) - set(named))}")
    mean = {name: torch.zeros_like(p, dtype=torch.float64) for name, p in named.items()}
    m2 = {name: torch.zeros_like(p, dtype=torch.float64) for name, p in named.items()}
    for draw in range(1, num_draws + 1):
        loss = model(pixel_values, labels=labels, generator=generator).loss
        grads = torch.autograd.grad(loss, list(named.values()), allow_unused=True)
        for name, grad in zip(named, grads):
            grad = torch.zeros_like(mean[name]) if grad is None else grad.double()
            delta = grad - mean[name]
            mean[name] += delta / draw
            m2[name] += delta * (grad - mean[name])
    return {
        name: {
            "variance": float(m2[name].sum() / (num_draws - 1)),
            "mean_sq_norm": float(mean[name].square().sum()),
            "numel": mean[name].numel(),
        }
        for name in named
    }


@contextlib.contextmanager
def use_estimator(model, estimator, config=None):
    """Temporarily give every Bayesian layer of ``model`` the estimator ``estimator`` (a name),
    with options from ``config`` (default: the model's config)."""
    config = model.config if config is None else config
    layers = [m for m in model.modules() if isinstance(m, BayesianLayer)]
    saved = [layer.estimator for layer in layers]
    try:
        for layer in layers:
            layer.estimator = make_estimator(estimator, layer.place, config)
        yield model
    finally:
        for layer, original in zip(layers, saved):
            layer.estimator = original
