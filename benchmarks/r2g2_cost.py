"""Step time of RT, LRT and R2-G2 on CPU (the R2-G2 paper: R2-G2 2.8-3.6x slower than RT).

One training step = forward, backward and an Adam update of the ELBO loss on a fixed batch of 80
MNIST training images, for

* the BNN MLP 784-1024-1024-10 (every layer Gaussian): ``rt``, ``lrt``, ``r2g2`` (the closed form,
  which is LRT);
* the small BNN CNN (convs 16-32-64, 3x3, each + ReLU + 2x2 max-pool, dense 128, 10): ``rt``,
  ``flipout``, ``r2g2`` with the ``direct`` solver and with ``cg`` (its iteration cap). The first conv
  (n = 9 kernel entries < 784 positions) has full-rank patch matrices, so R2-G2 there is RT; the
  upper convs (14x14: n = 144 <= 196; 7x7: n = 288 > 49) are Rao-Blackwellised.

Reports the median ms/step over ``--steps`` timed steps (after one warm-up) and the ratio to RT.

    OMP_NUM_THREADS=1 python benchmarks/r2g2_cost.py --output benchmarks/results/r2g2_cost.md
"""

import argparse
import os
import statistics
import time
import warnings

import torch

from vaezoo.data import load_images  # noqa: E402

from vaezoo import BNNConfig, BNNModel  # noqa: E402

CASES = [
    ("mlp", "rt", {}),
    ("mlp", "lrt", {}),
    ("mlp", "r2g2", {}),
    ("cnn", "rt", {}),
    ("cnn", "flipout", {}),
    ("cnn", "r2g2", {"r2g2_solver": "direct"}),
    ("cnn", "r2g2", {"r2g2_solver": "cg", "cg_max_iterations": 100}),
]


def step_times(architecture, estimator, options, x, y, steps):
    torch.manual_seed(0)
    extra = dict(hidden=[128]) if architecture == "cnn" else {}
    model = BNNModel(BNNConfig(architecture=architecture, estimator=estimator, **extra, **options))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(1)
    times = []
    for _ in range(steps + 1):
        start = time.perf_counter()
        optimizer.zero_grad()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # capped CG: reported in the table instead
            model(pixel_values=x, labels=y, generator=generator).loss.backward()
        optimizer.step()
        times.append(time.perf_counter() - start)
    solves = [layer.estimator.last_solve for layer in model.network.bayesian_layers() if hasattr(layer.estimator, "last_solve")]
    return 1e3 * statistics.median(times[1:]), [s for s in solves if s is not None]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch-size", type=int, default=80)
    parser.add_argument("--output", default="benchmarks/results/r2g2_cost.md")
    args = parser.parse_args()
    images, labels = load_images("mnist", "train-full", limit=args.batch_size).float_tensors()
    x, y = images, labels
    rows, baseline = [], {}
    for architecture, estimator, options in CASES:
        ms, solves = step_times(architecture, estimator, options, x, y, args.steps)
        baseline.setdefault(architecture, ms)
        solver = options.get("r2g2_solver", "")
        note = "; ".join(
            f"{s.systems} systems, {s.iterations} it, max rel. residual {s.max_relative_residual:.1e}" for s in solves if s.systems
        )
        rows.append(f"| {architecture} | {estimator} {solver} | {ms:.0f} | {ms / baseline[architecture]:.2f} | {note} |")
        print(rows[-1], flush=True)
    load = os.getloadavg()[0]
    with open(args.output, "w") as f:
        f.write("# R2-G2 step cost (CPU)\n\n")
        f.write(
            f"Command: `OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '?')} python benchmarks/r2g2_cost.py "
            f"--steps {args.steps} --batch-size {args.batch_size}`; torch {torch.__version__}, "
            f"{torch.get_num_threads()} thread(s), load average {load:.1f} at the end (shared 2-core machine: "
            "absolute times are noisy, ratios less so). Median of the timed steps after one warm-up; "
            "a step is forward + backward + Adam on a fixed batch of MNIST training images.\n\n"
        )
        f.write("| net | estimator | ms/step | x RT | conv solves (last step, per layer) |\n|---|---|---|---|---|\n")
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    main()
