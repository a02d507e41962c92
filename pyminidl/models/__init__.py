"""Models: Sequential (and later the functional Model), plus the classic Perceptron."""

import json

from pyminidl.models.perceptron import Perceptron
from pyminidl.models.sequential import Sequential
from pyminidl.saving.saving_lib import load_model, model_from_config


def model_from_json(json_string, custom_objects=None):
    """The (untrained, uncompiled) model a ``to_json`` string describes.

    Raises:
        ValueError: the text is not JSON, or names a class neither built in nor in ``custom_objects``.
    """
    try:
        config = json.loads(json_string)
    except json.JSONDecodeError as e:
        raise ValueError(f"model_from_json: the string is not valid JSON ({e}).") from e
    return model_from_config(config, custom_objects)


__all__ = ["Sequential", "Perceptron", "load_model", "model_from_config", "model_from_json"]
