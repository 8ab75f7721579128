"""`nanokws train`: Keras models, augmentation, training and full-int8 conversion."""

from __future__ import annotations

from .models import MODELS, build_model
from .trainer import TrainResult, train_model

__all__ = ["MODELS", "TrainResult", "build_model", "train_model"]
