"""Posteriors q(z|x), chosen by name (``posterior`` in the config). Each is an nn.Module built from the
config that maps flattened inputs (B, D) to a distribution with event shape (latent_dim,):

| name       | q(z|x)                                                          | file                  |
|------------|-----------------------------------------------------------------|-----------------------|
| `gaussian` | diagonal Gaussian, any scale parameterization                   | gaussian_posterior.py |
| `iaf`      | Gaussian followed by ``iaf_steps`` inverse autoregressive steps  | iaf.py                |
| `mixture`  | ``num_components`` Gaussian heads and weights, trained jointly   | mixture.py            |
| `rme`      | recursive mixture: components added one stage at a time          | rme.py                |
"""

from .gaussian_posterior import GaussianPosterior
from .iaf import IAFPosterior
from .mixture import MixturePosterior
from .registry import Registry
from .rme import RecursiveMixturePosterior

POSTERIORS = Registry("posterior")
POSTERIORS.register("gaussian")(GaussianPosterior)
POSTERIORS.register("iaf")(IAFPosterior)
POSTERIORS.register("mixture")(MixturePosterior)
POSTERIORS.register("rme")(RecursiveMixturePosterior)
