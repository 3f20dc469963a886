"""The saved results of a Hub folder, and the publish step that writes them.

Every number on a model card, in the README zoo table and in ``vaezoo list`` comes from these files,
written by code right after evaluation (never typed by hand):

- ``eval_results.json``::

      {"evaluation_kind": "generative" | "classifier",   # the model's evaluation_kind
       "code_version": "vaezoo 0.1.0 (git 1a2b3c4d5e6f)",   # the code that trained and evaluated it
       "test": {...},           # evaluate(model, <recipe.evaluation.split>, K, seed, ...): the card's numbers
       "consistency": {"protocol": {...}, "metrics": {...}},   # see below
       "training": {...}}       # steps, best step, wall time, processes (from training/train.py)

- ``history.json``: validation metrics over training steps (training curves);
- ``recipe.json``: the recipe the model was trained with (overrides applied).

The ``consistency`` block is the same ``evaluate`` call on a small fixed subset (the first
``SUBSET_LIMIT`` examples of the test split, K = ``SUBSET_IWAE_SAMPLES``, the recipe's seed).
It is cheap enough to re-run in a test, and the same seed on CPU gives the same numbers, so
re-running it on the folder's weights proves the shipped weights are the ones that were measured.
"""

import json
import subprocess
import time
from pathlib import Path

from .data import load_images
from .evaluation import evaluate
from .hub import save_hub_folder

SUBSET_LIMIT = 200
SUBSET_IWAE_SAMPLES = 100
RESULT_FILES = ("eval_results.json", "history.json", "recipe.json")


def code_version():
    """``vaezoo <version> (git <commit>[-dirty])``, or just the version outside a git checkout."""
    from . import __version__

    try:
        described = subprocess.run(
            ["git", "describe", "--always", "--dirty", "--abbrev=12"],
            capture_output=True, text=True, cwd=Path(__file__).parent, timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return f"vaezoo {__version__}"
    commit = described.stdout.strip() if described.returncode == 0 else ""
    return f"vaezoo {__version__}" + (f" (git {commit})" if commit else "")


def subset_protocol(recipe):
    """The consistency subset of a recipe: which examples, how many samples, which seed."""
    ev = recipe.evaluation
    return {
        "dataset": recipe.data.dataset,
        "split": ev.split,
        "limit": SUBSET_LIMIT,
        "iwae_samples": SUBSET_IWAE_SAMPLES,
        "num_samples": ev.num_samples,
        "seed": ev.seed,
        "fgsm_eps": list(ev.fgsm_eps),
    }


def evaluate_subset(model, protocol):
    """Run ``evaluate`` exactly as a stored consistency protocol says."""
    data = load_images(protocol["dataset"], protocol["split"], limit=protocol["limit"])
    return evaluate(
        model,
        data,
        iwae_samples=protocol["iwae_samples"],
        num_samples=protocol["num_samples"],
        seed=protocol["seed"],
        fgsm_eps=protocol["fgsm_eps"],
    )


def _write_json(path, value):
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(value, indent=1) + "\n")
    tmp.replace(path)


def publish_folder(model, folder, recipe, history, training, progress=False):
    """Save ``model`` as a Hub folder, evaluate it on the recipe's test split and on the consistency
    subset, and write eval_results.json, history.json and recipe.json. Returns the saved results.
    (The card is written afterwards from these files: ``vaezoo.cards.write_card``.)"""
    folder = save_hub_folder(model, folder)
    ev = recipe.evaluation
    test_data = load_images(recipe.data.dataset, ev.split, limit=ev.limit)
    started = time.time()
    test = evaluate(model, test_data, iwae_samples=ev.iwae_samples, num_samples=ev.num_samples, seed=ev.seed,
                    fgsm_eps=ev.fgsm_eps, progress=progress)
    test["eval_seconds"] = time.time() - started
    protocol = subset_protocol(recipe)
    saved = {
        "evaluation_kind": model.evaluation_kind,
        "code_version": code_version(),
        "test": test,
        "consistency": {"protocol": protocol, "metrics": evaluate_subset(model, protocol)},
        "training": training,
    }
    _write_json(folder / "eval_results.json", saved)
    _write_json(folder / "history.json", history)
    _write_json(folder / "recipe.json", recipe.to_dict())
    return saved


def read_results(folder):
    """(eval_results, history, recipe) of a Hub folder; FileNotFoundError naming what is missing."""
    folder = Path(folder)
    missing = [name for name in RESULT_FILES if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(
            f"{folder} lacks {', '.join(missing)}: these are written by training/train.py after the test "
            "evaluation; a card cannot be built without them"
        )
    return tuple(json.loads((folder / name).read_text()) for name in RESULT_FILES)
