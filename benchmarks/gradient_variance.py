"""Reproduce the R2-G2 paper's Figure 1 comparison on MNIST: gradient variance of RT, LRT and R2-G2
for the top layer of the BNN MLP (784-1024-1024-10 ReLU, batch 80) over training.

The network is trained with one estimator (``--train-estimator``, Adam); at evenly spaced
checkpoints the parameters are frozen and, for one fixed training batch, every compared estimator
draws ``--draws`` gradients of the ELBO loss; the summed per-element variance of the top layer's
posterior-mean and posterior-scale gradients is recorded (``vaezoo.gradient_variance``).
Writes ``gradient_variance.png``, ``gradient_variance.json`` and ``gradient_variance.md``.

    python benchmarks/gradient_variance.py --output-dir benchmarks/results/gradient_variance

The default run (300 steps, 4 checkpoints, 30 draws, first 20,000 training images) took 139 s
with OMP_NUM_THREADS=1 on a busy 2-core machine. Note: in a mean-field linear layer R2-G2 is
the LRT exactly (methods.md §3), so their curves coincide; the RT curve is the reference.
"""

import argparse
import json
import os
import sys
import time

import torch

from vaezoo.data import load_images  # noqa: E402

from vaezoo import BNNConfig, BNNModel  # noqa: E402
from vaezoo.gradient_variance import gradient_variance, use_estimator  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--architecture", default="mlp", choices=["mlp", "cnn"])
    parser.add_argument("--hidden", type=int, nargs="+", default=[1024, 1024])
    parser.add_argument("--conv-channels", type=int, nargs="+", default=[16, 32, 64], help="cnn only")
    parser.add_argument("--layer", type=int, default=None, help="index in model.network (default: the last layer)")
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--checkpoints", type=int, default=4, help="measurements, evenly spaced, incl. step 0")
    parser.add_argument("--draws", type=int, default=30, help="gradient draws per estimator and checkpoint")
    parser.add_argument("--batch-size", type=int, default=80)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--train-estimator", default="lrt")
    parser.add_argument("--estimators", nargs="+", default=["rt", "lrt", "r2g2"])
    parser.add_argument("--train-limit", type=int, default=20000, help="use the first N training images")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="benchmarks/results/gradient_variance")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    torch.manual_seed(args.seed)
    images, labels = load_images("mnist", "train-full", limit=args.train_limit).float_tensors()
    config = BNNConfig(
        architecture=args.architecture,
        hidden=args.hidden,
        conv_channels=args.conv_channels,
        estimator=args.train_estimator,
        num_train_examples=len(labels),
    )
    model = BNNModel(config).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    top = len(model.network) - 1 if args.layer is None else args.layer
    args.measured_layer = repr(model.network[top])
    groups = {"loc": f"network.{top}.weight_raw_loc", "scale": f"network.{top}.weight_raw_scale"}
    g_data = torch.Generator().manual_seed(args.seed)
    g_noise = torch.Generator().manual_seed(args.seed + 1)
    fixed = torch.randperm(len(labels), generator=g_data)[: args.batch_size]
    measure_at = sorted({round(i * args.steps / (args.checkpoints - 1)) for i in range(args.checkpoints)})
    records, start = [], time.time()
    for step in range(args.steps + 1):
        if step in measure_at:
            row = {"step": step}
            for name in args.estimators:
                with use_estimator(model, name):
                    stats = gradient_variance(
                        model, images[fixed], labels[fixed], args.draws,
                        torch.Generator().manual_seed(args.seed + 2), list(groups.values()),
                    )
                row[name] = {group: stats[param] for group, param in groups.items()}
            records.append(row)
            summary = {n: {g: f"{row[n][g]['variance']:.3e}" for g in groups} for n in args.estimators}
            print(json.dumps({"step": step, **summary}), flush=True)
        if step == args.steps:
            break
        batch = torch.randint(0, len(labels), (args.batch_size,), generator=g_data)
        loss = model(images[batch], labels=labels[batch], generator=g_noise).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    elapsed = time.time() - start
    write_outputs(args, records, elapsed, list(groups))


def write_outputs(args, records, elapsed, groups):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    os.makedirs(args.output_dir, exist_ok=True)
    result = {"settings": vars(args), "seconds": round(elapsed, 1), "records": records}
    with open(os.path.join(args.output_dir, "gradient_variance.json"), "w") as f:
        json.dump(result, f, indent=2)
    fig, axes = plt.subplots(1, len(groups), figsize=(5 * len(groups), 3.6))
    for ax, group in zip(axes, groups):
        for name in args.estimators:
            style = "--" if name == "r2g2" else "-"
            variance = [r[name][group]["variance"] for r in records]
            ax.plot([r["step"] for r in records], variance, style, marker="o", label=name)
        ax.set_yscale("log")
        ax.set_xlabel("training step")
        ax.set_ylabel("summed gradient variance")
        ax.set_title(f"layer {args.measured_layer.split('(')[0]}, posterior {group} (raw)")
        ax.legend()
    fig.tight_layout()
    fig.savefig(os.path.join(args.output_dir, "gradient_variance.png"), dpi=120)
    lines = [
        f"# Gradient variance of one BNN layer on MNIST: `{args.measured_layer}`",
        "",
        f"{args.architecture} (hidden {args.hidden}"
        + (f", conv channels {args.conv_channels}" if args.architecture == "cnn" else "")
        + f"), batch {args.batch_size}, trained with "
        f"`{args.train_estimator}` (Adam lr {args.lr}); {args.draws} draws per estimator on one fixed batch. "
        "Summed per-element variance of the loss gradient w.r.t. the raw posterior parameters.",
        "",
        "| step | group | " + " | ".join(args.estimators) + " |",
        "|---|---|" + "---|" * len(args.estimators),
    ]
    for r in records:
        for group in groups:
            cells = " | ".join(f"{r[name][group]['variance']:.3e}" for name in args.estimators)
            lines.append(f"| {r['step']} | {group} | {cells} |")
    command = f"python benchmarks/gradient_variance.py {' '.join(sys.argv[1:])}"
    lines += ["", f"Wall time {elapsed:.0f} s. Command: `{command}`"]
    with open(os.path.join(args.output_dir, "gradient_variance.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
