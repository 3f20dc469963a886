"""Reliability, security: nothing the project publishes or loads by default unpickles; loading with
trust_remote_code is never the default path; ``vaezoo push`` uploads nothing outside the model folder
or its allow-list. (Loading behaviour on hostile folders: test_reliability_files.py.)"""

import ast
import re
from pathlib import Path

import pytest
import torch

from vaezoo import VAEConfig, VAEModel
from vaezoo.hub import save_hub_folder
from vaezoo.loading import PICKLE_SUFFIXES

ROOT = Path(__file__).resolve().parents[1]
SOURCES = sorted([*(ROOT / "vaezoo").glob("*.py"), *(ROOT / "training").glob("*.py"), *(ROOT / "scripts").glob("*.py")])
# Keyword arguments and calls (found in the syntax tree, so docs and card text that show the
# explicit opt-in `trust_remote_code=True` do not count) that unpickle or run shipped code.
FORBIDDEN_KEYWORDS = {("trust_remote_code", True), ("weights_only", False), ("use_safetensors", False),
                      ("safe_serialization", False)}
FORBIDDEN_CALLS = {"pickle.load", "pickle.loads", "torch.load", "pickle.Unpickler", "dill.load", "joblib.load"}
# Magic bytes of the formats torch.save and pickle write (zip archive, pickle protocol >= 2).
PICKLE_MAGIC = (b"PK\x03\x04", b"\x80\x02", b"\x80\x03", b"\x80\x04", b"\x80\x05")


def forbidden_uses(source, where):
    found = []
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        name = ast.unparse(node.func)
        if name in FORBIDDEN_CALLS:
            found.append(f"{where}:{node.lineno}: {name}(...)")
        for kw in node.keywords:
            if isinstance(kw.value, ast.Constant) and (kw.arg, kw.value.value) in FORBIDDEN_KEYWORDS:
                found.append(f"{where}:{node.lineno}: {kw.arg}={kw.value.value}")
    return found


def test_sources_never_unpickle_or_trust_remote_code():
    assert SOURCES
    found = [hit for path in SOURCES for hit in forbidden_uses(path.read_text(), path.relative_to(ROOT))]
    assert not found, found


def test_source_scan_can_fail():
    code = "import torch\nm = AutoModel.from_pretrained(p, trust_remote_code=True)\nw = torch.load(f, weights_only=False)\n"
    assert len(forbidden_uses(code, "x.py")) == 3


def assert_no_pickles(folder):
    for path in Path(folder).rglob("*"):
        if path.is_file():
            assert not path.name.endswith(PICKLE_SUFFIXES), path
            assert not path.read_bytes()[:4].startswith(PICKLE_MAGIC), f"{path} is a pickle or torch.save archive"


def test_a_saved_hub_folder_holds_no_pickle(tmp_path):
    folder = save_hub_folder(VAEModel(VAEConfig(latent_dim=2, encoder_hidden=[8], decoder_hidden=[8])), tmp_path / "m")
    assert (folder / "model.safetensors").exists()
    assert_no_pickles(folder)


def test_pickle_detector_can_fail(tmp_path):
    torch.save({"w": torch.zeros(1)}, tmp_path / "weights.safetensors")  # a pickle in disguise
    with pytest.raises(AssertionError, match="torch.save archive"):
        assert_no_pickles(tmp_path)


@pytest.mark.slow
def test_a_published_training_run_holds_no_pickle(tmp_path):
    """The whole publish path of training/train.py: the Hub folder has no pickle even though the
    resumable state next to it (accelerate's optimizer.bin, random_states_*.pkl) does."""
    from test_reliability_training import train, write_recipe

    recipe = write_recipe(tmp_path / "tiny.yaml", max_steps=5)
    train.main([str(recipe), "--output-dir", str(tmp_path / "run"), "--card-dir", str(tmp_path / "card"),
                "--iwae-samples", "5", "--eval-limit", "20"])
    assert (tmp_path / "card" / "README.md").exists()
    assert_no_pickles(tmp_path / "card")
    assert any(p.suffix in (".bin", ".pkl") for p in (tmp_path / "run").rglob("*"))  # the detector's control


# ---- vaezoo push: the upload never leaves the folder or its allow-list ---------------------------
# Written against vaezoo.push's interface (push(folder, repo_id, dry_run=, api=), PushError); it
# runs once that module is merged.


class RecordingApi:
    def __init__(self):
        self.calls = []

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


@pytest.fixture(scope="module")
def publishable(tmp_path_factory):
    pytest.importorskip("vaezoo.push", reason="vaezoo.push is not merged yet (written in the publish branch)")
    from zoo_folders import build_tiny_vae_folder

    return build_tiny_vae_folder(tmp_path_factory.mktemp("cards") / "tiny")


@pytest.fixture
def folder(publishable, tmp_path):
    import shutil

    return Path(shutil.copytree(publishable, tmp_path / "tiny"))


def test_push_uploads_only_plain_allowed_files_of_the_folder(folder):
    from vaezoo.push import push

    api = RecordingApi()
    push(folder, "vaezoo-test/tiny", api=api)
    (upload,) = [call[1] for call in api.calls if call[0] == "upload_folder"]
    assert Path(upload["folder_path"]) == folder
    names = upload["allow_patterns"]
    assert names and all((folder / n).is_file() and not (folder / n).is_symlink() for n in names)
    assert all(re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", n) for n in names)  # no globs, no paths
    assert not [n for n in names if n.endswith(PICKLE_SUFFIXES)]
    assert set(names) == {p.name for p in folder.iterdir()}


@pytest.mark.parametrize("plant", ["symlink_out", "symlinked_subfolder", "pickle", "glob_name", "tampered_code"])
def test_push_refuses_anything_that_could_leave_the_folder_or_the_allow_list(folder, tmp_path, plant):
    from vaezoo.push import PushError, push

    secret = tmp_path / "secret.md"
    secret.write_text("outside the model folder")
    {
        "symlink_out": lambda: (folder / "notes.md").symlink_to(secret),
        "symlinked_subfolder": lambda: (folder / "extra").symlink_to(tmp_path, target_is_directory=True),
        "pickle": lambda: torch.save({}, folder / "optimizer.bin"),
        "glob_name": lambda: (folder / "*.json").write_text("{}"),
        "tampered_code": lambda: (folder / "modeling_vae.py").write_text("import os\n"),
    }[plant]()
    api = RecordingApi()
    with pytest.raises(PushError, match="refusing to push"):
        push(folder, "vaezoo-test/tiny", api=api)
    assert api.calls == []


def test_push_of_a_symlinked_folder_is_refused(folder, tmp_path):
    from vaezoo.push import PushError, push

    link = tmp_path / "link"
    link.symlink_to(folder, target_is_directory=True)
    api = RecordingApi()
    with pytest.raises(PushError):
        push(link, "vaezoo-test/tiny", api=api)
    assert api.calls == []
