"""Image datasets for training and evaluation, chosen by name from ``DATASETS``.

Every dataset is decoded once into an in-memory uint8 tensor of shape (N, 784) plus int64 labels
(decoding 60,000 PNGs takes a few seconds; slicing a uint8 tensor afterwards is ~1000x faster than
per-batch decoding). Pixels are converted to float per batch with ``ImageData.pixels``.

Datasets (``load_images(name, split)``):

- ``mnist``: grey MNIST (Hub ``ylecun/mnist``, config ``mnist``); ``pixels`` returns x/255.
- ``mnist-dynamic``: the same images, dynamically binarized (Salakhutdinov & Murray, 2008 style):
  the training splits are re-sampled x ~ Bernoulli(pixel/255) every time a batch is converted;
  ``validation`` and ``test`` are binarized ONCE at load with ``torch.Generator().manual_seed(0)``
  (over the whole split, before ``limit``) so evaluation is deterministic.
- ``static-binarized-mnist``: the fixed binarization of the VAE literature (Larochelle & Murray,
  2011), pixels 0 or 255, its own train 50,000 / validation 10,000 / test 10,000 splits.

Splits of ``mnist`` and ``mnist-dynamic``: ``train`` = the first 50,000 MNIST training images,
``validation`` = the last 10,000 training images, ``train-full`` = all 60,000 training images,
``test`` = the 10,000 MNIST test images.

Sample datasets shipped in the package (no download, no ``VAEZOO_DATA_DIR``), for tests and quick
runs: ``mnist-sample``, ``mnist-dynamic-sample``, ``static-binarized-mnist-sample``, stored in
``sample_data/mnist_samples.safetensors`` (made by ``scripts/make_sample_data.py``; provenance in
``sample_data/README.json``). Real images, every 100th (test: every 50th) of the source split:

- from ``ylecun/mnist``: ``train`` = training images 0, 100, ..., 49,900 (500);
  ``validation`` = training images 50,000, 50,100, ..., 59,900 (100);
  ``test`` = test images 0, 50, ..., 9,950 (200); ``train-full`` = train then validation (600).
- from ``static-binarized-mnist``: ``train`` = its train rows 0, 100, ..., 49,900 (500);
  ``validation`` = its validation rows 0, 100, ..., 9,900 (100); ``test`` = its test rows
  0, 50, ..., 9,950 (200; the source test split is label-sorted, so a stride covers all digits).

Where the data comes from: if ``VAEZOO_DATA_DIR`` (or the ``data_dir=`` argument, which overrides
it) is set, it names a mirror folder holding one subfolder per Hub id laid out like the Hub
repository (``ylecun/mnist/mnist/*.parquet``, ``static-binarized-mnist/default/*.parquet``) and
``datasets.load_dataset(<data_dir>/<hub id>)`` reads it; otherwise ``datasets.load_dataset(hub id)``
downloads from the Hub.
"""

import functools
import io
import json
import os
from dataclasses import dataclass
from importlib import resources

import numpy as np
import torch
from PIL import Image
from safetensors.torch import load as load_safetensors
from torch.utils.data import TensorDataset

from .registry import Registry, check_choice, check_positive

DATA_DIR_ENV = "VAEZOO_DATA_DIR"
IMAGE_SIZE = 28
NUM_PIXELS = IMAGE_SIZE * IMAGE_SIZE
SAMPLE_FILE = "mnist_samples.safetensors"
EVALUATION_BINARIZATION_SEED = 0
TRAINING_SPLITS = ("train", "train-full")

DATASETS = Registry("dataset")
BINARIZATIONS = Registry("binarization")


@BINARIZATIONS.register("none")
def _grey(batch, generator=None):
    return batch.to(torch.float32) / 255.0


# Stored pixels are already 0 or 255, so x/255 is exactly 0 or 1.
BINARIZATIONS.register("static")(_grey)


@BINARIZATIONS.register("dynamic")
def _dynamic(batch, generator=None):
    return torch.bernoulli(batch.to(torch.float32) / 255.0, generator=generator)


@dataclass(frozen=True)
class ImageData:
    """One decoded split: ``images`` uint8 (N, 784) row-major 28x28, ``labels`` int64 (N,).

    ``binarization`` says how ``pixels`` maps a uint8 batch to float32 in [0, 1]: "none" (grey,
    x/255), "static" (stored pixels are 0/255, so x/255 is exactly binary), "dynamic" (a fresh
    x ~ Bernoulli(pixel/255) on every call). The tensors may be shared with the in-process decode
    cache: do not modify them in place.
    """

    images: torch.Tensor
    labels: torch.Tensor
    name: str
    split: str
    hub_id: str
    binarization: str
    image_size: int = IMAGE_SIZE
    num_channels: int = 1
    num_classes: int = 10

    def __post_init__(self):
        check_choice("binarization", self.binarization, BINARIZATIONS.names())
        if self.images.dtype != torch.uint8 or self.images.shape[1:] != (NUM_PIXELS,):
            raise ValueError(
                f"images must be uint8 of shape (N, {NUM_PIXELS}); got {self.images.dtype} "
                f"{tuple(self.images.shape)}"
            )
        if self.labels.dtype != torch.int64 or self.labels.shape != self.images.shape[:1]:
            raise ValueError(
                f"labels must be int64 of shape ({len(self.images)},); got {self.labels.dtype} "
                f"{tuple(self.labels.shape)}"
            )
        if self.binarization == "static" and not ((self.images == 0) | (self.images == 255)).all():
            raise ValueError(f"{self.name}/{self.split} is declared static-binarized but has pixels other than 0/255")

    def __len__(self):
        return len(self.images)

    def pixels(self, batch, generator=None):
        """Convert a uint8 batch (rows of ``images``) to float32 pixels in [0, 1]."""
        if batch.dtype != torch.uint8:
            raise TypeError(f"pixels expects a uint8 batch of stored images; got {batch.dtype}")
        return BINARIZATIONS.get(self.binarization)(batch, generator=generator)

    def as_tensor_dataset(self):
        """TensorDataset(images, labels): index it through a DataLoader, then call ``pixels``."""
        return TensorDataset(self.images, self.labels)

    def float_tensors(self, generator=None):
        """(pixels in [0, 1] as float32 (N, 784), labels (N,)) of the whole split, for small scripts."""
        return self.pixels(self.images, generator=generator), self.labels


@dataclass(frozen=True)
class HubSource:
    """A dataset read with ``datasets.load_dataset``: from ``<data_dir>/<hub_id>`` or the Hub.

    ``config`` is the Hub config name; a mirror folder holds one config's parquet shards and
    ``datasets`` reads it as its single default config, so the name is only passed to the Hub.
    """

    hub_id: str
    config: str | None

    def read(self, split, data_dir):
        return read_hub_split(self.hub_id, self.config, split, data_dir)


@dataclass(frozen=True)
class SampleSource:
    """Rows of ``sample_data/mnist_samples.safetensors`` stored under ``key`` (no download)."""

    key: str
    hub_id: str

    def read(self, split, data_dir):
        tensors = _sample_tensors()
        return tensors[f"{self.key}/{split}/images"], tensors[f"{self.key}/{split}/labels"]


@dataclass(frozen=True)
class DatasetSpec:
    """``splits`` maps a split name to the (source split, rows) parts concatenated to make it.

    ``binarization`` is how ``pixels`` treats the split; with ``binarize_evaluation_once`` the
    non-training splits are instead drawn x ~ Bernoulli(pixel/255) once at load (generator seed
    ``EVALUATION_BINARIZATION_SEED``, over the whole split) and are "static" from then on.
    """

    source: HubSource | SampleSource
    binarization: str
    splits: dict
    binarize_evaluation_once: bool = False


_ALL = slice(None)
# ylecun/mnist has only train (60k) and test (10k); validation is carved from the end of train.
_MNIST_SPLITS = {
    "train": (("train", slice(0, 50_000)),),
    "validation": (("train", slice(50_000, 60_000)),),
    "train-full": (("train", _ALL),),
    "test": (("test", _ALL),),
}
_STATIC_SPLITS = {split: ((split, _ALL),) for split in ("train", "validation", "test")}
# The sample file stores train/validation/test per source; train-full is train then validation.
_SAMPLE_MNIST_SPLITS = {
    "train": (("train", _ALL),),
    "validation": (("validation", _ALL),),
    "train-full": (("train", _ALL), ("validation", _ALL)),
    "test": (("test", _ALL),),
}

_MNIST = HubSource("ylecun/mnist", "mnist")
_STATIC = HubSource("static-binarized-mnist", None)
_MNIST_SAMPLE = SampleSource("mnist", _MNIST.hub_id)
_STATIC_SAMPLE = SampleSource("static-binarized-mnist", _STATIC.hub_id)

DATASETS.register("mnist")(DatasetSpec(_MNIST, "none", _MNIST_SPLITS))
DATASETS.register("mnist-dynamic")(DatasetSpec(_MNIST, "dynamic", _MNIST_SPLITS, binarize_evaluation_once=True))
DATASETS.register("static-binarized-mnist")(DatasetSpec(_STATIC, "static", _STATIC_SPLITS))
DATASETS.register("mnist-sample")(DatasetSpec(_MNIST_SAMPLE, "none", _SAMPLE_MNIST_SPLITS))
DATASETS.register("mnist-dynamic-sample")(
    DatasetSpec(_MNIST_SAMPLE, "dynamic", _SAMPLE_MNIST_SPLITS, binarize_evaluation_once=True)
)
DATASETS.register("static-binarized-mnist-sample")(DatasetSpec(_STATIC_SAMPLE, "static", _STATIC_SPLITS))


def resolve_data_dir(data_dir=None):
    """The mirror folder: ``data_dir`` if given, else ``$VAEZOO_DATA_DIR``; None means the Hub."""
    return data_dir if data_dir is not None else (os.environ.get(DATA_DIR_ENV) or None)


def load_images(name, split, limit=None, data_dir=None):
    """Load split ``split`` of dataset ``name`` as an ``ImageData`` (the first ``limit`` images,
    or all of them when the split is smaller or ``limit`` is None)."""
    spec = DATASETS.get(name)
    if split not in spec.splits:
        raise ValueError(f"unknown split {split!r} for dataset {name!r}; expected one of {sorted(spec.splits)}")
    if limit is not None:
        check_positive("limit", limit)
    data_dir = resolve_data_dir(data_dir)
    # torch.cat copies, so the returned tensors never alias the decode cache.
    parts = [(spec.source.read(source_split, data_dir), rows) for source_split, rows in spec.splits[split]]
    images = torch.cat([part_images[rows] for (part_images, _), rows in parts])
    labels = torch.cat([part_labels[rows] for (_, part_labels), rows in parts])
    binarization = spec.binarization
    if spec.binarize_evaluation_once and split not in TRAINING_SPLITS:
        generator = torch.Generator().manual_seed(EVALUATION_BINARIZATION_SEED)
        images = _dynamic(images, generator=generator).to(torch.uint8) * 255
        binarization = "static"
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    return ImageData(images, labels, name, split, spec.source.hub_id, binarization)


def hub_dataset_folder(data_dir, hub_id):
    """The mirror subfolder for ``hub_id``; FileNotFoundError naming the fix when missing."""
    folder = os.path.join(data_dir, hub_id)
    if not os.path.isdir(folder):
        raise FileNotFoundError(
            f"{DATA_DIR_ENV} (or data_dir) is {data_dir!r}, but the dataset folder {folder!r} does "
            f"not exist. {DATA_DIR_ENV} must name a mirror folder holding one subfolder per Hub "
            f"dataset id, laid out like the Hub repository (e.g. <dir>/ylecun/mnist/mnist/*.parquet, "
            f"<dir>/static-binarized-mnist/default/*.parquet); unset it to download from the Hub."
        )
    return folder


@functools.lru_cache(maxsize=None)
def read_hub_split(hub_id, config, split, data_dir):
    """Decode one source split into (uint8 (N, 784), int64 (N,)); cached for the process."""
    import datasets  # heavy import, needed only for non-sample data

    if data_dir is not None:
        dataset = datasets.load_dataset(hub_dataset_folder(data_dir, hub_id), split=split)
    else:
        try:
            dataset = datasets.load_dataset(hub_id, name=config, split=split)
        except ConnectionError as error:
            raise RuntimeError(
                f"could not download dataset {hub_id!r} from the Hugging Face Hub (offline or "
                f"unreachable). Set {DATA_DIR_ENV} to a local mirror folder (e.g. ../shared/data) "
                f"or use a '*-sample' dataset, which ships inside the package."
            ) from error
    return decode_images(dataset), torch.as_tensor(np.asarray(dataset["label"][:], dtype=np.int64))


def decode_images(dataset):
    """PNG ``image`` column -> uint8 (N, 784), decoding raw bytes with PIL (faster than the
    ``datasets`` numpy formatter, which builds a PIL image and an array per row anyway)."""
    import datasets

    column = dataset.cast_column("image", datasets.Image(decode=False)).with_format("arrow")[:]["image"]
    encoded = column.combine_chunks().field("bytes").to_pylist()
    images = np.empty((len(encoded), NUM_PIXELS), dtype=np.uint8)
    for row, data in enumerate(encoded):
        image = Image.open(io.BytesIO(data))
        if image.mode != "L" or image.size != (IMAGE_SIZE, IMAGE_SIZE):
            raise ValueError(
                f"expected {IMAGE_SIZE}x{IMAGE_SIZE} greyscale ('L') images; row {row} is "
                f"{image.mode} {image.size}"
            )
        images[row] = np.frombuffer(image.tobytes(), dtype=np.uint8)
    return torch.from_numpy(images)


@functools.lru_cache(maxsize=1)
def _sample_tensors():
    return load_safetensors(resources.files(__package__).joinpath("sample_data", SAMPLE_FILE).read_bytes())


def sample_provenance():
    """The sample file's provenance record (``sample_data/README.json``)."""
    return json.loads(resources.files(__package__).joinpath("sample_data", "README.json").read_text())
