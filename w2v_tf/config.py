"""Typed configuration, one dataclass per concern (data, model, train); binaries build them from flags."""

from __future__ import annotations

import dataclasses
import json
from typing import Any


@dataclasses.dataclass(frozen=True)
class DataConfig:
  """Where the corpus comes from and how it becomes training examples.

  Attributes:
    train_csv: CSV or CSV.gz file with a header row.
    text_column: name of the column holding the review text.
    max_reviews: read only the first N rows (0 = all).
    stopwords: "nltk", "none" or a path to a one-word-per-line file.
    min_count: drop words seen fewer times.
    max_vocab: keep at most this many words (0 = no limit).
    subsample: Mikolov's subsampling threshold t (0 = off).
    window: maximum window; the effective one is drawn from 1..window per center word.
    batch_size: center words per batch (each with up to 2*window contexts).
    heldout_reviews: reviews excluded from training for the held-out full-softmax loss: a
      fraction when < 1, a count when >= 1.
    cache_dir: where the tokenized corpus is cached.
    seed: seed of every random draw (subsampling, windows, shuffling, held-out split).
    strict_utf8: refuse a CSV with bytes that are not UTF-8 (else they are replaced by U+FFFD,
      which forms no token, and counted in one warning).
  """
  train_csv: str = "data/IMDB_Dataset.csv"
  text_column: str = "review"
  max_reviews: int = 0
  stopwords: str = "nltk"
  min_count: int = 5
  max_vocab: int = 0
  subsample: float = 1e-3
  window: int = 5
  batch_size: int = 4096
  heldout_reviews: float = 0.01
  cache_dir: str = "data/cache"
  seed: int = 0
  strict_utf8: bool = False


def to_json(*configs: Any) -> str:
  """Serialises dataclass configs as {"data": {...}, "model": {...}, ...} keyed by class name."""
  payload = {}
  for config in configs:
    name = type(config).__name__.removesuffix("Config").lower()
    payload[name] = dataclasses.asdict(config)
  return json.dumps(payload, indent=2, sort_keys=True) + "\n"
