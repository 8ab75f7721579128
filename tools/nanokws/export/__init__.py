"""`nanokws export`: the TFLite Micro C array and the firmware's `model_config.h`, or an Arduino library."""

from __future__ import annotations

from .arduino_library import export_arduino_library
from .export import export_model
from .model_config import render_model_config

__all__ = ["export_arduino_library", "export_model", "render_model_config"]
