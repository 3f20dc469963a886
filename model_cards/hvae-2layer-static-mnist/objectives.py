"""Training objectives of the single-layer VAE, chosen by name (``objective`` in the config).

Each maps per-example distortion D, rate R and importance-weighted bound IWAE_k (all (B,)) to the
scalar loss:

| name          | loss                         | reference                                   |
|---------------|------------------------------|---------------------------------------------|
| `elbo`        | mean(D) + beta mean(R)       | Kingma & Welling 2014; beta-VAE, Higgins 2017 |
| `iwae`        | -mean(IWAE_k)                | Burda et al. 2016                           |
| `target_rate` | mean(D) + beta |mean(R) - target_rate| | Alemi et al. 2018 ("Fixing a Broken ELBO") |

The target-rate penalty acts on the batch-mean rate, R = E_x KL(q(z|x) || p(z)), so training lands
near a chosen point of the rate-distortion plane rather than wherever the ELBO puts it.
"""

from .registry import Registry

OBJECTIVES = Registry("objective")


@OBJECTIVES.register("elbo")
def elbo_loss(distortion, rate, iwae, config):
    return (distortion + config.beta * rate).mean()


@OBJECTIVES.register("iwae")
def iwae_loss(distortion, rate, iwae, config):
    return -iwae.mean()


@OBJECTIVES.register("target_rate")
def target_rate_loss(distortion, rate, iwae, config):
    return distortion.mean() + config.beta * (rate.mean() - config.target_rate).abs()
