"""``vaezoo push``: upload one Hub folder to the Hugging Face Hub, after checking it locally.

What may be uploaded (anything else refuses the whole folder, naming the files):

- ``*.safetensors``, ``*.json``, ``*.md``, ``*.png``: weights, config and results, the card, figures;
- ``*.py`` only when byte-identical to the vaezoo source file of the same name (the flat modeling
  files ``trust_remote_code`` needs), so no other code can reach the Hub;
- plain files only, directly in the folder: no subfolders, no symlinks (nothing outside the folder
  is ever read), no pickles (``.bin``, ``.pt``, ``.pkl``).

The card must hold metrics (a ``model-index``) equal to the folder's eval_results.json, every
figure it shows must be in the folder, and its usage must name the target repository.
The upload is ``HfApi.create_repo`` + ``upload_folder`` restricted to exactly the checked files;
``--dry-run`` prints that list and stops before any network call.
"""

import json
import re
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import ModelCard
from huggingface_hub.errors import OfflineModeIsEnabled

from .cards import check_metric_values

ALLOWED_SUFFIXES = (".safetensors", ".json", ".md", ".png")
REQUIRED_FILES = ("config.json", "model.safetensors", "README.md", "eval_results.json")
# Exact file names (no glob characters) so upload_folder's allow_patterns match only themselves.
SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
PACKAGE_DIR = Path(__file__).resolve().parent


class PushError(ValueError):
    """The folder may not be uploaded (or the upload cannot start); the message says why."""


@dataclass(frozen=True)
class UploadPlan:
    folder: Path
    repo_id: str
    private: bool
    files: tuple  # (name, size in bytes), sorted by name

    def describe(self):
        total = sum(size for _, size in self.files)
        lines = [f"would upload {len(self.files)} files ({total / 2**20:.2f} MiB) from {self.folder} to "
                 f"https://huggingface.co/{self.repo_id} ({'private' if self.private else 'public'}):"]
        lines += [f"  {name}  ({size:,} bytes)" for name, size in self.files]
        return "\n".join(lines)


def upload_files(folder):
    """The files of ``folder`` that may be uploaded; PushError naming every file that may not."""
    folder = Path(folder)
    if folder.is_symlink() or not folder.is_dir():
        raise PushError(f"{folder} is not a folder (symlinked folders are not uploaded)")
    allowed, refused = [], []
    for path in sorted(folder.iterdir()):
        name = path.name
        if path.is_symlink():
            refused.append(f"{name} (symlink)")
        elif path.is_dir():
            refused.append(f"{name}/ (subfolder)")
        elif not path.is_file():
            refused.append(f"{name} (not a regular file)")
        elif not SAFE_NAME.match(name):
            refused.append(f"{name} (file name must match {SAFE_NAME.pattern})")
        elif path.suffix == ".py":
            source = PACKAGE_DIR / name
            if not source.is_file() or source.read_bytes() != path.read_bytes():
                refused.append(f"{name} (python file that is not an unmodified vaezoo module)")
            else:
                allowed.append(name)
        elif path.suffix not in ALLOWED_SUFFIXES:
            refused.append(f"{name} (only {', '.join(ALLOWED_SUFFIXES)} and vaezoo's own .py files are uploaded)")
        else:
            allowed.append(name)
    if refused:
        raise PushError(f"refusing to push {folder}: " + "; ".join(refused))
    missing = [name for name in REQUIRED_FILES if name not in allowed]
    if missing:
        raise PushError(f"refusing to push {folder}: missing {', '.join(missing)}")
    return allowed


def check_card(folder, repo_id):
    """Validate the card locally: metadata parses, metrics are there and equal the saved results,
    every image it shows is in the folder, and its usage loads ``repo_id``."""
    folder = Path(folder)
    try:
        card = ModelCard.load(folder / "README.md")
    except Exception as err:  # huggingface_hub raises several types for malformed YAML
        raise PushError(f"{folder}/README.md is not a valid model card: {err}") from err
    if not card.data.eval_results:
        raise PushError(f"{folder}/README.md has no metrics (model-index); rebuild it with `vaezoo card {folder}`")
    for field in ("license", "library_name", "tags", "datasets"):
        if not getattr(card.data, field, None):
            raise PushError(f"{folder}/README.md metadata lacks {field!r}; rebuild it with `vaezoo card {folder}`")
    saved = json.loads((folder / "eval_results.json").read_text())["test"]
    stale = check_metric_values(card.data.eval_results, saved)
    if stale:
        raise PushError(f"{folder}/README.md disagrees with eval_results.json ({'; '.join(stale)}); "
                        f"rebuild it with `vaezoo card {folder}`")
    images = re.findall(r"!\[[^\]]*\]\(([^)\s]+)\)", card.content)
    missing = [image for image in images if "/" in image or not (folder / image).is_file()]
    if missing:
        raise PushError(f"{folder}/README.md shows images that are not files of the folder: {missing}")
    if f'from_pretrained("{repo_id}"' not in card.content:
        raise PushError(f"{folder}/README.md's usage does not load {repo_id!r}; rebuild it with "
                        f"`vaezoo card {folder} --repo-id {repo_id}`")
    return card


def plan_upload(folder, repo_id, private=False):
    """Every local check, no network: the exact list of files an upload would send."""
    if not re.fullmatch(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*", repo_id or ""):
        raise PushError(f"--repo-id {repo_id!r} is not of the form ORG/NAME")
    folder = Path(folder)
    files = upload_files(folder)
    check_card(folder, repo_id)
    return UploadPlan(folder, repo_id, private, tuple((name, (folder / name).stat().st_size) for name in files))


def _network_errors():
    """Exception types of a failed connection: huggingface_hub's offline error is a ConnectionError;
    its HTTP client (httpx, or httpx2 in recent releases) raises TransportError subclasses."""
    errors = [ConnectionError, TimeoutError]
    for module in ("httpx2", "httpx"):
        try:
            errors.append(__import__(module).TransportError)
        except ImportError:
            pass
    return tuple(errors)


def push(folder, repo_id, private=False, dry_run=False, api=None):
    """Check ``folder`` and upload it to ``repo_id`` (or, with ``dry_run``, only return the plan)."""
    plan = plan_upload(folder, repo_id, private)
    if dry_run:
        return plan
    if api is None:
        from huggingface_hub import HfApi

        api = HfApi()
    try:
        api.create_repo(repo_id, private=private, exist_ok=True, repo_type="model")
        api.upload_folder(
            repo_id=repo_id,
            folder_path=str(plan.folder),
            repo_type="model",
            allow_patterns=[name for name, _ in plan.files],
            commit_message=f"Upload {plan.folder.name} with vaezoo push",
        )
    except OfflineModeIsEnabled as err:  # raised by the first request, before any retry
        raise PushError(
            "cannot push: offline mode is enabled (HF_HUB_OFFLINE=1), so the Hugging Face Hub cannot be reached. "
            "Unset HF_HUB_OFFLINE on a machine with network access and log in (`hf auth login` or HF_TOKEN); "
            f"`vaezoo push {plan.folder} --repo-id {repo_id} --dry-run` checks the folder without the network."
        ) from err
    except _network_errors() as err:
        raise PushError(f"cannot push to https://huggingface.co/{repo_id}: the Hub is unreachable ({err}). "
                        "Check the network connection and retry.") from err
    return plan
