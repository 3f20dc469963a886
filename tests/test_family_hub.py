"""Every new component kind saves and loads by both routes: native (``import vaezoo``) and
``trust_remote_code`` from a flat Hub folder, in a clean process where vaezoo cannot be imported."""

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from transformers import AutoModel

import vaezoo  # noqa: F401  (registers the model types)
from vaezoo import HVAEConfig, HVAEModel, VAEConfig, VAEModel
from vaezoo.hub import save_hub_folder

SMALL = dict(image_size=4, encoder_hidden=[8], decoder_hidden=[8], latent_dim=3)
CASES = {
    "iaf": lambda: VAEModel(VAEConfig(posterior="iaf", iaf_hidden=[6], **SMALL)),
    "mixture": lambda: VAEModel(VAEConfig(posterior="mixture", num_components=2, **SMALL)),
    "rme": lambda: VAEModel(VAEConfig(posterior="rme", num_components=3, rme_stage_steps=1, **SMALL)),
    "mog": lambda: VAEModel(VAEConfig(prior="mog", mog_components=3, **SMALL)),
    "vampprior": lambda: VAEModel(VAEConfig(prior="vampprior", vampprior_pseudo_inputs=4, parameterization="softplus", **SMALL)),
    "pixelcnn": lambda: VAEModel(
        VAEConfig(decoder="pixelcnn", likelihood="discretized_logistic", pixelcnn_layers=2, pixelcnn_channels=4, **SMALL)
    ),
    "target_rate": lambda: VAEModel(VAEConfig(objective="target_rate", target_rate=2.0, **SMALL)),
    "hvae": lambda: HVAEModel(HVAEConfig(image_size=4, latent_dims=[4, 3], hidden_dims=[[8], [6]])),
}


def inputs(name):
    g = torch.Generator().manual_seed(0)
    if name == "pixelcnn":
        return torch.randint(0, 256, (3, 16), generator=g).float() / 255
    return (torch.rand(3, 16, generator=g) > 0.5).float()


def perturbed(name):
    """A model whose every tensor differs from a fresh init (so a silent re-init on load is caught)."""
    torch.manual_seed(0)
    model = CASES[name]()
    if name == "rme":
        model.begin_step(2)  # all three components active: the stage is part of the checkpoint
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))
    return model.eval()


def reference(model, x):
    return torch.cat(model.log_weights(x, 4, generator=torch.Generator().manual_seed(1)))


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("hub")
    for name in CASES:
        model = perturbed(name)
        save_hub_folder(model, root / name)
        torch.save(reference(model, inputs(name)), root / f"{name}.expected.pt")
        torch.save(inputs(name), root / f"{name}.inputs.pt")
    return root


@pytest.mark.parametrize("name", list(CASES))
def test_native_round_trip(saved, name):
    loaded = AutoModel.from_pretrained(saved / name)
    assert type(loaded) is type(perturbed(name))
    torch.testing.assert_close(reference(loaded, inputs(name)), torch.load(saved / f"{name}.expected.pt"))
    if name == "rme":
        assert int(loaded.encoder.num_active) == 3


def test_remote_code_round_trip_in_a_clean_process(saved, tmp_path):
    script = textwrap.dedent(
        f"""
        import sys
        # a clean interpreter: no checkout on the path, no editable install of vaezoo
        sys.path = [p for p in sys.path if p not in ("", {os.getcwd()!r}) and not p.startswith("__editable__")]
        sys.meta_path = [f for f in sys.meta_path if not getattr(f, "__module__", "").startswith("__editable__")]
        try:
            import vaezoo
            raise SystemExit("vaezoo must not be importable here")
        except ImportError:
            pass
        import torch
        from transformers import AutoModel
        for name in {list(CASES)!r}:
            folder = {str(saved)!r} + "/" + name
            model = AutoModel.from_pretrained(folder, trust_remote_code=True)
            x = torch.load(folder + ".inputs.pt")
            got = torch.cat(model.log_weights(x, 4, generator=torch.Generator().manual_seed(1)))
            torch.testing.assert_close(got, torch.load(folder + ".expected.pt"))
            print("ok", name, type(model).__name__)
        """
    )
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": "", "HF_MODULES_CACHE": str(tmp_path / "modules")}
    result = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("ok ") == len(CASES)
