"""`vaezoo push`: local checks (files, card), the dry-run listing, the upload calls, and the clear
error offline. No test reaches the network: the real HfApi runs only with HF_HUB_OFFLINE=1."""

import json
import os
import shutil
import time

import pytest
from huggingface_hub import constants
from zoo_folders import build_tiny_vae_folder

from vaezoo.cli import main
from vaezoo.push import PushError, plan_upload, push

REPO = "vaezoo-test/tiny"


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    return build_tiny_vae_folder(tmp_path_factory.mktemp("model_cards") / "tiny")


@pytest.fixture
def folder(built, tmp_path):
    """A fresh copy of the tiny Hub folder for each test to modify."""
    return shutil.copytree(built, tmp_path / "tiny")


def test_dry_run_lists_exactly_the_folder(folder, capsys):
    plan = push(folder, REPO, dry_run=True)
    names = sorted(os.listdir(folder))
    assert [name for name, _ in plan.files] == names
    assert dict(plan.files)["model.safetensors"] == (folder / "model.safetensors").stat().st_size
    assert {"config.json", "model.safetensors", "README.md", "eval_results.json", "history.json", "recipe.json",
            "modeling_vae.py", "configuration_vae.py", "samples.png", "rd_plane.png"} <= set(names)
    assert main(["push", str(folder), "--repo-id", REPO, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert f"would upload {len(names)} files" in out and "nothing was uploaded" in out
    listed = [line.split()[0] for line in out.splitlines() if line.startswith("  ")]
    assert listed == names


@pytest.mark.parametrize(
    "make, named",
    [
        (lambda f: (f / "optimizer.pt").write_bytes(b"\x80\x04pickle"), "optimizer.pt"),
        (lambda f: (f / "pytorch_model.bin").write_bytes(b"\x80\x04pickle"), "pytorch_model.bin"),
        (lambda f: (f / "notes.txt").write_text("hi"), "notes.txt"),
        (lambda f: (f / "evil.py").write_text("import os"), "evil.py"),
        (lambda f: (f / "modeling_vae.py").write_text((f / "modeling_vae.py").read_text() + "\n# changed\n"),
         "modeling_vae.py"),
        (lambda f: (f / "runs").mkdir(), "runs/"),
        (lambda f: (f / ".hidden.json").write_text("{}"), ".hidden.json"),
    ],
)
def test_refuses_files_that_may_not_be_uploaded(folder, make, named):
    make(folder)
    with pytest.raises(PushError, match="refusing to push") as error:
        push(folder, REPO, dry_run=True)
    assert named in str(error.value)


def test_refuses_symlinks_even_to_allowed_files(folder, tmp_path):
    outside = tmp_path / "secret.json"
    outside.write_text('{"token": "x"}')
    (folder / "extra.json").symlink_to(outside)
    with pytest.raises(PushError, match=r"extra.json \(symlink\)"):
        push(folder, REPO, dry_run=True)
    link = tmp_path / "linked-folder"
    link.symlink_to(folder.resolve(), target_is_directory=True)
    (folder / "extra.json").unlink()
    with pytest.raises(PushError, match="not a folder"):
        push(link, REPO, dry_run=True)


def test_refuses_missing_required_files(folder):
    (folder / "model.safetensors").unlink()
    with pytest.raises(PushError, match="missing model.safetensors"):
        push(folder, REPO, dry_run=True)


def _set_card(folder, transform):
    path = folder / "README.md"
    path.write_text(transform(path.read_text()))


def test_refuses_a_card_without_metrics(folder):
    def strip_model_index(text):
        head, body = text.split("\n---\n", 1)
        return head.split("model-index:")[0] + "\n---\n" + body

    _set_card(folder, strip_model_index)
    with pytest.raises(PushError, match="has no metrics"):
        push(folder, REPO, dry_run=True)


def test_refuses_a_card_that_disagrees_with_the_results(folder):
    saved = json.loads((folder / "eval_results.json").read_text())
    saved["test"]["nll"] += 1.0
    (folder / "eval_results.json").write_text(json.dumps(saved))
    with pytest.raises(PushError, match="disagrees with eval_results.json.*nll"):
        push(folder, REPO, dry_run=True)


def test_refuses_a_card_showing_missing_figures(folder):
    (folder / "samples.png").unlink()
    with pytest.raises(PushError, match=r"images that are not files of the folder: \['samples.png'\]"):
        push(folder, REPO, dry_run=True)


def test_refuses_a_card_for_another_repository_and_bad_ids(folder):
    with pytest.raises(PushError, match="does not load 'someone/other'"):
        push(folder, "someone/other", dry_run=True)
    for bad in ("no-slash", "a/b/c", "../x", ""):
        with pytest.raises(PushError, match="ORG/NAME"):
            plan_upload(folder, bad)


def test_refusal_is_a_clean_cli_error(folder, capsys):
    (folder / "weights.pkl").write_bytes(b"\x80")
    assert main(["push", str(folder), "--repo-id", REPO, "--dry-run"]) == 2
    assert "weights.pkl" in capsys.readouterr().err


class RecordingApi:
    def __init__(self, fail=None):
        self.calls, self.fail = [], fail

    def create_repo(self, repo_id, **kwargs):
        self.calls.append(("create_repo", repo_id, kwargs))
        if self.fail:
            raise self.fail

    def upload_folder(self, **kwargs):
        self.calls.append(("upload_folder", kwargs))


def test_upload_sends_exactly_the_checked_files(folder):
    api = RecordingApi()
    plan = push(folder, REPO, private=True, api=api)
    (_, repo_id, create), (_, upload) = api.calls
    assert repo_id == REPO and create == {"private": True, "exist_ok": True, "repo_type": "model"}
    assert upload["repo_id"] == REPO and upload["folder_path"] == str(folder)
    assert upload["allow_patterns"] == sorted(os.listdir(folder)) == [name for name, _ in plan.files]


def test_dry_run_never_calls_the_hub(folder):
    api = RecordingApi()
    push(folder, REPO, dry_run=True, api=api)
    assert api.calls == []


def test_offline_push_fails_at_once_with_a_clear_message(folder):
    assert constants.HF_HUB_OFFLINE, "tests run with HF_HUB_OFFLINE=1 (tests/conftest.py)"
    started = time.time()
    with pytest.raises(PushError, match=r"offline mode is enabled \(HF_HUB_OFFLINE=1\).*--dry-run"):
        push(folder, REPO)  # the real HfApi: its first request raises OfflineModeIsEnabled
    assert time.time() - started < 10


def test_unreachable_hub_is_a_clear_error(folder):
    with pytest.raises(PushError, match="the Hub is unreachable"):
        push(folder, REPO, api=RecordingApi(fail=ConnectionError("Name or service not known")))
