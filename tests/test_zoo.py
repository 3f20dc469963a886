"""The zoo index: `vaezoo list` and the README zoo table come from the cards, and the table check
fails as soon as README and cards disagree (including for this repository's README)."""

import json
import shutil
from pathlib import Path

import pytest
from zoo_folders import build_tiny_vae_folder

from vaezoo.cards import write_card
from vaezoo.cli import main
from vaezoo.zoo import TABLE_END, TABLE_START, count_parameters, readme_with_table, replace_table, zoo_entries

REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    root = tmp_path_factory.mktemp("zoo") / "model_cards"
    build_tiny_vae_folder(root / "tiny-a")
    build_tiny_vae_folder(root / "tiny-b", parameterization="softplus", latent_dim=2, seed=1)
    return root


@pytest.fixture
def project(built, tmp_path):
    """A README with the table markers next to a copy of the zoo."""
    shutil.copytree(built, tmp_path / "model_cards")
    (tmp_path / "README.md").write_text(f"# project\n\nintro\n\n{TABLE_START}\nstale\n{TABLE_END}\n\nmore text\n")
    return tmp_path


def test_entries_come_from_the_cards(built):
    entries = {e.name: e for e in zoo_entries(built)}
    assert set(entries) == {"tiny-a", "tiny-b"}
    a, b = entries["tiny-a"], entries["tiny-b"]
    saved = json.loads((built / "tiny-a" / "eval_results.json").read_text())["test"]
    assert (a.family, a.variant, a.dataset, a.split) == ("vae", "stdplus", "static-binarized-mnist-sample", "test")
    assert b.variant == "softplus"
    assert a.headline == (f"NLL (K=20) {saved['nll']:.2f} nats", f"R {saved['rate']:.2f} nats",
                          f"D {saved['distortion']:.2f} nats")
    assert a.parameters == 784 * 16 + 16 + 16 * 8 + 8 + 4 * 16 + 16 + 16 * 784 + 784
    assert a.size_bytes == (built / "tiny-a" / "model.safetensors").stat().st_size


def test_count_parameters_reads_the_safetensors_header(built):
    from transformers import AutoModel

    model = AutoModel.from_pretrained(built / "tiny-b")
    assert count_parameters(built / "tiny-b" / "model.safetensors") == sum(p.numel() for p in model.parameters())


def test_list_prints_the_zoo(built, capsys):
    assert main(["list", "--root", str(built)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:4] == ["name", "family", "param./estimator", "dataset"]
    assert out[1].startswith("tiny-a ") and "stdplus" in out[1] and "NLL (K=20)" in out[1] and "KiB" in out[1]
    assert out[2].startswith("tiny-b ") and "softplus" in out[2]
    assert main(["list", "--root", str(built / "nowhere")]) == 0
    assert capsys.readouterr().out.strip() == "no checkpoints found"


def test_table_is_regenerated_between_the_markers_only(project, capsys):
    readme = project / "README.md"
    assert main(["zoo-table", "--readme", str(readme), "--root", str(project / "model_cards"), "--check"]) == 2
    assert "does not match the cards" in capsys.readouterr().err
    assert main(["zoo-table", "--readme", str(readme), "--root", str(project / "model_cards")]) == 0
    text = readme.read_text()
    assert text.startswith("# project\n\nintro\n\n" + TABLE_START) and text.endswith(TABLE_END + "\n\nmore text\n")
    assert "stale" not in text
    assert "| [tiny-a](model_cards/tiny-a) | vae | stdplus | static-binarized-mnist-sample (test) | NLL (K=20)" in text
    assert main(["zoo-table", "--readme", str(readme), "--root", str(project / "model_cards"), "--check"]) == 0


def test_check_fails_when_a_card_changes_or_a_checkpoint_is_added(project, capsys):
    readme, root = project / "README.md", project / "model_cards"
    main(["zoo-table", "--readme", str(readme), "--root", str(root)])
    current, expected = readme_with_table(readme, root)
    assert current == expected
    # a re-evaluation changes the saved results and the card is rebuilt from them
    saved = json.loads((root / "tiny-b" / "eval_results.json").read_text())
    saved["test"]["nll"] -= 0.5
    (root / "tiny-b" / "eval_results.json").write_text(json.dumps(saved))
    write_card(root / "tiny-b", figures=False)
    current, expected = readme_with_table(readme, root)
    assert current != expected and f"{saved['test']['nll']:.2f} nats" in expected
    main(["zoo-table", "--readme", str(readme), "--root", str(root)])
    assert main(["zoo-table", "--readme", str(readme), "--root", str(root), "--check"]) == 0
    shutil.copytree(root / "tiny-a", root / "tiny-c")
    assert main(["zoo-table", "--readme", str(readme), "--root", str(root), "--check"]) == 2


def test_readme_without_markers_is_an_error():
    with pytest.raises(ValueError, match="zoo table markers"):
        replace_table("# no markers here\n", "| table |")


def test_card_without_metrics_is_not_listed_silently(project):
    card = project / "model_cards" / "tiny-a" / "README.md"
    head, body = card.read_text().split("\n---\n", 1)
    card.write_text(head.split("model-index:")[0] + "\n---\n" + body)
    with pytest.raises(ValueError, match="no model-index metrics"):
        zoo_entries(project / "model_cards")


def test_this_repository_readme_matches_its_cards():
    """The shipped README's zoo table is the one generated from model_cards/ (empty zoo included)."""
    current, expected = readme_with_table(REPO_ROOT / "README.md", REPO_ROOT / "model_cards")
    assert current == expected, "README zoo table is stale: run `vaezoo zoo-table` at the repository root"
