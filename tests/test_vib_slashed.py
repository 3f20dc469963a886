"""VIB with the Slashed Normal fixed-rate variant: KL-amplitude normalization of the stdplus encoder
(``vaezoo/kl_amplitude.py``) with target rate r * log C and no KL term in the loss."""

import math

import pytest
import torch

from vaezoo import VIBConfig, VIBModel

LOG10 = math.log(10)


def slashed_vib(**fields):
    torch.manual_seed(0)
    defaults = dict(encoder_hidden=[32], latent_dim=8, parameterization="stdplus", train_samples=2, target_rate_ratio=1.0)
    return VIBModel(VIBConfig(**{**defaults, **fields}))


def batch(n=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 784, generator=g), torch.randint(0, 10, (n,), generator=g)


def test_instance_normalization_sets_every_example_rate_to_r_log_c():
    model = slashed_vib(amplitude_normalization="instance")
    x, y = batch()
    out = model(x, labels=y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.rate_per_example, torch.full((20,), LOG10))
    model.eval()  # instance normalization has no running statistic: the same in eval mode
    torch.testing.assert_close(model(x).rate_per_example, torch.full((20,), LOG10))


@pytest.mark.parametrize("ratio", [1.0, 0.5])
def test_batch_normalization_sets_batch_mean_rate_to_r_log_c(ratio):
    model = slashed_vib(amplitude_normalization="batch", target_rate_ratio=ratio)
    x, y = batch()
    out = model(x, labels=y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.rate, torch.tensor(ratio * LOG10))
    assert out.rate_per_example.std() > 0.01  # only the batch mean is fixed


@pytest.mark.parametrize("name", ["instance", "batch", "feature"])
def test_fixed_full_normalization_loss_is_the_nll_alone(name):
    model = slashed_vib(amplitude_normalization=name, beta=0.5)
    x, y = batch()
    out = model(x, labels=y, generator=torch.Generator().manual_seed(0))
    assert out.rate > 0.1  # the rate is still measured and reported
    torch.testing.assert_close(out.loss, out.nll, rtol=0, atol=0)


def test_unnormalized_and_learned_target_losses_price_the_rate():
    x, y = batch()
    plain = VIBModel(VIBConfig(encoder_hidden=[32], latent_dim=8, parameterization="stdplus", beta=0.5))
    out = plain(x, labels=y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, out.nll + 0.5 * out.rate)
    learned = slashed_vib(amplitude_normalization="instance", target_rate_mode="learnable", beta=0.5)
    out = learned(x, labels=y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, out.nll + 0.5 * out.rate)  # a learned delta is paid for
    mean_only = slashed_vib(amplitude_normalization="instance_mean_only", beta=0.5)
    out = mean_only(x, labels=y, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, out.nll + 0.5 * (out.rate - LOG10))  # only b^2 is paid for


@pytest.mark.parametrize("name", ["batch", "feature"])
def test_save_load_round_trip_keeps_running_statistics(tmp_path, name):
    model = slashed_vib(amplitude_normalization=name, normalization_momentum=0.3)
    x, y = batch(30)
    for step in range(3):  # move the running statistic away from its initial ones
        model(x, labels=y, generator=torch.Generator().manual_seed(step)).loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.01 * p.grad
        model.zero_grad()
    statistic = model.amplitude_normalization.running_statistic
    assert not torch.equal(statistic, torch.ones_like(statistic))
    model.save_pretrained(tmp_path)
    loaded = VIBModel.from_pretrained(tmp_path)
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys() and "amplitude_normalization.running_statistic" in after
    for key in before:
        assert torch.equal(before[key], after[key]), key
    model.eval()
    torch.testing.assert_close(loaded.encode(x).loc, model.encode(x).loc, rtol=0, atol=0)
    # eval mode uses the running statistic, so an example's code does not depend on its batch
    torch.testing.assert_close(loaded.encode(x[:1]).loc, loaded.encode(x).loc[:1])


def test_fresh_model_initializes_the_running_statistic():
    model = slashed_vib(amplitude_normalization="feature")
    assert torch.equal(model.amplitude_normalization.running_statistic, torch.ones(8))


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"amplitude_normalization": "instance", "target_rate_ratio": 1.0}, "stdplus"),  # default softplus
        ({"amplitude_normalization": "instance", "parameterization": "stdplus"}, "target_rate"),
        ({"amplitude_normalization": "instance", "parameterization": "stdplus", "target_rate": 2.0,
          "target_rate_ratio": 1.0}, "exactly one"),
        ({"target_rate_ratio": 1.0}, "target_rate_ratio"),
        ({"amplitude_normalization": "instance", "parameterization": "stdplus", "target_rate_ratio": -1.0},
         "target_rate_ratio"),
    ],
)
def test_config_errors_name_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        VIBConfig(**fields)
