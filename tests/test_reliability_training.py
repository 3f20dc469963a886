"""Reliability, training faults: a run killed with SIGKILL (mid-epoch, or while it writes a
checkpoint) and resumed finishes with the weights of an uninterrupted run; NaN/inf losses are
skipped, counted, and stop the run after training.max_nonfinite_steps in a row; an unwritable or
full output folder and a misspelled recipe field fail before any training step.

A tiny VAE on the shipped ``static-binarized-mnist-sample`` (500 training images, batch 50, so 10
steps per epoch), 25 steps, state saved every 5 steps."""

import importlib.util
import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from vaezoo import VAEModel
from vaezoo.data import load_images

ROOT = Path(__file__).resolve().parents[1]
STEPS, STEPS_PER_EPOCH = 25, 10


def load_train():
    spec = importlib.util.spec_from_file_location("vaezoo_train_script", ROOT / "training" / "train.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


train = load_train()


def write_recipe(path, **training):
    recipe = {
        "name": "tiny",
        "model": {"model_type": "vae", "latent_dim": 2, "encoder_hidden": [16], "decoder_hidden": [16]},
        "data": {"dataset": "static-binarized-mnist-sample"},
        "training": {"seed": 0, "batch_size": 50, "max_steps": STEPS, "eval_every": 5, "checkpoint_every": 5,
                     **training},
        "evaluation": {"iwae_samples": 10, "limit": 50},
    }
    path.write_text(yaml.safe_dump(recipe))
    return path


def run(recipe, out, *extra):
    train.main([str(recipe), "--output-dir", str(out), "--card-dir", str(out / "card"), "--skip-final", *extra])


def final_weights(out):
    progress = json.loads((out / "progress.json").read_text())
    assert progress["step"] == STEPS
    return load_file(out / progress["state"] / "model.safetensors"), progress


def assert_same_run(a, b):
    (wa, pa), (wb, pb) = final_weights(a), final_weights(b)
    assert wa.keys() == wb.keys()
    for key in wa:
        torch.testing.assert_close(wa[key], wb[key], rtol=1e-6, atol=1e-7, msg=lambda m: f"{key}: {m}")
    assert [h["elbo"] for h in pa["history"]] == pytest.approx([h["elbo"] for h in pb["history"]], rel=1e-6)
    assert pa["skipped_nonfinite"] == pb["skipped_nonfinite"]
    for best in ("config.json", "model.safetensors"):
        assert (a / "best" / best).exists() and (b / "best" / best).exists()


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The uninterrupted run every fault scenario must reproduce."""
    tmp = tmp_path_factory.mktemp("reference")
    recipe = write_recipe(tmp / "tiny.yaml")
    run(recipe, tmp / "run")
    return recipe, tmp / "run"


def killed_run(recipe, out, patch):
    """Run train.py in a child process that SIGKILLs itself where ``patch`` says; return progress."""
    script = textwrap.dedent("""
        import os, runpy, signal, sys
        import torch, accelerate
        def die():
            os.kill(os.getpid(), signal.SIGKILL)
    """) + textwrap.dedent(patch) + textwrap.dedent(f"""
        sys.argv = ["train.py", {str(recipe)!r}, "--output-dir", {str(out)!r}, "--skip-final"]
        runpy.run_path("training/train.py", run_name="__main__")
    """)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-3000:]
    return json.loads((out / "progress.json").read_text())


@pytest.mark.slow
def test_sigkill_mid_epoch_then_resume_matches_uninterrupted_run(reference, tmp_path):
    recipe, ref = reference
    # Killed in the 18th optimizer step: step 15 (epoch 1, batch 5 of 10) was saved, 16-17 are lost.
    progress = killed_run(recipe, tmp_path / "run", """
        step, calls = torch.optim.Adam.step, [0]
        def counting_step(self, *args, **kwargs):
            calls[0] += 1
            if calls[0] == 18:
                die()
            return step(self, *args, **kwargs)
        torch.optim.Adam.step = counting_step
    """)
    assert progress["step"] == 15 and progress["step"] % STEPS_PER_EPOCH != 0  # mid-epoch
    run(recipe, tmp_path / "run")
    assert_same_run(tmp_path / "run", ref)


@pytest.mark.slow
def test_sigkill_while_writing_a_checkpoint_resumes_from_the_previous_one(reference, tmp_path):
    """Killed after save_state(step 20) wrote its files but before progress.json named them: the
    resumed run must continue from step 15's state, not from a mix of steps 15 and 20."""
    recipe, ref = reference
    progress = killed_run(recipe, tmp_path / "run", """
        save_state, calls = accelerate.Accelerator.save_state, [0]
        def dying_save_state(self, *args, **kwargs):
            calls[0] += 1
            result = save_state(self, *args, **kwargs)
            if calls[0] == 4:
                die()
            return result
        accelerate.Accelerator.save_state = dying_save_state
    """)
    assert progress["step"] == 15
    run(recipe, tmp_path / "run")
    assert_same_run(tmp_path / "run", ref)


# ---- non-finite losses ----------------------------------------------------------------------------


class Crash(BaseException):
    """Stands in for a dead process in the in-process scenario (not caught by anything)."""


def poison(monkeypatch, bad_image, crash_at_step=None):
    """Loss = NaN for every training batch that contains ``bad_image`` (once per epoch); optionally
    crash in the optimizer step number ``crash_at_step``. Returns the forward-call counter."""
    forward, step, calls = VAEModel.forward, torch.optim.Adam.step, {"forward": 0, "step": 0}

    def nan_forward(self, pixel_values, **kwargs):
        calls["forward"] += 1
        out = forward(self, pixel_values, **kwargs)
        if self.training and (pixel_values == bad_image).all(-1).any():
            out.loss = out.loss * float("nan")
        return out

    def crashing_step(self, *args, **kwargs):
        calls["step"] += 1
        if calls["step"] == crash_at_step:
            raise Crash
        return step(self, *args, **kwargs)

    monkeypatch.setattr(VAEModel, "forward", nan_forward)
    monkeypatch.setattr(torch.optim.Adam, "step", crashing_step)
    return calls


def test_nonfinite_steps_are_skipped_counted_and_resume_exactly(tmp_path, monkeypatch):
    """One poisoned batch per epoch: each is skipped and counted, and a run that crashes after
    skips and resumes sees exactly the batches the uninterrupted run saw (the data position counts
    batches drawn, not steps taken)."""
    recipe = write_recipe(tmp_path / "tiny.yaml")
    bad_image = load_images("static-binarized-mnist-sample", "train").images[123].float() / 255
    poison(monkeypatch, bad_image)
    run(recipe, tmp_path / "straight")
    weights, progress = final_weights(tmp_path / "straight")
    assert progress["skipped_nonfinite"] == 3  # 25 steps + 3 skips = 28 batches: epochs 0, 1, 2
    assert progress["batches"] == STEPS + 3
    assert all(torch.isfinite(w).all() for w in weights.values())

    poison(monkeypatch, bad_image, crash_at_step=18)
    with pytest.raises(Crash):
        run(recipe, tmp_path / "crashed")
    assert json.loads((tmp_path / "crashed" / "progress.json").read_text())["step"] == 15
    poison(monkeypatch, bad_image)
    run(recipe, tmp_path / "crashed")
    assert_same_run(tmp_path / "crashed", tmp_path / "straight")


def test_run_stops_after_max_nonfinite_steps_in_a_row(tmp_path, monkeypatch):
    recipe = write_recipe(tmp_path / "tiny.yaml", max_nonfinite_steps=4)
    forward, calls = VAEModel.forward, {"n": 0}

    def always_inf(self, pixel_values, **kwargs):
        calls["n"] += 1
        out = forward(self, pixel_values, **kwargs)
        out.loss = out.loss * float("inf")
        return out

    monkeypatch.setattr(VAEModel, "forward", always_inf)
    with pytest.raises(SystemExit, match=r"4 consecutive non-finite losses at step 0; stopping \(training\.max_nonfinite_steps=4\)"):
        run(recipe, tmp_path / "run")
    assert calls["n"] == 4
    assert not (tmp_path / "run" / "progress.json").exists()


# ---- failing before training ----------------------------------------------------------------------


def no_training(monkeypatch):
    monkeypatch.setattr(VAEModel, "forward", lambda *a, **k: pytest.fail("a training step ran"))


def test_unwritable_output_folder_fails_before_training(tmp_path, monkeypatch):
    """A path below a regular file cannot be created, even by root (chmod does not stop root)."""
    recipe = write_recipe(tmp_path / "tiny.yaml")
    (tmp_path / "blocker").write_text("a file, not a folder")
    no_training(monkeypatch)
    with pytest.raises(SystemExit, match=r"output folder .*blocker/run is not writable .*nothing was trained"):
        run(recipe, tmp_path / "blocker" / "run")


def test_full_disk_fails_before_training(tmp_path, monkeypatch):
    """The 1 MB write probe lands on /dev/full, which fails every write with ENOSPC."""
    recipe = write_recipe(tmp_path / "tiny.yaml")
    out = tmp_path / "run"
    out.mkdir()
    (out / ".write-probe").symlink_to("/dev/full")
    no_training(monkeypatch)
    with pytest.raises(SystemExit, match=r"is not writable \(\[Errno 28\] No space left on device.*nothing was trained"):
        run(recipe, out)
    assert sorted(p.name for p in out.iterdir()) == [".write-probe"]


def test_misspelled_model_field_fails_before_training(tmp_path, monkeypatch):
    """PreTrainedConfig keeps unknown keyword arguments as attributes: without the check a recipe
    with ``latnet_dim: 2`` would silently train the default 50-dimensional model."""
    recipe = write_recipe(tmp_path / "tiny.yaml")
    raw = yaml.safe_load(recipe.read_text())
    raw["model"]["latnet_dim"] = raw["model"].pop("latent_dim")
    recipe.write_text(yaml.safe_dump(raw))
    no_training(monkeypatch)
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['latnet_dim'\] in the recipe's model block.*latent_dim"):
        run(recipe, tmp_path / "run")
    raw["model"] = {"model_type": "bert"}
    recipe.write_text(yaml.safe_dump(raw))
    with pytest.raises(ValueError, match=r"model.model_type='bert' is not valid; expected one of \[[^\]]*'vae'"):
        run(recipe, tmp_path / "run")
