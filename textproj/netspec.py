"""The projection network's on-device contract, torch-free: tensor names, shapes, int8/int4 form.

One home for what the three runtimes share: ``textproj.nets`` (PyTorch, training and export),
``textproj.runtime`` (numpy) and the C runtime (``textproj/c``, fed by ``textproj.export``).
From the header's ``network`` entry it gives every layer's tensor names and shapes, checks a
model's tensors against them, quantizes or dequantizes a layer, and says which tensors a model
of a given weight bit width stores as int4 (see docs/model-format.md).
"""

from __future__ import annotations

import itertools
from typing import Any

import numpy as np

from textproj.config import WEIGHT_BITS, TrainConfig
from textproj.errors import ConfigError
from textproj.model_file import MAX_TENSOR_ELEMENTS, ModelFormatError

# A header may list at most this many hidden layers or windows: refused before any shape is built.
MAX_LAYERS = 64
DESIGN_FIELDS = {
    "text": (("n_bits", "n_labels"), ("hidden",)),
    "token": (("n_bits", "bottleneck", "filters", "n_labels"), ("windows",)),
}  # design -> (positive int fields, list-of-positive-int fields) of the ``network`` entry
WEIGHT, SCALE, BIAS = "weight", "scale", "bias"  # tensor name suffixes of one layer
POOLS = ("max_pool", "mean_pool")  # a token network's optional poolings, in their pooled order


def weight_levels(bits: int) -> int:
    """The largest stored magnitude of a ``bits``-wide symmetric weight: 127 for int8, 7 for int4
    (-8 is never used, so the scale maps max |w| to +-levels exactly); ``bits`` must be one of
    ``WEIGHT_BITS``."""
    if bits not in WEIGHT_BITS:
        raise ValueError(f"weight bits must be one of {WEIGHT_BITS}, not {bits!r}")
    return 2 ** (bits - 1) - 1


def _positive_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 1


def layer_names(prefix: str) -> tuple[str, str, str]:
    """The tensor names of one layer: its int8 (or int4) weight, float32 per-row scale, float32
    bias."""
    return f"{prefix}.{WEIGHT}", f"{prefix}.{SCALE}", f"{prefix}.{BIAS}"


def expected_tensors(network: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """Each layer's prefix -> its weight shape (output rows first), in forward order.

    The prefixes are the PyTorch module names of ``textproj.nets``; the order is the order in
    which the forward pass uses the layers.
    """
    n_bits, n_labels = network["n_bits"], network["n_labels"]
    if network["design"] == "text":
        widths = [n_bits, *network["hidden"], n_labels]
        return {f"dense.{i}": (b, a) for i, (a, b) in enumerate(itertools.pairwise(widths))}
    bottleneck, filters, windows = network["bottleneck"], network["filters"], network["windows"]
    shapes: dict[str, tuple[int, ...]] = {"bottleneck": (bottleneck, n_bits)}
    for j, k in enumerate(windows):
        shapes[f"value.{j}"] = (filters, bottleneck, k)
        shapes[f"attention.{j}"] = (filters, bottleneck, k)
    shapes["output"] = (n_labels, pooled_width(network))
    return shapes


# TrainConfig fields that set each layer's weight shape, by design: named when one is too big.
_LAYER_FIELDS = {
    "text": {
        "dense.0": ("hidden", "num_projections", "bits_per_projection"),
        "dense": ("hidden",),
    },
    "token": {
        "bottleneck": ("bottleneck", "num_projections", "bits_per_projection"),
        "value": ("filters", "bottleneck"),
        "attention": ("filters", "bottleneck"),
        "output": ("filters", "max_pool", "mean_pool"),
    },
}


def refuse_unstorable_shapes(config: TrainConfig, n_labels: int) -> None:
    """ConfigError naming the options when a layer of ``config``'s projection network would
    hold more weights than a model file may (``MAX_TENSOR_ELEMENTS``): called before
    any training, since the model writer would refuse it only at the end. A ``max_pool`` or
    ``mean_pool`` of None counts as off (the check after they are resolved sees them)."""
    t, d = config.projection_shape
    network: dict[str, Any] = {"design": config.design, "n_bits": t * d, "n_labels": n_labels}
    if config.design == "text":
        network["hidden"] = list(config.hidden)
    else:
        network.update(bottleneck=config.bottleneck, filters=config.filters,
                       windows=list(config.windows), max_pool=bool(config.max_pool),
                       mean_pool=bool(config.mean_pool))  # fmt: skip
    fields = _LAYER_FIELDS[config.design]
    for prefix, shape in expected_tensors(network).items():
        elements = int(np.prod(shape))
        if elements > MAX_TENSOR_ELEMENTS:
            named = fields.get(prefix) or fields[prefix.partition(".")[0]]
            options = ", ".join(f"TrainConfig.{name}" for name in named)
            raise ConfigError(
                f"{options}: layer {prefix!r} would hold {' x '.join(map(str, shape))} = "
                f"{elements:,} weights ({t} x {d} input bits, {n_labels} labels), over the "
                f"{MAX_TENSOR_ELEMENTS:,} a model file can hold; make it smaller"
            )


def pooled_width(network: dict[str, Any]) -> int:
    """A token network's pooled features per text, the output layer's input: each window's
    filters attention-pooled, then (with ``max_pool``) the same filters max-pooled, then (with
    ``mean_pool``) mean-pooled."""
    parts = 1 + sum(bool(network.get(key)) for key in POOLS)
    return network["filters"] * len(network["windows"]) * parts


def check_network(name: str, network: object) -> dict[str, Any]:
    """The header's ``network`` entry, checked for the keys and types its design needs."""
    if not isinstance(network, dict):
        raise ModelFormatError(f"{name}: header has no 'network' object")
    design = network.get("design")
    if design not in DESIGN_FIELDS:
        raise ModelFormatError(f"{name}: unknown network design {design!r}")
    ints, lists = DESIGN_FIELDS[design]
    for key in ints:
        if not _positive_int(network.get(key)):
            raise ModelFormatError(f"{name}: network {key!r} must be a positive int")
    for key in lists:
        value = network.get(key)
        if not isinstance(value, list) or not all(_positive_int(v) for v in value):
            raise ModelFormatError(f"{name}: network {key!r} must be a list of positive ints")
        if len(value) > MAX_LAYERS:
            raise ModelFormatError(
                f"{name}: network {key!r} lists {len(value)} layers, more than {MAX_LAYERS}"
            )
    if design == "token" and not network["windows"]:
        raise ModelFormatError(f"{name}: network 'windows' is empty")
    for key in POOLS if design == "token" else ():
        if not isinstance(network.get(key, False), bool):
            raise ModelFormatError(f"{name}: network {key!r} must be true or false")
    return network


def check_layer(name: str, tensors: dict[str, np.ndarray], prefix: str, shape: tuple) -> None:
    """Check that one layer's weight, scale and bias are present, well-typed, shaped and finite."""
    weight, scale, bias = layer_names(prefix)
    expected = {
        weight: (np.int8, shape),
        scale: (np.float32, shape[:1]),
        bias: (np.float32, shape[:1]),
    }
    for tname, (dtype, tshape) in expected.items():
        if tname not in tensors:
            raise ModelFormatError(f"{name}: tensor {tname!r} is missing")
        tensor = tensors[tname]
        if tensor.dtype != dtype or tensor.shape != tshape:
            raise ModelFormatError(
                f"{name}: tensor {tname!r} is {tensor.dtype} {list(tensor.shape)}, "
                f"expected {np.dtype(dtype)} {list(tshape)}"
            )
        if tensor.dtype == np.float32 and not np.isfinite(tensor).all():
            raise ModelFormatError(f"{name}: tensor {tname!r} holds non-finite values")


def dequantize(tensors: dict[str, np.ndarray], prefix: str) -> tuple[np.ndarray, np.ndarray]:
    """One layer as float32 (weight, bias): the int8 weight times its per-row scale (float32
    product, as every runtime computes it), and the bias."""
    weight, scale, bias = (tensors[n] for n in layer_names(prefix))
    rows = scale.reshape((-1,) + (1,) * (weight.ndim - 1))
    return weight.astype(np.float32) * rows, bias.astype(np.float32)


def quantize_rows(weight: np.ndarray, bits: int = 8) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric quantization with one float32 scale per output row: weight ~ q * scale[:, None,
    ...], q an int8 array in -L..L with L = ``weight_levels(bits)`` (127, or 7 for 4 bits)."""
    top = weight_levels(bits)
    flat = weight.reshape(weight.shape[0], -1).astype(np.float64)
    scale = np.abs(flat).max(axis=1) / top
    scale[scale == 0] = 1.0
    q = np.clip(np.rint(flat / scale[:, None]), -top, top).astype(np.int8)
    return q.reshape(weight.shape), scale.astype(np.float32)


def quantize_params(params: dict[str, np.ndarray], bits: int = 8) -> dict[str, np.ndarray]:
    """The on-device tensors of named float parameters (``X.weight``, ``X.bias``): each weight
    quantized to ``bits`` (held as int8) with its float32 ``X.scale`` next to it, each bias as
    float32. Write them with ``int4=int4_tensors(tensors, bits)``."""
    tensors: dict[str, np.ndarray] = {}
    for name, value in params.items():
        prefix, _, kind = name.rpartition(".")
        if kind == WEIGHT:
            weight, scale, _ = layer_names(prefix)
            tensors[weight], tensors[scale] = quantize_rows(value, bits)
        else:
            tensors[name] = np.asarray(value, dtype=np.float32)
    return tensors


def int4_tensors(tensors: dict[str, np.ndarray], bits: int) -> frozenset[str]:
    """The tensors of a ``bits``-wide model that its file stores as int4 (``model_file``'s
    ``int4=``): every layer weight when ``bits`` is 4, none when 8."""
    weight_levels(bits)
    if bits == 8:
        return frozenset()
    return frozenset(name for name in tensors if name.rpartition(".")[2] == WEIGHT)


def dequantize_param(tensors: dict[str, np.ndarray], name: str) -> np.ndarray:
    """The float32 value of parameter ``name`` (``X.weight`` or ``X.bias``) from its tensors."""
    prefix, _, kind = name.rpartition(".")
    if kind == WEIGHT:
        return dequantize(tensors, prefix)[0]
    return tensors[name].astype(np.float32)
