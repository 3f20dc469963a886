"""Name -> object registries (timm-style): every swappable component is chosen by name.
Also the config validation helpers every ``configuration_*.py`` uses."""

import math


class Registry:
    """A named table of components of one kind (e.g. "parameterization", "prior").

    ``@REG.register("name")`` adds a class or function; ``REG.get("name")`` returns it and raises
    a ValueError listing the allowed names for anything unknown.
    """

    def __init__(self, kind):
        self.kind = kind
        self._items = {}

    def register(self, name):
        def add(obj):
            if name in self._items:
                raise ValueError(f"{self.kind} {name!r} is already registered")
            self._items[name] = obj
            return obj

        return add

    def get(self, name):
        if name not in self._items:
            raise ValueError(f"unknown {self.kind} {name!r}; expected one of {self.names()}")
        return self._items[name]

    def names(self):
        return sorted(self._items)

    def __contains__(self, name):
        return name in self._items


def check_choice(field, value, allowed):
    """Config validation helper: raise a ValueError naming the field and its allowed values."""
    if value not in allowed:
        raise ValueError(f"{field}={value!r} is not valid; expected one of {sorted(allowed)}")


def check_positive(field, value, minimum=1, integer=True):
    """Config validation helper: ``value`` must be an integer (or, with ``integer=False``, a finite
    number) >= ``minimum``; NaN and infinity are rejected (NaN compares False with everything)."""
    kind = int if integer else (int, float)
    bad_type = isinstance(value, bool) or not isinstance(value, kind)
    if bad_type or (isinstance(value, float) and not math.isfinite(value)) or value < minimum:
        what = "an integer" if integer else "a finite number"
        raise ValueError(f"{field}={value!r} is not valid; expected {what} >= {minimum}")


def check_number(field, value, minimum=0, strict=True, maximum=None, strict_maximum=False):
    """Config validation helper: ``value`` must be a finite real number above ``minimum`` (or equal to
    it unless ``strict``) and, when ``maximum`` is given, below it (or equal unless ``strict_maximum``)."""
    ok = not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)
    ok = ok and (value > minimum if strict else value >= minimum)
    ok = ok and (maximum is None or (value < maximum if strict_maximum else value <= maximum))
    if not ok:
        bounds = f"{'>' if strict else '>='} {minimum}"
        if maximum is not None:
            bounds += f" and {'<' if strict_maximum else '<='} {maximum}"
        raise ValueError(f"{field}={value!r} is not valid; expected a finite number {bounds}")


def as_list(field, value):
    """A list-valued config field as a list (JSON gives lists back, so tuples are stored as lists);
    anything else (e.g. a bare number where widths are expected) is a ValueError naming the field."""
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{field}={value!r} is not valid; expected a list")
    return list(value)


class ValidatedConfigMixin:
    """Base for every vaezoo config (``class XConfig(ValidatedConfigMixin, PreTrainedConfig)``):
    ``validate()`` also runs after ``from_pretrained(..., field=value)``, whose overrides
    transformers' ``from_dict`` sets as attributes after ``__init__`` (and so after the
    ``validate()`` that ``__init__`` calls). Every vaezoo model reads images of ``num_channels`` x
    ``image_size`` x ``image_size`` pixels, so the flattened size is defined here once."""

    @property
    def num_pixels(self):
        return self.num_channels * self.image_size * self.image_size

    @classmethod
    def from_dict(cls, config_dict, **kwargs):
        result = super().from_dict(config_dict, **kwargs)
        (result[0] if isinstance(result, tuple) else result).validate()
        return result
