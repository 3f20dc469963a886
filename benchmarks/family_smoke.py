"""Short real runs of the VAE family on static binarized MNIST: every variant trained with the same
budget (steps, batch, Adam learning rate, seed), then IWAE test NLL (k importance samples) on the
first test images, next to a plain VAE. A smoke test of the components, not a published number.

    python benchmarks/family_smoke.py --steps 300 --test-images 1000 --iwae-samples 100
"""

import argparse
import json
import time

import torch

import vaezoo  # noqa: F401
from vaezoo import HVAEConfig, HVAEModel, VAEConfig, VAEModel
from vaezoo.data import load_images
from vaezoo.evaluation import evaluate_generative

VARIANTS = {
    "vae": lambda steps: VAEModel(VAEConfig()),
    "iaf": lambda steps: VAEModel(VAEConfig(posterior="iaf")),
    "mixture": lambda steps: VAEModel(VAEConfig(posterior="mixture", num_components=3)),
    "rme": lambda steps: VAEModel(VAEConfig(posterior="rme", num_components=3, rme_stage_steps=max(1, steps // 3))),
    "mog_prior": lambda steps: VAEModel(VAEConfig(prior="mog")),
    "vampprior": lambda steps: VAEModel(VAEConfig(prior="vampprior", vampprior_pseudo_inputs=100)),
    "target_rate_10": lambda steps: VAEModel(VAEConfig(objective="target_rate", target_rate=10.0)),
    "pixelcnn": lambda steps: VAEModel(VAEConfig(decoder="pixelcnn", pixelcnn_layers=3, pixelcnn_channels=16)),
    "hvae_2": lambda steps: HVAEModel(HVAEConfig()),
}


def train(model, data, steps, batch_size, lr, seed):
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    for step in range(steps):
        if hasattr(model, "begin_step"):
            model.begin_step(step)
        index = torch.randint(0, len(data), (batch_size,), generator=generator)
        out = model(data.pixels(data.images[index]), generator=generator)
        optimizer.zero_grad(set_to_none=True)
        out.loss.backward()
        optimizer.step()
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--variants", nargs="*", default=list(VARIANTS))
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--test-images", type=int, default=1000)
    parser.add_argument("--iwae-samples", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    train_data = load_images("static-binarized-mnist", "train")
    test_data = load_images("static-binarized-mnist", "test", limit=args.test_images)
    for name in args.variants:
        torch.manual_seed(args.seed)
        model = VARIANTS[name](args.steps)
        start = time.time()
        train(model, train_data, args.steps, args.batch_size, args.lr, args.seed)
        seconds = time.time() - start
        results = evaluate_generative(model, test_data, iwae_samples=args.iwae_samples, seed=args.seed)
        row = {"variant": name, "steps": args.steps, "train_seconds": round(seconds, 1), **results}
        print(json.dumps({k: round(v, 3) if isinstance(v, float) else v for k, v in row.items()}), flush=True)


if __name__ == "__main__":
    main()
