"""Model registry: names -> ``ModelSpec`` (torchvision's ``get_model`` / ``list_models`` pattern).

The built-in specs are registered here, explicitly, from the modules that define them (``zoo``: ESPNetv2 and
CGNet; ``torchvision_zoo``: torchvision's FCN / DeepLabV3 / LR-ASPP; ``fake``: ``fake_pattern``, known logits for
tests); those modules only define specs and import nothing from this one. A new built-in model is one spec in its
module and one entry in ``BUILTIN_SPECS``; at run time ``register_model`` adds one more.

``get_model_spec`` also accepts the path of a custom-model YAML (``core.segmentation.custom_model``: a TorchScript
or ONNX file plus its class list and preprocessing), so every caller that takes a model name takes such a file too.
"""

from __future__ import annotations

from seg_perception.core.segmentation import fake, torchvision_zoo, zoo
from seg_perception.core.segmentation.custom_model import load_spec
from seg_perception.core.segmentation.models import ModelSpec, validate_spec

BUILTIN_SPECS: tuple[ModelSpec, ...] = (
    *zoo.BUILTIN_SPECS,
    *torchvision_zoo.TORCHVISION_MODELS.values(),
    fake.FAKE_PATTERN,  # known logits, no weights: for tests of the plumbing
)
_REGISTRY: dict[str, ModelSpec] = {}


def register_model(spec: ModelSpec) -> ModelSpec:
    """Add ``spec`` to the registry under ``spec.name``.

    Raises:
        ValueError: if the name is taken or the spec is inconsistent (``models.validate_spec``).
    """
    if spec.name in _REGISTRY:
        raise ValueError(f"model {spec.name!r} is already registered")
    validate_spec(spec)
    _REGISTRY[spec.name] = spec
    return spec


def get_model_spec(name: str) -> ModelSpec:
    """Return the registered spec called ``name``, or the spec of a custom-model YAML file.

    Args:
        name: a registered name (``list_models()``), or the path of a custom-model YAML (``*.yaml`` / ``*.yml``;
            see ``core.segmentation.custom_model``).
    Raises:
        KeyError: naming the known models, if ``name`` is not registered.
        ValueError / FileNotFoundError: a malformed or missing custom-model YAML or model file.
    """
    if name.endswith((".yaml", ".yml")):
        return load_spec(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(f"unknown model {name!r}; known models: {', '.join(list_models())}") from None


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    return sorted(_REGISTRY)


for _spec in BUILTIN_SPECS:
    register_model(_spec)
