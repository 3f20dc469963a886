"""Training recipes: one YAML file per zoo entry (hub_configs/NAME.yaml) drives training,
evaluation and the model card. Unknown keys are errors, so a typo never silently does nothing.

    name: vae-stdplus-static-mnist          # folder name under model_cards/
    hub_repo: vaezoo/vae-stdplus-static-mnist
    model: {model_type: vae, parameterization: stdplus, ...}   # config fields
    data: {dataset: static-binarized-mnist, train_split: train, validation_split: validation}
    training: {seed: 0, batch_size: 100, learning_rate: 1e-3, max_steps: 3000, ...}
    evaluation: {split: test, iwae_samples: 5000, seed: 0, limit: null}
"""

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

import yaml


@dataclass
class DataSpec:
    dataset: str = "static-binarized-mnist"
    train_split: str = "train"
    validation_split: str = "validation"
    train_limit: int | None = None
    validation_limit: int | None = None


@dataclass
class TrainingSpec:
    seed: int = 0
    batch_size: int = 100
    learning_rate: float = 1e-3
    weight_decay: float = 0.0
    max_steps: int = 1000
    grad_clip: float | None = None
    eval_every: int = 500
    checkpoint_every: int = 500
    select_metric: str = "elbo"  # validation metric used to pick the best checkpoint
    select_mode: str = "max"
    max_nonfinite_steps: int = 10  # consecutive NaN/inf losses tolerated before the run stops


@dataclass
class EvaluationSpec:
    split: str = "test"
    iwae_samples: int = 5000
    num_samples: int = 12  # posterior samples for classifier predictions
    seed: int = 0
    limit: int | None = None
    fgsm_eps: list = field(default_factory=list)


@dataclass
class Recipe:
    name: str
    model: dict
    hub_repo: str | None = None
    description: str = ""
    data: DataSpec = field(default_factory=DataSpec)
    training: TrainingSpec = field(default_factory=TrainingSpec)
    evaluation: EvaluationSpec = field(default_factory=EvaluationSpec)
    output_dir: str | None = None  # resumable training state; default runs/NAME
    card_dir: str | None = None  # the Hub folder; default model_cards/NAME

    def __post_init__(self):
        self.validate()
        self.output_dir = self.output_dir or f"runs/{self.name}"
        self.card_dir = self.card_dir or f"model_cards/{self.name}"

    def validate(self):
        if self.training.select_mode not in ("max", "min"):
            raise ValueError(f"training.select_mode={self.training.select_mode!r}; expected 'max' or 'min'")
        if "model_type" not in self.model:
            raise ValueError("recipe 'model' block needs a 'model_type' (vae, hvae, vib, bnn)")
        if self.training.batch_size < 1 or self.training.max_steps < 1:
            raise ValueError("training.batch_size and training.max_steps must be >= 1")

    def to_dict(self):
        return dataclasses.asdict(self)


def _build(cls, values, where):
    if not isinstance(values, dict):
        raise ValueError(f"recipe section {where!r} must be a mapping, got {type(values).__name__}")
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = set(values) - names
    if unknown:
        raise ValueError(f"unknown key(s) {sorted(unknown)} in recipe section {where!r}; allowed: {sorted(names)}")
    return cls(**values)


def load_recipe(path):
    """Read and validate a YAML recipe file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"recipe {path} does not exist (recipes live in hub_configs/)")
    raw = yaml.safe_load(path.read_text())
    return recipe_from_dict(raw, where=str(path))


def recipe_from_dict(raw, where="recipe"):
    if not isinstance(raw, dict):
        raise ValueError(f"{where}: a recipe must be a YAML mapping")
    raw = dict(raw)
    sections = {"data": DataSpec, "training": TrainingSpec, "evaluation": EvaluationSpec}
    for key, cls in sections.items():
        raw[key] = _build(cls, raw.get(key, {}), key)
    return _build(Recipe, raw, where)
