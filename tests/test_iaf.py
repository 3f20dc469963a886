"""IAF posterior: MADE is autoregressive, the log-determinant matches the autograd Jacobian."""

import pytest
import torch

from vaezoo import VAEConfig, VAEModel
from vaezoo.iaf import MADE


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def test_made_output_i_depends_only_on_earlier_inputs():
    made = MADE(latent_dim=5, hidden=[7, 9], context_dim=3, activation="tanh").double()
    z, h = torch.randn(5, dtype=torch.float64), torch.randn(3, dtype=torch.float64)
    for output in (0, 1):  # m and s
        jac = torch.autograd.functional.jacobian(lambda v: made(v, h)[output], z)
        # d out_i / d z_j must vanish for j >= i; below the diagonal it must not (the net sees them)
        assert torch.all(jac.triu() == 0)
        assert torch.all(jac.tril(-1)[torch.tril(torch.ones(5, 5), -1).bool()] != 0)


@pytest.mark.parametrize("parameterization", ["exp", "softplus", "stdplus"])
def test_iaf_log_density_matches_autograd_jacobian(parameterization):
    config = VAEConfig(
        posterior="iaf", iaf_steps=3, iaf_hidden=[16, 16], latent_dim=4, image_size=3,
        encoder_hidden=[8], decoder_hidden=[8], parameterization=parameterization,
    )
    model = VAEModel(config).double()
    with torch.no_grad():  # make each step far from the identity so the test has teeth
        for step in model.encoder.flow:
            step.made.out.weight.mul_(5.0)
    x = (torch.rand(2, 9) > 0.5).double()
    q = model.encode(x)
    z0 = q.base.rsample((1,), generator=torch.Generator().manual_seed(0))[0]
    z, log_q = q.rsample_with_log_prob(1, generator=torch.Generator().manual_seed(0))
    for b in range(2):
        context = q.context[b]
        jac = torch.autograd.functional.jacobian(lambda v: model.encoder.flow(v, context)[0], z0[b])
        log_det = torch.linalg.slogdet(jac)[1]
        want = q.base.log_prob(z0)[b] - log_det
        torch.testing.assert_close(log_q[0, b], want)
        torch.testing.assert_close(z[0, b], model.encoder.flow(z0[b], context)[0])
        assert log_det.abs() > 0.1


def test_iaf_trains_and_rate_is_monte_carlo():
    config = VAEConfig(posterior="iaf", latent_dim=4, image_size=3, encoder_hidden=[8], decoder_hidden=[8], train_samples=3)
    model = VAEModel(config)
    x = (torch.rand(5, 9) > 0.5).float()
    out = model(x, generator=torch.Generator().manual_seed(0))
    # rate = mean over the draws of log q(z) - log p(z), with log q from the flow pass
    z = out.latents
    q = model.encode(x)
    _, log_q = q.rsample_with_log_prob(3, generator=torch.Generator().manual_seed(0))
    want = (log_q - model.prior_distribution().log_prob(z)).mean(0)
    torch.testing.assert_close(out.rate_per_example, want)
    out.loss.backward()
    assert all(p.grad is not None for p in model.encoder.flow.parameters())
    with pytest.raises(NotImplementedError, match="rsample_with_log_prob"):
        q.log_prob(z)
