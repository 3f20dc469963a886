"""Tiny Hub folders for the publishing tests, built by the same code path as training/train.py's
publish step (vaezoo.results.publish_folder + vaezoo.cards.write_card), on the shipped sample data."""

import torch

import vaezoo  # noqa: F401  (registers the model types)
from vaezoo.cards import write_card
from vaezoo.data import load_images
from vaezoo.recipe import recipe_from_dict
from vaezoo.results import publish_folder

TINY_VAE = {"model_type": "vae", "parameterization": "stdplus", "latent_dim": 4, "encoder_hidden": [16],
            "decoder_hidden": [16], "activation": "tanh"}


def tiny_recipe(name, model=TINY_VAE, iwae_samples=20):
    return recipe_from_dict({
        "name": name,
        "hub_repo": f"vaezoo-test/{name}",
        "description": "A tiny test model.",
        "model": dict(model),
        "data": {"dataset": "static-binarized-mnist-sample"},
        "training": {"max_steps": 30, "eval_every": 10, "batch_size": 50},
        "evaluation": {"iwae_samples": iwae_samples, "seed": 0},
    })


def build_tiny_vae_folder(folder, steps=30, seed=0, **config):
    """Train a tiny VAE for a few Adam steps on the sample data and publish it into ``folder``."""
    from transformers import AutoConfig, AutoModel

    torch.manual_seed(seed)
    model_fields = {**TINY_VAE, **config}
    recipe = tiny_recipe(folder.name, model=model_fields)
    model = AutoModel.from_config(AutoConfig.for_model(**model_fields))
    data = load_images("static-binarized-mnist-sample", "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    generator = torch.Generator().manual_seed(seed)
    history = []
    for step in range(1, steps + 1):
        index = torch.randint(len(data), (50,), generator=generator)
        out = model(pixel_values=data.pixels(data.images[index]), generator=generator)
        optimizer.zero_grad()
        out.loss.backward()
        optimizer.step()
        if step % 10 == 0:
            history.append({"step": step, **{k: out[k].item() for k in ("loss", "elbo", "rate", "distortion")}})
    training = {"steps": steps, "best_step": steps, "select_metric": "elbo", "skipped_nonfinite_steps": 0,
                "num_processes": 1, "train_seconds": 0.1, "train_examples": len(data)}
    publish_folder(model, folder, recipe, history, training)
    write_card(folder)
    return folder


def _close(value, got, rtol):
    """Floats within ``rtol`` (relative), lists and dicts element by element, anything else equal
    (float summation order differs between thread counts, e.g. inside reliability-diagram bins)."""
    if isinstance(value, float):
        return isinstance(got, float) and abs(got - value) <= rtol * max(abs(value), 1e-12)
    if isinstance(value, list):
        return isinstance(got, list) and len(got) == len(value) and all(_close(v, g, rtol) for v, g in zip(value, got))
    if isinstance(value, dict):
        return isinstance(got, dict) and got.keys() == value.keys() and all(_close(value[k], got[k], rtol) for k in value)
    return got == value


def metric_mismatches(stored, measured, rtol=1e-4):
    """Keys whose values differ: numbers beyond ``rtol`` (relative), anything else when unequal."""
    return [f"{key}: stored {value!r}, re-evaluated {measured.get(key)!r}"
            for key, value in stored.items() if not _close(value, measured.get(key), rtol)]
