"""Write vaezoo/sample_data/mnist_samples.safetensors and README.json from the data mirror.

Deterministic: every 100th image of each train/validation split and every 50th test image (the
static-binarized test split is label-sorted, so a stride covers every digit). Usage:

    PYTHONPATH=. VAEZOO_DATA_DIR=../shared/data python scripts/make_sample_data.py [--data-dir DIR] [--out DIR]
"""

import argparse
import json
import os

import torch
from safetensors.torch import save_file

from vaezoo.data import DATASETS, SAMPLE_FILE, resolve_data_dir

# sample key -> (full dataset whose source is read, {sample split: (source split, start, stop, step)})
SAMPLES = {
    "mnist": (
        "mnist",
        {"train": ("train", 0, 50_000, 100), "validation": ("train", 50_000, 60_000, 100), "test": ("test", 0, 10_000, 50)},
    ),
    "static-binarized-mnist": (
        "static-binarized-mnist",
        {"train": ("train", 0, 50_000, 100), "validation": ("validation", 0, 10_000, 100), "test": ("test", 0, 10_000, 50)},
    ),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data-dir", default=None, help="mirror folder (default: $VAEZOO_DATA_DIR)")
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "..", "vaezoo", "sample_data"))
    args = parser.parse_args()
    data_dir = resolve_data_dir(args.data_dir)
    if data_dir is None:
        parser.error("set VAEZOO_DATA_DIR or pass --data-dir: the samples are cut from the data mirror")

    tensors, provenance = {}, {"file": SAMPLE_FILE, "sources": {}}
    for key, (dataset, splits) in SAMPLES.items():
        source = DATASETS.get(dataset).source
        record = {"hub_id": source.hub_id, "mirror_folder": source.hub_id, "splits": {}}
        for split, (source_split, start, stop, step) in splits.items():
            images, labels = source.read(source_split, data_dir)
            indices = torch.arange(start, stop, step)
            tensors[f"{key}/{split}/images"] = images[indices].contiguous()
            tensors[f"{key}/{split}/labels"] = labels[indices].contiguous()
            tensors[f"{key}/{split}/indices"] = indices
            record["splits"][split] = {
                "source_split": source_split,
                "indices": {"start": start, "stop": stop, "step": step, "rule": f"range({start}, {stop}, {step})"},
                "count": len(indices),
            }
        provenance["sources"][key] = record
    provenance["layout"] = (
        "'<source>/<split>/images' uint8 (N, 784), '<source>/<split>/labels' int64 (N,), "
        "'<source>/<split>/indices' int64 (N,): row indices into the source split"
    )
    provenance["generator"] = "scripts/make_sample_data.py"
    os.makedirs(args.out, exist_ok=True)
    save_file(tensors, os.path.join(args.out, SAMPLE_FILE))
    with open(os.path.join(args.out, "README.json"), "w") as f:
        json.dump(provenance, f, indent=2)
        f.write("\n")


if __name__ == "__main__":
    main()
