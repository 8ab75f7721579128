"""`nanokws eval`: accuracy, confusion, LiteRT vs TFLite Micro agreement."""

from __future__ import annotations

from .evaluate import evaluate_model

__all__ = ["evaluate_model"]
