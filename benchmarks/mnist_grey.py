"""Grey MNIST as in-memory tensors for the benchmark scripts (decoded once; ecosystem.md: decoding
into a uint8 tensor and slicing beats a DataLoader by orders of magnitude for MNIST)."""

import os

import numpy as np
import torch
from datasets import load_dataset


def load_mnist(split, data_dir=None, limit=None):
    """(images float32 (N, 784) in [0, 1], labels int64 (N,)) from the mirror folder ylecun/mnist."""
    data_dir = data_dir or os.environ.get("VAEZOO_DATA_DIR", "/work/shared/data")
    dataset = load_dataset(os.path.join(data_dir, "ylecun", "mnist"), split=split)
    if limit is not None:
        dataset = dataset.select(range(min(limit, len(dataset))))
    images = np.stack([np.asarray(image, dtype=np.uint8) for image in dataset["image"][:]])
    labels = torch.tensor(dataset["label"][:], dtype=torch.int64)
    return torch.from_numpy(images).reshape(len(labels), -1).float() / 255.0, labels
