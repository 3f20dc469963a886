"""exp vs softplus vs stdplus (Slashed Normal), then KL-amplitude normalization at chosen target rates.

Everything but the studied setting is fixed: the IWAE paper's 1-layer VAE (784-200-200-50 tanh,
Bernoulli decoder, N(0, I) prior), Adam, batch 100, the same number of steps, the same seeds (same
initial weights and batch order for every parameterization), static binarized MNIST, no gradient
clipping and no clamping of the raw encoder outputs. A step whose loss is NaN/inf is skipped (no
update), as in training/train.py; 10 such steps in a row end the run as diverged.

Each run writes RUN_DIR/NAME.json when it finishes, so restarting the command skips finished runs.
Test metrics come from ``vaezoo.evaluation.evaluate`` (IWAE NLL with K samples, rate, distortion,
active units) on the final weights.

    export PYTHONPATH=$PWD VAEZOO_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1
    python benchmarks/parameterization_comparison.py run --phase all --workers 2
    python benchmarks/parameterization_comparison.py report   # Markdown table + R-D plot from the JSONs

The committed results used the commands in ``COMMANDS`` (fewer steps and a strided test subset to fit the
CPU budget); the report quotes them.
"""

import argparse
import dataclasses
import json
import math
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
RUN_DIR = HERE / "results" / "parameterization_runs"
REPORT = HERE / "results" / "parameterization_comparison.md"
PLOT = HERE / "results" / "rd_plot.png"
MAX_NONFINITE_IN_A_ROW = 10
CONCLUSIONS = "## Conclusions"
#: the commands behind benchmarks/results/parameterization_comparison.md (the report quotes them)
COMMANDS = (
    "run --phase all --steps 1500 --eval-stride 20 --iwae-samples 1000 --workers 2",
    "run --phase parameterization --steps 1500 --eval-stride 20 --iwae-samples 1000 --learning-rates 0.1 --seeds 0 "
    "--workers 2",
    "timing",
    "report",
)

PARAMETERIZATIONS = ("exp", "softplus", "stdplus")
NORMALIZATIONS = ("instance", "batch", "feature", "instance_mean_only", "batch_mean_only", "feature_mean_only")


def plan(args):
    """The runs (VAEConfig fields + training settings), ordered so every configuration gets its first seed
    early: parameterizations with the first seed, full normalizations, the other seeds, mean_only variants."""
    def parameterization_runs(seed):
        return [{"name": f"{name}-lr{lr:g}-s{seed}", "group": "parameterization", "model": {"parameterization": name},
                 "lr": lr, "seed": seed} for lr in args.learning_rates for name in PARAMETERIZATIONS]

    def normalization_runs(modes, rates):
        return [{"name": f"{mode}-rate{rate:g}-s{seed}", "group": "normalization",
                 "model": {"parameterization": "stdplus", "amplitude_normalization": mode, "target_rate": rate},
                 "lr": args.learning_rates[0], "seed": seed}
                for rate in rates for mode in modes for seed in args.normalization_seeds]

    full = [m for m in NORMALIZATIONS if not m.endswith("mean_only")]
    mean_only = [m for m in NORMALIZATIONS if m.endswith("mean_only")]
    runs = []
    if args.phase in ("parameterization", "all"):
        runs += parameterization_runs(args.seeds[0])
    if args.phase in ("normalization", "all"):
        runs += normalization_runs(full, args.target_rates)
    if args.phase in ("parameterization", "all"):
        runs += [r for seed in args.seeds[1:] for r in parameterization_runs(seed)]
    if args.phase in ("normalization", "all"):
        runs += normalization_runs(mean_only, args.mean_only_target_rates)
    for run in runs:
        run.update(steps=args.steps, batch_size=args.batch_size, iwae_samples=args.iwae_samples,
                   eval_stride=args.eval_stride)
    return runs


def train_and_evaluate(run):
    """Train one configuration from scratch and evaluate its final weights on the test split."""
    torch.set_num_threads(1)  # runs are parallel processes on a shared CPU
    from vaezoo.configuration_vae import VAEConfig
    from vaezoo.data import load_images
    from vaezoo.evaluation import evaluate
    from vaezoo.modeling_vae import VAEModel

    torch.manual_seed(run["seed"])
    model = VAEModel(VAEConfig(**run["model"]))
    train = load_images("static-binarized-mnist", "train")
    optimizer = torch.optim.Adam(model.parameters(), lr=run["lr"])
    order = torch.Generator().manual_seed(run["seed"])
    noise = torch.Generator().manual_seed(run["seed"] + 1)
    nonfinite, in_a_row, step, diverged_at, losses = 0, 0, 0, None, []
    started = time.perf_counter()
    model.train()
    while step < run["steps"] and diverged_at is None:
        permutation = torch.randperm(len(train), generator=order)
        for start in range(0, len(train) - run["batch_size"] + 1, run["batch_size"]):
            x = train.pixels(train.images[permutation[start : start + run["batch_size"]]])
            out = model(pixel_values=x, generator=noise)
            if not torch.isfinite(out.loss):
                nonfinite += 1
                in_a_row += 1
                optimizer.zero_grad(set_to_none=True)
                if in_a_row >= MAX_NONFINITE_IN_A_ROW:
                    diverged_at = step
                    break
                continue
            in_a_row = 0
            out.loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            if step % 100 == 0:
                losses.append({"step": step, "loss": out.loss.item(), "rate": out.rate.item(),
                               "distortion": out.distortion.item()})
            if step >= run["steps"]:
                break
    train_seconds = time.perf_counter() - started
    finite_weights = all(torch.isfinite(p).all() for p in model.parameters())
    result = {**run, "completed_steps": step, "nonfinite_loss_steps": nonfinite, "diverged_at_step": diverged_at,
              "finite_weights": bool(finite_weights), "train_seconds": train_seconds,
              "seconds_per_step": train_seconds / max(step, 1), "train_log": losses}
    if diverged_at is None and finite_weights:
        test = load_images("static-binarized-mnist", "test")
        # The test split is sorted by label: a CPU-budget subset must be strided, not the first N.
        stride = run["eval_stride"]
        test = dataclasses.replace(test, images=test.images[::stride], labels=test.labels[::stride])
        t0 = time.perf_counter()
        result["test"] = evaluate(model, test, iwae_samples=run["iwae_samples"], seed=0)
        result["eval_seconds"] = time.perf_counter() - t0
        with torch.no_grad():
            # Diagnoses a non-finite test NLL: below about -87 (float32) sigma underflows and log q(z) of a
            # sample z = loc + sigma * eps becomes 0 * inf.
            result["min_posterior_log_scale"] = model.encode(test.pixels(test.images)).log_scale.min().item()
    return result


def time_steps(rounds=7, steps=40, batch_size=100):
    """Milliseconds per training step (forward + backward + Adam) for each setting, measured interleaved in one
    single-threaded process (round r runs every setting once) so load from other jobs hits all settings alike;
    the median over rounds is reported."""
    torch.set_num_threads(1)
    from vaezoo.configuration_vae import VAEConfig
    from vaezoo.data import load_images
    from vaezoo.modeling_vae import VAEModel

    settings = {name: {"parameterization": name} for name in PARAMETERIZATIONS}
    settings.update({f"stdplus + {mode}": {"amplitude_normalization": mode, "target_rate": 30.0}
                     for mode in ("instance", "feature")})
    train = load_images("static-binarized-mnist", "train")
    x = train.pixels(train.images[:batch_size])
    models, optimizers, times = {}, {}, {name: [] for name in settings}
    for name, fields in settings.items():
        torch.manual_seed(0)
        models[name] = VAEModel(VAEConfig(**fields))
        optimizers[name] = torch.optim.Adam(models[name].parameters(), lr=1e-3)
    for _ in range(rounds):
        for name in settings:
            started = time.perf_counter()
            for _ in range(steps):
                models[name](pixel_values=x).loss.backward()
                optimizers[name].step()
                optimizers[name].zero_grad(set_to_none=True)
            times[name].append(1000 * (time.perf_counter() - started) / steps)
    result = {name: statistics.median(values) for name, values in times.items()}
    (RUN_DIR.parent / "parameterization_timing.json").write_text(json.dumps(
        {"ms_per_step_median": result, "rounds": rounds, "steps_per_round": steps, "batch_size": batch_size,
         "threads": 1}, indent=1))
    print(result)


def execute(run):
    path = RUN_DIR / f"{run['name']}.json"
    result = train_and_evaluate(run)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(result, indent=1))
    tmp.replace(path)  # atomic: a half-written file never counts as finished
    return run["name"], result.get("test", {}).get("nll"), result["nonfinite_loss_steps"]


def run_all(args):
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    todo = [r for r in plan(args) if not (RUN_DIR / f"{r['name']}.json").exists()]
    print(f"{len(todo)} runs to do", flush=True)
    with ProcessPoolExecutor(args.workers) as pool:
        for name, nll, nonfinite in pool.map(execute, todo):
            print(f"done {name}: test nll {nll} nonfinite steps {nonfinite}", flush=True)


# ---- report ----------------------------------------------------------------------------------------


def _mean_std(values, digits=1):
    values = [v for v in values if v is not None and math.isfinite(v)]
    if not values:
        return "-"
    mean = statistics.fmean(values)
    if len(values) == 1:
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {statistics.stdev(values):.{digits}f}"


def _test(result, key):
    value = result.get("test", {}).get(key)
    return value if value is not None and math.isfinite(value) else None


def _parameterization_table(results):
    rows = ["| parameterization | lr | seeds | test NLL (nats) | rate R | distortion D | active units | "
            "non-finite loss steps | diverged runs | non-finite test NLL | ms / step |",
            "|---|---|---|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["model"]["parameterization"], r["lr"]) for r in results}, key=lambda k: (k[1], k[0]))
    for name, lr in keys:
        group = [r for r in results if (r["model"]["parameterization"], r["lr"]) == (name, lr)]
        nonfinite = "/".join(str(r["nonfinite_loss_steps"]) for r in group)
        diverged = sum(r["diverged_at_step"] is not None or not r["finite_weights"] for r in group)
        nan_nll = sum("test" in r and _test(r, "nll") is None for r in group)
        rows.append(
            f"| {name} | {lr:g} | {len(group)} | {_mean_std([_test(r, 'nll') for r in group], 2)} | "
            f"{_mean_std([_test(r, 'rate') for r in group])} | {_mean_std([_test(r, 'distortion') for r in group])} | "
            f"{_mean_std([_test(r, 'active_units') for r in group])} | {nonfinite} | {diverged} | {nan_nll} | "
            f"{_mean_std([1000 * r['seconds_per_step'] for r in group])} |"
        )
    return rows


def _normalization_table(results):
    rows = ["| normalization | target rate (nats) | seeds | test rate R (eval mode) | last training batch R | "
            "test NLL (nats) | distortion D | active units |", "|---|---|---|---|---|---|---|---|"]
    keys = sorted({(r["model"]["amplitude_normalization"], r["model"]["target_rate"]) for r in results},
                  key=lambda k: (k[1], NORMALIZATIONS.index(k[0])))
    for mode, target in keys:
        group = [r for r in results if (r["model"]["amplitude_normalization"], r["model"]["target_rate"]) == (mode, target)]
        rows.append(
            f"| {mode} | {target:g} | {len(group)} | {_mean_std([_test(r, 'rate') for r in group], 2)} | "
            f"{_mean_std([r['train_log'][-1]['rate'] for r in group], 2)} | {_mean_std([_test(r, 'nll') for r in group], 2)} | "
            f"{_mean_std([_test(r, 'distortion') for r in group])} | {_mean_std([_test(r, 'active_units') for r in group])} |"
        )
    return rows


def _plot(results, path):
    """Two panels: every run (log rate axis), and a zoom on the runs that trained (lr 1e-3, normalizations)."""
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    markers = {"exp": "o", "softplus": "s", "stdplus": "^"}
    lrs = sorted({r["lr"] for r in results if r["group"] == "parameterization"})
    lr_colors = dict(zip(lrs, ("C0", "C3", "C1")))
    mode_colors = dict(zip(NORMALIZATIONS, ("C2", "C4", "C5", "C6", "C8", "C9")))
    finite = [r for r in results if _test(r, "rate") is not None and _test(r, "distortion") is not None]
    best = min(_test(r, "nll") for r in finite if _test(r, "nll") is not None)
    zoom = [r for r in finite if r["group"] == "normalization" or r["lr"] == lrs[0]]
    for ax, runs in zip(axes, (finite, zoom)):
        for r in runs:
            rate, distortion = _test(r, "rate"), _test(r, "distortion")
            if r["group"] == "parameterization":
                ax.scatter(rate, distortion, marker=markers[r["model"]["parameterization"]], color=lr_colors[r["lr"]],
                           alpha=0.75, label=f"{r['model']['parameterization']}, lr {r['lr']:g}")
            else:
                mode, target = r["model"]["amplitude_normalization"], r["model"]["target_rate"]
                ax.scatter(rate, distortion, marker="D" if mode.endswith("mean_only") else "*", s=80,
                           color=mode_colors[mode], label=f"stdplus + {mode}")
                if ax is axes[1]:
                    ax.annotate(f"target {target:g}", (rate, distortion), fontsize=6, xytext=(4, 2),
                                textcoords="offset points")
        top = min(best - 50, max(_test(r, "rate") for r in runs) * 1.05)  # both panels start at D = 50
        rates = [top * i / 200 for i in range(201)]  # many points: the left panel's rate axis is not linear
        ax.plot(rates, [best - x for x in rates], "k--", lw=1, label=f"D = {best:.1f} - R (best test NLL here)")
        ax.set_xlabel("test rate R (nats)")
        ax.set_ylabel("test distortion D (nats)")
        handles, labels = ax.get_legend_handles_labels()
        unique = dict(zip(labels, handles))
        ax.legend(unique.values(), unique.keys(), fontsize=7, loc="upper left" if ax is axes[0] else "upper right")
    axes[0].set_xscale("symlog", linthresh=10)  # high learning rates reach rates of 1e4 nats
    axes[0].set_title("all runs with a finite test evaluation")
    axes[0].set_yscale("log")
    axes[0].set_ylim(50, max(_test(r, "distortion") for r in finite) * 1.5)
    zoom_d = [_test(r, "distortion") for r in zoom]
    axes[1].set_ylim(min(zoom_d) - 5, max(zoom_d) + 15)
    axes[1].set_xlim(0, max(_test(r, "rate") for r in zoom) * 1.15)
    axes[1].set_title(f"zoom: lr {lrs[0]:g} and KL-amplitude normalization")
    fig.suptitle("Static binarized MNIST (test subset), 784-200-200-50 VAE: rate vs distortion", fontsize=11)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def _timing_lines():
    path = RUN_DIR.parent / "parameterization_timing.json"
    if not path.exists():
        return []
    timing = json.loads(path.read_text())
    return [
        "## Time per training step (controlled)",
        "",
        f"`timing`: forward + backward + Adam on one batch of {timing['batch_size']}, {timing['threads']} thread, "
        f"{timing['rounds']} interleaved rounds of {timing['steps_per_round']} steps, median over rounds.",
        "",
        "| setting | ms / step |",
        "|---|---|",
        *(f"| {name} | {ms:.2f} |" for name, ms in timing["ms_per_step_median"].items()),
    ]


def write_report():
    results = [json.loads(p.read_text()) for p in sorted(RUN_DIR.glob("*.json"))]
    if not results:
        raise SystemExit(f"error: no finished runs in {RUN_DIR}")
    example = results[0]
    test_size = math.ceil(10_000 / example["eval_stride"])
    conclusions = ""
    if REPORT.exists() and CONCLUSIONS in REPORT.read_text():
        conclusions = REPORT.read_text().split(CONCLUSIONS, 1)[1]
    lines = [
        "# Posterior parameterizations and KL-amplitude normalization (static binarized MNIST)",
        "",
        "Produced by (from the repository root; finished runs are skipped, `report` only re-reads the run JSONs):",
        "",
        "```",
        "export PYTHONPATH=$PWD VAEZOO_DATA_DIR=/work/shared/data HF_HUB_OFFLINE=1 HF_DATASETS_OFFLINE=1",
        *(f"python benchmarks/parameterization_comparison.py {command}" for command in COMMANDS),
        "```",
        "",
        f"Fixed for every run: 784-200-200-50 tanh VAE, Bernoulli decoder, N(0, I) prior, Adam, batch "
        f"{example['batch_size']}, {example['steps']} steps, no gradient clipping, no clamping of encoder outputs; "
        "seed s gives the same initial weights and batch order to every parameterization. A non-finite loss skips "
        f"the step; {MAX_NONFINITE_IN_A_ROW} in a row end the run as diverged. Test metrics of the final weights "
        f"with `vaezoo.evaluation.evaluate`: IWAE NLL with K = {example['iwae_samples']} on {test_size} test images "
        f"(every {example['eval_stride']}th of the label-sorted 10,000; K = 1000 and a subset because the whole "
        "study had to fit in about 50 minutes on 2 CPU cores shared with other jobs), Monte Carlo rate and distortion from the same "
        "draws, active units (Var_x E_q[z_d] > 0.01). Mean ± standard deviation over seeds. The ms / step column "
        "is wall time inside the runs, on a CPU shared with other jobs whose load changed during the study: it is "
        "not a cost comparison; the controlled measurement is in the last section.",
        "",
        "## exp vs softplus vs stdplus",
        "",
        *_parameterization_table([r for r in results if r["group"] == "parameterization"]),
        "",
        "Non-finite loss steps are listed per seed.",
        "",
        "## KL-amplitude normalization (stdplus), target rate vs achieved rate",
        "",
        "Target and rates are nats per example. In eval mode `batch` / `feature` use their running statistics, "
        "so the test rate is an estimate of the target, not a constraint; `instance` holds it exactly for every "
        "example. `*_mean_only` sets only the means' rate sum_k a_k^2 to the target; the total adds sum_k b_k^2.",
        "",
        *_normalization_table([r for r in results if r["group"] == "normalization"]),
        "",
        "R-D plot of all runs: [rd_plot.png](rd_plot.png).",
        "",
        *_timing_lines(),
        "",
        CONCLUSIONS + (conclusions or "\n\n(to be written from the tables above)\n"),
    ]
    REPORT.write_text("\n".join(lines))
    _plot(results, PLOT)
    print(f"wrote {REPORT} and {PLOT} from {len(results)} runs")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run")
    run.add_argument("--phase", choices=("parameterization", "normalization", "all"), default="all")
    run.add_argument("--steps", type=int, default=3000)
    run.add_argument("--batch-size", type=int, default=100)
    run.add_argument("--learning-rates", type=float, nargs="+", default=[1e-3, 3e-2])
    run.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    run.add_argument("--target-rates", type=float, nargs="+", default=[10.0, 30.0])
    run.add_argument("--mean-only-target-rates", type=float, nargs="+", default=[10.0])
    run.add_argument("--normalization-seeds", type=int, nargs="+", default=[0])
    run.add_argument("--iwae-samples", type=int, default=1000)
    run.add_argument("--eval-stride", type=int, default=1, help="evaluate on every n-th test image")
    run.add_argument("--workers", type=int, default=2)
    sub.add_parser("timing")
    sub.add_parser("report")
    args = parser.parse_args(argv)
    if args.command == "run":
        run_all(args)
    elif args.command == "timing":
        time_steps()
    else:
        write_report()


if __name__ == "__main__":
    sys.exit(main())
