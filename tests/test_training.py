"""training/train.py end to end on the shipped sample data: 1 process, 2 processes, card round trip."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from huggingface_hub import ModelCard

REPO = Path(__file__).resolve().parents[1]
ACCELERATE = shutil.which("accelerate") or "accelerate"
TWO_CPU_PROCESSES = [
    ACCELERATE, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
    "--mixed_precision", "no", "--dynamo_backend", "no",
]


def tiny_recipe(tmp_path, **training):
    recipe = {
        "name": "tiny-vae",
        "model": {"model_type": "vae", "encoder_hidden": [32], "decoder_hidden": [32], "latent_dim": 4},
        "data": {"dataset": "static-binarized-mnist-sample"},
        "training": {"seed": 0, "batch_size": 20, "max_steps": 40, "eval_every": 20, "checkpoint_every": 20, **training},
        "evaluation": {"iwae_samples": 20, "limit": 50},
        "output_dir": str(tmp_path / "run"),
        "card_dir": str(tmp_path / "card"),
    }
    path = tmp_path / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe))
    return path


def run(args, tmp_path, **env):
    full_env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1", "PYTHONPATH": str(REPO), **env}
    result = subprocess.run(args, cwd=REPO, env=full_env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    return result


def test_train_evaluate_publish_and_reload(tmp_path):
    recipe = tiny_recipe(tmp_path)
    run([sys.executable, "training/train.py", str(recipe)], tmp_path)
    card_dir = tmp_path / "card"
    files = {p.name for p in card_dir.iterdir()}
    assert {"README.md", "config.json", "model.safetensors", "eval_results.json", "samples.png"} <= files
    assert not any(name.endswith((".bin", ".pkl", ".pt")) for name in files)
    saved = json.loads((card_dir / "eval_results.json").read_text())["test"]
    assert saved["iwae_samples"] == 20 and saved["num_examples"] == 50
    card = ModelCard.load(card_dir / "README.md")
    metrics = {r.metric_type: r.metric_value for r in card.data.eval_results}
    for key in ("nll", "elbo", "rate", "distortion", "bits_per_dim", "active_units"):
        assert metrics[key] == pytest.approx(saved[key], abs=1e-4)
    assert metrics["nll"] <= -metrics["elbo"] + 1e-3  # the IWAE bound is tighter than the ELBO
    shown = run([sys.executable, "-m", "vaezoo.cli", "show", str(card_dir)], tmp_path)
    assert "NLL (IWAE bound, K=20)" in shown.stdout


@pytest.mark.slow
def test_resume_continues_to_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    straight = tmp_path / "straight"
    straight.mkdir()
    run([sys.executable, "training/train.py", str(tiny_recipe(straight)), "--skip-final"], tmp_path)
    split = tmp_path / "split"
    split.mkdir()
    recipe = tiny_recipe(split)
    run([sys.executable, "training/train.py", str(recipe), "--skip-final", "--max-steps", "20"], tmp_path)
    run([sys.executable, "training/train.py", str(recipe), "--skip-final"], tmp_path)
    a, b = (load_file(folder / "run" / json.loads((folder / "run" / "progress.json").read_text())["state"]
                      / "model.safetensors") for folder in (straight, split))
    assert a.keys() == b.keys() and all((a[k] - b[k]).abs().max() < 1e-6 for k in a)


@pytest.mark.slow
def test_two_processes_stay_synchronized(tmp_path):
    result = run(TWO_CPU_PROCESSES + ["tests/distributed_check.py"], tmp_path, ACCELERATE_USE_CPU="1")
    assert "SYNC same_across_ranks=True" in result.stdout


@pytest.mark.slow
def test_train_script_with_two_processes(tmp_path):
    recipe = tiny_recipe(tmp_path)
    run(TWO_CPU_PROCESSES + ["training/train.py", str(recipe), "--expect-processes", "2"], tmp_path, ACCELERATE_USE_CPU="1")
    progress = json.loads((tmp_path / "run" / "progress.json").read_text())
    assert progress["step"] == 40
    info = json.loads((tmp_path / "card" / "eval_results.json").read_text())["training"]
    assert info["num_processes"] == 2
