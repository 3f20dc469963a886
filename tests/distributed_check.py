"""Run under 2 processes (see tests/test_training.py::test_two_processes_stay_synchronized).

Checks that data-parallel training is the batch-B update: each rank takes half of a batch of B
examples (with its own posterior noise), DDP averages the gradients, and after one Adam step
(a) both ranks hold identical weights and (b) they equal a single-process step on the whole batch,
whose loss is the mean over the same B examples with the same noise: 0.5 * (loss_half0 + loss_half1).
"""

import copy
import sys

import torch
from accelerate import Accelerator

import vaezoo
from vaezoo.data import load_images


def one_step(model, lr=1e-3):
    return torch.optim.Adam(model.parameters(), lr=lr)


def main():
    accelerator = Accelerator()
    assert accelerator.num_processes == 2, f"expected 2 processes, got {accelerator.num_processes}"
    torch.manual_seed(0)
    model = vaezoo.VAEModel(vaezoo.VAEConfig(encoder_hidden=[32], decoder_hidden=[32], latent_dim=4))
    reference = copy.deepcopy(model)
    data = load_images("static-binarized-mnist-sample", "train", limit=16)
    x = data.pixels(data.images)
    halves = x.chunk(2)
    seeds = (11, 22)

    optimizer = one_step(model)
    model, optimizer = accelerator.prepare(model, optimizer)
    rank = accelerator.process_index
    loss = model(halves[rank], generator=torch.Generator().manual_seed(seeds[rank])).loss
    accelerator.backward(loss)
    optimizer.step()

    flat = torch.cat([p.detach().reshape(-1) for p in accelerator.unwrap_model(model).parameters()])
    gathered = accelerator.gather(flat[None])
    same_across_ranks = torch.equal(gathered[0], gathered[1])

    ref_opt = one_step(reference)
    full_batch_loss = 0.5 * sum(
        reference(h, generator=torch.Generator().manual_seed(s)).loss for h, s in zip(halves, seeds)
    )
    full_batch_loss.backward()
    ref_opt.step()
    ref_flat = torch.cat([p.detach().reshape(-1) for p in reference.parameters()])
    max_diff = (ref_flat - flat).abs().max().item()
    if accelerator.is_main_process:
        print(f"SYNC same_across_ranks={same_across_ranks} max_diff_vs_full_batch={max_diff:.3e}")
    ok = same_across_ranks and max_diff < 1e-6
    accelerator.wait_for_everyone()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
