import os
import subprocess
import sys
from importlib import resources

import pytest
import torch
from safetensors.torch import load_file

from vaezoo import data
from vaezoo.data import DATASETS, ImageData, load_images, read_hub_split

SAMPLE_SIZES = {"train": 500, "validation": 100, "train-full": 600, "test": 200}
MIRROR_SIZES = {
    "mnist": {"train": 50_000, "validation": 10_000, "train-full": 60_000, "test": 10_000},
    "mnist-dynamic": {"train": 50_000, "validation": 10_000, "train-full": 60_000, "test": 10_000},
    "static-binarized-mnist": {"train": 50_000, "validation": 10_000, "test": 10_000},
}
SAMPLES = ["mnist-sample", "mnist-dynamic-sample", "static-binarized-mnist-sample"]


def sample_file():
    return str(resources.files("vaezoo").joinpath("sample_data", data.SAMPLE_FILE))


def is_binary(images):
    return bool(((images == 0) | (images == 255)).all())


@pytest.fixture
def no_hub(monkeypatch):
    """No mirror setting and no way to call `datasets.load_dataset`."""
    import datasets

    def refuse(*args, **kwargs):
        raise AssertionError(f"load_dataset called with {args} {kwargs}")

    monkeypatch.delenv("VAEZOO_DATA_DIR", raising=False)
    monkeypatch.setattr(datasets, "load_dataset", refuse)


@pytest.mark.parametrize("name", SAMPLES)
def test_samples_load_without_mirror_or_network(no_hub, name):
    for split in DATASETS.get(name).splits:
        images = load_images(name, split)
        expected = SAMPLE_SIZES[split]
        assert len(images) == expected and images.images.shape == (expected, 784)
        assert images.images.dtype == torch.uint8 and images.labels.dtype == torch.int64
        assert set(images.labels.tolist()) == set(range(10))
        assert (images.image_size, images.num_channels, images.num_classes) == (28, 1, 10)


def test_sample_binarization_and_train_full(no_hub):
    static = load_images("static-binarized-mnist-sample", "train")
    assert static.binarization == "static" and is_binary(static.images)
    assert set(static.pixels(static.images).unique().tolist()) == {0.0, 1.0}
    grey = load_images("mnist-sample", "train")
    assert grey.binarization == "none" and not is_binary(grey.images)
    assert torch.equal(grey.pixels(grey.images), grey.images.float() / 255)
    full = load_images("mnist-sample", "train-full")
    assert torch.equal(full.images, torch.cat([grey.images, load_images("mnist-sample", "validation").images]))
    assert load_images("mnist-dynamic-sample", "train").binarization == "dynamic"
    assert load_images("mnist-dynamic-sample", "train-full").binarization == "dynamic"


def test_sample_provenance_matches_file():
    tensors = load_file(sample_file())
    record = data.sample_provenance()
    assert record["file"] == data.SAMPLE_FILE and record["generator"] == "scripts/make_sample_data.py"
    for key, source in record["sources"].items():
        for split, info in source["splits"].items():
            rule = info["indices"]
            expected = torch.arange(rule["start"], rule["stop"], rule["step"])
            assert torch.equal(tensors[f"{key}/{split}/indices"], expected)
            assert len(tensors[f"{key}/{split}/images"]) == info["count"]


@pytest.mark.mirror
def test_samples_equal_mirror_rows(mirror_dir):
    tensors = load_file(sample_file())
    record = data.sample_provenance()
    for key, source in record["sources"].items():
        hub_source = DATASETS.get(key).source
        assert hub_source.hub_id == source["hub_id"]
        for split, info in source["splits"].items():
            images, labels = read_hub_split(hub_source.hub_id, hub_source.config, info["source_split"], mirror_dir)
            indices = tensors[f"{key}/{split}/indices"]
            assert torch.equal(tensors[f"{key}/{split}/images"], images[indices]), (key, split)
            assert torch.equal(tensors[f"{key}/{split}/labels"], labels[indices]), (key, split)
    static = load_images("static-binarized-mnist-sample", "test")
    assert is_binary(static.images)


@pytest.mark.mirror
@pytest.mark.parametrize("name", sorted(MIRROR_SIZES))
def test_full_mirror_sizes_and_labels(mirror_dir, name):
    for split, size in MIRROR_SIZES[name].items():
        images = load_images(name, split, data_dir=mirror_dir)
        assert images.images.shape == (size, 784) and images.labels.shape == (size,)
        assert images.labels.min() == 0 and images.labels.max() == 9
        assert len(images.labels.unique()) == 10
        assert images.hub_id == DATASETS.get(name).source.hub_id
    with pytest.raises(ValueError, match="expected one of"):
        load_images(name, "nope", data_dir=mirror_dir)


@pytest.mark.mirror
def test_mnist_splits_partition_training_set(mirror_dir):
    train = load_images("mnist", "train", data_dir=mirror_dir)
    validation = load_images("mnist", "validation", data_dir=mirror_dir)
    full = load_images("mnist", "train-full", data_dir=mirror_dir)
    assert torch.equal(torch.cat([train.images, validation.images]), full.images)
    assert torch.equal(torch.cat([train.labels, validation.labels]), full.labels)
    assert is_binary(load_images("static-binarized-mnist", "train", data_dir=mirror_dir).images)


@pytest.mark.mirror
def test_mnist_dynamic_test_split_fixed(mirror_dir):
    first = load_images("mnist-dynamic", "test", data_dir=mirror_dir)
    read_hub_split.cache_clear()
    second = load_images("mnist-dynamic", "test", data_dir=mirror_dir)
    assert first.binarization == "static" and is_binary(first.images)
    assert torch.equal(first.images, second.images)
    grey = load_images("mnist", "test", data_dir=mirror_dir)
    assert torch.equal(first.labels, grey.labels)
    # A Bernoulli draw, not a threshold: its mean matches the grey mean (0.1325) to ~1e-3.
    assert abs(first.images.float().mean() / 255 - grey.images.float().mean() / 255) < 2e-3
    assert not torch.equal(first.images, (grey.images >= 128).to(torch.uint8) * 255)
    prefix = load_images("mnist-dynamic", "test", limit=100, data_dir=mirror_dir)
    assert torch.equal(prefix.images, first.images[:100])


def test_dynamic_eval_split_is_seeded_bernoulli(no_hub):
    evaluation = load_images("mnist-dynamic-sample", "test")
    grey = load_images("mnist-sample", "test")
    expected = torch.bernoulli(grey.images.float() / 255, generator=torch.Generator().manual_seed(0))
    assert torch.equal(evaluation.images, expected.to(torch.uint8) * 255)
    assert torch.equal(evaluation.images, load_images("mnist-dynamic-sample", "test").images)
    assert torch.equal(evaluation.pixels(evaluation.images), expected)


def test_dynamic_train_pixels_fresh_and_unbiased(no_hub):
    train = load_images("mnist-dynamic-sample", "train")
    batch = train.images[:16]
    one = train.pixels(batch, generator=torch.Generator().manual_seed(1))
    two = train.pixels(batch, generator=torch.Generator().manual_seed(2))
    assert one.dtype == torch.float32 and set(one.unique().tolist()) == {0.0, 1.0}
    assert not torch.equal(one, two)
    assert torch.equal(one, train.pixels(batch, generator=torch.Generator().manual_seed(1)))
    generator = torch.Generator().manual_seed(3)
    average = torch.stack([train.pixels(batch, generator=generator) for _ in range(400)]).mean(0)
    error = (average - batch.float() / 255).abs()
    # 400 draws: per-pixel standard error <= 0.025.
    assert error.mean() < 0.01 and error.max() < 0.15


def test_as_tensor_dataset_feeds_a_dataloader(no_hub):
    train = load_images("static-binarized-mnist-sample", "train", limit=64)
    loader = torch.utils.data.DataLoader(
        train.as_tensor_dataset(), batch_size=32, shuffle=True, generator=torch.Generator().manual_seed(0)
    )
    seen = 0
    for batch, labels in loader:
        pixels = train.pixels(batch)
        assert pixels.shape == (len(labels), 784) and pixels.dtype == torch.float32
        seen += len(labels)
    assert seen == 64


def test_limit(no_hub):
    full = load_images("mnist-sample", "test")
    part = load_images("mnist-sample", "test", limit=7)
    assert len(part) == 7 and torch.equal(part.images, full.images[:7])
    assert torch.equal(part.labels, full.labels[:7])
    assert len(load_images("mnist-sample", "test", limit=10_000)) == 200
    for bad in (0, -1, 1.5, True):
        with pytest.raises(ValueError, match="limit"):
            load_images("mnist-sample", "test", limit=bad)


def test_unknown_name_and_split(no_hub):
    with pytest.raises(ValueError, match="unknown dataset 'cifar'.*mnist-sample"):
        load_images("cifar", "train")
    with pytest.raises(ValueError, match=r"unknown split 'valid'.*\['test', 'train', 'train-full', 'validation'\]"):
        load_images("mnist-sample", "valid")


def test_pixels_rejects_float_batch(no_hub):
    train = load_images("mnist-sample", "train", limit=4)
    with pytest.raises(TypeError, match="uint8"):
        train.pixels(train.images.float())


def test_image_data_validates_shapes():
    with pytest.raises(ValueError, match="uint8"):
        ImageData(torch.zeros(2, 784), torch.zeros(2, dtype=torch.int64), "x", "train", "x", "none")
    with pytest.raises(ValueError, match="labels"):
        ImageData(torch.zeros(2, 784, dtype=torch.uint8), torch.zeros(3, dtype=torch.int64), "x", "train", "x", "none")
    with pytest.raises(ValueError, match="0/255"):
        ImageData(torch.ones(2, 784, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), "x", "train", "x", "static")
    with pytest.raises(ValueError, match="binarization"):
        ImageData(torch.zeros(2, 784, dtype=torch.uint8), torch.zeros(2, dtype=torch.int64), "x", "train", "x", "sometimes")


def test_missing_data_dir_names_path_and_layout(monkeypatch, tmp_path):
    missing = str(tmp_path / "no-such-mirror")
    monkeypatch.setenv("VAEZOO_DATA_DIR", missing)
    with pytest.raises(FileNotFoundError) as error:
        load_images("mnist", "train")
    message = str(error.value)
    assert "VAEZOO_DATA_DIR" in message and missing in message and "ylecun/mnist/mnist/*.parquet" in message
    # The argument overrides the environment.
    other = str(tmp_path / "other")
    with pytest.raises(FileNotFoundError, match=other):
        load_images("static-binarized-mnist", "test", data_dir=other)


def test_offline_without_mirror_says_how_to_fix():
    env = {k: v for k, v in os.environ.items() if k != "VAEZOO_DATA_DIR"}
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1")
    code = (
        "from vaezoo.data import load_images\n"
        "try:\n    load_images('mnist', 'test')\n"
        "except RuntimeError as e:\n"
        "    assert isinstance(e.__cause__, ConnectionError), repr(e.__cause__)\n"
        "    print(e)\n"
    )
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    result = subprocess.run([sys.executable, "-c", code], env=env, cwd=root, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "VAEZOO_DATA_DIR" in result.stdout and "-sample" in result.stdout and "ylecun/mnist" in result.stdout

