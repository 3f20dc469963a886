"""Fast gradient sign method (FGSM) robustness of a probabilistic classifier.

Goodfellow, Shlens & Szegedy 2015: x_adv = clip(x + eps * sign(grad_x L(x, y)), 0, 1). The attacked
loss is the negative log of the S-sample predictive probability of the true class,
L = -log (1/S) sum_s softmax(logits_s)[y] (``model.predictive_log_probs`` with S = ``num_samples``,
the same S used to score the attack), so the gradient flows through all S posterior samples; the
Deep VIB and Slashed Normal papers attack their classifiers the same way. Predictions on x_adv use
a separate generator, so with eps = 0 the adversarial error is exactly the clean error computed with
that generator's seed.
"""

import torch


def fgsm_direction(model, pixel_values, labels, num_samples, generator=None):
    """sign(grad_x -log p_S(y | x)) for a batch, shape of ``pixel_values``."""
    x = pixel_values.detach().clone().requires_grad_(True)
    log_probs = model.predictive_log_probs(x, num_samples, generator=generator)
    loss = -log_probs.gather(1, labels[:, None]).sum()
    (grad,) = torch.autograd.grad(loss, x)
    return grad.sign()


def fgsm_error_counts(model, pixel_values, labels, epsilons, num_samples, attack_generator, eval_seed):
    """Misclassified examples of one batch for each eps in ``epsilons`` -> {eps: count}.

    The attack direction is computed once with ``attack_generator``; every eps is scored with a
    fresh generator seeded ``eval_seed`` (same posterior draws for every eps).
    """
    direction = fgsm_direction(model, pixel_values, labels, num_samples, attack_generator)
    counts = {}
    for eps in epsilons:
        x_adv = (pixel_values + eps * direction).clamp(0, 1)
        generator = torch.Generator(device=pixel_values.device).manual_seed(eval_seed)
        with torch.no_grad():
            prediction = model.predictive_log_probs(x_adv, num_samples, generator=generator).argmax(-1)
        counts[eps] = int((prediction != labels).sum())
    return counts
