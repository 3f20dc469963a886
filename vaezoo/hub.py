"""Writing and reading Hub folders: config.json + model.safetensors (+ the flat modeling files for
``trust_remote_code``), saved atomically so a crash never leaves a half-written folder that loads."""

import contextlib
import os
import shutil
import tempfile
from pathlib import Path

from .loading import PICKLE_SUFFIXES, WEIGHTS_INDEX_FILE

STALE_SUFFIXES = (".py", ".safetensors", WEIGHTS_INDEX_FILE, *PICKLE_SUFFIXES)
MISSING = object()


@contextlib.contextmanager
def auto_classes(model, remote_code):
    """``register_for_auto_class`` for one save only: it sets a CLASS attribute, which would
    otherwise make every later save of that class (``remote_code=False`` or a plain
    ``save_pretrained``) write an ``auto_map`` and copy the .py files too."""
    classes = (type(model.config), type(model))
    before = [cls.__dict__.get("_auto_class", MISSING) for cls in classes]
    for cls, auto_class in zip(classes, ("AutoConfig", "AutoModel")):
        cls._auto_class = auto_class if remote_code else None
    try:
        yield
    finally:
        for cls, value in zip(classes, before):
            if value is MISSING:
                del cls._auto_class
            else:
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
        kwargs = {} if save_function is None else {"save_function": save_function}
        with auto_classes(model, remote_code):
            model.save_pretrained(tmp, **kwargs)
        # mkdtemp makes the folder 0700 and transformers writes 0600 weights: publish readable files.
        os.chmod(tmp, 0o755)
        for item in tmp.iterdir():
            os.chmod(item, 0o644)
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
