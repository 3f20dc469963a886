"""Model cards: README.md of a Hub folder, built from the results the code saved in that folder.

Inputs (all written by training/train.py or ``vaezoo evaluate --save``): config.json,
eval_results.json ({"test": metrics, "training": info}), history.json (validation curve),
recipe.json. Nothing here is typed by hand: every number on the card is read from those files.
The ``model-index`` metadata is written with huggingface_hub's EvalResult so the Hub shows it and
``ModelCard.load`` reads it back.
"""

import json
import subprocess
from pathlib import Path

import torch
import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .figures import reconstruction_grid, sample_grid, training_curves

#: metric key -> (display name, unit, metric_type for the model-index)
METRICS = {
    "nll": ("NLL", "nats", "nll"),
    "elbo": ("ELBO", "nats", "elbo"),
    "rate": ("Rate R = KL(q||p)", "nats", "rate"),
    "distortion": ("Distortion D = -E log p(x|z)", "nats", "distortion"),
    "bits_per_dim": ("NLL", "bits/dim", "bits_per_dim"),
    "active_units": ("Active units", "dims", "active_units"),
    "accuracy": ("Accuracy", "", "accuracy"),
    "ece": ("Expected calibration error", "", "ece"),
}

CITATIONS = {
    "vae": "Kingma & Welling, Auto-Encoding Variational Bayes, ICLR 2014.",
    "iwae": "Burda, Grosse & Salakhutdinov, Importance Weighted Autoencoders, ICLR 2016.",
    "broken_elbo": "Alemi et al., Fixing a Broken ELBO, ICML 2018.",
    "stdplus": "Slashed Normal: Parameterize Normal Posterior Distributions with KL Amplitude.",
}


def code_version():
    """vaezoo version plus the git commit of the working tree, when there is one."""
    from . import __version__

    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        commit = ""
    return f"vaezoo {__version__}" + (f" (commit {commit})" if commit else "")


def _metric_label(key, results):
    name, unit, _ = METRICS[key]
    if key in ("nll", "bits_per_dim") and "iwae_samples" in results:
        name += f" (IWAE, K={results['iwae_samples']})"
    return f"{name}" + (f" [{unit}]" if unit else "")


def eval_results_metadata(results, dataset_id, model_name):
    task = "image-classification" if "accuracy" in results else "unconditional-image-generation"
    return [
        EvalResult(
            task_type=task,
            dataset_type=dataset_id,
            dataset_name=results["dataset"],
            dataset_split=results["split"],
            metric_type=METRICS[key][2],
            metric_name=_metric_label(key, results),
            metric_value=round(float(results[key]), 4),
        )
        for key in METRICS
        if key in results
    ]


def _summary(config, recipe):
    model_type = config["model_type"]
    bits = [f"a `{model_type}` model"]
    if "parameterization" in config:
        bits.append(f"with the `{config['parameterization']}` posterior scale parameterization")
    if "latent_dim" in config:
        bits.append(f"{config['latent_dim']}-dimensional latent")
    if "prior" in config:
        bits.append(f"`{config['prior']}` prior")
    if "likelihood" in config:
        bits.append(f"`{config['likelihood']}` likelihood")
    text = ", ".join(bits) + f", trained on `{recipe['data']['dataset']}`."
    if recipe.get("description"):
        text = recipe["description"].strip() + "\n\n" + text[0].upper() + text[1:]
    return text


def build_card(folder, repo_id=None):
    """Return a ModelCard for a Hub folder from its saved results (does not write)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    saved = json.loads((folder / "eval_results.json").read_text())
    recipe = json.loads((folder / "recipe.json").read_text())
    results, training = saved["test"], saved["training"]
    name = folder.name
    repo_id = repo_id or recipe.get("hub_repo") or f"vaezoo/{name}"
    dataset_id = results.get("dataset_id", results["dataset"])
    tags = ["vaezoo", config["model_type"], "variational-inference"]
    tags += [config[k] for k in ("parameterization", "estimator") if k in config]
    data = ModelCardData(
        model_name=name,
        license="mit",
        library_name="transformers",
        tags=tags,
        datasets=[dataset_id],
        pipeline_tag=None,
        eval_results=eval_results_metadata(results, dataset_id, name),
    )
    rows = "\n".join(f"| {_metric_label(k, results)} | {results[k]:.4g} |" for k in METRICS if k in results)
    figures = "\n".join(f"![{p.stem}]({p.name})" for p in sorted(folder.glob("*.png")))
    citations = "\n".join(f"- {CITATIONS[k]}" for k in ("vae", "iwae", "broken_elbo", "stdplus")
                          if k != "stdplus" or config.get("parameterization") == "stdplus")
    body = f"""
# {name}

{_summary(config, recipe)}

## Results ({results['dataset']}, split `{results['split']}`, {results['num_examples']} examples)

| metric | value |
|---|---|
{rows}

Rate and distortion are reported separately because the same ELBO can hide very different
(R, D) pairs (Fixing a Broken ELBO). ELBO = -(D + R).

{figures}

## Usage

```python
import torch, vaezoo                      # registers the vaezoo model types
from transformers import AutoModel
model = AutoModel.from_pretrained("{repo_id}")
posterior = model.encode(x)               # x: (B, 784) binary pixels in {{0, 1}}
images = model.sample(16, generator=torch.Generator().manual_seed(0))
```

Without installing vaezoo (the folder ships flat modeling files):

```python
from transformers import AutoModel
model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)
```

## Training recipe

Trained with `accelerate launch training/train.py hub_configs/{name}.yaml` for {training['steps']} steps
({training['num_processes']} process(es), {training['train_seconds']:.0f} s); checkpoint selected at step
{training['best_step']} by validation `{training['select_metric']}`; {training['skipped_nonfinite_steps']} non-finite steps skipped.

```yaml
{yaml.safe_dump(recipe, sort_keys=False).strip()}
```

## Evaluation protocol

`vaezoo evaluate {name} --dataset {results['dataset']} --split {results['split']} --iwae-samples {results.get('iwae_samples', '')} --seed {results['seed']}`:
importance-weighted NLL with K = {results.get('iwae_samples', 'n/a')} samples per test example (Burda et al. 2016);
ELBO, rate and distortion are Monte Carlo averages over the same draws; bits/dim = NLL / (784 ln 2);
active units count latent dimensions with Var_x E_q[z_d] > 0.01. Evaluation seed {results['seed']}.
Code: {code_version()}.

## Limitations

Trained and evaluated on 28x28 MNIST digits only; the NLL is an upper bound on the true negative
log-likelihood (importance-weighted, K above). Not intended for any use beyond research on variational inference.

## Citations

{citations}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def write_card(folder, figures=True):
    """Draw the figures of a Hub folder and (re)write its README.md card."""
    folder = Path(folder)
    if figures:
        from transformers import AutoModel

        from .data import load_images

        saved = json.loads((folder / "eval_results.json").read_text())["test"]
        model = AutoModel.from_pretrained(folder)
        torch.manual_seed(0)
        if hasattr(model, "sample"):
            sample_grid(model, folder / "samples.png")
            reconstruction_grid(model, load_images(saved["dataset"], saved["split"], limit=16), folder / "reconstructions.png")
        history_file = folder / "history.json"
        if history_file.exists():
            keys = ["elbo", "rate", "distortion", "accuracy", "loss"]
            training_curves(json.loads(history_file.read_text()), folder / "training_curves.png", keys)
    card = build_card(folder)
    card.save(folder / "README.md")
    return card
