"""`vaezoo evaluate` on a saved folder: the JSON it prints, and clear errors."""

import json
import subprocess
import sys
from pathlib import Path

import torch

from vaezoo import VAEConfig, VAEModel
from vaezoo.hub import save_hub_folder

REPO = Path(__file__).resolve().parents[1]


def cli(*args, cwd=REPO):
    return subprocess.run([sys.executable, "-m", "vaezoo.cli", *args], cwd=cwd, capture_output=True, text=True, timeout=300)


def test_evaluate_json(tmp_path):
    torch.manual_seed(0)
    folder = save_hub_folder(VAEModel(VAEConfig(encoder_hidden=[16], decoder_hidden=[16], latent_dim=3)), tmp_path / "m")
    args = ["evaluate", str(folder), "--dataset", "static-binarized-mnist-sample", "--iwae-samples", "30", "--limit", "20", "--json"]
    first, second = cli(*args), cli(*args)
    assert first.returncode == 0, first.stderr
    result = json.loads(first.stdout)
    for key in ("nll", "elbo", "rate", "distortion", "bits_per_dim", "active_units", "iwae_samples", "num_examples", "seed"):
        assert key in result
    assert result["iwae_samples"] == 30 and result["num_examples"] == 20
    assert json.loads(second.stdout) == result  # seeded: the same numbers twice
    assert result["nll"] <= -result["elbo"] + 1e-6


def test_evaluate_unknown_dataset_is_a_clear_error(tmp_path):
    folder = save_hub_folder(VAEModel(VAEConfig(encoder_hidden=[8], decoder_hidden=[8], latent_dim=2)), tmp_path / "m")
    result = cli("evaluate", str(folder), "--dataset", "cifar-11", "--json")
    assert result.returncode == 2 and "unknown dataset 'cifar-11'" in result.stderr
