"""Extrinsic check: IMDB sentiment with Keras classifiers on the word vectors (Maas et al. 2011).

Usage:
  python -m eval.sentiment --vectors=vectors.bin [--csv=data/IMDB_Dataset.csv]
      [--max_reviews=0] [--stopwords=nltk] [--epochs=20] [--max_length=256] [--seed=0]
      [--variants=frozen,random,trainable] [--output_json=out.json]

Each classifier is embedding -> average pooling (masked: padding does not count) -> a fixed
standardisation -> one dense unit (sigmoid), trained with Adam on binary cross-entropy, with:
  frozen     the vectors, frozen (the seed tutorial's classifier);
  random     Gaussian vectors of the same shape and overall scale, frozen: the control; the
             gap frozen - random is what the learned vectors add over chance structure;
  trainable  initialised from the vectors and fine-tuned with the dense layer.
The embedding layers are `w2v_tf.keras_vectors.embedding_layers`' (`mask_zero=True`); the
classifiers are in `eval.sentiment_classifier`.

Reviews are cleaned by the project's rules (`w2v_tf.text`, `--stopwords` as in training); tokens
without a vector are dropped, then the first `--max_length` remaining tokens of each review are
kept (0-padded, masked). A review with no token left is the OOV row alone (zeros), i.e. the zero
average. Only the words that occur in the reviews are put in the embedding (the others never
change an output or receive a gradient; a 400k-word GloVe table would cost memory and Adam's
dense update for nothing).

Split (fixed, documented): the CSV's rows are already shuffled; of the first N rows
(N = --max_reviews, 0 = all 50,000), the first N // 2 are the training half and the rest test,
i.e. 25k / 25k on the full file. The last `--validation_fraction` (10%) of the training half is
the validation slice for early stopping (stop when its loss has not improved for `--patience`
epochs, keep the best epoch's weights). Seeds: `keras.utils.set_random_seed(--seed)` before
each variant, and the random vectors are drawn from `--seed`. Labels: `positive` = 1,
`negative` = 0 (case-insensitive).
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from typing import Callable, Sequence

from absl import flags
import numpy as np

from . import cli
from .sentiment_classifier import ClassifierConfig, encode_reviews, random_like, train_variant
from w2v_tf import data_home
from w2v_tf.errors import UsageError, UserError
from w2v_tf.fileio import check_gzip_complete

CSV_NAME = "IMDB_Dataset.csv"  # in the data folder (`w2v_tf.data_home`)
LABELS = {"positive": 1, "negative": 0}
VARIANTS = ("frozen", "random", "trainable")
VARIANT_NAMES = {"frozen": "pre-trained, frozen", "random": "random, frozen (control)",
                 "trainable": "pre-trained, fine-tuned"}


def read_labelled_reviews(path: str, max_reviews: int = 0) -> tuple[list[str], np.ndarray]:
  """Reads the `review` and `sentiment` columns of an IMDB-style CSV (.csv or .csv.gz).

  Args:
    path: the CSV file.
    max_reviews: read only the first N rows (0 = all).

  Returns:
    (reviews, labels): N strings and int64 [N] labels (1 = positive).

  Raises:
    UserError: missing / unreadable / empty file, missing columns or unknown labels.
  """
  import pandas as pd  # pylint: disable=import-outside-toplevel
  _check_readable(path)
  try:
    frame = pd.read_csv(path, nrows=max_reviews or None, dtype=str, keep_default_na=False)
  except pd.errors.EmptyDataError as e:
    raise UserError(f"{path} is empty: expected a CSV with a 'review,sentiment' header") from e
  except (pd.errors.ParserError, UnicodeDecodeError, OSError, EOFError) as e:
    reason = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    raise UserError(f"cannot parse {path} as CSV ({reason}): check the file") from e
  missing = [c for c in ("review", "sentiment") if c not in frame.columns]
  if missing:
    raise UserError(f"{path}: no column {missing[0]!r} in the header "
                    f"{list(frame.columns)[:10]}: expected the IMDB 'review,sentiment' layout")
  if frame.empty:
    raise UserError(f"{path} has a header but no rows: expected labelled reviews")
  labels = frame["sentiment"].str.strip().str.lower().map(LABELS)
  if labels.isna().any():
    row = int(np.flatnonzero(labels.isna().to_numpy())[0])
    value = frame["sentiment"].iloc[row]
    raise UserError(f"{path}: row {row + 2} has sentiment {value[:30]!r}; expected 'positive' "
                    "or 'negative'")
  return frame["review"].tolist(), labels.to_numpy(dtype=np.int64)


def _check_readable(path: str) -> None:
  """UserError for a missing, unreadable or empty file (before any heavy import)."""
  if not os.path.isfile(path):
    raise UserError(f"review CSV {path} not found: pass --csv with the IMDB "
                    "'review,sentiment' CSV (.csv or .csv.gz)")
  try:
    with open(path, "rb") as f:
      first = f.read(1)
  except OSError as e:
    raise UserError(f"cannot read {path} ({e.strerror}): check its permissions") from e
  if not first:
    raise UserError(f"{path} is empty: expected a CSV with a 'review,sentiment' header")
  if path.endswith(".gz"):
    check_gzip_complete(path)  # pandas with nrows would stop quietly at a cut


def split_rows(num_rows: int) -> tuple[np.ndarray, np.ndarray]:
  """The fixed split: first half train, second half test. Returns two index arrays."""
  half = num_rows // 2
  return np.arange(half), np.arange(half, num_rows)


def validation_rows(train: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray]:
  """(fit rows, validation rows): the last `fraction` of the training rows validate (>= 1)."""
  num_validation = min(max(1, round(fraction * len(train))), len(train) - 1)
  return train[:len(train) - num_validation], train[len(train) - num_validation:]


def evaluate_sentiment(word_vectors, token_lists: Sequence[Sequence[str]], labels: np.ndarray,
                       config: ClassifierConfig = ClassifierConfig(),
                       variants: Sequence[str] = VARIANTS,
                       log: Callable[[str], None] | None = None) -> dict:
  """Trains and scores the classifier variants on the fixed split.

  Args:
    word_vectors: a `WordVectors` ([V, d]).
    token_lists: N cleaned reviews (first half train, second half test).
    labels: [N] 0/1 labels.
    config: how to train.
    variants: some of `VARIANTS`.
    log: prints a progress line (default: stderr).

  Returns:
    {"variants": {name: train_variant's dict}, "gap" (frozen - random test accuracy, None
     unless both ran), "majority_accuracy", "train_reviews", "validation_reviews",
     "test_reviews", "token_coverage", "truncated_reviews", "empty_reviews", "dim",
     "vocab_size", "embedding_words", "config", "split"}.

  Raises:
    UserError: fewer than 6 reviews, or one label only in the training half.
  """
  from w2v_tf.keras_vectors import embedding_layers  # pylint: disable=import-outside-toplevel
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  log = log or (lambda line: print(line, file=sys.stderr, flush=True))
  if not variants or not set(variants) <= set(VARIANTS):
    raise ValueError(f"variants must be some of {VARIANTS}, got {list(variants)}")
  labels = np.asarray(labels, dtype=np.int64)
  if len(labels) < 6:
    raise UserError(f"{len(labels)} reviews: need at least 6 (2 to fit, 1 to validate, 3 to "
                    "test)")
  train, test = split_rows(len(labels))
  fit, validation = validation_rows(train, config.validation_fraction)
  if len(np.unique(labels[train])) < 2:
    raise UserError("the training half has only one label: use more reviews (--max_reviews)")
  occurring = {token for tokens in token_lists for token in tokens}
  rows = [i for i, word in enumerate(word_vectors.words) if word in occurring]
  used = WordVectors([word_vectors.words[i] for i in rows] or word_vectors.words[:1],
                     word_vectors.vectors[rows or [0]])  # an empty table cannot be built
  lookup, _ = embedding_layers(used, mask_zero=True)
  ids, stats = encode_reviews(token_lists, lookup, config.max_length)  # [N, L]
  data = {"fit": (ids[fit], labels[fit]), "validation": (ids[validation], labels[validation]),
          "test": (ids[test], labels[test])}
  results = {}
  for name in variants:
    vectors = used if name != "random" else WordVectors(used.words,
                                                        random_like(used.vectors, config.seed))
    _, embedding = embedding_layers(vectors, trainable=name == "trainable", mask_zero=True)
    results[name] = train_variant(name, embedding, data, config, log)
  positive_rate = float(np.mean(labels[test]))
  return {
      "variants": results,
      "gap": (results["frozen"]["test_accuracy"] - results["random"]["test_accuracy"]
              if "frozen" in results and "random" in results else None),
      "majority_accuracy": max(positive_rate, 1 - positive_rate),
      "train_reviews": int(len(fit)), "validation_reviews": int(len(validation)),
      "test_reviews": int(len(test)), **stats,
      "dim": word_vectors.dim, "vocab_size": len(word_vectors), "embedding_words": len(rows),
      "config": dataclasses.asdict(config),
      "split": "first half of the rows train (its last validation_fraction validates), "
               "second half test",
  }


# --- Binary ---------------------------------------------------------------------------------------


def define_flags() -> None:
  """Defines this binary's flags (only where `python -m eval.sentiment` runs it)."""
  cli.define_vector_flags()
  flags.adopt_module_key_flags(cli)  # --vectors and --model_dir listed in --help too
  defaults = ClassifierConfig()
  flags.DEFINE_string("csv", None,
                      f"IMDB CSV with 'review' and 'sentiment' columns (.csv or .csv.gz). "
                      f"Default: {data_home.path(CSV_NAME)}, else its .gz. "
                      + data_home.describe())
  flags.DEFINE_integer("max_reviews", 0,
                       "Use only the first N rows (half train, half test); 0 = all.")
  flags.DEFINE_string("stopwords", "nltk",
                      "Stopwords removed when cleaning: 'nltk', 'none' or a one-word-per-line "
                      "file (use the trainer's setting).")
  flags.DEFINE_list("variants", list(VARIANTS),
                    "Classifiers to train: frozen (the vectors), random (same shape, the "
                    "control), trainable (initialised from the vectors).")
  flags.DEFINE_integer("epochs", defaults.epochs, "Epochs at most per classifier.")
  flags.DEFINE_integer("patience", defaults.patience,
                       "Stop after this many epochs without a better validation loss.")
  flags.DEFINE_integer("batch_size", defaults.batch_size, "Reviews per training step.")
  flags.DEFINE_float("learning_rate", defaults.learning_rate,
                     "Adam's learning rate for the frozen variants (only the dense layer learns).")
  flags.DEFINE_float("fine_tune_learning_rate", defaults.fine_tune_learning_rate,
                     "Adam's learning rate for the trainable variant.")
  flags.DEFINE_integer("max_length", defaults.max_length,
                       "Tokens (with a vector) kept per review, the first ones.")
  flags.DEFINE_float("validation_fraction", defaults.validation_fraction,
                     "Share of the training half used as the early-stopping validation slice.")
  flags.DEFINE_integer("seed", defaults.seed,
                       "Seed of the classifiers' initialisation and shuffling, and of the random "
                       "vectors.")
  flags.DEFINE_string("output_json", None, "Write the results as JSON here.")


def _csv_path(explicit: str | None) -> str:
  if explicit:
    return explicit
  default = data_home.path(CSV_NAME)
  for candidate in (default, default + ".gz"):
    if os.path.exists(candidate):
      return candidate
  raise UserError(f"no {default}[.gz]: pass --csv with the IMDB 'review,sentiment' CSV, or "
                  "fetch it with `python -m w2v_tf.get_data`")


def _config_from_flags(f) -> ClassifierConfig:
  """The flags' `ClassifierConfig`; UsageError naming every value out of range."""
  config = ClassifierConfig(epochs=f.epochs, patience=f.patience, batch_size=f.batch_size,
                            learning_rate=f.learning_rate,
                            fine_tune_learning_rate=f.fine_tune_learning_rate,
                            max_length=f.max_length,
                            validation_fraction=f.validation_fraction, seed=f.seed)
  problems = config.problems()
  if f.max_reviews < 0:
    problems.insert(0, f"--max_reviews={f.max_reviews}: must be 0 (all) or more")
  unknown = [v for v in f.variants if v not in VARIANTS]
  if unknown or not f.variants:
    problems.append(f"--variants={','.join(f.variants)}: give some of {','.join(VARIANTS)}")
  if problems:
    raise UsageError("; ".join(problems))
  return config


def format_table(result: dict) -> list[str]:
  """The report's lines: one row per variant, the majority class, the frozen - random gap."""
  config = result["config"]
  lines = [f"{'classifier (embedding -> masked average -> dense)':<50} {'epochs':>7} "
           f"{'train acc':>9} {'val acc':>8} {'test acc':>8} {'seconds':>8}"]
  for name, row in result["variants"].items():
    lines.append(f"{VARIANT_NAMES[name]:<50} {row['best_epoch']:>3}/{row['epochs']:<3} "
                 f"{100 * row['train_accuracy']:>8.2f}% {100 * row['validation_accuracy']:>7.2f}% "
                 f"{100 * row['test_accuracy']:>7.2f}% {row['seconds']:>8.1f}")
  lines.append(f"{'majority class':<50} {'':>7} {'':>9} {'':>8} "
               f"{100 * result['majority_accuracy']:>7.2f}%")
  if result["gap"] is not None:
    lines.append(f"gap, pre-trained frozen - random frozen: {100 * result['gap']:+.2f} points of "
                 "test accuracy")
  lines.append(f"(epochs: best/run of at most {config['epochs']}, patience {config['patience']}; "
               f"batch {config['batch_size']}, Adam {config['learning_rate']:g} frozen / "
               f"{config['fine_tune_learning_rate']:g} fine-tuned, seed {config['seed']})")
  return lines


def main(argv: Sequence[str]) -> None:
  from w2v_tf.fileio import atomic_write_json  # pylint: disable=import-outside-toplevel
  cli.check_no_args(argv)
  f = flags.FLAGS
  config = _config_from_flags(f)
  started = time.perf_counter()
  csv_path = _csv_path(f.csv)
  _check_readable(csv_path)
  word_vectors, source = cli.load_from_flags(f.vectors, f.model_dir, f.drop_nonfinite)
  reviews, labels = read_labelled_reviews(csv_path, f.max_reviews)
  from w2v_tf import text  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  stopwords = text.load_stopwords(f.stopwords)
  start = time.perf_counter()
  token_lists = text.tokenize_texts(reviews, stopwords)
  tokenize_seconds = time.perf_counter() - start
  result = evaluate_sentiment(word_vectors, token_lists, labels, config, f.variants)
  result.update(vectors=source, csv=csv_path, stopwords=f.stopwords,
                tokenize_seconds=tokenize_seconds, seconds=time.perf_counter() - started)
  print(f"vectors: {source} ({len(word_vectors)} x {word_vectors.dim}); reviews: {csv_path} "
        f"({result['train_reviews']} train + {result['validation_reviews']} validation / "
        f"{result['test_reviews']} test: first half / second half)")
  print(f"tokens with a vector: {100 * result['token_coverage']:.1f}%; reviews cut at "
        f"{config.max_length} tokens: {100 * result['truncated_reviews'] / len(labels):.1f}%; "
        f"with none: {result['empty_reviews']}")
  print("\n".join(format_table(result)))
  print(f"wall time {result['seconds']:.0f} s (cleaning {tokenize_seconds:.0f} s)")
  if f.output_json:
    atomic_write_json(f.output_json, result)


if __name__ == "__main__":
  cli.run(main, define_flags)
