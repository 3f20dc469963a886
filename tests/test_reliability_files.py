"""Reliability, files: broken or hostile model folders give a clear error naming the file, with
nothing executed and nothing written; saving is atomic, so a crash mid-save never leaves a
half-written model folder that loads."""

import json
import os
import signal
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

import vaezoo  # noqa: F401  (registers the zoo's Auto classes)
from transformers import AutoModel
from vaezoo import VAEConfig, VAEModel
from vaezoo.cli import main as cli_main
from vaezoo.hub import save_hub_folder
from vaezoo.loading import check_folder, load_pretrained

ROOT = Path(__file__).resolve().parents[1]


def tiny_model(seed=0):
    torch.manual_seed(seed)
    return VAEModel(VAEConfig(latent_dim=2, encoder_hidden=[8], decoder_hidden=[8])).eval()


def snapshot(folder):
    """Every file under folder with its size, modification time and bytes."""
    return {p.relative_to(folder): (p.stat().st_mtime_ns, p.read_bytes()) for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def same_weights(a, b):
    return all(torch.equal(x, y) for x, y in zip(a.state_dict().values(), b.state_dict().values(), strict=True))


@pytest.fixture
def folder(tmp_path):
    """A published-style folder: config.json, model.safetensors and the flat remote-code files."""
    return save_hub_folder(tiny_model(), tmp_path / "model", remote_code=True)


class Evil:
    """A pickle that runs code on load: it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def write_malicious_pickle(path, marker, model):
    state = dict(model.state_dict())
    state["payload"] = Evil(marker)
    torch.save(state, path)


def fails_cleanly(folder, capsys, match):
    """load_pretrained, check_folder and the CLI all refuse ``folder`` with ``match`` and write nothing."""
    before = snapshot(folder)
    for load in (check_folder, load_pretrained):
        with pytest.raises((ValueError, FileNotFoundError), match=match):
            load(folder)
    assert cli_main(["show", str(folder)]) == 2
    assert cli_main(["evaluate", str(folder), "--dataset", "static-binarized-mnist-sample", "--limit", "2",
                     "--iwae-samples", "2"]) == 2
    err = capsys.readouterr().err
    assert len(__import__("re").findall(match, err)) == 2, err
    assert snapshot(folder) == before


# ---- corrupted and foreign folders ------------------------------------------------------------


@pytest.mark.parametrize("damage", ["truncated_half", "truncated_to_header", "four_bytes", "empty", "garbage_header",
                                    "header_length_past_end"])
def test_corrupted_safetensors_error_names_the_file(folder, capsys, damage):
    path = folder / "model.safetensors"
    data = path.read_bytes()
    header_len = struct.unpack("<Q", data[:8])[0]
    path.write_bytes({
        "truncated_half": data[: len(data) // 2],
        "truncated_to_header": data[: 8 + header_len],
        "four_bytes": data[:4],
        "empty": b"",
        "garbage_header": data[:8] + b"\xff" * header_len + data[8 + header_len:],
        "header_length_past_end": struct.pack("<Q", len(data) * 2) + data[8:],
    }[damage])
    fails_cleanly(folder, capsys, r"model\.safetensors is truncated or corrupted")


def test_non_finite_weights_are_refused(folder):
    """Corruption inside the tensor data has no checksum to catch it; NaN/inf weights are caught."""
    path = folder / "model.safetensors"
    data = bytearray(path.read_bytes())
    data[-4:] = struct.pack("<f", float("nan"))
    path.write_bytes(bytes(data))
    with pytest.raises(ValueError, match="NaN or infinite values"):
        load_pretrained(folder)


def test_missing_config_json(folder, capsys):
    (folder / "config.json").unlink()
    fails_cleanly(folder, capsys, r"config\.json is missing")


def test_config_json_not_json(folder, capsys):
    (folder / "config.json").write_text("{truncated")
    fails_cleanly(folder, capsys, r"config\.json is not valid JSON")


def test_config_json_of_another_model_type(folder, capsys):
    """Plain AutoModel would build a randomly initialized BertModel from this folder."""
    config = json.loads((folder / "config.json").read_text())
    config["model_type"] = "bert"
    (folder / "config.json").write_text(json.dumps(config))
    fails_cleanly(folder, capsys, r"model_type='bert', which is not a vaezoo model; expected one of \[[^\]]*'vae'")


def test_missing_weights(folder, capsys):
    (folder / "model.safetensors").unlink()
    fails_cleanly(folder, capsys, r"has no weights: expected model\.safetensors")


def test_weights_that_do_not_match_the_config_are_errors(folder):
    """transformers only logs missing / mismatched tensors and initializes them at random."""
    from safetensors.torch import load_file, save_file

    tensors = load_file(folder / "model.safetensors")
    tensors.pop("decoder.0.bias")
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    with pytest.raises(ValueError, match=r"'missing_keys': \['decoder.0.bias'\]"):
        load_pretrained(folder)
    config = json.loads((folder / "config.json").read_text())
    config["latent_dim"] = 3
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="mismatched_keys"):
        load_pretrained(folder)


# ---- pickles and remote code: nothing executed ------------------------------------------------


def test_malicious_pickle_is_a_real_payload(tmp_path):
    """Control: the payload used below does run when unpickled without restrictions."""
    marker = tmp_path / "pwned"
    write_malicious_pickle(tmp_path / "p.bin", marker, tiny_model())
    torch.load(tmp_path / "p.bin", weights_only=False)
    assert marker.exists()


def test_pickle_only_folder_is_refused_unread(folder, tmp_path, capsys, monkeypatch):
    marker = tmp_path / "pwned"
    (folder / "model.safetensors").unlink()
    write_malicious_pickle(folder / "pytorch_model.bin", marker, tiny_model())

    def no_unpickling(*args, **kwargs):
        raise AssertionError("torch.load was called")

    monkeypatch.setattr(torch, "load", no_unpickling)
    fails_cleanly(folder, capsys, r"only pickle weights \['pytorch_model\.bin'\]; vaezoo never unpickles")
    assert not marker.exists()


def test_transformers_default_route_does_not_execute_a_pickle(folder, tmp_path):
    """The native route without vaezoo's checks: transformers 5 unpickles with weights_only=True,
    which refuses the payload. (vaezoo's entry points do not even open the file, see above.)"""
    marker = tmp_path / "pwned"
    (folder / "model.safetensors").unlink()
    write_malicious_pickle(folder / "pytorch_model.bin", marker, tiny_model())
    with pytest.raises(Exception, match="Weights only load failed"):
        AutoModel.from_pretrained(folder)
    assert not marker.exists()


def test_a_pickle_next_to_safetensors_is_never_opened(folder, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    write_malicious_pickle(folder / "pytorch_model.bin", marker, tiny_model(seed=1))
    monkeypatch.setattr(torch, "load", lambda *a, **k: pytest.fail("torch.load was called"))
    assert same_weights(load_pretrained(folder), tiny_model())
    assert not marker.exists()


def test_shipped_python_files_are_never_imported(folder, tmp_path, capsys):
    """A Hub folder carries configuration/modeling .py files for trust_remote_code users; vaezoo's
    loaders use the installed classes and never import them."""
    marker = tmp_path / "pwned"
    assert "auto_map" in json.loads((folder / "config.json").read_text())
    for py in folder.glob("*.py"):
        py.write_text(f"open({str(marker)!r}, 'w').close()\n" + py.read_text())
    assert same_weights(load_pretrained(folder), tiny_model())
    cli_main(["show", str(folder)])  # fails later on the missing README; the load is what matters
    assert not marker.exists()
    with pytest.raises(ValueError, match="does not take trust_remote_code"):
        load_pretrained(folder, trust_remote_code=True)


# ---- atomic save --------------------------------------------------------------------------------


def test_save_keeps_card_files_and_drops_stale_weights(folder):
    (folder / "README.md").write_text("card")
    (folder / "figures").mkdir()
    (folder / "figures" / "curve.png").write_bytes(b"png")
    torch.save({}, folder / "pytorch_model.bin")
    new = tiny_model(seed=1)
    save_hub_folder(new, folder)
    assert (folder / "README.md").read_text() == "card" and (folder / "figures" / "curve.png").exists()
    assert not (folder / "pytorch_model.bin").exists()
    assert same_weights(load_pretrained(folder), new)
    assert [p.name for p in folder.parent.iterdir()] == ["model"]  # no temporary folders left


def test_failed_save_leaves_the_old_folder_untouched(folder, monkeypatch):
    """A save that dies while writing the weights (here: disk full half-way) changes nothing."""
    import transformers.modeling_utils

    (folder / "README.md").write_text("card")
    before = snapshot(folder)

    def half_then_disk_full(tensors, filename, metadata=None):
        Path(filename).write_bytes(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", half_then_disk_full)
    with pytest.raises(OSError, match="No space left"):
        save_hub_folder(tiny_model(seed=1), folder)
    assert snapshot(folder) == before
    assert same_weights(load_pretrained(folder), tiny_model())
    assert [p.name for p in folder.parent.iterdir()] == ["model"]


def test_failed_first_save_leaves_no_folder(tmp_path, monkeypatch):
    import transformers.modeling_utils

    monkeypatch.setattr(transformers.modeling_utils, "safe_save_file", lambda *a, **k: (_ for _ in ()).throw(OSError(5, "I/O error")))
    with pytest.raises(OSError):
        save_hub_folder(tiny_model(), tmp_path / "new")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.slow
def test_sigkill_mid_save_never_leaves_a_loadable_half_folder(folder, tmp_path):
    """A real SIGKILL while the new weights are half-written: the folder still holds the old model
    (loads, same weights) and the orphaned temporary folder is refused as truncated."""
    script = textwrap.dedent(f"""
        import os, signal, sys
        from pathlib import Path
        import torch, transformers.modeling_utils
        sys.path.insert(0, {str(ROOT)!r})
        from vaezoo import VAEConfig, VAEModel
        from vaezoo.hub import save_hub_folder

        def half_then_die(tensors, filename, metadata=None):
            Path(filename).write_bytes(Path({str(folder / "model.safetensors")!r}).read_bytes()[:300])
            os.kill(os.getpid(), signal.SIGKILL)

        transformers.modeling_utils.safe_save_file = half_then_die
        torch.manual_seed(1)
        save_hub_folder(VAEModel(VAEConfig(latent_dim=2, encoder_hidden=[8], decoder_hidden=[8])), {str(folder)!r})
    """)
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    assert same_weights(load_pretrained(folder), tiny_model())
    orphans = [p for p in folder.parent.iterdir() if p.name != "model"]
    assert orphans and all(p.name.startswith(".model.tmp-") for p in orphans)
    for orphan in orphans:
        with pytest.raises(ValueError, match="truncated or corrupted"):
            check_folder(orphan)
