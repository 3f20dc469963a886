"""Calibration of a classifier's predictive distribution: expected calibration error (ECE) and the
data of a reliability diagram (Guo, Pleiss, Sun & Weinberger 2017, "On Calibration of Modern
Neural Networks").

Examples are binned by confidence (the largest predicted probability) into ``num_bins`` equal-width
bins on [0, 1] (bin i holds confidences in (i/M, (i+1)/M], the first bin also holds 0);
ECE = sum_i (n_i / N) |accuracy_i - mean confidence_i|, a fraction in [0, 1].
"""

import torch


def _bin_sums(probs, labels, num_bins):
    """Per confidence bin: example count, number correct, summed confidence (float64)."""
    if probs.dim() != 2 or labels.shape != probs.shape[:1]:
        raise ValueError(f"probs must be (N, C) and labels (N,), got {tuple(probs.shape)} and {tuple(labels.shape)}")
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) or num_bins < 1:
        raise ValueError(f"num_bins={num_bins!r} is not valid; expected an integer >= 1")
    confidence, prediction = probs.double().max(-1)
    correct = (prediction == labels).double()
    index = (torch.ceil(confidence * num_bins).long() - 1).clamp(0, num_bins - 1)
    count = torch.bincount(index, minlength=num_bins)
    return count, torch.bincount(index, correct, num_bins), torch.bincount(index, confidence, num_bins)


def reliability_diagram_data(probs, labels, num_bins=15):
    """Per-bin counts, accuracy and mean confidence for probabilities ``probs`` (N, C) and labels (N,).

    Returns a dict of lists: ``bin_edges`` (num_bins + 1), ``count``, ``accuracy`` and
    ``confidence`` (num_bins each; empty bins have accuracy and confidence None).
    """
    count, correct_sum, confidence_sum = _bin_sums(probs, labels, num_bins)
    return {
        "bin_edges": torch.linspace(0, 1, num_bins + 1, dtype=torch.float64).tolist(),
        "count": count.tolist(),
        "accuracy": [(c / n).item() if n > 0 else None for c, n in zip(correct_sum, count)],
        "confidence": [(s / n).item() if n > 0 else None for s, n in zip(confidence_sum, count)],
    }


def expected_calibration_error(probs, labels, num_bins=15):
    """ECE (fraction in [0, 1]) of predictive probabilities ``probs`` (N, C) against labels (N,)."""
    count, correct_sum, confidence_sum = _bin_sums(probs, labels, num_bins)
    return float((correct_sum - confidence_sum).abs().sum() / count.sum())
