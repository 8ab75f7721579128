"""Datasets: WAV reading, Speech Commands layout, speaker-hash splits, feature-form npz."""

from .dataset import Dataset, Example, load_dataset, noise_region
from .feature_form import load_feature_form
from .labels import DEFAULT_KEYWORDS, SILENCE, UNKNOWN, labels_for
from .splits import speaker_of, which_split
from .wav import CLIP_SAMPLES, SAMPLE_RATE, WavFormatError, fit_clip, read_wav, wav_bytes

__all__ = [
    "CLIP_SAMPLES",
    "DEFAULT_KEYWORDS",
    "SAMPLE_RATE",
    "SILENCE",
    "UNKNOWN",
    "Dataset",
    "Example",
    "WavFormatError",
    "fit_clip",
    "labels_for",
    "load_dataset",
    "load_feature_form",
    "noise_region",
    "read_wav",
    "speaker_of",
    "wav_bytes",
    "which_split",
]
