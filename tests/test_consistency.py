"""Shipped checkpoints are the ones that were measured: re-evaluating each folder's stored
consistency subset (same examples, K and seed, CPU) reproduces the stored numbers, and the folder
loads by both routes (native `import vaezoo` + AutoModel, and trust_remote_code from its own files).

Runs over every model_cards/*/ folder of this repository, and always over a freshly built tiny
folder, so the check is exercised even while the zoo is empty."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from safetensors.torch import load_file, save_file
from transformers import AutoModel
from zoo_folders import build_tiny_vae_folder, metric_mismatches

import vaezoo
from vaezoo.results import evaluate_subset

REPO_ROOT = Path(__file__).resolve().parents[1]
SHIPPED = sorted(p for p in (REPO_ROOT / "model_cards").glob("*/") if (p / "config.json").is_file())


# The remote-code route in a fresh interpreter that has not imported vaezoo: with vaezoo's types
# registered, transformers would prefer the installed classes over the folder's own files.
REMOTE_ROUTE = """
import json, sys
from transformers import AutoModel
model = AutoModel.from_pretrained(sys.argv[1], trust_remote_code=True)
assert type(model).__module__.startswith("transformers_modules."), type(model).__module__
from vaezoo.results import evaluate_subset  # evaluation code only; the model class is the folder's
print(json.dumps({"kind": model.evaluation_kind, "metrics": evaluate_subset(model, json.loads(sys.argv[2]))}))
"""


def evaluate_both_routes(folder, protocol):
    """{route: (evaluation_kind, subset metrics)} for the native and the trust_remote_code route."""
    native = AutoModel.from_pretrained(folder)
    assert type(native).__module__.startswith("vaezoo.")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run([sys.executable, "-c", REMOTE_ROUTE, str(folder), json.dumps(protocol)],
                          capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    remote = json.loads(done.stdout.strip().splitlines()[-1])
    return {"native": (native.evaluation_kind, evaluate_subset(native, protocol)),
            "remote": (remote["kind"], remote["metrics"])}


def consistency_problems(folder):
    saved = json.loads((folder / "eval_results.json").read_text())
    block = saved["consistency"]
    problems = []
    for route, (kind, measured) in evaluate_both_routes(folder, block["protocol"]).items():
        assert kind == saved["evaluation_kind"]
        problems += [f"{route}: {p}" for p in metric_mismatches(block["metrics"], measured)]
    return problems


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    return build_tiny_vae_folder(tmp_path_factory.mktemp("model_cards") / "tiny")


def test_fresh_folder_reproduces_its_subset_metrics(tiny):
    block = json.loads((tiny / "eval_results.json").read_text())["consistency"]
    assert block["protocol"] == {"dataset": "static-binarized-mnist-sample", "split": "test", "limit": 200,
                                 "iwae_samples": 100, "num_samples": 12, "seed": 0, "fgsm_eps": []}
    assert {"nll", "elbo", "rate", "distortion", "active_units"} <= set(block["metrics"])
    assert consistency_problems(tiny) == []


def test_changed_weights_are_caught(tiny, tmp_path):
    folder = shutil.copytree(tiny, tmp_path / "tiny")
    weights = load_file(folder / "model.safetensors")
    name = next(k for k in weights if k.endswith("weight"))
    weights[name] = weights[name] * 1.01
    save_file(weights, folder / "model.safetensors", metadata={"format": "pt"})
    problems = consistency_problems(folder)
    assert any(p.startswith("native: nll") for p in problems) and any(p.startswith("remote: nll") for p in problems)


def test_remote_code_files_are_the_package_sources(tiny):
    package = Path(vaezoo.__file__).parent
    shipped = sorted(p.name for p in tiny.glob("*.py"))
    assert "modeling_vae.py" in shipped and "configuration_vae.py" in shipped
    for name in shipped:
        assert (tiny / name).read_bytes() == (package / name).read_bytes()


@pytest.mark.parametrize("folder", SHIPPED, ids=[p.name for p in SHIPPED])
def test_shipped_checkpoint_reproduces_its_subset_metrics(folder, request):
    protocol = json.loads((folder / "eval_results.json").read_text())["consistency"]["protocol"]
    if not protocol["dataset"].endswith("-sample"):
        request.getfixturevalue("mirror_dir")  # fails (never skips) without the data mirror
    assert consistency_problems(folder) == []
