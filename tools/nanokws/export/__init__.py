"""`nanokws export`: the TFLite Micro C array and the firmware's `model_config.h`."""

from __future__ import annotations

from .export import export_model
from .model_config import render_model_config

__all__ = ["export_model", "render_model_config"]
