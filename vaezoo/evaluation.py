"""Evaluation protocol shared by every card (methods.md §5).

Generative models: importance-weighted NLL  -log (1/K) sum_k p(x, z_k) / q(z_k | x)  with K samples
(K = 5000 for published numbers; Burda et al. 2016), computed in chunks of samples so memory stays
bounded; the Monte Carlo ELBO, rate R = E[log q - log p(z)] and distortion D = E[-log p(x|z)] from
the same K draws (so ELBO = -(D + R) exactly); bits/dim = NLL / (D ln 2); active units
(Cov_x(E_q[z]) > 0.01 per dimension, Burda et al. 2016).
Every number depends only on (model, data, K, seed); the seed is recorded with the results.
"""

import math

import torch
from tqdm.auto import tqdm

from .bounds import LogMeanExpAccumulator
from .classifier_evaluation import evaluate_classifier
from .registry import Registry

EVALUATORS = Registry("evaluator")
ACTIVE_UNIT_THRESHOLD = 0.01
#: decoder rows (importance samples x examples) evaluated at once; bounds memory at any K
MAX_ROWS = 20_000


def active_units(posterior_means, threshold=ACTIVE_UNIT_THRESHOLD):
    """Number of latent dimensions whose posterior mean varies across the data: Var_x E_q[z_d] > threshold."""
    return int((posterior_means.var(0) > threshold).sum())


@torch.no_grad()
def evaluate_generative(model, data, iwae_samples=5000, batch_size=None, seed=0, progress=False, **_):
    """Evaluate a generative model on an ``ImageData`` split; returns a dict of plain floats/ints."""
    model.eval()
    if iwae_samples < 1:
        raise ValueError(f"iwae_samples={iwae_samples} is not valid; expected an integer >= 1")
    device = next(model.parameters()).device
    generator = torch.Generator(device=device).manual_seed(seed)
    batch_size = batch_size or max(1, min(100, MAX_ROWS // iwae_samples))
    chunk = max(1, min(iwae_samples, MAX_ROWS // batch_size))
    totals = {"nll": 0.0, "log_px_z": 0.0, "rate": 0.0}
    means = []
    n = len(data)
    for start in tqdm(range(0, n, batch_size), disable=not progress, desc="evaluate", unit="batch"):
        x = data.pixels(data.images[start : start + batch_size].to(device), generator=generator)
        acc, sum_log_px_z, sum_rate = LogMeanExpAccumulator(), 0.0, 0.0
        for k0 in range(0, iwae_samples, chunk):
            k = min(chunk, iwae_samples - k0)
            log_px_z, log_q_minus_log_p = model.log_weights(x, k, generator=generator)
            acc.update(log_px_z - log_q_minus_log_p)
            sum_log_px_z += log_px_z.double().sum(0)
            sum_rate += log_q_minus_log_p.double().sum(0)
        totals["nll"] -= acc.value().double().sum().item()
        totals["log_px_z"] += (sum_log_px_z / iwae_samples).sum().item()
        totals["rate"] += (sum_rate / iwae_samples).sum().item()
        means.append(model.encode(x).mean.reshape(x.shape[0], -1).float().cpu())
    nll = totals["nll"] / n
    distortion = -totals["log_px_z"] / n
    rate = totals["rate"] / n
    num_pixels = model.config.num_pixels
    return {
        "nll": nll,
        "elbo": -(distortion + rate),
        "rate": rate,
        "distortion": distortion,
        "bits_per_dim": nll / (num_pixels * math.log(2)),
        "active_units": active_units(torch.cat(means)),
        "iwae_samples": iwae_samples,
        "num_examples": n,
        "seed": seed,
    }


EVALUATORS.register("generative")(evaluate_generative)


@EVALUATORS.register("classifier")
def evaluate_classifier_split(model, data, num_samples=12, batch_size=None, seed=0, fgsm_eps=(), **_):
    """Accuracy, NLL and ECE of the S-sample predictive distribution (plus rate / FGSM error)."""
    generator = torch.Generator().manual_seed(seed)
    images = data.pixels(data.images, generator=generator)
    results = evaluate_classifier(model, images, data.labels, num_samples, batch_size or 500, generator, fgsm_eps)
    return {**results, "seed": seed}


def evaluate(model, data, **kwargs):
    """Dispatch on the model's ``evaluation_kind`` ("generative" or "classifier")."""
    results = EVALUATORS.get(model.evaluation_kind)(model, data, **kwargs)
    return {"dataset": data.name, "dataset_id": data.hub_id, "split": data.split, **results}
