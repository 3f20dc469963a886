"""Name -> object registries (timm-style): every swappable component is chosen by name."""


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
    kind = int if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kind) or value < minimum:
        what = "an integer" if integer else "a number"
        raise ValueError(f"{field}={value!r} is not valid; expected {what} >= {minimum}")
