"""RME posterior: the staged schedule, freezing, the recursive objective and its barrier."""

import pytest
import torch

from vaezoo import VAEConfig, VAEModel

KW = dict(posterior="rme", num_components=3, latent_dim=3, image_size=3, encoder_hidden=[8], decoder_hidden=[8],
          rme_weight_hidden=[4], rme_stage_steps=5)


@pytest.fixture(autouse=True)
def seeded():
    torch.manual_seed(0)


def batch():
    return (torch.rand(6, 9, generator=torch.Generator().manual_seed(1)) > 0.5).float()


def train(model, steps, start=0):
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
    x = batch()
    for step in range(start, start + steps):
        model.begin_step(step)  # the training loop's contract
        optimizer.zero_grad(set_to_none=True)
        model(x, generator=torch.Generator().manual_seed(step)).loss.backward()
        optimizer.step()


def snapshot(module):
    return [p.detach().clone() for p in module.parameters()]


def changed(module, before):
    return any(not torch.equal(p, q) for p, q in zip(module.parameters(), before))


@pytest.mark.parametrize("freeze", [True, False])
def test_stages_add_components_and_earlier_ones_follow_the_recipe(freeze):
    model = VAEModel(VAEConfig(rme_freeze_previous=freeze, **KW))
    components = model.encoder.components
    counts = []
    for step in (0, 4, 5, 9, 10, 99):
        model.begin_step(step)
        counts.append(int(model.encoder.num_active))
    assert counts == [1, 1, 2, 2, 3, 3]

    model.begin_step(0)
    before = [snapshot(c) for c in components]
    train(model, 5)  # stage 1: only component 1 is in use
    assert changed(components[0], before[0])
    assert not changed(components[1], before[1]) and not changed(components[2], before[2])

    before = [snapshot(c) for c in components]
    train(model, 5, start=5)  # stage 2: component 2 trains; component 1 frozen or not per the recipe
    assert int(model.encoder.num_active) == 2
    assert changed(components[1], before[1])
    assert changed(components[0], before[0]) is (not freeze)
    assert all(p.requires_grad is (not freeze) for p in components[0].parameters())
    assert not changed(components[2], before[2])

    before = [snapshot(c) for c in components]
    train(model, 5, start=10)  # stage 3
    assert changed(components[2], before[2])
    assert changed(components[1], before[1]) is (not freeze)
    assert changed(components[0], before[0]) is (not freeze)


def stage_two_model(barrier):
    model = VAEModel(VAEConfig(rme_barrier=barrier, **KW)).double()
    with torch.no_grad():  # component 1 far from component 2, so every KL(q_2 || Q_1) draw is large
        model.encoder.components[0].conditional[-1].bias[:3] += 3.0
    model.begin_step(5)  # stage 2
    return model


def recursive_objective(model, x, generator, barrier):
    """-J_2 per example written out: ELBO(q_2) + min(KL(q_2 || Q_1), C) with Q_1 = component 1 alone."""
    q2 = model.encoder.components[1](x)
    z = q2.rsample((1,), generator=generator)
    log_q2 = q2.log_prob(z)
    elbo = model.decode(z).log_prob(x)[0] - torch.distributions.kl_divergence(q2, model.prior_distribution())
    kl = (log_q2 - model.encoder.components[0](x).log_prob(z))[0]
    assert torch.all(kl > barrier) or barrier > 1e5
    return -(elbo + kl.clamp(max=barrier))


@pytest.mark.parametrize("barrier", [1e6, 1.0])
def test_newest_component_is_trained_by_its_recursive_objective_alone(barrier):
    model = stage_two_model(barrier)
    x = batch().double()
    newest = list(model.encoder.components[1].parameters())
    # the mixture ELBO path carries no gradient to the newest component ...
    q = model.encode(x)
    out = model(x, generator=torch.Generator().manual_seed(0))
    grads = torch.autograd.grad(out.loss, newest, allow_unused=True)
    mixture_only = torch.autograd.grad(q.rsample((2,)).sum() + q.log_prob(q.rsample((2,))).sum(), newest, allow_unused=True)
    assert all(g is None for g in mixture_only)
    assert all(g is not None for g in grads)
    # ... its whole training loss is -J_2 (below the barrier: ELBO + KL; above it: ELBO alone)
    aux = model.encoder.auxiliary_loss(
        x, lambda z: model.decode(z).log_prob(x), model.prior_distribution(), 1, torch.Generator().manual_seed(0)
    )
    want = recursive_objective(model, x, torch.Generator().manual_seed(0), barrier)
    torch.testing.assert_close(aux, want)
    for g, w in zip(torch.autograd.grad(aux.mean(), newest), torch.autograd.grad(want.mean(), newest)):
        torch.testing.assert_close(g, w)


def test_barrier_cuts_the_divergence_gradient():
    """Above the barrier, min(KL, C) = C: the newest component sees the gradient of ELBO(q_m) alone."""
    x = batch().double()
    model = stage_two_model(1.0)
    newest = list(model.encoder.components[1].parameters())
    aux = model.encoder.auxiliary_loss(
        x, lambda z: model.decode(z).log_prob(x), model.prior_distribution(), 1, torch.Generator().manual_seed(0)
    )
    q2 = model.encoder.components[1](x)
    z = q2.rsample((1,), generator=torch.Generator().manual_seed(0))
    elbo = model.decode(z).log_prob(x)[0] - torch.distributions.kl_divergence(q2, model.prior_distribution())
    for g, w in zip(torch.autograd.grad(aux.mean(), newest), torch.autograd.grad(-elbo.mean(), newest)):
        torch.testing.assert_close(g, w)


def test_weights_are_fitted_on_the_mixture_elbo_and_inference_is_one_pass():
    model = VAEModel(VAEConfig(**KW))
    model.begin_step(10)
    x = batch()
    out = model(x, generator=torch.Generator().manual_seed(0))
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.encoder.weight_net.parameters())
    model.eval()
    q = model.encode(x)
    assert q.num_components == 3
    # every component's mean is what its own network says: the three run in the same pass
    for m, component in enumerate(model.encoder.components):
        torch.testing.assert_close(q.components.loc[:, m], component(x).loc)
    assert model(x, generator=torch.Generator().manual_seed(0)).loss.isfinite()
