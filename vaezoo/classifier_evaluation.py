"""Test-set metrics of a probabilistic classifier (BNN, VIB): accuracy, NLL, ECE, FGSM error.

Every metric is computed from the predictive distribution p_S(y | x) = (1/S) sum_s softmax(logits_s)
over S = ``num_samples`` posterior samples (``model.predictive_log_probs``). Batch i is scored with a
generator seeded from ``generator`` and i, and its FGSM predictions reuse that seed, so
``fgsm_error_0.0 == 1 - accuracy`` exactly.
"""

import torch

from .adversarial import fgsm_error_counts
from .calibration import expected_calibration_error, reliability_diagram_data


def evaluate_classifier(model, images_float, labels, num_samples, batch_size, generator, fgsm_eps=()):
    """Metrics over the whole set ``images_float`` (N, ...) in [0, 1] with integer ``labels`` (N,).

    Returns a dict: ``accuracy``, ``nll`` (mean -log p_S(y|x), nats), ``ece`` (15 bins), ``num_examples``,
    ``num_samples``; ``rate`` (mean KL(q(z|x) || p(z)) per example, nats) when the model's output has a
    rate (VIB); ``kl`` (total weight KL, nats) when it has one (BNN); ``fgsm_error_{eps}`` per eps.
    """
    model.eval()
    device = next(model.parameters()).device
    base_seed = int(torch.randint(0, 2**62, (1,), generator=generator))
    log_probs, rate_sum, kl, fgsm_errors = [], None, None, dict.fromkeys(fgsm_eps, 0)
    for index, start in enumerate(range(0, len(labels), batch_size)):
        x = images_float[start : start + batch_size].to(device)
        y = labels[start : start + batch_size].to(device)
        seed = base_seed + 2 * index
        with torch.no_grad():
            predictive_generator = torch.Generator(device=device).manual_seed(seed)
            batch_log_probs = model.predictive_log_probs(x, num_samples, predictive_generator)
            out = model(x, generator=torch.Generator(device=device).manual_seed(seed + 1))
        log_probs.append(batch_log_probs.cpu())
        if getattr(out, "rate", None) is not None:
            rate_sum = (rate_sum or 0.0) + float(out.rate) * len(y)
        if getattr(out, "kl", None) is not None:
            kl = float(out.kl)
        if fgsm_eps:
            attack_generator = torch.Generator(device=device).manual_seed(seed + 1)
            counts = fgsm_error_counts(model, x, y, fgsm_eps, num_samples, attack_generator, eval_seed=seed)
            for eps, count in counts.items():
                fgsm_errors[eps] += count
    log_probs = torch.cat(log_probs)
    labels = labels.cpu().long()
    n = len(labels)
    metrics = {
        "accuracy": float((log_probs.argmax(-1) == labels).double().mean()),
        "nll": float(-log_probs.gather(1, labels[:, None]).double().mean()),
        "ece": expected_calibration_error(log_probs.exp(), labels),
        "reliability": reliability_diagram_data(log_probs.exp(), labels),
        "num_examples": n,
        "num_samples": num_samples,
    }
    if rate_sum is not None:
        metrics["rate"] = rate_sum / n
    if kl is not None:
        metrics["kl"] = kl
    metrics.update({f"fgsm_error_{eps}": count / n for eps, count in fgsm_errors.items()})
    return metrics
