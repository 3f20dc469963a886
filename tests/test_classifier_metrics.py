"""Calibration (ECE against a hand-computed example), FGSM (eps = 0 is the clean error) and the
classifier evaluation helper."""

import pytest
import torch

from vaezoo import BNNConfig, BNNModel, VIBConfig, VIBModel
from vaezoo.adversarial import fgsm_direction, fgsm_error_counts
from vaezoo.calibration import expected_calibration_error, reliability_diagram_data
from vaezoo.classifier_evaluation import evaluate_classifier


def test_ece_matches_a_hand_computed_example():
    # confidences 0.9, 0.8, 0.6, 0.7 (4 bins of width 0.25); label 0 everywhere: correct, wrong, correct, wrong
    probs = torch.tensor([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4], [0.3, 0.7]])
    labels = torch.tensor([0, 0, 0, 0])
    # bin (0.5, 0.75]: {0.6 correct, 0.7 wrong}: |0.5 - 0.65| * 2/4 = 0.075
    # bin (0.75, 1]:   {0.9 correct, 0.8 wrong}: |0.5 - 0.85| * 2/4 = 0.175
    assert expected_calibration_error(probs, labels, num_bins=4) == pytest.approx(0.25)
    data = reliability_diagram_data(probs, labels, num_bins=4)
    assert data["count"] == [0, 0, 2, 2]
    assert data["accuracy"][:2] == [None, None] and data["accuracy"][2:] == [0.5, 0.5]
    assert data["confidence"][2] == pytest.approx(0.65) and data["confidence"][3] == pytest.approx(0.85)
    assert data["bin_edges"] == [0.0, 0.25, 0.5, 0.75, 1.0]


def test_ece_of_a_perfectly_calibrated_set_is_zero_and_inputs_are_checked():
    probs = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, torch.tensor([0, 1])) == 0.0
    assert expected_calibration_error(probs, torch.tensor([1, 0])) == 1.0
    with pytest.raises(ValueError, match="num_bins=0"):
        expected_calibration_error(probs, torch.tensor([0, 1]), num_bins=0)
    with pytest.raises(ValueError, match="labels"):
        expected_calibration_error(probs, torch.tensor([0, 1, 1]))


def _vib():
    torch.manual_seed(0)
    return VIBModel(VIBConfig(encoder_hidden=[32], latent_dim=8)).eval()


def _data(n=12):
    g = torch.Generator().manual_seed(0)
    return torch.rand(n, 1, 28, 28, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_fgsm_with_eps_zero_is_the_clean_error_and_larger_eps_hurts():
    model = _vib()
    x, y = _data()
    counts = fgsm_error_counts(model, x, y, (0.0, 0.3), 4, torch.Generator().manual_seed(1), eval_seed=5)
    with torch.no_grad():
        clean = model.predictive_log_probs(x, 4, torch.Generator().manual_seed(5)).argmax(-1)
    assert counts[0.0] == int((clean != y).sum())
    assert counts[0.3] >= counts[0.0]
    direction = fgsm_direction(model, x, y, 4, torch.Generator().manual_seed(1))
    assert set(direction.unique().tolist()) <= {-1.0, 0.0, 1.0} and direction.abs().sum() > 0


@pytest.mark.parametrize("kind", ["vib", "bnn"])
def test_evaluate_classifier(kind):
    torch.manual_seed(0)
    model = _vib() if kind == "vib" else BNNModel(BNNConfig(hidden=[16], estimator="flipout"))
    x, y = _data(10)
    metrics = evaluate_classifier(model, x, y, 3, 4, torch.Generator().manual_seed(0), fgsm_eps=(0.0, 0.2))
    assert metrics["num_examples"] == 10 and metrics["num_samples"] == 3
    assert metrics["fgsm_error_0.0"] == pytest.approx(1 - metrics["accuracy"])
    assert 0 <= metrics["ece"] <= 1 and metrics["nll"] > 0
    assert ("rate" in metrics) == (kind == "vib") and ("kl" in metrics) == (kind == "bnn")
    again = evaluate_classifier(model, x, y, 3, 4, torch.Generator().manual_seed(0))
    assert again["accuracy"] == metrics["accuracy"] and again["nll"] == metrics["nll"]  # seeded
