"""BNN and VIB classifiers: the classifier contract, config validation, save/load round trips."""

import json
import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModel

from vaezoo import BNNConfig, BNNModel, VIBConfig, VIBModel

SMALL = {
    "bnn-mlp": (BNNConfig, BNNModel, dict(hidden=[16], num_train_examples=100)),
    "bnn-cnn": (
        BNNConfig, BNNModel, dict(architecture="cnn", conv_channels=[2, 4], hidden=[8], num_train_examples=100)
    ),
    "vib": (VIBConfig, VIBModel, dict(encoder_hidden=[16, 16], latent_dim=6, train_samples=2)),
}


def _batch(seed=0, batch=5):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 1, 28, 28, generator=g), torch.randint(0, 10, (batch,), generator=g)


def _model(name, **overrides):
    config_cls, model_cls, fields = SMALL[name]
    torch.manual_seed(0)
    return model_cls(config_cls(**{**fields, **overrides}))


@pytest.mark.parametrize("name", sorted(SMALL))
def test_classifier_contract(name):
    model = _model(name)
    x, y = _batch()
    out = model(x, labels=y, generator=torch.Generator().manual_seed(0))
    assert out.logits.shape == (5, 10)
    assert out.loss.ndim == 0 and out.nll.ndim == 0 and 0 <= out.accuracy <= 1
    regularizer = out.kl / 100 if name.startswith("bnn") else model.config.beta * out.rate
    torch.testing.assert_close(out.loss, out.nll + regularizer)
    out.loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    unlabeled = model(x.flatten(1), generator=torch.Generator().manual_seed(0))
    assert unlabeled.loss is None and unlabeled.accuracy is None
    torch.testing.assert_close(unlabeled.logits, out.logits)  # same seed, same sample
    log_probs = model.predictive_log_probs(x, 4, generator=torch.Generator().manual_seed(1))
    assert log_probs.shape == (5, 10)
    torch.testing.assert_close(log_probs.exp().sum(-1), torch.ones(5))


def test_predictive_is_the_mean_of_the_sample_probabilities():
    model = _model("bnn-mlp")
    x, _ = _batch()
    g = torch.Generator().manual_seed(3)
    probs = torch.stack([model(x, generator=g).logits.softmax(-1) for _ in range(3)]).mean(0)
    want = model.predictive_log_probs(x, 3, generator=torch.Generator().manual_seed(3))
    torch.testing.assert_close(want, probs.log())


@pytest.mark.parametrize(
    "config_cls, fields, message",
    [
        (BNNConfig, dict(architecture="cnn", estimator="lrt"), "estimator='lrt' is not valid"),
        (BNNConfig, dict(architecture="resnet"), "architecture='resnet' is not valid"),
        (BNNConfig, dict(estimator="reinforce"), "estimator='reinforce' is not valid"),
        (BNNConfig, dict(parameterization="sigmoid"), "parameterization='sigmoid' is not valid"),
        (BNNConfig, dict(num_train_examples=0), "num_train_examples=0 is not valid"),
        (BNNConfig, dict(cg_tolerance=0), "cg_tolerance=0 is not valid"),
        (BNNConfig, dict(architecture="cnn", kernel_size=4), "kernel_size=4 is not valid"),
        (BNNConfig, dict(architecture="cnn", conv_channels=[1] * 6), "conv_channels"),
        (BNNConfig, dict(score_baseline_decay=1.0), "score_baseline_decay=1.0 is not valid"),
        (VIBConfig, dict(estimator="flipout"), "estimator='flipout' is not valid"),
        (VIBConfig, dict(parameterization="sigmoid"), "parameterization='sigmoid' is not valid"),
        (VIBConfig, dict(encoder_hidden=[]), "encoder_hidden"),
        (VIBConfig, dict(beta=-1), "beta=-1 is not valid"),
    ],
)
def test_config_validation_names_the_field(config_cls, fields, message):
    with pytest.raises(ValueError, match=message):
        config_cls(**fields)


def test_inputs_are_validated():
    model = _model("vib")
    x, y = _batch()
    with pytest.raises(ValueError, match=r"lie in \[0, 1\]"):
        model(x * 255, labels=y)
    with pytest.raises(ValueError, match="labels must lie in"):
        model(x, labels=y + 10)


@pytest.mark.parametrize("parameterization", ["exp", "softplus", "stdplus"])
def test_vib_posterior_starts_at_the_initial_scale(parameterization):
    model = _model("vib", parameterization=parameterization)
    with torch.no_grad():  # zero encoder features: the scale head outputs its bias
        posterior = model.posterior_from_encoder_output(torch.zeros(1, 6), model.scale_head.bias[None])
    torch.testing.assert_close(posterior.scale, torch.full((1, 6), model.config.initial_scale))


# ----------------------------------------------------------------------------- save / load

_CHILD = """
import json, sys, torch
class _Block:  # vaezoo must not be importable: the folder's own files have to do
    def find_spec(self, name, path=None, target=None):
        if name == "vaezoo" or name.startswith("vaezoo."):
            raise ImportError("vaezoo hidden for the trust_remote_code check")
sys.meta_path.insert(0, _Block())
sys.path[:] = [p for p in sys.path if p not in ("", ".")]
from transformers import AutoModel
x, y = torch.load({inputs!r}, weights_only=True)
report = {{}}
for folder in {folders!r}:
    model = AutoModel.from_pretrained(folder, trust_remote_code=True)
    out = model(x, labels=y, generator=torch.Generator().manual_seed(0))
    report[folder] = {{"class": type(model).__name__, "logits": out.logits.tolist()}}
print(json.dumps(report))
"""


def _forward(model, x, y):
    return model(x, labels=y, generator=torch.Generator().manual_seed(0))


def test_save_load_round_trip_native_and_remote_code(tmp_path):
    """Every classifier (with R2-G2) reloads bit-identically through AutoModel after `import
    vaezoo`, and through trust_remote_code=True in a process where vaezoo cannot be imported."""
    x, y = _batch()
    expected = {}
    for name, (config_cls, model_cls, _) in SMALL.items():
        model = _model(name, estimator="r2g2")
        want = _forward(model, x, y)
        model.save_pretrained(tmp_path / name / "native")
        loaded = AutoModel.from_pretrained(tmp_path / name / "native")
        assert type(loaded) is type(model) and loaded.config.estimator == "r2g2"
        for key, value in model.state_dict().items():
            assert torch.equal(loaded.state_dict()[key], value), key
        torch.testing.assert_close(_forward(loaded, x, y).logits, want.logits, rtol=0, atol=0)

        config_cls.register_for_auto_class()
        model_cls.register_for_auto_class("AutoModel")
        try:
            model.save_pretrained(tmp_path / name / "remote")
        finally:
            config_cls._auto_class = model_cls._auto_class = None
        assert "auto_map" in json.loads((tmp_path / name / "remote" / "config.json").read_text())
        expected[str(tmp_path / name / "remote")] = (type(model).__name__, want.logits)

    torch.save((x, y), tmp_path / "inputs.pt")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env.update(HF_HUB_OFFLINE="1", HF_MODULES_CACHE=str(tmp_path / "modules"))
    code = textwrap.dedent(_CHILD.format(folders=sorted(expected), inputs=str(tmp_path / "inputs.pt")))
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=workdir, env=env, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    for folder, (class_name, logits) in expected.items():
        assert report[folder]["class"] == class_name
        torch.testing.assert_close(torch.tensor(report[folder]["logits"]), logits, rtol=1e-6, atol=1e-6)
