"""KL-amplitude normalization and target rates (vaezoo/kl_amplitude.py, methods.md §1)."""

import math

import pytest
import torch
from torch.func import functional_call

from vaezoo.configuration_vae import VAEConfig
from vaezoo.data import load_images
from vaezoo.evaluation import active_units
from vaezoo.kl_amplitude import (
    AMPLITUDE_NORMALIZATIONS,
    TARGET_RATES,
    amplitude_normalization_from_config,
    target_rate_nats,
)
from vaezoo.modeling_vae import VAEModel

NORMALIZED = [name for name in AMPLITUDE_NORMALIZATIONS.names() if name != "none"]
RUNNING = ["batch", "feature", "batch_mean_only", "feature_mean_only"]


def make(name, latent_dim=6, nats=3.0, mode="fixed", dtype=torch.float64):
    return AMPLITUDE_NORMALIZATIONS.get(name)(latent_dim, TARGET_RATES.get(mode)(nats), momentum=0.1).to(dtype)


def amplitudes(n=8, k=6, scale=1.0, dtype=torch.float64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (scale * torch.randn(n, k, generator=g, dtype=dtype), scale * torch.randn(n, k, generator=g, dtype=dtype))


def controlled_rate(name, a, b):
    """The per-entry rate the normalization sets: a^2 (mean_only) or a^2 + b^2."""
    return a.square() if name.endswith("mean_only") else a.square() + b.square()


@pytest.mark.parametrize("name", ["instance", "instance_mean_only"])
def test_instance_sets_every_example_rate(name):
    a, b = make(name)(*amplitudes())
    torch.testing.assert_close(controlled_rate(name, a, b).sum(-1), torch.full((8,), 3.0, dtype=torch.float64))


@pytest.mark.parametrize("name", ["batch", "batch_mean_only"])
def test_batch_sets_batch_mean_rate(name):
    a, b = make(name)(*amplitudes())
    per_example = controlled_rate(name, a, b).sum(-1)
    torch.testing.assert_close(per_example.mean(), torch.tensor(3.0, dtype=torch.float64))
    assert per_example.std() > 0.1  # only the mean is fixed, examples differ


@pytest.mark.parametrize("name", ["feature", "feature_mean_only"])
def test_feature_sets_each_dimension_rate(name):
    a, b = make(name)(*amplitudes())
    torch.testing.assert_close(controlled_rate(name, a, b).mean(0), torch.full((6,), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("name", [n for n in NORMALIZED if n.endswith("mean_only")])
def test_mean_only_leaves_scale_amplitude_free(name):
    a_raw, b_raw = amplitudes()
    _, b = make(name)(a_raw, b_raw)
    assert torch.equal(b, b_raw)


@pytest.mark.parametrize("name", NORMALIZED)
@pytest.mark.parametrize("mode", TARGET_RATES.names())
@pytest.mark.parametrize("training", [True, False])
def test_gradcheck(name, mode, training):
    module = make(name, mode=mode).train(training)
    if not training and module.running:
        module.running_statistic.copy_(torch.rand(module.running_statistic.shape, dtype=torch.float64) + 0.5)
    params = dict(module.named_parameters())

    def f(a, b, *values):
        return functional_call(module, dict(zip(params, values)), (a, b))

    a, b = (t.requires_grad_() for t in amplitudes(n=5, k=6))
    learned = [p.detach().clone().requires_grad_() for p in params.values()]
    assert torch.autograd.gradcheck(f, (a, b, *learned))


def test_running_statistic_follows_batches_and_is_used_in_eval():
    module = make("batch").train()
    a, b = amplitudes(scale=3.0)
    for _ in range(200):
        module(a, b)
    batch_statistic = (a.square() + b.square()).sum(-1).mean()
    torch.testing.assert_close(module.running_statistic, batch_statistic.reshape(1))
    module.eval()
    a_eval, _ = module(a[:1], b[:1])  # one example: in eval mode its batch does not matter
    a_train, _ = module.train()(a, b)
    torch.testing.assert_close(a_eval, a_train[:1])


@pytest.mark.parametrize("name", NORMALIZED)
@pytest.mark.parametrize("scale", [1e-4, 1.0, 1e4])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_finite_values_and_gradients_at_extreme_amplitudes(name, scale, dtype):
    module = make(name, dtype=dtype)
    a, b = (t.requires_grad_() for t in amplitudes(scale=scale, dtype=dtype))
    a_n, b_n = module(a, b)
    (a_n.square().sum() + b_n.square().sum() + a_n.sum()).backward()
    for t in (a_n, b_n, a.grad, b.grad):
        assert torch.isfinite(t).all()
    if name.startswith("instance"):
        # rate = delta * S / (S + EPS): at amplitudes 1e-4 (S ~ 1e-7 nats) that is delta to 1e-5 relative
        rtol = 1e-4 if scale < 1 else None
        torch.testing.assert_close(controlled_rate(name, a_n, b_n).sum(-1), torch.full((8,), 3.0, dtype=dtype),
                                   rtol=rtol, atol=0 if rtol else None)


@pytest.mark.parametrize("name", NORMALIZED)
def test_zero_amplitude_maps_to_zero_with_finite_gradients(name):
    a, b = (torch.zeros(4, 6, requires_grad=True) for _ in range(2))
    a_n, b_n = make(name, dtype=torch.float32)(a, b)
    (a_n.sum() + b_n.sum()).backward()
    assert not a_n.any() and not b_n.any()
    assert torch.isfinite(a.grad).all() and torch.isfinite(b.grad).all()


@pytest.mark.parametrize("name", ["instance", "feature"])
@pytest.mark.parametrize("autocast_dtype", [torch.bfloat16, torch.float16])
def test_model_under_autocast_is_finite(name, autocast_dtype):
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(latent_dim=8, encoder_hidden=[32], decoder_hidden=[32], amplitude_normalization=name,
                               target_rate=5.0))
    x = (torch.rand(16, 784) < 0.3).float()
    with torch.autocast("cpu", dtype=autocast_dtype):
        out = model(pixel_values=x, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(out.rate)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_target_rate_modes_and_classifier_target():
    assert target_rate_nats(nats=4.0) == 4.0
    assert target_rate_nats(classes=10, ratio=0.5) == pytest.approx(0.5 * math.log(10))
    fixed, learnable, committed = (TARGET_RATES.get(m)(2.0, extra_init=0.5) for m in ("fixed", "learnable", "committed"))
    assert fixed().item() == 2.0 and fixed.penalty().item() == 0.0 and not list(fixed.parameters())
    assert learnable().item() == 2.0 and learnable.penalty().item() == 2.0
    learnable.learned.data.fill_(-3.0)
    assert learnable().item() == 3.0
    assert committed().item() == 2.5
    committed.learned.data.fill_(-4.0)
    assert committed().item() == 6.0  # never below delta0
    with pytest.raises(ValueError, match="exactly one"):
        target_rate_nats(nats=1.0, classes=10, ratio=0.5)
    with pytest.raises(ValueError, match="num_classes"):
        target_rate_nats(classes=1, ratio=0.5)


def small_config(**fields):
    return VAEConfig(latent_dim=8, encoder_hidden=[32], decoder_hidden=[32], **fields)


def test_vae_instance_normalization_gives_per_example_kl_equal_to_delta():
    torch.manual_seed(0)
    model = VAEModel(small_config(amplitude_normalization="instance", target_rate=7.5))
    x = (torch.rand(20, 784) < 0.3).float()
    out = model(pixel_values=x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.rate_per_example, torch.full((20,), 7.5))
    torch.testing.assert_close(out.loss, out.distortion)  # fixed target, full normalization: no KL term
    model.eval()
    _, log_q_minus_log_p = model.log_weights(x, 2000, generator=torch.Generator().manual_seed(1))
    # The Monte Carlo rate the evaluation reports agrees with the exact one.
    torch.testing.assert_close(log_q_minus_log_p.mean(), torch.tensor(7.5), atol=0.1, rtol=0)


def test_vae_batch_normalization_gives_batch_mean_kl_equal_to_delta():
    torch.manual_seed(0)
    model = VAEModel(small_config(amplitude_normalization="batch", target_rate=7.5))
    out = model(pixel_values=(torch.rand(20, 784) < 0.3).float())
    torch.testing.assert_close(out.rate, torch.tensor(7.5))
    assert out.rate_per_example.std() > 0.01


def test_vae_loss_prices_only_the_free_rate():
    torch.manual_seed(0)
    x = (torch.rand(20, 784) < 0.3).float()
    mean_only = VAEModel(small_config(amplitude_normalization="batch_mean_only", target_rate=2.0, beta=1.0))
    out = mean_only(pixel_values=x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, out.distortion + out.rate - 2.0)  # b^2 priced, delta is not
    learned = VAEModel(small_config(amplitude_normalization="instance", target_rate=2.0, target_rate_mode="learnable"))
    out = learned(pixel_values=x, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(out.loss, out.distortion + out.rate)  # a learned delta is priced: the ELBO
    theta = learned.encoder.amplitude_normalization.target_rate.learned
    (loss_grad,) = torch.autograd.grad(out.loss, theta, retain_graph=True)
    (distortion_grad,) = torch.autograd.grad(out.distortion, theta)
    assert (loss_grad - distortion_grad).item() == pytest.approx(1.0)  # d delta / d theta = sign(theta) = 1


@pytest.mark.parametrize("name", RUNNING + ["instance"])
@pytest.mark.parametrize("mode", ["fixed", "committed"])
def test_save_load_round_trip(tmp_path, name, mode):
    torch.manual_seed(0)
    model = VAEModel(small_config(amplitude_normalization=name, target_rate=3.0, target_rate_mode=mode,
                                  normalization_momentum=0.3))
    x = (torch.rand(30, 784) < 0.3).float()
    for _ in range(3):  # move the running statistics and the learned target away from their initial values
        model(pixel_values=x).loss.backward()
        with torch.no_grad():
            for p in model.parameters():
                p -= 0.01 * p.grad
        model.zero_grad()
    model.save_pretrained(tmp_path)
    loaded = VAEModel.from_pretrained(tmp_path)
    before, after = model.state_dict(), loaded.state_dict()
    assert before.keys() == after.keys()
    for key in before:
        assert torch.equal(before[key], after[key]), key
    if name in RUNNING:
        assert not torch.equal(before["encoder.amplitude_normalization.running_statistic"],
                               torch.ones_like(before["encoder.amplitude_normalization.running_statistic"]))
    model.eval()
    torch.testing.assert_close(loaded.encode(x).loc, model.encode(x).loc, rtol=0, atol=0)


def test_fresh_model_initializes_buffers_and_target():
    model = VAEModel(small_config(amplitude_normalization="feature", target_rate=3.0, target_rate_mode="committed",
                                  target_rate_extra_init=0.25))
    norm = model.encoder.amplitude_normalization
    assert torch.equal(norm.running_statistic, torch.ones(8))
    assert norm.target_rate().item() == 3.25


@pytest.mark.parametrize(
    "fields, match",
    [
        ({"amplitude_normalization": "instance", "target_rate": 3.0, "parameterization": "exp"}, "stdplus"),
        ({"amplitude_normalization": "layer", "target_rate": 3.0}, "amplitude_normalization"),
        ({"amplitude_normalization": "instance"}, "target_rate"),
        ({"amplitude_normalization": "instance", "target_rate": -1.0}, "target_rate"),
        ({"amplitude_normalization": "none", "target_rate": 3.0}, "target_rate"),
        ({"amplitude_normalization": "batch", "target_rate": 3.0, "target_rate_mode": "free"}, "target_rate_mode"),
        ({"amplitude_normalization": "batch", "target_rate": 3.0, "normalization_momentum": 0.0}, "momentum"),
        ({"amplitude_normalization": "batch", "target_rate": 3.0, "target_rate_extra_init": 0}, "extra_init"),
    ],
)
def test_config_errors_name_the_field(fields, match):
    with pytest.raises(ValueError, match=match):
        VAEConfig(**fields)


def test_module_needs_nothing_vae_specific():
    """A classifier config with r * log C builds the same module."""

    class ClassifierConfig:
        amplitude_normalization, target_rate, target_rate_ratio, num_classes = "instance", None, 0.5, 10
        target_rate_mode, target_rate_extra_init, normalization_momentum = "fixed", 1.0, 0.1

    module = amplitude_normalization_from_config(ClassifierConfig, latent_dim=4)
    a, b = module(*amplitudes(n=3, k=4, dtype=torch.float32))
    torch.testing.assert_close((a.square() + b.square()).sum(-1), torch.full((3,), 0.5 * math.log(10)))


def test_feature_normalization_leaves_no_inactive_unit_on_real_data():
    """Short training on real static binarized MNIST: every dimension's posterior mean varies over the data
    (active units, Burda et al. 2016). The full-length comparison with unnormalized models is in
    benchmarks/results/parameterization_comparison.md."""
    data = load_images("static-binarized-mnist-sample", "train")
    x_all = data.pixels(data.images)
    torch.manual_seed(0)
    model = VAEModel(VAEConfig(latent_dim=20, encoder_hidden=[100], decoder_hidden=[100],
                               amplitude_normalization="feature", target_rate=5.0))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    for _ in range(150):
        model(pixel_values=x_all[torch.randperm(len(x_all), generator=g)[:100]], generator=g).loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    with torch.no_grad():
        assert active_units(model.encode(x_all).mean) == 20
