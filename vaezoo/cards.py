"""Model cards: the README.md of a Hub folder, built from the results the code saved in that folder.

One template for every family. What differs is chosen by name from two small registries:

- ``CARD_KINDS`` keyed by the saved ``evaluation_kind`` ("generative", "classifier"): which metrics
  the results table and the ``model-index`` carry, which figures are drawn, the training-curve
  panels, the evaluation protocol, usage and limitations;
- ``FAMILIES`` keyed by the config's ``model_type`` ("vae", "hvae", "vib", "bnn"): the family's
  name, the config fields the summary names, and the papers it implements.

Components (parameterization, estimator, prior, ...) add their own citations through ``CITATIONS``,
looked up by the names that appear in the config. Inputs: config.json and the files of
``vaezoo.results`` (eval_results.json, history.json, recipe.json). Every number on the card is read
from them; the ``model-index`` metadata is written with huggingface_hub's EvalResult so the Hub
shows it and ``ModelCard.load`` reads it back.
"""

import json
import math
from dataclasses import dataclass
from pathlib import Path

import yaml
from huggingface_hub import EvalResult, ModelCard, ModelCardData

from .registry import Registry
from .results import read_results

# Figure files a card may show, in display order; each is drawn by write_card from saved results.
RD_PLANE, SAMPLES, RECONSTRUCTIONS, RELIABILITY, CURVES = (
    "rd_plane.png", "samples.png", "reconstructions.png", "reliability.png", "training_curves.png"
)
TAG_FIELDS = ("parameterization", "estimator")
#: evaluation settings stored with every model-index metric (``args``), when the results have them
PROTOCOL_FIELDS = ("iwae_samples", "num_samples", "seed")


@dataclass(frozen=True)
class Metric:
    """One reported number: ``key`` in the saved results, display ``name`` (may use the results'
    fields, e.g. ``{iwae_samples}``), ``unit``, and the format of its value in tables."""

    key: str
    name: str
    unit: str = ""
    fmt: str = ".2f"
    short: str = ""  # name in one-line summaries (zoo table, `vaezoo list`); defaults to ``name``

    def label(self, results):
        return self.name.format(**results) + (f" [{self.unit}]" if self.unit else "")

    def format(self, value):
        return format(value, self.fmt)

    def brief(self, results, value):
        """``NLL 88.52 nats (K=5000)``-style text for one-line summaries."""
        unit = f" {self.unit}" if self.unit else ""
        return f"{(self.short or self.name).format(**results)} {self.format(value)}{unit}"


@dataclass(frozen=True)
class CardKind:
    """What a card shows for one evaluation kind."""

    task_type: str
    metrics: tuple  # Metric, in table order
    headline: tuple  # metric keys shown in the zoo table and `vaezoo list`
    curve_keys: tuple  # history keys plotted as training curves
    protocol: str  # evaluation protocol paragraph; formatted with the test results
    usage: str  # python lines after loading the model
    limitations: str
    draw: callable  # (folder, saved results) -> draws the kind's figures into the folder
    evaluate_flags: str  # `vaezoo evaluate` flags that reproduce the test numbers
    dynamic_metrics: tuple = ()  # (key prefix, Metric template with {suffix}) for keyed families

    def metrics_of(self, results):
        """The kind's metrics present in ``results``, plus keyed ones such as fgsm_error_<eps>."""
        found = [m for m in self.metrics if m.key in results]
        for prefix, template in self.dynamic_metrics:
            for key in sorted(k for k in results if k.startswith(prefix)):
                suffix = key[len(prefix):]
                found.append(Metric(key, template.name.replace("{suffix}", suffix), template.unit, template.fmt))
        return found


@dataclass(frozen=True)
class Family:
    title: str
    summary_fields: tuple  # config fields named in the summary, when the config has them
    papers: tuple  # CITATIONS keys


def _draw_generative(folder, saved):
    """R-D position among the zoo siblings, samples, reconstructions of test images."""
    from .data import load_images
    from .figures import reconstruction_grid, rd_plane, sample_grid
    from .loading import load_pretrained

    model = load_pretrained(folder)
    test = saved["test"]
    rd_plane(rd_points(folder), folder.name, folder / RD_PLANE)
    sample_grid(model, folder / SAMPLES)
    reconstruction_grid(model, load_images(test["dataset"], test["split"]), folder / RECONSTRUCTIONS)


def _draw_classifier(folder, saved):
    """Reliability diagram from the per-bin data the evaluation saved (when it saved them)."""
    from .figures import reliability_diagram

    test = saved["test"]
    if "reliability" in test:
        reliability_diagram(test["reliability"], folder / RELIABILITY, ece=test.get("ece"))


CARD_KINDS = Registry("card evaluation kind")
FAMILIES = Registry("model family")

CARD_KINDS.register("generative")(CardKind(
    task_type="unconditional-image-generation",
    metrics=(
        Metric("nll", "NLL (IWAE bound, K={iwae_samples})", "nats", short="NLL (K={iwae_samples})"),
        Metric("elbo", "ELBO", "nats"),
        Metric("rate", "Rate R = E KL(q(z|x) || p(z))", "nats", short="R"),
        Metric("distortion", "Distortion D = -E log p(x|z)", "nats", short="D"),
        Metric("bits_per_dim", "NLL (K={iwae_samples})", "bits/dim", ".4f"),
        Metric("active_units", "Active units (Var_x E_q[z_d] > 0.01)", "dims", "d"),
    ),
    headline=("nll", "rate", "distortion"),
    curve_keys=("elbo", "rate", "distortion"),
    protocol=(
        "Test NLL is the importance-weighted bound -log (1/K) sum_k p(x, z_k) / q(z_k | x) with "
        "K = {iwae_samples} posterior samples per example (Burda et al. 2016), on the {num_examples} examples "
        "of split `{split}` of `{dataset}`, evaluation seed {seed}. ELBO, rate and distortion are Monte Carlo "
        "averages over the same K draws, so ELBO = -(D + R) exactly; bits/dim = NLL / (pixels x ln 2); a latent "
        "dimension is active when the variance over the test set of its posterior mean exceeds 0.01."
    ),
    usage=(
        "x = torch.bernoulli(torch.rand(4, 784))          # (B, 784) binary pixels in {0, 1}\n"
        "posterior = model.encode(x)                      # q(z | x): .mean, .rsample(), .log_prob()\n"
        "log_px_z, log_q_minus_log_p = model.log_weights(x, num_samples=100)   # importance weights, (k, B)\n"
        "images = model.sample(16, generator=torch.Generator().manual_seed(0)) # (16, 1, 28, 28) decoder means"
    ),
    draw=_draw_generative,
    evaluate_flags="--iwae-samples {iwae_samples}",
    limitations=(
        "The NLL is an upper bound on the true negative log-likelihood (importance-weighted with K samples "
        "as stated); the rate and distortion are single-model estimates, not the data entropy. Samples show "
        "decoder means, not binary draws."
    ),
))

CARD_KINDS.register("classifier")(CardKind(
    task_type="image-classification",
    metrics=(
        Metric("accuracy", "Accuracy", "", ".2%"),
        Metric("nll", "NLL of the labels", "nats", ".4f"),
        Metric("ece", "Expected calibration error", "", ".4f", short="ECE"),
        Metric("rate", "Rate R = E KL(q(z|x) || p(z))", "nats", short="R"),
        Metric("kl", "KL(q(w) || p(w))", "nats"),
    ),
    dynamic_metrics=(("fgsm_error_", Metric("", "FGSM error (eps = {suffix})", "", ".2%")),),
    headline=("accuracy", "ece", "rate"),
    curve_keys=("accuracy", "nll", "rate", "kl"),
    protocol=(
        "Predictions average the class probabilities of {num_samples} posterior samples per example, on the "
        "{num_examples} examples of split `{split}` of `{dataset}`, evaluation seed {seed}. NLL is the mean "
        "negative log predictive probability of the true label; ECE is the expected calibration error "
        "(Guo et al. 2017); FGSM error is the test error under the fast gradient sign attack "
        "(Goodfellow et al. 2015) with the stated L-infinity budget in pixel units."
    ),
    usage=(
        "x = torch.rand(4, 784)                                    # (B, 784) pixels in [0, 1]\n"
        "log_probs = model.predictive_log_probs(x, num_samples=12)  # (B, C) log of the posterior-averaged probabilities\n"
        "predictions = log_probs.argmax(-1)\n"
        "out = model(pixel_values=x, labels=torch.tensor([7, 2, 1, 0]))  # one posterior sample: out.logits, out.nll, out.accuracy"
    ),
    draw=_draw_classifier,
    evaluate_flags="--num-samples {num_samples}{fgsm_flags}",
    limitations=(
        "Calibration and accuracy are measured in distribution only; FGSM is a weak one-step attack, so its "
        "error is a lower bound on the error under stronger attacks."
    ),
))

FAMILIES.register("vae")(Family(
    "variational autoencoder",
    ("parameterization", "latent_dim", "prior", "likelihood", "objective", "beta", "train_samples"),
    ("vae", "iwae", "broken_elbo"),
))
FAMILIES.register("hvae")(Family(
    "hierarchical variational autoencoder",
    ("parameterization", "estimator", "latent_dims", "num_layers", "objective", "train_samples"),
    ("vae", "iwae", "broken_elbo"),
))
FAMILIES.register("vib")(Family(
    "variational information bottleneck classifier",
    ("parameterization", "estimator", "encoder_hidden", "latent_dim", "beta", "train_samples", "test_samples"),
    ("vib",),
))
FAMILIES.register("bnn")(Family(
    "Bayesian neural network (mean-field Gaussian weights)",
    ("architecture", "estimator", "parameterization", "hidden", "prior_scale", "test_samples"),
    ("bbb",),
))

#: citation key (a family paper, or a component name as it appears in a config) -> reference
CITATIONS = {
    "vae": "Kingma & Welling. Auto-Encoding Variational Bayes. ICLR 2014.",
    "iwae": "Burda, Grosse & Salakhutdinov. Importance Weighted Autoencoders. ICLR 2016.",
    "broken_elbo": "Alemi, Poole, Fischer, Dillon, Saurous & Murphy. Fixing a Broken ELBO. ICML 2018.",
    "vib": "Alemi, Fischer, Dillon & Murphy. Deep Variational Information Bottleneck. ICLR 2017.",
    "bbb": "Blundell, Cornebise, Kavukcuoglu & Wierstra. Weight Uncertainty in Neural Networks. ICML 2015.",
    "stdplus": "Slashed Normal: Parameterize Normal Posterior Distributions with KL Amplitude.",
    "r2g2": "Rao-Blackwellised Reparameterisation Gradients (R2-G2).",
    "lrt": "Kingma, Salimans & Welling. Variational Dropout and the Local Reparameterization Trick. NeurIPS 2015.",
    "flipout": "Wen, Vicol, Ba, Tran & Grosse. Flipout: Efficient Pseudo-Independent Weight Perturbations "
               "on Mini-Batches. ICLR 2018.",
    "score": "Williams. Simple Statistical Gradient-Following Algorithms for Connectionist Reinforcement "
             "Learning. Machine Learning 1992.",
    "vampprior": "Tomczak & Welling. VAE with a VampPrior. AISTATS 2018.",
    "iaf": "Kingma, Salimans, Jozefowicz, Chen, Sutskever & Welling. Improved Variational Inference with "
           "Inverse Autoregressive Flow. NeurIPS 2016.",
    "rme": "Kim & Pavlovic. Recursive Inference for Variational Autoencoders. NeurIPS 2020.",
    "pixelcnn": "van den Oord, Kalchbrenner, Espeholt, Kavukcuoglu, Vinyals & Graves. Conditional Image "
                "Generation with PixelCNN Decoders. NeurIPS 2016.",
}


def _config_names(config):
    """Every string in the config (values and list items): component names that may carry a citation."""
    for value in config.values():
        for item in value if isinstance(value, list) else [value]:
            if isinstance(item, str):
                yield item


def citations(config):
    family = FAMILIES.get(config["model_type"])
    keys = list(family.papers) + [name for name in _config_names(config) if name in CITATIONS]
    return [CITATIONS[key] for key in dict.fromkeys(keys)]


def card_kind(saved):
    return CARD_KINDS.get(saved["evaluation_kind"])


def eval_results_metadata(kind, results):
    """The model-index entries: one per metric the evaluation measured."""
    return [
        EvalResult(
            task_type=kind.task_type,
            dataset_type=results["dataset_id"],
            dataset_name=results["dataset"],
            dataset_split=results["split"],
            metric_type=metric.key,
            metric_name=metric.label(results),
            metric_value=round(float(results[metric.key]), 6),
            metric_args={field: results[field] for field in PROTOCOL_FIELDS if field in results},
        )
        for metric in kind.metrics_of(results)
    ]


def rd_points(folder):
    """(name, rate, distortion, nll) of every generative checkpoint next to ``folder`` (its zoo
    siblings and itself) evaluated on the same dataset and split, read from their saved results."""
    folder = Path(folder)
    mine = json.loads((folder / "eval_results.json").read_text())["test"]
    points = []
    for sibling in sorted(folder.parent.iterdir()):
        path = sibling / "eval_results.json"
        if sibling.name.startswith(".") or not path.is_file():  # hidden: save_hub_folder's temporary folders
            continue
        saved = json.loads(path.read_text())
        test = saved["test"]
        if saved["evaluation_kind"] == "generative" and (test["dataset"], test["split"]) == (mine["dataset"], mine["split"]):
            points.append({"name": sibling.name, **{k: test[k] for k in ("rate", "distortion", "nll")}})
    return points


def _fields(config, names):
    return ", ".join(f"`{name}` = {json.dumps(config[name])}" for name in names if name in config)


def _figures_section(folder, saved):
    test = saved["test"]
    parts = []
    if (folder / RD_PLANE).exists():
        points = rd_points(folder)
        best = min(points, key=lambda p: p["nll"])
        parts.append(
            "## Rate-distortion position\n\n"
            f"![rate-distortion plane]({RD_PLANE})\n\n"
            f"This checkpoint (red) among the {len(points)} generative zoo checkpoint(s) evaluated on `{test['dataset']}` "
            f"/ `{test['split']}`: R = {test['rate']:.2f}, D = {test['distortion']:.2f} nats. The dashed line is "
            f"D = H_hat - R with H_hat = {best['nll']:.2f} nats, the best NLL in the zoo ({best['name']}); no model "
            "with data entropy H = H_hat can lie below it (Alemi et al. 2018). Models on one line of slope -1 have "
            "the same ELBO; R and D say how it is split between the code and the decoder."
        )
    images = [f"![{name[:-4]}]({name})" for name in (SAMPLES, RECONSTRUCTIONS) if (folder / name).exists()]
    if images:
        parts.append("## Samples and reconstructions\n\n" + "\n\n".join(images))
    if (folder / RELIABILITY).exists():
        parts.append(f"## Calibration\n\n![reliability diagram]({RELIABILITY})")
    if (folder / CURVES).exists():
        parts.append(f"## Training curves\n\nValidation metrics during training (the checkpoint kept is the best "
                     f"`{saved['training']['select_metric']}`, at step {saved['training']['best_step']}).\n\n"
                     f"![training curves]({CURVES})")
    return "\n\n".join(parts)


def build_card(folder, repo_id=None):
    """Return the ModelCard of a Hub folder from its saved results and figures (does not write)."""
    folder = Path(folder)
    config = json.loads((folder / "config.json").read_text())
    saved, _history, recipe = read_results(folder)
    kind_name = saved["evaluation_kind"]
    kind, family = CARD_KINDS.get(kind_name), FAMILIES.get(config["model_type"])
    test, training, subset = saved["test"], saved["training"], saved["consistency"]
    name = folder.name
    repo_id = repo_id or recipe.get("hub_repo") or f"vaezoo/{name}"
    metrics = kind.metrics_of(test)
    if not metrics:
        raise ValueError(f"{folder}/eval_results.json has no {kind_name} metrics; nothing to put on the card")
    tags = ["vaezoo", config["model_type"], kind_name, "variational-inference"]
    tags += [f"{field}-{config[field]}" for field in TAG_FIELDS if field in config]
    data = ModelCardData(
        model_name=name,
        license="mit",
        library_name="transformers",
        tags=tags,
        datasets=[test["dataset_id"]],
        eval_results=eval_results_metadata(kind, test),
    )
    headline = ", ".join(m.brief(test, test[m.key]) for m in metrics if m.key in kind.headline)
    description = " ".join(recipe.get("description", "").split())
    summary = (
        (description + " " if description else "")
        + f"This checkpoint is a {family.title} (`model_type` = `{config['model_type']}`; {_fields(config, family.summary_fields)}), "
        f"trained for {training['steps']} steps on `{recipe['data']['dataset']}`. On the {test['num_examples']} examples of "
        f"the `{test['split']}` split it reaches {headline}."
    )
    rows = "\n".join(f"| {m.label(test)} | {m.format(test[m.key])} |" for m in metrics)
    protocol = subset["protocol"]
    fgsm_flags = " --fgsm-eps " + " ".join(map(str, protocol["fgsm_eps"])) if protocol["fgsm_eps"] else ""
    fields = {"num_samples": protocol["num_samples"], "fgsm_flags": fgsm_flags, **test}
    subset_metrics = ", ".join(f"{m.key} = {subset['metrics'][m.key]:.6g}" for m in kind.metrics_of(subset["metrics"]))
    max_steps = recipe["training"]["max_steps"]
    steps_note = "" if training["steps"] == max_steps else f" (the recipe's max_steps = {max_steps} was overridden with `--max-steps {training['steps']}`)"
    python_usage = "\n".join(["import torch", "import vaezoo                        # registers the vaezoo model types",
                              "from transformers import AutoModel", f'model = AutoModel.from_pretrained("{repo_id}")',
                              kind.usage])
    remote_usage = "\n".join(["import torch", "from transformers import AutoModel",
                              f'model = AutoModel.from_pretrained("{repo_id}", trust_remote_code=True)'])
    body = f"""
# {name}

{summary}

## Results

| metric (`{test['dataset']}`, split `{test['split']}`, {test['num_examples']} examples) | value |
|---|---|
{rows}

{_figures_section(folder, saved)}

## Usage

With vaezoo installed (`pip install vaezoo`):

```python
{python_usage}
```

Without vaezoo: the folder ships the flat modeling files, loaded with `trust_remote_code=True`:

```python
{remote_usage}
```

## Training recipe

`accelerate launch training/train.py hub_configs/{name}.yaml`: {training['steps']} steps{steps_note} on
{training['num_processes']} process(es) in {training['train_seconds']:.0f} s, {training['train_examples']} training examples;
the checkpoint kept is the one with the best validation `{training['select_metric']}` (step {training['best_step']});
{training['skipped_nonfinite_steps']} non-finite steps were skipped. The recipe as trained:

```yaml
{yaml.safe_dump(recipe, sort_keys=False).strip()}
```

## Evaluation protocol

{kind.protocol.format(**fields)}
Code: {saved['code_version']}. Reproduce with
`vaezoo evaluate {name} --dataset {test['dataset']} --split {test['split']} --seed {test['seed']} {kind.evaluate_flags.format(**fields)}`.

Consistency subset (stored with the results, re-run by the test suite on the shipped weights): the first
{protocol['limit']} examples of `{protocol['split']}`, K = {protocol['iwae_samples']}, seed {protocol['seed']}: {subset_metrics}.

## Limitations

Trained and evaluated only on `{test['dataset']}`; not tested on any other data. {kind.limitations} A research artifact for variational inference, not a production model.

## Citations

{chr(10).join(f"- {c}" for c in citations(config))}
"""
    return ModelCard(f"---\n{data.to_yaml()}\n---\n{body}")


def draw_figures(folder):
    """Draw the figures a card shows (the kind's own, then training curves) from the folder."""
    from .figures import training_curves

    folder = Path(folder)
    saved, history, _recipe = read_results(folder)
    kind = CARD_KINDS.get(saved["evaluation_kind"])
    kind.draw(folder, saved)
    if history:
        training_curves(history, folder / CURVES, kind.curve_keys)


def write_card(folder, repo_id=None, figures=True):
    """(Re)draw the figures of a Hub folder and (re)write its README.md card. Returns the card."""
    folder = Path(folder)
    if figures:
        draw_figures(folder)
    card = build_card(folder, repo_id=repo_id)
    card.save(folder / "README.md")
    return card


def check_metric_values(card_results, saved_results):
    """Differences between a card's model-index and the saved test results (empty when they agree)."""
    problems = []
    for entry in card_results:
        key = entry.metric_type
        if key not in saved_results:
            problems.append(f"card metric {key!r} is not in eval_results.json")
        elif not math.isclose(entry.metric_value, round(float(saved_results[key]), 6), rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"card {key} = {entry.metric_value} but eval_results.json has {saved_results[key]}")
    return problems
