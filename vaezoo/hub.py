"""Writing and reading Hub folders: config.json + model.safetensors (+ the flat modeling files for
``trust_remote_code``), saved atomically so a crash never leaves a half-written folder that loads."""

import os
import shutil
import tempfile
from pathlib import Path

from .loading import PICKLE_SUFFIXES, WEIGHTS_INDEX_FILE

STALE_SUFFIXES = (".py", ".safetensors", WEIGHTS_INDEX_FILE, *PICKLE_SUFFIXES)


def _save_pretrained(model, folder, remote_code, save_function):
    """save_pretrained, with the auto_map + flat code files only for this call: transformers keeps
    the registration on the class, and a later plain save_pretrained must stay config + weights."""
    classes = (type(model.config), type(model))
    previous = [cls.__dict__.get("_auto_class") for cls in classes]
    if remote_code:
        type(model.config).register_for_auto_class()
        type(model).register_for_auto_class("AutoModel")
    try:
        model.save_pretrained(folder, **({} if save_function is None else {"save_function": save_function}))
    finally:
        for cls, value in zip(classes, previous):
            cls._auto_class = value


def save_hub_folder(model, folder, remote_code=True, is_main_process=True, save_function=None):
    """Save ``model`` into ``folder`` atomically (write a sibling temp folder, then rename).

    With ``remote_code`` the config gets an ``auto_map`` and the flat ``configuration_*.py`` /
    ``modeling_*.py`` files (and every module they import with ``from .x import``) are copied, so
    the folder loads with ``AutoModel.from_pretrained(folder, trust_remote_code=True)`` where vaezoo
    is not installed. Existing non-weight files in ``folder`` (card, figures, results) are kept.
    """
    if not is_main_process:
        return Path(folder)
    folder = Path(folder)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.tmp-", dir=folder.parent))
    try:
        _save_pretrained(model, tmp, remote_code, save_function)
        if folder.exists():
            # Copied, not moved: until the rename below the old folder stays complete. Old code and
            # weights (stale shards, pickles) are never carried into the new folder.
            for item in folder.iterdir():
                if not (tmp / item.name).exists() and not item.name.endswith(STALE_SUFFIXES):
                    copy = shutil.copytree if item.is_dir() else shutil.copy2
                    copy(item, tmp / item.name)
            old = folder.with_name(f".{folder.name}.old-{os.getpid()}")
            os.rename(folder, old)
            os.rename(tmp, folder)
            shutil.rmtree(old)
        else:
            os.rename(tmp, folder)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return folder
