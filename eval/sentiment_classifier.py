"""The sentiment classifiers of `eval.sentiment`: token ids -> embedding -> masked average -> dense.

`encode_reviews` turns cleaned reviews into padded token ids for a `mask_zero` lookup of
`w2v_tf.keras_vectors.embedding_layers`; `build_classifier` is the Keras model (embedding ->
`GlobalAveragePooling1D`, which skips the masked padding -> a fixed standardisation -> one
sigmoid unit); `train_variant` trains it with Adam and early stopping on a validation slice and
scores it; `random_like` draws the control's vectors. Keras is imported on first use, so
`eval.sentiment` answers bad flags without loading it.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from typing import Callable, Sequence

import numpy as np


@dataclasses.dataclass(frozen=True)
class ClassifierConfig:
  """How the classifiers are trained (the binary's flags of the same names).

  Attributes:
    epochs: epochs at most (early stopping usually ends sooner).
    patience: epochs without a better validation loss before stopping.
    batch_size: reviews per step.
    learning_rate: Adam's, for the frozen variants (only the dense layer learns).
    fine_tune_learning_rate: Adam's for the trainable variant (the embedding learns too).
    max_length: tokens kept per review (the first ones that have a vector).
    validation_fraction: the share of the training half held out for early stopping.
    seed: Keras' seed before each variant, and the random vectors'.
  """
  # Defaults measured on the first 10k IMDB rows (4.5k fit / 0.5k validation / 5k test), 1-epoch
  # IMDB vectors: frozen at 1e-2 stopped at epoch 12 with 84.7% test; at 1e-3 it was still
  # improving after 20 epochs (84.9%). Fine-tuned at 1e-3: best epoch 4, 86.8% test.
  epochs: int = 20
  patience: int = 2
  batch_size: int = 64
  learning_rate: float = 1e-2
  fine_tune_learning_rate: float = 1e-3
  # Cleaned IMDB reviews hold 119 tokens on average (median 90, 95th percentile 298; first 10k
  # rows): 256 cuts 7.8% of them and bounds the padding every batch carries.
  max_length: int = 256
  validation_fraction: float = 0.1
  seed: int = 0

  def problems(self) -> list[str]:
    """What is out of range, as `--flag=value: ...` phrases (empty: all fine)."""
    found = [f"--{name}={getattr(self, name)}: must be 1 or more"
             for name in ("epochs", "batch_size", "max_length") if getattr(self, name) < 1]
    if self.patience < 0:
      found.append(f"--patience={self.patience}: must be 0 or more")
    for name in ("learning_rate", "fine_tune_learning_rate"):
      if not getattr(self, name) > 0:
        found.append(f"--{name}={getattr(self, name)}: must be > 0")
    if not 0 < self.validation_fraction < 1:
      found.append(f"--validation_fraction={self.validation_fraction}: must be in (0, 1)")
    if not 0 <= self.seed < 2 ** 32:  # numpy's and Keras's seeds
      found.append(f"--seed={self.seed}: must be in [0, 2**32)")
    return found


def encode_reviews(token_lists: Sequence[Sequence[str]], lookup, max_length: int
                   ) -> tuple[np.ndarray, dict]:
  """Token ids for a `mask_zero` lookup: known tokens only, the first `max_length`, 0-padded.

  Args:
    token_lists: N cleaned reviews.
    lookup: the `StringLookup` of `embedding_layers(..., mask_zero=True)`.
    max_length: L, tokens kept per review.

  Returns:
    (ids int32 [N, L], stats): a review with no known token holds the OOV id alone (so its
    masked average is the OOV row, not 0 / 0); stats: "token_coverage" (share of tokens that
    have a vector), "truncated_reviews" (reviews with more than L such tokens),
    "empty_reviews" (with none).
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from w2v_tf.keras_vectors import oov_index  # pylint: disable=import-outside-toplevel
  oov = oov_index(mask_zero=True)
  lengths = np.fromiter(map(len, token_lists), np.int64, len(token_lists))  # [N]
  flat = [token for tokens in token_lists for token in tokens]
  ids = lookup(tf.constant(flat, tf.string)).numpy() if flat else np.zeros(0, np.int64)  # [T]
  review = np.repeat(np.arange(len(token_lists)), lengths)  # [T]
  known = ids > oov
  review, ids = review[known], ids[known]
  kept = np.bincount(review, minlength=len(token_lists))  # [N] known tokens per review
  position = np.arange(len(ids)) - (np.cumsum(kept) - kept)[review]  # [T'] place in its review
  inside = position < max_length
  encoded = np.zeros((len(token_lists), max_length), np.int32)  # [N, L]
  encoded[review[inside], position[inside]] = ids[inside]
  encoded[kept == 0, 0] = oov
  return encoded, {"token_coverage": float(known.mean()) if flat else 0.0,
                   "truncated_reviews": int(np.sum(kept > max_length)),
                   "empty_reviews": int(np.sum(kept == 0))}


def random_like(vectors: np.ndarray, seed: int) -> np.ndarray:
  """Gaussian vectors of the same shape, with the same overall standard deviation. [V, d]."""
  scale = float(np.std(vectors)) or 1.0
  return (np.random.default_rng(seed).standard_normal(vectors.shape) * scale).astype(np.float32)


def build_classifier(embedding, config: ClassifierConfig, mean: np.ndarray,
                     variance: np.ndarray):
  """ids [N, L] -> embedding -> masked average -> standardise -> dense -> P(positive) [N, 1].

  Args:
    embedding: a `mask_zero` Keras `Embedding` (frozen or not).
    config: the learning rates (`fine_tune_learning_rate` when the embedding is trainable).
    mean, variance: [d] of the training reviews' averages (the standardisation's constants).

  Returns:
    The compiled `keras.Model`; its layer "average" gives the masked averages [N, d].
  """
  import keras  # pylint: disable=import-outside-toplevel
  ids = keras.Input(shape=(None,), dtype="int32", name="token_ids")
  average = keras.layers.GlobalAveragePooling1D(name="average")(embedding(ids))
  # Standardised (as the logistic regression this replaced did): per dimension, the reviews'
  # averages of 1-epoch IMDB vectors vary by 0.024-0.054 (median 0.034), so the dense weights
  # must grow large and Adam takes long to get there: frozen, 10k rows, 1e-2, without it still
  # improving after 20 epochs, with it stopped at 12 (both 84.7%); at 1e-3, 79.3% vs 84.9%.
  standard = keras.layers.Normalization(mean=mean, variance=variance, name="standardise")(average)
  positive = keras.layers.Dense(1, activation="sigmoid", name="positive")(standard)
  model = keras.Model(ids, positive, name="sentiment")
  rate = config.fine_tune_learning_rate if embedding.trainable else config.learning_rate
  model.compile(optimizer=keras.optimizers.Adam(rate),
                loss="binary_crossentropy", metrics=["accuracy"])
  return model


def masked_averages(embedding, ids: np.ndarray, batch_size: int = 1024) -> np.ndarray:
  """The classifier's average-pooling output [N, d] for ids [N, L] (padding left out)."""
  import keras  # pylint: disable=import-outside-toplevel
  inputs = keras.Input(shape=(None,), dtype="int32")
  model = keras.Model(inputs, keras.layers.GlobalAveragePooling1D()(embedding(inputs)))
  return model.predict(ids, batch_size=batch_size, verbose=0)


def _accuracies(model, data: dict) -> dict:
  """{"train_accuracy" (the fit rows), "validation_accuracy", "test_accuracy"}.

  One `predict` over all rows: each call with a new last-batch shape retraces the predict
  function (and TensorFlow warns after five).
  """
  parts = ("fit", "validation", "test")
  ids = np.concatenate([data[part][0] for part in parts])
  predicted = model.predict(ids, batch_size=1024, verbose=0)[:, 0] > 0.5  # [N]
  result, start = {}, 0
  for part, key in zip(parts, ("train", "validation", "test")):
    labels = data[part][1]
    result[f"{key}_accuracy"] = float(np.mean(predicted[start:start + len(labels)] == labels))
    start += len(labels)
  return result


class _DropRetracing(logging.Filter):
  """Drops TF's "N out of the last N calls to <function ...> triggered tf.function retracing"."""

  def filter(self, record: logging.LogRecord) -> bool:
    return "triggered tf.function retracing" not in record.getMessage()


@contextlib.contextmanager
def quiet_retracing():
  """Within it, TF's retracing warnings are dropped (its other messages pass).

  Each variant builds new Keras models, whose predict functions are traced once each, as they
  must be; TF counts those traces across models and printed two ~600-character warnings per
  run (TF's logger and absl's), which pointed at nothing to fix.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  logger, dropping = tf.get_logger(), _DropRetracing()
  logger.addFilter(dropping)
  try:
    yield
  finally:
    logger.removeFilter(dropping)


def train_variant(name: str, embedding, data: dict, config: ClassifierConfig,
                  log: Callable[[str], None]) -> dict:
  """Trains one classifier with early stopping and scores it (`_train_variant`), without TF's
  retracing warnings (`quiet_retracing`)."""
  with quiet_retracing():
    return _train_variant(name, embedding, data, config, log)


def _train_variant(name: str, embedding, data: dict, config: ClassifierConfig,
                   log: Callable[[str], None]) -> dict:
  """Trains one classifier with early stopping and scores it.

  Args:
    name: the variant, for the progress lines.
    embedding: its `mask_zero` embedding layer.
    data: "fit", "validation", "test": (ids [n, L], labels [n]) each.
    config: how to train.
    log: prints one progress line per epoch.

  Returns:
    {"train_accuracy" (the fit rows), "validation_accuracy", "test_accuracy", "epochs" (run),
     "best_epoch", "seconds"}.
  """
  import keras  # pylint: disable=import-outside-toplevel
  start = time.perf_counter()
  keras.utils.set_random_seed(config.seed)
  fit_ids, fit_labels = data["fit"]
  targets = lambda labels: labels.astype(np.float32)[:, None]  # [n, 1], as the output's shape
  averages = masked_averages(embedding, fit_ids)  # [n, d]
  model = build_classifier(embedding, config, averages.mean(axis=0), averages.var(axis=0))
  epoch_start = [0.0]

  def epoch_line(epoch, logs):
    log(f"{name}: epoch {epoch + 1}/{config.epochs} | loss {logs['loss']:.4f} | acc "
        f"{100 * logs['accuracy']:.2f}% | val loss {logs['val_loss']:.4f} | val acc "
        f"{100 * logs['val_accuracy']:.2f}% | {time.perf_counter() - epoch_start[0]:.1f} s")

  validation_ids, validation_labels = data["validation"]
  history = model.fit(
      fit_ids, targets(fit_labels), validation_data=(validation_ids, targets(validation_labels)),
      epochs=config.epochs,
      batch_size=config.batch_size, shuffle=True, verbose=0,
      callbacks=[keras.callbacks.EarlyStopping(monitor="val_loss", patience=config.patience,
                                               restore_best_weights=True),
                 keras.callbacks.LambdaCallback(
                     on_epoch_begin=lambda *_: epoch_start.__setitem__(0, time.perf_counter()),
                     on_epoch_end=epoch_line)])
  validation_losses = history.history["val_loss"]
  return {**_accuracies(model, data), "epochs": len(validation_losses),
          "best_epoch": int(np.argmin(validation_losses)) + 1,
          "seconds": time.perf_counter() - start}
