"""Every posterior x prior x decoder combination runs with every scale parameterization: finite loss and
gradients, the evaluation contract's shapes, and encode().mean for the active-units metric."""

import itertools

import pytest
import torch

from vaezoo import VAEConfig, VAEModel

POSTERIORS = ["gaussian", "iaf", "mixture", "rme"]
PRIORS = ["standard_normal", "mog", "vampprior"]
DECODERS = ["mlp", "pixelcnn"]
PARAMETERIZATIONS = ["exp", "softplus", "stdplus"]
# the parameterization rotates with (prior, decoder), so each posterior meets all three (keeps the file fast)
COMBINATIONS = [
    (q, p, d, PARAMETERIZATIONS[(PRIORS.index(p) + DECODERS.index(d)) % 3])
    for q, p, d in itertools.product(POSTERIORS, PRIORS, DECODERS)
    if not (q == "iaf" and p == "vampprior")
]


@pytest.mark.parametrize("posterior,prior,decoder,parameterization", COMBINATIONS)
def test_combination_trains_and_evaluates(posterior, prior, decoder, parameterization):
    torch.manual_seed(0)
    x = (torch.rand(3, 16, generator=torch.Generator().manual_seed(0)) > 0.5).float()
    config = VAEConfig(
        posterior=posterior, prior=prior, decoder=decoder, parameterization=parameterization, image_size=4,
        latent_dim=2, encoder_hidden=[6], decoder_hidden=[6], num_components=2, rme_stage_steps=1,
        iaf_hidden=[4], mog_components=2, vampprior_pseudo_inputs=3, pixelcnn_layers=2, pixelcnn_channels=4,
        pixelcnn_cond_channels=1, train_samples=2,
    )
    model = VAEModel(config)
    model.begin_step(1)
    out = model(x, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert torch.isfinite(out.loss) and torch.isfinite(out.iwae)
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
    log_px_z, log_ratio = model.log_weights(x, 5, generator=torch.Generator().manual_seed(0))
    assert log_px_z.shape == log_ratio.shape == (5, 3)
    assert torch.isfinite(log_px_z - log_ratio).all()
    assert model.encode(x).mean.shape == (3, 2)


def test_vampprior_with_iaf_is_rejected_with_a_reason():
    with pytest.raises(ValueError, match="vampprior"):
        VAEConfig(prior="vampprior", posterior="iaf")
