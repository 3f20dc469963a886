"""Train one zoo entry from its recipe:  accelerate launch training/train.py hub_configs/NAME.yaml

One process or many (CPU gloo or GPUs) with no code change. The recipe's batch_size is the GLOBAL
batch: each of P processes sees batch_size / P examples, and DDP averages the gradients, so one step
is the same update whatever P is (up to the per-rank posterior noise).

Flow: validate recipe and output folders -> build model and data -> resume state if present ->
steps (NaN/inf losses skipped and counted) with periodic validation, best-checkpoint selection and
resumable state -> on the main process: save the best model as a Hub folder, evaluate it on the test
split and on the consistency subset, write eval_results.json, history.json, recipe.json
(vaezoo.results.publish_folder) and the model card with its figures.
"""

import argparse
import hashlib
import inspect
import json
import shutil
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DataLoaderConfiguration, set_seed
from tqdm.auto import tqdm
from transformers import CONFIG_MAPPING, AutoConfig, AutoModel

import vaezoo  # noqa: F401  (registers the zoo's model types with the Auto classes)
from vaezoo.cards import write_card
from vaezoo.data import load_images
from vaezoo.hub import save_hub_folder
from vaezoo.loading import load_pretrained, zoo_model_types
from vaezoo.recipe import load_recipe
from vaezoo.registry import check_choice
from vaezoo.results import publish_folder


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("recipe", help="hub_configs/NAME.yaml")
    parser.add_argument("--max-steps", type=int, help="override training.max_steps")
    parser.add_argument("--output-dir", help="override the resumable-state folder (default runs/NAME)")
    parser.add_argument("--card-dir", help="override the Hub folder (default model_cards/NAME)")
    parser.add_argument("--iwae-samples", type=int, help="override evaluation.iwae_samples")
    parser.add_argument("--eval-limit", type=int, help="override evaluation.limit (first N test examples)")
    parser.add_argument("--no-resume", action="store_true", help="start fresh even if saved state exists")
    parser.add_argument("--skip-final", action="store_true", help="train only: no test evaluation or card")
    parser.add_argument("--expect-processes", type=int, help="fail unless this many processes run")
    return parser.parse_args(argv)


def check_writable(folder):
    """Fail before training, not after hours of it, if results cannot be written."""
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".write-probe"
        probe.write_bytes(b"\0" * 1_000_000)  # also catches a full disk
        probe.unlink()
    except OSError as err:
        raise SystemExit(f"error: output folder {folder} is not writable ({err}); nothing was trained") from err


def noise_generator(seed, step, rank, device):
    """The posterior/binarization noise of one step is a function of (seed, step, rank) only, so a
    resumed run draws exactly the noise the uninterrupted run would have, whatever else touched the
    global RNG (DataLoader iterators draw from it)."""
    digest = hashlib.sha256(f"{seed}:{step}:{rank}".encode()).digest()
    return torch.Generator(device=device).manual_seed(int.from_bytes(digest[:8], "little") >> 1)


@torch.no_grad()
def validate(model, data, batch_size, seed, device):
    """Mean single-sample metrics over a split, with fixed noise (same on every rank)."""
    model.eval()
    generator = noise_generator(seed, -1, 0, device)
    model_inputs = input_builder(model)
    sums, n = {}, 0
    for start in range(0, len(data), batch_size):
        images, labels = data.images[start : start + batch_size].to(device), data.labels[start : start + batch_size].to(device)
        out = model(**model_inputs(data.pixels(images, generator=generator), labels), generator=generator)
        for key in ("loss", "elbo", "rate", "distortion", "accuracy", "nll", "kl"):
            if key in out:
                sums[key] = sums.get(key, 0.0) + out[key].item() * len(images)
        n += len(images)
    model.train()
    return {key: value / n for key, value in sums.items()}


def model_fields(model_block):
    """The recipe's ``model:`` block minus ``model_type``, checked against the config class: a
    misspelled field is an error (PreTrainedConfig would keep it as an unused attribute)."""
    model_type = model_block["model_type"]
    check_choice("model.model_type", model_type, zoo_model_types())
    fields = {k: v for k, v in model_block.items() if k != "model_type"}
    allowed = [p for p in inspect.signature(CONFIG_MAPPING[model_type].__init__).parameters if p not in ("self", "kwargs")]
    unknown = sorted(set(fields) - set(allowed))
    if unknown:
        raise ValueError(f"unknown field(s) {unknown} in the recipe's model block (model_type {model_type!r}); allowed: {allowed}")
    return fields


def input_builder(model):
    """(pixel_values, labels) -> forward kwargs: classifiers take labels, generative models do not.
    Decided once per model, not on every step."""
    takes_labels = "labels" in inspect.signature(model.forward).parameters
    return lambda pixel_values, labels: {"pixel_values": pixel_values, **({"labels": labels} if takes_labels else {})}


def main(argv=None):
    args = parse_args(argv)
    recipe = load_recipe(args.recipe)
    train_cfg = recipe.training
    max_steps = args.max_steps or train_cfg.max_steps
    output_dir = Path(args.output_dir or recipe.output_dir)
    card_dir = Path(args.card_dir or recipe.card_dir)

    accelerator = Accelerator(dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True))
    if args.expect_processes and accelerator.num_processes != args.expect_processes:
        raise SystemExit(
            f"error: expected {args.expect_processes} processes, got {accelerator.num_processes}; on CPU use "
            "ACCELERATE_USE_CPU=1 accelerate launch --multi_gpu --num_processes 2 --num_machines 1 "
            "--mixed_precision no --dynamo_backend no training/train.py RECIPE"
        )
    if train_cfg.batch_size % accelerator.num_processes:
        raise SystemExit(f"error: batch_size {train_cfg.batch_size} is not divisible by {accelerator.num_processes} processes")
    if accelerator.is_main_process:
        check_writable(output_dir)
        check_writable(card_dir)
    accelerator.wait_for_everyone()

    # Same initial weights on every rank; per-step noise comes from noise_generator(seed, step, rank).
    set_seed(train_cfg.seed)
    fields = model_fields(recipe.model)
    train_data = load_images(recipe.data.dataset, recipe.data.train_split, limit=recipe.data.train_limit)
    config = AutoConfig.for_model(recipe.model["model_type"], **fields)
    if hasattr(config, "num_train_examples") and "num_train_examples" not in fields:
        config.num_train_examples = len(train_data)  # BNN: the KL is scaled by 1/N_train
    model = AutoModel.from_config(config)
    val_data = load_images(recipe.data.dataset, recipe.data.validation_split, limit=recipe.data.validation_limit)

    loader = torch.utils.data.DataLoader(
        train_data.as_tensor_dataset(),
        batch_size=train_cfg.batch_size // accelerator.num_processes,
        shuffle=True,
        drop_last=True,
    )
    optimizer = torch.optim.Adam(model.parameters(), lr=train_cfg.learning_rate, weight_decay=train_cfg.weight_decay)
    model, optimizer, loader = accelerator.prepare(model, optimizer, loader)
    raw_model = accelerator.unwrap_model(model)
    model_inputs = input_builder(raw_model)

    # ---- resume ---------------------------------------------------------------------------------
    # Each save writes a NEW folder state-STEP; progress.json (replaced atomically) names the one to
    # resume from, so a kill during save_state leaves the previous state intact and still named.
    progress_file = output_dir / "progress.json"
    progress = {"step": 0, "batches": 0, "state": None, "best": None, "history": [], "skipped_nonfinite": 0,
                "wall_seconds": 0.0}
    if progress_file.exists() and not args.no_resume:
        progress = json.loads(progress_file.read_text())
        # Written by an older train.py: one "state" folder, data position = step (as it then was).
        progress.setdefault("state", "state")
        progress.setdefault("batches", progress["step"])
        accelerator.load_state(str(output_dir / progress["state"]))
        accelerator.print(f"resumed from {output_dir / progress['state']} at step {progress['step']}")
    step, batches = progress["step"], progress["batches"]
    sign = 1.0 if train_cfg.select_mode == "max" else -1.0

    def save_progress():
        state = f"state-{step}"
        accelerator.save_state(str(output_dir / state))
        if accelerator.is_main_process:
            previous, progress["state"] = progress["state"], state
            tmp = progress_file.with_suffix(".tmp")
            tmp.write_text(json.dumps(progress, indent=1))
            tmp.replace(progress_file)  # the commit point
            if previous not in (None, state):
                shutil.rmtree(output_dir / previous)
        accelerator.wait_for_everyone()

    # ---- train ----------------------------------------------------------------------------------
    steps_per_epoch = len(loader)
    bar = tqdm(total=max_steps, initial=step, disable=not accelerator.is_local_main_process, desc=recipe.name,
               mininterval=1 if sys.stderr.isatty() else 30)
    nonfinite_in_a_row, started = 0, time.time()
    model.train()
    while step < max_steps:
        # Position in the data counts batches drawn, skipped ones included, so a resumed run sees
        # exactly the batches an uninterrupted one does.
        epoch, done_in_epoch = divmod(batches, steps_per_epoch)
        loader.set_epoch(epoch)
        epoch_batches = accelerator.skip_first_batches(loader, done_in_epoch) if done_in_epoch else loader
        for images, labels in epoch_batches:
            if hasattr(raw_model, "begin_step"):
                raw_model.begin_step(step)
            batches += 1
            generator = noise_generator(train_cfg.seed, step, accelerator.process_index, accelerator.device)
            out = model(**model_inputs(train_data.pixels(images, generator=generator), labels), generator=generator)
            finite = bool(accelerator.gather(torch.isfinite(out.loss).reshape(1)).all())
            if not finite:  # every rank skips together, so weights stay identical
                optimizer.zero_grad(set_to_none=True)
                progress["skipped_nonfinite"] += 1
                nonfinite_in_a_row += 1
                if nonfinite_in_a_row >= train_cfg.max_nonfinite_steps:
                    raise SystemExit(
                        f"error: {nonfinite_in_a_row} consecutive non-finite losses at step {step}; stopping "
                        f"(training.max_nonfinite_steps={train_cfg.max_nonfinite_steps}). Last saved state: "
                        f"{output_dir / str(progress['state'])}"
                    )
                continue
            nonfinite_in_a_row = 0
            accelerator.backward(out.loss)
            if train_cfg.grad_clip:
                accelerator.clip_grad_norm_(model.parameters(), train_cfg.grad_clip)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            bar.update(1)
            bar.set_postfix(loss=f"{out.loss.item():.2f}", refresh=False)

            if step % train_cfg.eval_every == 0 or step == max_steps:
                metrics = validate(raw_model, val_data, 500, train_cfg.seed, accelerator.device)
                metrics.update(step=step, train_loss=out.loss.item())
                progress["history"].append(metrics)
                score = sign * metrics[train_cfg.select_metric]
                if progress["best"] is None or score > sign * progress["best"]["metric"]:
                    progress["best"] = {"step": step, "metric": metrics[train_cfg.select_metric]}
                    save_hub_folder(raw_model, output_dir / "best", remote_code=False,
                                    is_main_process=accelerator.is_main_process, save_function=accelerator.save)
                accelerator.print(f"step {step}: " + " ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "step"))
            if step % train_cfg.checkpoint_every == 0 or step == max_steps:
                progress["step"], progress["batches"] = step, batches
                progress["wall_seconds"] += time.time() - started
                started = time.time()
                save_progress()
            if step >= max_steps:
                break
    bar.close()
    if args.skip_final or not accelerator.is_main_process:
        accelerator.end_training()
        return

    # ---- publish: best checkpoint -> Hub folder -> test + consistency-subset evaluation -> card ------
    best = load_pretrained(output_dir / "best")
    eval_cfg = recipe.evaluation
    eval_cfg.iwae_samples = args.iwae_samples or eval_cfg.iwae_samples
    eval_cfg.limit = args.eval_limit or eval_cfg.limit
    training_info = {
        "steps": step,
        "best_step": progress["best"]["step"],
        "select_metric": train_cfg.select_metric,
        "skipped_nonfinite_steps": progress["skipped_nonfinite"],
        "num_processes": accelerator.num_processes,
        "train_seconds": progress["wall_seconds"],
        "train_examples": len(train_data),
    }
    saved = publish_folder(best, card_dir, recipe, progress["history"], training_info, progress=True)
    write_card(card_dir)
    print(json.dumps(saved["test"], indent=1))
    accelerator.end_training()


if __name__ == "__main__":
    sys.exit(main())
