"""The gradient-variance tool: exact on a deterministic case, ordered on the estimators it compares."""

import pytest
import torch

from vaezoo import BNNConfig, BNNModel
from vaezoo.gradient_variance import gradient_variance, use_estimator


@pytest.fixture(autouse=True)
def single_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # many passes on tiny tensors
    yield
    torch.set_num_threads(threads)


def _setup():
    torch.manual_seed(0)
    model = BNNModel(BNNConfig(hidden=[16], estimator="rt", initial_scale=0.1, num_train_examples=100))
    g = torch.Generator().manual_seed(0)
    return model, torch.rand(20, 784, generator=g), torch.randint(0, 10, (20,), generator=g)


def test_variance_orders_rt_above_lrt_and_r2g2_equals_lrt():
    model, x, y = _setup()
    top = ["network.2.weight_raw_loc", "network.2.weight_raw_scale"]
    results = {}
    for name in ("rt", "lrt", "r2g2"):
        with use_estimator(model, name):
            assert type(model.network[2].estimator).__name__ != "Reparameterization" or name == "rt"
            results[name] = gradient_variance(model, x, y, 30, torch.Generator().manual_seed(1), top)
    assert type(model.network[2].estimator).__name__ == "Reparameterization"  # restored
    for group in top:
        assert results["lrt"][group]["variance"] < results["rt"][group]["variance"]
        # R2-G2 is the LRT in a linear layer: same numbers with the same seed
        assert results["r2g2"][group] == results["lrt"][group]
        assert results["rt"][group]["numel"] == 160


def test_variance_is_zero_without_noise_and_names_are_checked():
    model, x, y = _setup()
    stats = gradient_variance(model, x, y, 3, torch.Generator().manual_seed(1), ["network.0.bias"])
    assert stats["network.0.bias"]["variance"] > 0  # bias gradients see the weight noise downstream
    with torch.no_grad():
        for layer in model.network.bayesian_layers():
            layer.weight_raw_scale.fill_(-200.0)  # softplus -> the 1e-4 floor: almost deterministic
    stats = gradient_variance(model, x, y, 3, torch.Generator().manual_seed(1), ["network.0.bias"])
    assert stats["network.0.bias"]["variance"] < 1e-4 * stats["network.0.bias"]["mean_sq_norm"]
    with pytest.raises(ValueError, match="unknown parameter names"):
        gradient_variance(model, x, y, 3, None, ["nope"])
    with pytest.raises(ValueError, match="num_draws=1"):
        gradient_variance(model, x, y, 1)
