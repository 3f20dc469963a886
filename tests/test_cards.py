"""Model cards: metadata and model-index from the saved results, the generic template for both
evaluation kinds, figures that are images of this model, and a card that follows its results."""

import json
import shutil

import numpy as np
import pytest
from huggingface_hub import ModelCard
from matplotlib.image import imread
from zoo_folders import build_tiny_vae_folder

from vaezoo.cards import CITATIONS, FAMILIES, build_card, rd_points, write_card

GENERATIVE_METRICS = {"nll", "elbo", "rate", "distortion", "bits_per_dim", "active_units"}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory):
    """Two tiny VAEs side by side (stdplus and exp), as in model_cards/."""
    root = tmp_path_factory.mktemp("model_cards")
    build_tiny_vae_folder(root / "tiny-stdplus")
    build_tiny_vae_folder(root / "tiny-exp", parameterization="exp", seed=1)
    write_card(root / "tiny-stdplus")  # redraw: its R-D plot now shows its sibling too
    return root


def saved(folder):
    return json.loads((folder / "eval_results.json").read_text())


def test_card_reloads_with_every_measured_metric(zoo):
    folder = zoo / "tiny-stdplus"
    card = ModelCard.load(folder / "README.md")
    test = saved(folder)["test"]
    results = {r.metric_type: r for r in card.data.eval_results}
    assert set(results) == GENERATIVE_METRICS
    for key, entry in results.items():
        assert entry.metric_value == pytest.approx(test[key], abs=1e-6)
        assert entry.metric_args == {"iwae_samples": test["iwae_samples"], "seed": test["seed"]}
        assert (entry.dataset_name, entry.dataset_split, entry.dataset_type) == (
            "static-binarized-mnist-sample", "test", "static-binarized-mnist")
    assert "K=20" in results["nll"].metric_name


def test_card_metadata(zoo):
    data = ModelCard.load(zoo / "tiny-stdplus" / "README.md").data
    assert data.license == "mit" and data.library_name == "transformers"
    assert {"vaezoo", "vae", "generative", "parameterization-stdplus"} <= set(data.tags)
    assert data.datasets == ["static-binarized-mnist"]
    assert "parameterization-exp" in ModelCard.load(zoo / "tiny-exp" / "README.md").data.tags


def test_card_body_has_every_section(zoo):
    folder = zoo / "tiny-stdplus"
    text = (folder / "README.md").read_text()
    saved_results = saved(folder)
    for heading in ("## Results", "## Rate-distortion position", "## Samples and reconstructions", "## Training curves",
                    "## Usage", "## Training recipe", "## Evaluation protocol", "## Limitations", "## Citations"):
        assert heading in text
    for image in ("rd_plane.png", "samples.png", "reconstructions.png", "training_curves.png"):
        assert f"]({image})" in text and (folder / image).is_file()
    assert 'AutoModel.from_pretrained("vaezoo-test/tiny-stdplus")' in text
    assert 'AutoModel.from_pretrained("vaezoo-test/tiny-stdplus", trust_remote_code=True)' in text
    assert "K = 20 posterior samples" in text and "evaluation seed 0" in text
    assert saved_results["code_version"] in text and saved_results["code_version"].startswith("vaezoo ")
    assert f"{saved_results['test']['nll']:.2f}" in text
    # the consistency subset is stated with its protocol
    assert "the first\n200 examples of `test`, K = 100, seed 0" in text
    assert CITATIONS["stdplus"] in text and CITATIONS["iwae"] in text
    assert CITATIONS["stdplus"] not in (zoo / "tiny-exp" / "README.md").read_text()


def test_card_numbers_follow_the_saved_results(zoo, tmp_path):
    folder = shutil.copytree(zoo / "tiny-stdplus", tmp_path / "model_cards" / "copy")
    results = saved(folder)
    results["test"]["nll"] = 123.456789
    (folder / "eval_results.json").write_text(json.dumps(results))
    card = build_card(folder)
    assert {r.metric_type: r.metric_value for r in card.data.eval_results}["nll"] == 123.456789
    assert "| 123.46 |" in card.content
    card = build_card(folder, repo_id="someone/else")
    assert 'from_pretrained("someone/else")' in card.content


def test_rd_plane_places_every_sibling_on_the_same_data(zoo, tmp_path):
    points = {p["name"]: p for p in rd_points(zoo / "tiny-stdplus")}
    assert set(points) == {"tiny-stdplus", "tiny-exp"}
    assert points["tiny-exp"]["rate"] == saved(zoo / "tiny-exp")["test"]["rate"]
    # a checkpoint on another dataset is not on this R-D plane
    other = shutil.copytree(zoo, tmp_path / "zoo")
    results = saved(other / "tiny-exp")
    results["test"]["dataset"] = "mnist-dynamic"
    (other / "tiny-exp" / "eval_results.json").write_text(json.dumps(results))
    assert [p["name"] for p in rd_points(other / "tiny-stdplus")] == ["tiny-stdplus"]


def _image(path):
    image = imread(path)
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100
    return image


def test_figures_are_images_of_this_model(zoo, tmp_path):
    a, b = zoo / "tiny-stdplus", zoo / "tiny-exp"
    for name in ("samples.png", "reconstructions.png", "rd_plane.png", "training_curves.png"):
        image = _image(a / name)
        assert image[..., :3].std() > 0.05, f"{name} is blank"
    # different weights -> different samples; same weights -> the same picture again
    assert not np.array_equal(_image(a / "samples.png"), _image(b / "samples.png"))
    copy = shutil.copytree(a, tmp_path / "model_cards" / "tiny-stdplus")
    (copy / "samples.png").unlink()
    write_card(copy)
    assert (copy / "samples.png").read_bytes() == (a / "samples.png").read_bytes()


def classifier_folder(folder, model_type="vib", reliability=True):
    """A classifier Hub folder's saved results (no weights: the card of a classifier needs none)."""
    folder.mkdir(parents=True)
    test = {"dataset": "mnist-sample", "dataset_id": "ylecun/mnist", "split": "test", "accuracy": 0.9812,
            "nll": 0.0623, "ece": 0.0121, "rate": 9.87, "fgsm_error_0.1": 0.0624, "fgsm_error_0.3": 0.132,
            "num_examples": 200, "num_samples": 12, "seed": 0}
    if reliability:
        test["reliability"] = {"bin_edges": [i / 10 for i in range(11)], "confidence": [0.05] * 5 + [0.55, 0.65, 0.75, 0.86, 0.98],
                               "accuracy": [0.0] * 5 + [0.5, 0.6, 0.7, 0.8, 0.99], "count": [0] * 5 + [2, 3, 5, 10, 180]}
    protocol = {"dataset": "mnist-sample", "split": "test", "limit": 200, "iwae_samples": 100, "num_samples": 12,
                "seed": 0, "fgsm_eps": [0.1, 0.3]}
    metrics = {k: v for k, v in test.items() if k != "reliability"}
    (folder / "eval_results.json").write_text(json.dumps({
        "evaluation_kind": "classifier", "code_version": "vaezoo 0.1.0 (git test)", "test": test,
        "consistency": {"protocol": protocol, "metrics": metrics},
        "training": {"steps": 100, "best_step": 100, "select_metric": "accuracy", "skipped_nonfinite_steps": 0,
                     "num_processes": 1, "train_seconds": 1.0, "train_examples": 500}}))
    (folder / "history.json").write_text(json.dumps([{"step": 50, "accuracy": 0.9, "nll": 0.3, "rate": 12.0},
                                                     {"step": 100, "accuracy": 0.95, "nll": 0.2, "rate": 10.0}]))
    (folder / "recipe.json").write_text(json.dumps({"name": folder.name, "hub_repo": f"vaezoo-test/{folder.name}",
                                                    "model": {"model_type": model_type}, "data": {"dataset": "mnist-sample"},
                                                    "training": {"max_steps": 100}}))
    (folder / "config.json").write_text(json.dumps({"model_type": model_type, "parameterization": "stdplus",
                                                    "latent_dim": 256, "beta": 0.001}))
    return folder


def test_classifier_card_from_the_same_template(tmp_path):
    folder = classifier_folder(tmp_path / "tiny-vib")
    card = write_card(folder)
    results = {r.metric_type: r for r in ModelCard.load(folder / "README.md").data.eval_results}
    assert set(results) == {"accuracy", "nll", "ece", "rate", "fgsm_error_0.1", "fgsm_error_0.3"}
    assert results["fgsm_error_0.3"].metric_value == 0.132
    assert results["accuracy"].metric_args == {"num_samples": 12, "seed": 0}
    assert {r.task_type for r in results.values()} == {"image-classification"}
    assert {"vaezoo", "vib", "classifier"} <= set(card.data.tags)
    text = card.content
    assert "| Accuracy | 98.12% |" in text and "FGSM error (eps = 0.3)" in text
    assert "](reliability.png)" in text and "](training_curves.png)" in text
    assert "rd_plane.png" not in text and "samples.png" not in text
    assert "--num-samples 12 --fgsm-eps 0.1 0.3" in text
    assert CITATIONS["vib"] in text
    image = _image(folder / "reliability.png")
    assert image[..., :3].std() > 0.05


def test_classifier_card_without_reliability_data_shows_no_diagram(tmp_path):
    folder = classifier_folder(tmp_path / "tiny-bnn", model_type="bnn", reliability=False)
    text = write_card(folder).content
    assert "reliability.png" not in text and not (folder / "reliability.png").exists()
    assert CITATIONS["bbb"] in text


def test_unknown_family_is_an_error_naming_the_families(tmp_path):
    folder = classifier_folder(tmp_path / "odd", model_type="not-a-family")
    with pytest.raises(ValueError, match=r"unknown model family 'not-a-family'.*'bnn'.*'vae'"):
        build_card(folder)


def test_every_family_cites_known_papers():
    assert set(FAMILIES.names()) >= {"vae", "hvae", "vib", "bnn"}
    for name in FAMILIES.names():
        assert set(FAMILIES.get(name).papers) <= set(CITATIONS)


def test_card_without_results_names_the_missing_files(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "vae"}))
    with pytest.raises(FileNotFoundError, match="eval_results.json, history.json, recipe.json"):
        build_card(tmp_path)
