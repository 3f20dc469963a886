"""Reliability, inputs: the public entry points of every zoo model (forward, encode, log_weights)
either accept an input and return finite numbers, or raise a ValueError saying what was expected;
never another exception, never a silent wrong answer. Models come from transformers' CONFIG_MAPPING
(every registered vaezoo type, default config), so a new family is fuzzed once it is registered."""

import inspect

import pytest
import torch
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from transformers import CONFIG_MAPPING, AutoModel

from vaezoo.inputs import check_labels, flatten_images
from vaezoo.loading import zoo_model_types

BATCH = 4


@pytest.fixture(scope="module", params=zoo_model_types())
def model(request):
    torch.manual_seed(0)
    return AutoModel.from_config(CONFIG_MAPPING[request.param]()).eval()


def takes_labels(model):
    return "labels" in inspect.signature(model.forward).parameters


def valid_batch(model, seed=0):
    """Binary pixels: in the support of every likelihood (0 and 1 are 8-bit levels too)."""
    g = torch.Generator().manual_seed(seed)
    x = torch.bernoulli(torch.full((BATCH, model.config.num_pixels), 0.5), generator=g)
    y = torch.randint(0, getattr(model.config, "num_classes", 1), (BATCH,), generator=g)
    return x, y


def entry_points(model):
    """(name, call(pixel_values, labels)) for every public method that takes images."""
    g = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    calls = [("forward", lambda x, y: model(pixel_values=x, **({"labels": y} if takes_labels(model) else {}), generator=g()))]
    if hasattr(model, "encode"):
        calls.append(("encode", lambda x, y: model.encode(x)))
    if hasattr(model, "log_weights"):
        calls.append(("log_weights", lambda x, y: model.log_weights(x, 3, generator=g())))
    return calls


def finite_tensors(result):
    if torch.is_tensor(result):
        return [result]
    if isinstance(result, (tuple, list)):
        return [t for r in result for t in finite_tensors(r)]
    if hasattr(result, "items"):
        return [v for _, v in result.items() if torch.is_tensor(v)]
    return [t for t in (getattr(result, "mean", None), getattr(result, "loc", None)) if torch.is_tensor(t)]


# ---- defects: each turns a valid (x, y) into an invalid one and names what must be refused -------

def _x(f):
    return lambda model, x, y, draw: (f(model, x, draw), y)


def _set(value):
    def apply(model, x, draw):
        x = x.clone()
        x.view(-1)[draw(st.integers(0, x.numel() - 1))] = value
        return x
    return apply


DEFECTS = {
    "nan": _x(_set(float("nan"))),
    "inf": _x(_set(float("inf"))),
    "negative": _x(_set(-0.25)),
    "above_one": _x(_set(1.5)),
    "empty_batch": _x(lambda m, x, d: x[:0]),
    "one_pixel_short": _x(lambda m, x, d: x[:, :-1]),
    "one_dimensional": _x(lambda m, x, d: x[0]),
    "five_dimensional": _x(lambda m, x, d: x.reshape(BATCH, 1, 1, -1)[:, None]),
    "channels_last": _x(lambda m, x, d: x.reshape(BATCH, m.config.image_size, m.config.image_size, -1)),
    "uint8": _x(lambda m, x, d: (x * 255).to(torch.uint8)),
    "int64": _x(lambda m, x, d: x.long()),
    "bool": _x(lambda m, x, d: x.bool()),
    "float64": _x(lambda m, x, d: x.double()),
    "float16": _x(lambda m, x, d: x.half()),
    "list": _x(lambda m, x, d: x.tolist()),
    "numpy": _x(lambda m, x, d: x.numpy()),
}
# Off the support of every pixel likelihood (not binary, not a multiple of 1/255).
GENERATIVE_DEFECTS = {"off_support": _x(_set(0.5))}
CLASSIFIER_DEFECTS = {
    "label_negative": lambda m, x, y, d: (x, torch.full_like(y, -1)),
    "label_too_large": lambda m, x, y, d: (x, torch.full_like(y, m.config.num_classes)),
    "label_float": lambda m, x, y, d: (x, y.float()),
    "label_shape": lambda m, x, y, d: (x, y[:-1]),
    "label_list": lambda m, x, y, d: (x, y.tolist()),
}


def defects_for(model):
    defects = dict(DEFECTS)
    if hasattr(model.config, "likelihood"):
        defects |= GENERATIVE_DEFECTS
    if takes_labels(model):
        defects |= CLASSIFIER_DEFECTS
    return defects


ALL_DEFECTS = sorted(DEFECTS | GENERATIVE_DEFECTS | CLASSIFIER_DEFECTS)


@pytest.mark.parametrize("name", ALL_DEFECTS)
@settings(max_examples=4, deadline=None, derandomize=True, database=None, phases=[Phase.generate],
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(data=st.data())
def test_fuzz_invalid_inputs_raise_value_error(model, name, data):
    defects = defects_for(model)
    if name not in defects:
        return  # e.g. label defects for a model without labels
    x, y = valid_batch(model, seed=data.draw(st.integers(0, 1000), label="seed"))
    bad_x, bad_y = defects[name](model, x, y, data.draw)
    for entry, call in entry_points(model):
        if bad_y is not y and entry != "forward":
            continue  # label defects only reach methods that take labels
        try:
            call(bad_x, bad_y)
        except ValueError as err:
            assert str(err), (entry, name)
        else:
            pytest.fail(f"{type(model).__name__}.{entry} accepted a {name!r} input without a ValueError")


@pytest.mark.parametrize("shape", ["flat", "square", "channels_first"])
def test_valid_inputs_in_every_accepted_shape_give_the_same_finite_answer(model, shape):
    x, y = valid_batch(model)
    s = model.config.image_size
    shaped = {"flat": x, "square": x.reshape(BATCH, s, s) if model.config.num_pixels == s * s else x,
              "channels_first": x.reshape(BATCH, -1, s, s)}[shape]
    for entry, call in entry_points(model):
        reference, result = call(x, y), call(shaped, y)
        tensors, ref_tensors = finite_tensors(result), finite_tensors(reference)
        assert tensors and all(torch.isfinite(t).all() for t in tensors), entry
        for a, b in zip(tensors, ref_tensors):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_error_messages_say_what_was_expected():
    x = torch.zeros(2, 16)
    for bad, expected in [
        (x.double(), r"must have the model's dtype torch.float32, got torch.float64"),
        (x.long(), r"floating-point tensor with values in \[0, 1\].*x.float\(\) / 255"),
        (x[:0], r"empty batch"),
        (x.reshape(2, 4, 4)[:, :, :3], r"shape \(batch, 16\) or \(batch, \[channels,\] height, width\)"),
        (x.reshape(2, 4, 4, 1), r"got shape \(2, 4, 4, 1\)"),
        (x + float("nan"), r"NaN or infinite"),
        (x - 1, r"must lie in \[0, 1\], got range \[-1, -1\]"),
    ]:
        with pytest.raises(ValueError, match=expected):
            flatten_images(bad, 16, dtype=torch.float32)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 9\], got range \[0, 10\]"):
        check_labels(torch.tensor([0, 10]), 10, 2)
    with pytest.raises(ValueError, match=r"labels must have shape \(3,\)"):
        check_labels(torch.tensor([0, 1]), 10, 3)


def test_bernoulli_support_error_names_the_fix():
    from vaezoo import VAEConfig, VAEModel

    model = VAEModel(VAEConfig(latent_dim=2, encoder_hidden=[4], decoder_hidden=[4]))
    with pytest.raises(ValueError, match="binary pixels.*binarize the data"):
        model(torch.full((2, 784), 0.5))
