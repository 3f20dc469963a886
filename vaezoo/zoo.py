"""The zoo index: every published checkpoint under ``model_cards/``, read from its card.

One source of truth: the README's zoo table and ``vaezoo list`` are generated from the cards
(the ``model-index`` metrics written by ``vaezoo.cards`` from the saved results), the folder's
config.json (family, parameterization, estimator) and its safetensors header (size). The README
table sits between ``TABLE_START`` and ``TABLE_END``; ``vaezoo zoo-table`` rewrites it and
``vaezoo zoo-table --check`` (run by the test suite) fails when it differs from the cards.
"""

import json
import os
from dataclasses import dataclass
from pathlib import Path

from huggingface_hub import ModelCard
from safetensors import safe_open

from .cards import CARD_KINDS, TAG_FIELDS

TABLE_START = "<!-- zoo-table:start -->"
TABLE_END = "<!-- zoo-table:end -->"
DEFAULT_ROOT = "model_cards"
WEIGHTS = "model.safetensors"


@dataclass(frozen=True)
class ZooEntry:
    name: str
    folder: Path
    family: str
    variant: str  # parameterization / estimator
    dataset: str
    split: str
    headline: tuple  # ("NLL (K=5000) 88.52 nats", ...)
    parameters: int
    size_bytes: int


def _card_kind(card, folder):
    kinds = [tag for tag in card.data.tags or [] if tag in CARD_KINDS]
    if len(kinds) != 1:
        raise ValueError(f"{folder}/README.md: tags {card.data.tags} name no single evaluation kind "
                         f"({CARD_KINDS.names()}); rebuild it with `vaezoo card {folder}`")
    return CARD_KINDS.get(kinds[0])


def count_parameters(weights_file):
    """Number of stored weights, read from the safetensors header (no tensor is loaded)."""
    total = 0
    with safe_open(weights_file, framework="pt") as f:
        for key in f.keys():
            count = 1
            for dim in f.get_slice(key).get_shape():
                count *= dim
            total += count
    return total


def read_entry(folder):
    """A ZooEntry from a Hub folder's README.md card, config.json and weights."""
    folder = Path(folder)
    for name in ("README.md", "config.json", WEIGHTS):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"zoo folder {folder} has no {name}")
    card = ModelCard.load(folder / "README.md")
    results = card.data.eval_results
    if not results:
        raise ValueError(f"{folder}/README.md has no model-index metrics; rebuild it with `vaezoo card {folder}`")
    kind = _card_kind(card, folder)
    config = json.loads((folder / "config.json").read_text())
    values = {r.metric_type: r for r in results}
    headline = tuple(
        metric.brief(values[metric.key].metric_args or {}, values[metric.key].metric_value)
        for metric in kind.metrics if metric.key in kind.headline and metric.key in values
    )
    return ZooEntry(
        name=folder.name,
        folder=folder,
        family=config["model_type"],
        variant=" / ".join(str(config[field]) for field in TAG_FIELDS if field in config) or "-",
        dataset=results[0].dataset_name,
        split=results[0].dataset_split,
        headline=headline,
        parameters=count_parameters(folder / WEIGHTS),
        size_bytes=(folder / WEIGHTS).stat().st_size,
    )


def zoo_entries(root=DEFAULT_ROOT):
    """Entries for every folder under ``root`` that holds a config.json (an empty list if none);
    hidden folders (save_hub_folder's temporary ones) are not checkpoints."""
    root = Path(root)
    if not root.is_dir():
        return []
    return [read_entry(folder) for folder in sorted(root.iterdir())
            if not folder.name.startswith(".") and (folder / "config.json").is_file()]


def _size(num_bytes):
    return f"{num_bytes / 2**20:.1f} MiB" if num_bytes >= 2**20 else f"{num_bytes / 2**10:.0f} KiB"


def _parameters(count):
    return f"{count / 1e6:.2f}M" if count >= 10**5 else f"{count:,}"


def zoo_table(entries, link_base=None):
    """The README's Markdown zoo table; names link to their folders (relative to ``link_base``)."""
    lines = ["| model | family | parameterization / estimator | dataset (split) | headline metrics | parameters | weights |",
             "|---|---|---|---|---|---|---|"]
    for e in entries:
        name = f"[{e.name}]({Path(os.path.relpath(e.folder, link_base)).as_posix()})" if link_base else e.name
        lines.append(f"| {name} | {e.family} | {e.variant} | {e.dataset} ({e.split}) | {'; '.join(e.headline)} | "
                     f"{_parameters(e.parameters)} | {_size(e.size_bytes)} |")
    if not entries:
        lines.append("| _no checkpoint published yet_ | | | | | | |")
    return "\n".join(lines)


def zoo_listing(entries):
    """Plain-text listing for `vaezoo list`."""
    if not entries:
        return "no checkpoints found"
    rows = [("name", "family", "param./estimator", "dataset", "parameters", "weights", "headline metrics")]
    rows += [(e.name, e.family, e.variant, f"{e.dataset}/{e.split}", _parameters(e.parameters), _size(e.size_bytes),
              "; ".join(e.headline)) for e in entries]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]) - 1)]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(row, widths)) + "  " + row[-1] for row in rows)


def replace_table(readme_text, table):
    """README text with the part between the zoo-table markers replaced by ``table``."""
    start, end = readme_text.find(TABLE_START), readme_text.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"README has no zoo table markers: add a line {TABLE_START} and a line {TABLE_END}")
    return readme_text[: start + len(TABLE_START)] + "\n" + table + "\n" + readme_text[end:]


def readme_with_table(readme, root=DEFAULT_ROOT):
    """(current README text, README text with the table regenerated from the cards under ``root``)."""
    readme = Path(readme)
    text = readme.read_text()
    return text, replace_table(text, zoo_table(zoo_entries(root), link_base=readme.parent))
