"""Safe loading of zoo checkpoints: what every vaezoo entry point (CLI, training) loads through.

``load_pretrained(name)`` is ``AutoModel.from_pretrained`` with the guarantees a model zoo owes
its users, each failure a clear error that names the file, and nothing executed or written:

- weights come from safetensors only (``use_safetensors=True``): a folder whose only weights are
  a pickle (``pytorch_model.bin``, ``*.pt``, ...) is refused before anything reads it, even
  though transformers would open it with torch's restricted ``weights_only`` unpickler;
- ``trust_remote_code`` is never passed: the zoo's own classes (registered by ``import vaezoo``)
  build the model, and the ``.py`` files shipped in a Hub folder are never imported;
- config.json must exist, be JSON and name a vaezoo model type (not e.g. ``bert``, which
  ``AutoModel`` would otherwise build, newly initialized, from a zoo folder);
- model.safetensors must be complete: a truncated or corrupted header is reported with the file
  name; every tensor of the model must be in it with the right shape (transformers only logs
  missing or mismatched keys and initializes them at random) and all weights must be finite.
"""

import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from transformers import CONFIG_MAPPING, AutoModel

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
WEIGHTS_INDEX_FILE = "model.safetensors.index.json"
#: file endings of pickle-based weight formats, refused wherever vaezoo loads weights
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".pkl", ".pickle", ".ckpt")


def zoo_model_types():
    """The model types whose config class lives in this package (registered by ``import vaezoo``)."""
    # AutoConfig.register stores custom types in CONFIG_MAPPING._extra_content (no public listing).
    return sorted(t for t, cls in CONFIG_MAPPING._extra_content.items() if cls.__module__.startswith(f"{__package__}."))


def check_folder(folder):
    """Check a local model folder without executing or writing anything; return its config dict.

    Raises FileNotFoundError (no folder, no config.json, no weights) or ValueError (pickle-only
    weights, unreadable config, foreign model type, truncated/corrupted safetensors), naming the file.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"model folder {folder} does not exist")
    config_file = folder / CONFIG_FILE
    if not config_file.is_file():
        raise FileNotFoundError(f"{config_file} is missing: a zoo model folder holds config.json and {WEIGHTS_FILE}")
    try:
        config = json.loads(config_file.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_file} is not valid JSON ({err})") from err
    model_type = config.get("model_type") if isinstance(config, dict) else None
    if model_type not in zoo_model_types():
        raise ValueError(
            f"{config_file} has model_type={model_type!r}, which is not a vaezoo model; expected one of "
            f"{zoo_model_types()}"
        )
    for weights in weight_files(folder):
        check_safetensors(weights)
    return config


def weight_files(folder):
    """The safetensors files of a folder (one file or the shards of an index); refuses pickles."""
    folder = Path(folder)
    if (folder / WEIGHTS_FILE).is_file():
        return [folder / WEIGHTS_FILE]
    index = folder / WEIGHTS_INDEX_FILE
    if index.is_file():
        try:
            shards = sorted(set(json.loads(index.read_text())["weight_map"].values()))
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
            raise ValueError(f"{index} is not a valid safetensors index ({err!r})") from err
        return [folder / shard for shard in shards]
    pickles = sorted(p.name for p in folder.iterdir() if p.name.endswith(PICKLE_SUFFIXES))
    if pickles:
        raise ValueError(
            f"{folder} has no {WEIGHTS_FILE}, only pickle weights {pickles}; vaezoo never unpickles "
            "(a pickle can run arbitrary code). Convert them to safetensors where you trust the file."
        )
    raise FileNotFoundError(f"{folder} has no weights: expected {WEIGHTS_FILE}")


def check_safetensors(path):
    """Open a safetensors file's header (this reads no tensor data and executes nothing)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file {path} is missing")
    try:
        with safe_open(str(path), framework="pt") as handle:
            handle.keys()
    except SafetensorError as err:
        raise ValueError(f"{path} is truncated or corrupted: {err}") from err


def load_pretrained(name_or_path, **kwargs):
    """``AutoModel.from_pretrained`` for zoo models: local folders are checked by ``check_folder``
    first; safetensors only; no remote code; missing, unexpected or mis-shaped tensors and
    non-finite weights are errors (see the module docstring)."""
    for refused in ("trust_remote_code", "use_safetensors"):
        if refused in kwargs:
            raise ValueError(f"load_pretrained does not take {refused}=; zoo models load from safetensors, no remote code")
    if Path(name_or_path).is_dir():
        check_folder(name_or_path)
    # Mismatched shapes are collected (not raised with a pointer to a log) and reported below.
    model, info = AutoModel.from_pretrained(
        name_or_path, use_safetensors=True, output_loading_info=True, ignore_mismatched_sizes=True, **kwargs
    )
    if model.config.model_type not in zoo_model_types():
        raise ValueError(f"{name_or_path} is a {model.config.model_type!r} model, not a vaezoo model {zoo_model_types()}")
    problems = {key: sorted(info.get(key) or []) for key in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    problems = {key: value for key, value in problems.items() if value}
    if problems:
        raise ValueError(f"the weights in {name_or_path} do not match its config.json: {problems}")
    bad = [name for name, tensor in model.state_dict().items() if tensor.is_floating_point() and not torch.isfinite(tensor).all()]
    if bad:
        raise ValueError(f"the weights in {name_or_path} contain NaN or infinite values in {bad}; the file is corrupted")
    return model
