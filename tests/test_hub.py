"""Hub folders: exact round trips by both loading routes, and only safe files written."""

import pytest
import torch
from transformers import AutoModel

import vaezoo
from vaezoo import VAEConfig, VAEModel
from vaezoo.hub import save_hub_folder

from hub_helpers import load_in_subprocess, read_config, state_summary

SMALL = dict(encoder_hidden=[16], decoder_hidden=[16], latent_dim=3)


def make_model(**overrides):
    torch.manual_seed(0)
    return VAEModel(VAEConfig(**{**SMALL, **overrides}))


def test_save_pretrained_writes_config_and_safetensors_only(tmp_path):
    make_model().save_pretrained(tmp_path / "plain")
    assert sorted(p.name for p in (tmp_path / "plain").iterdir()) == ["config.json", "model.safetensors"]


def test_native_round_trip_is_exact_in_process(tmp_path):
    model = make_model(parameterization="exp")
    save_hub_folder(model, tmp_path / "m")
    loaded = AutoModel.from_pretrained(tmp_path / "m")
    assert type(loaded) is VAEModel and not loaded.training
    for (k, v), (k2, v2) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert k == k2 and torch.equal(v, v2)
    assert loaded.config.to_dict()["parameterization"] == "exp"


@pytest.mark.parametrize("route", ["native", "remote"])
def test_round_trip_in_fresh_process(tmp_path, route):
    model = make_model()
    folder = save_hub_folder(model, tmp_path / "m")
    config = read_config(folder)
    assert config["model_type"] == "vae" and config["auto_map"]["AutoModel"] == "modeling_vae.VAEModel"
    x = torch.bernoulli(torch.full((4, 784), 0.2), generator=torch.Generator().manual_seed(0))
    torch.save(x, tmp_path / "x.pt")
    report = load_in_subprocess(folder, tmp_path / "x.pt", route, tmp_path)
    expected_class = "vaezoo.modeling_vae.VAEModel" if route == "native" else "modeling_vae.VAEModel"
    assert report["class"].endswith(expected_class)
    if route == "remote":
        assert not report["class"].startswith("vaezoo.")
    model.eval()
    assert report["loss"] == pytest.approx(model(x, generator=torch.Generator().manual_seed(0)).loss.item(), rel=1e-6)
    assert report["state"] == pytest.approx(state_summary(model), rel=1e-12)


def test_remote_code_files_are_flat_and_relative(tmp_path):
    folder = save_hub_folder(make_model(), tmp_path / "m")
    for py in folder.glob("*.py"):
        text = py.read_text()
        assert "from .." not in text and "import vaezoo" not in text, py.name


def test_resave_keeps_card_and_results(tmp_path):
    folder = save_hub_folder(make_model(), tmp_path / "m")
    (folder / "README.md").write_text("card")
    (folder / "eval_results.json").write_text("{}")
    save_hub_folder(make_model(latent_dim=5), folder)
    assert (folder / "README.md").read_text() == "card" and (folder / "eval_results.json").exists()
    assert read_config(folder)["latent_dim"] == 5
    assert not [p for p in folder.parent.iterdir() if p.name.startswith(".m.")]  # no temp leftovers


def test_package_registers_auto_classes():
    from transformers import AutoConfig

    assert isinstance(AutoConfig.for_model("vae"), vaezoo.VAEConfig)
