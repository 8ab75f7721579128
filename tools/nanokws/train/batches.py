"""A keras PyDataset that augments every epoch: audio through the C frontend, features directly."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..window import pad_to_window
from .augment import AudioAugment, FeatureAugment, augment_audio, augment_features
from .distill import Teacher, soft_targets
from .sources import TrainingData, features_of


def mixup(x: np.ndarray, y: np.ndarray, alpha: float,
          rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """mixup (Zhang et al. 2018): each example blended with a random partner of the same batch,
    weight ~ Beta(alpha, alpha), targets blended alike. Applied to the int8-valued log-mel input."""
    lam = rng.beta(alpha, alpha, size=len(x)).astype(np.float32)
    partner = rng.permutation(len(x))
    x_mix = lam[:, None, None, None] * x + (1.0 - lam[:, None, None, None]) * x[partner]
    y_mix = lam[:, None] * y + (1.0 - lam[:, None]) * y[partner]
    return x_mix.astype(np.float32), y_mix.astype(np.float32)


def make_batches(data: TrainingData, batch_size: int, seed: int, feature_cfg: FeatureAugment,
                 audio_cfg: AudioAugment | None = None, mixup_alpha: float = 0.0,
                 teacher: Teacher | None = None, teacher_weight: float = 0.0) -> Any:
    """Batches of (features [b, 49 (or feature_cfg.window_frames), 40, 1] float32, targets [b, classes]
    float32): one-hot, or blended with `teacher`'s probabilities on the same augmented input
    (distill.soft_targets)."""
    import keras

    audio_cfg = audio_cfg or AudioAugment()

    class AugmentedBatches(keras.utils.PyDataset):  # type: ignore[misc]
        """Batch i of epoch e is a pure function of (seed, e, i): reproducible runs."""

        def __init__(self) -> None:
            super().__init__(workers=1, use_multiprocessing=False)
            self.epoch = 0
            self.n_audio = len(data.audio)
            self._order = self._shuffle()

        def _shuffle(self) -> np.ndarray:
            return np.random.default_rng([seed, self.epoch, 1]).permutation(data.num_train)

        def __len__(self) -> int:
            return math.ceil(data.num_train / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rng = np.random.default_rng([seed, self.epoch, 2, index])
            idx = self._order[index * batch_size:(index + 1) * batch_size]
            a_idx = idx[idx < self.n_audio]
            f_idx = idx[idx >= self.n_audio] - self.n_audio
            x_audio = features_of(augment_audio(data.audio[a_idx], data.noise, rng, audio_cfg))
            if feature_cfg.window_frames is not None:
                x_audio = pad_to_window(x_audio, feature_cfg.window_frames)
            x_feat = augment_features(data.features[f_idx], data.feature_noise, rng, feature_cfg,
                                      data.feature_labels[f_idx])
            x = np.concatenate([x_audio, x_feat]).astype(np.float32)[..., None]
            labels = np.concatenate([data.audio_labels[a_idx], data.feature_labels[f_idx]])
            y = np.eye(len(data.labels), dtype=np.float32)[labels]
            if teacher is not None and teacher_weight > 0:
                y = soft_targets(y, teacher(x), teacher_weight)
            if mixup_alpha > 0:
                x, y = mixup(x, y, mixup_alpha, rng)
            return x, y

        def on_epoch_end(self) -> None:
            self.epoch += 1
            self._order = self._shuffle()

    return AugmentedBatches()
