"""Short real runs of the classifiers on grey MNIST: the BNN MLP with every gradient estimator and
the Deep VIB with every scale parameterization, each for a few hundred Adam steps; reports the
full-test-set accuracy / NLL / ECE (``vaezoo.classifier_evaluation``) and the mean training step
time. A smoke test of the whole stack, not a reproduction of the papers' 15k-step / 200-epoch runs.

    python benchmarks/classifier_smoke.py --output-dir benchmarks/results/classifier_smoke
"""

import argparse
import json
import os
import sys
import time

import torch

from vaezoo.data import load_images  # noqa: E402

from vaezoo import BNNConfig, BNNModel, VIBConfig, VIBModel  # noqa: E402
from vaezoo.classifier_evaluation import evaluate_classifier  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--bnn-estimators", nargs="*", default=["rt", "lrt", "flipout", "r2g2", "score"])
    parser.add_argument("--bnn-hidden", type=int, nargs="+", default=[1024, 1024])
    parser.add_argument("--vib-parameterizations", nargs="*", default=["exp", "softplus", "stdplus"])
    parser.add_argument("--vib-hidden", type=int, nargs="+", default=[1024, 1024])
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--test-limit", type=int, default=None, help="default: the full 10,000-image test set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output-dir", default="benchmarks/results/classifier_smoke")
    return parser.parse_args(argv)


def train_and_evaluate(model, batch_size, test_samples, args, data):
    (train_x, train_y), (test_x, test_y) = data
    torch.manual_seed(args.seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    g_data = torch.Generator().manual_seed(args.seed)
    g_noise = torch.Generator().manual_seed(args.seed + 1)
    model.train()
    start = time.perf_counter()
    for _ in range(args.steps):
        batch = torch.randint(0, len(train_y), (batch_size,), generator=g_data)
        loss = model(train_x[batch], labels=train_y[batch], generator=g_noise).loss
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    step_ms = 1000 * (time.perf_counter() - start) / args.steps
    start = time.perf_counter()
    metrics = evaluate_classifier(model, test_x, test_y, test_samples, 1000, torch.Generator().manual_seed(args.seed))
    eval_seconds = round(time.perf_counter() - start, 1)
    metrics.update(step_ms=round(step_ms, 1), eval_seconds=eval_seconds, final_loss=loss.item())
    return metrics


def main(argv=None):
    args = parse_args(argv)
    data = load_images("mnist", "train-full").float_tensors(), load_images("mnist", "test", limit=args.test_limit).float_tensors()
    runs = []
    for estimator in args.bnn_estimators:
        torch.manual_seed(args.seed)
        config = BNNConfig(hidden=args.bnn_hidden, estimator=estimator, num_train_examples=len(data[0][1]))
        metrics = train_and_evaluate(BNNModel(config), 80, config.test_samples, args, data)
        runs.append({"model": "bnn-mlp", "variant": estimator, **metrics})
        print(json.dumps(runs[-1]), flush=True)
    for parameterization in args.vib_parameterizations:
        torch.manual_seed(args.seed)
        config = VIBConfig(encoder_hidden=args.vib_hidden, parameterization=parameterization)
        metrics = train_and_evaluate(VIBModel(config), 100, config.test_samples, args, data)
        runs.append({"model": "vib", "variant": parameterization, **metrics})
        print(json.dumps(runs[-1]), flush=True)
    os.makedirs(args.output_dir, exist_ok=True)
    with open(os.path.join(args.output_dir, "classifier_smoke.json"), "w") as f:
        json.dump({"settings": vars(args), "runs": runs}, f, indent=2)
    lines = [
        "# Classifier smoke runs on grey MNIST",
        "",
        f"{args.steps} Adam steps (lr {args.lr}); BNN MLP 784-{'-'.join(map(str, args.bnn_hidden))}-10 batch 80, "
        f"VIB encoder 784-{'-'.join(map(str, args.vib_hidden))}-2x256 batch 100 beta 1e-3. Test metrics on "
        f"{runs[0]['num_examples'] if runs else 0} test images from the S-sample predictive.",
        "",
        "| model | variant | test accuracy | test NLL | ECE | rate (nats) | step (ms) | S |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        rate = f"{r['rate']:.1f}" if "rate" in r else "-"
        lines.append(
            f"| {r['model']} | {r['variant']} | {100 * r['accuracy']:.2f}% | {r['nll']:.4f} | {r['ece']:.4f} | "
            f"{rate} | {r['step_ms']} | {r['num_samples']} |"
        )
    lines += ["", f"Command: `python benchmarks/classifier_smoke.py {' '.join(sys.argv[1:])}`"]
    with open(os.path.join(args.output_dir, "classifier_smoke.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
