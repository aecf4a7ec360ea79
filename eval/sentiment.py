"""Extrinsic check: IMDB sentiment from averaged word vectors (Maas et al. 2011), vs random ones.

Usage:
  python -m eval.sentiment --vectors=vectors.bin [--csv=data/IMDB_Dataset.csv]
      [--max_reviews=0] [--stopwords=nltk] [--output_json=out.json]

A review is represented by the mean of its cleaned tokens' vectors (the project's cleaning rules,
`w2v_tf.text`; tokens without a vector are left out, a review with none is the zero vector).
An L2-regularised logistic regression (Newton's method on standardised features, numpy only)
is trained on the training half and scored on the test half. The same is done in the same run
with random Gaussian vectors of the same shape for the same words (seeded): the gap between the
two accuracies is what the learned vectors add.

Split (fixed, documented): the CSV's rows are already shuffled; of the first N rows
(N = --max_reviews, 0 = all 50,000), the first N // 2 train and the rest test, i.e. 25k / 25k
on the full file. Labels: `positive` = 1, `negative` = 0 (case-insensitive).
"""

from __future__ import annotations

import os
import time
from typing import Sequence

from absl import flags
import numpy as np

from eval import cli
from w2v_tf.errors import UsageError, UserError

DEFAULT_CSV = os.path.join("data", "IMDB_Dataset.csv")
LABELS = {"positive": 1, "negative": 0}
_GATHER_TOKENS = 1 << 18  # token vectors gathered at once when averaging


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


def split_rows(num_rows: int) -> tuple[np.ndarray, np.ndarray]:
  """The fixed split: first half train, second half test. Returns two index arrays."""
  half = num_rows // 2
  return np.arange(half), np.arange(half, num_rows)


def average_vectors(token_lists: Sequence[Sequence[str]], words: Sequence[str],
                    vectors: np.ndarray) -> tuple[np.ndarray, float]:
  """Mean vector of each document's tokens that have a vector.

  Args:
    token_lists: N documents as token lists.
    words: V words (exact-match lookup).
    vectors: [V, d] vectors.

  Returns:
    (features float32 [N, d], token coverage: fraction of tokens that had a vector).
  """
  index = {w: i for i, w in reversed(list(enumerate(words)))}  # first row of a word wins
  lengths = np.zeros(len(token_lists), dtype=np.int64)
  ids = []
  total = 0
  for doc, tokens in enumerate(token_lists):
    total += len(tokens)
    found = [index[t] for t in tokens if t in index]
    lengths[doc] = len(found)
    ids.extend(found)
  ids = np.asarray(ids, dtype=np.int64)
  features = np.zeros((len(token_lists), vectors.shape[1]), dtype=np.float32)  # [N, d]
  ends = np.cumsum(lengths)
  starts = ends - lengths
  doc = 0
  while doc < len(token_lists):
    last = int(np.searchsorted(ends, starts[doc] + _GATHER_TOKENS, side="right"))
    last = max(last, doc + 1)  # docs [doc, last) gathered together
    docs = np.arange(doc, last)
    docs = docs[lengths[docs] > 0]
    if docs.size:
      base = starts[docs[0]]
      gathered = vectors[ids[base:ends[docs[-1]]]]  # [T, d]
      sums = np.add.reduceat(gathered, starts[docs] - base, axis=0)  # [docs, d]
      features[docs] = sums / lengths[docs, None]
    doc = last
  return features, (len(ids) / total if total else 0.0)


def _sigmoid(z: np.ndarray) -> np.ndarray:
  return 0.5 * (1.0 + np.tanh(0.5 * z))


def train_logistic_regression(x: np.ndarray, y: np.ndarray, l2: float = 1.0,
                              max_iterations: int = 50) -> tuple[np.ndarray, np.ndarray,
                                                                 np.ndarray]:
  """Fits L2-regularised logistic regression with Newton's method on standardised features.

  Minimises sum_i logloss(y_i, w.x_i + b) + l2 / 2 * |w|^2 (the bias is not penalised).

  Args:
    x: [N, d] features.
    y: [N] labels in {0, 1}.
    l2: regularisation strength.
    max_iterations: Newton steps at most.

  Returns:
    (mean [d], scale [d], weights [d + 1]) for `predict_logistic_regression`.
  """
  x = np.asarray(x, dtype=np.float64)
  mean = x.mean(axis=0)
  scale = x.std(axis=0)
  scale[scale == 0] = 1.0
  design = np.hstack([(x - mean) / scale, np.ones((len(x), 1))])  # [N, d + 1]
  penalty = np.full(design.shape[1], l2)
  penalty[-1] = 0.0
  weights = np.zeros(design.shape[1])
  for _ in range(max_iterations):
    p = _sigmoid(design @ weights)  # [N]
    gradient = design.T @ (p - y) + penalty * weights
    hessian = (design * (p * (1 - p))[:, None]).T @ design + np.diag(penalty + 1e-9)
    step = np.linalg.solve(hessian, gradient)
    weights -= step
    if np.max(np.abs(step)) < 1e-8:
      break
  return mean, scale, weights


def predict_logistic_regression(model: tuple[np.ndarray, np.ndarray, np.ndarray],
                                x: np.ndarray) -> np.ndarray:
  """0/1 predictions [N] of a model from `train_logistic_regression`."""
  mean, scale, weights = model
  z = ((np.asarray(x, dtype=np.float64) - mean) / scale) @ weights[:-1] + weights[-1]
  return (z > 0).astype(np.int64)


def classify(features: np.ndarray, labels: np.ndarray, l2: float = 1.0) -> dict:
  """Trains on the first half of the rows and scores both halves.

  Returns:
    {"train_accuracy": float, "test_accuracy": float}.
  """
  train, test = split_rows(len(labels))
  model = train_logistic_regression(features[train], labels[train], l2)
  return {
      "train_accuracy": float(np.mean(predict_logistic_regression(model, features[train])
                                      == labels[train])),
      "test_accuracy": float(np.mean(predict_logistic_regression(model, features[test])
                                     == labels[test])),
  }


def evaluate_sentiment(words: Sequence[str], vectors: np.ndarray,
                       token_lists: Sequence[Sequence[str]], labels: np.ndarray,
                       l2: float = 1.0, seed: int = 0) -> dict:
  """Sentiment accuracy with the given vectors and with random vectors of the same shape.

  Args:
    words: V words.
    vectors: [V, d] vectors.
    token_lists: N cleaned reviews (first half train, second half test).
    labels: [N] 0/1 labels.
    l2: logistic-regression regularisation.
    seed: seed of the random vectors.

  Returns:
    {"test_accuracy", "train_accuracy", "random_test_accuracy", "random_train_accuracy",
     "majority_accuracy", "train_reviews", "test_reviews", "token_coverage", "dim", ...}.
  """
  labels = np.asarray(labels, dtype=np.int64)
  if len(labels) < 4:
    raise UserError(f"{len(labels)} reviews: need at least 4 (2 to train, 2 to test)")
  train, test = split_rows(len(labels))
  if len(np.unique(labels[train])) < 2:
    raise UserError("the training half has only one label: use more reviews (--max_reviews)")
  vectors = np.asarray(vectors, dtype=np.float32)
  features, coverage = average_vectors(token_lists, words, vectors)
  learned = classify(features, labels, l2)
  rng = np.random.default_rng(seed)
  random_vectors = rng.standard_normal(vectors.shape).astype(np.float32)  # [V, d]
  random_features, _ = average_vectors(token_lists, words, random_vectors)
  random = classify(random_features, labels, l2)
  positive_rate = float(np.mean(labels[test]))
  return {
      "test_accuracy": learned["test_accuracy"],
      "train_accuracy": learned["train_accuracy"],
      "random_test_accuracy": random["test_accuracy"],
      "random_train_accuracy": random["train_accuracy"],
      "majority_accuracy": max(positive_rate, 1 - positive_rate),
      "train_reviews": int(len(train)),
      "test_reviews": int(len(test)),
      "token_coverage": coverage,
      "dim": int(vectors.shape[1]),
      "vocab_size": int(vectors.shape[0]),
      "l2": l2,
      "seed": seed,
      "split": "first half of the rows train, second half test",
  }


# --- Binary ---------------------------------------------------------------------------------------


def define_flags() -> None:
  """Defines this binary's flags (only where `python -m eval.sentiment` runs it)."""
  cli.define_vector_flags()
  flags.adopt_module_key_flags(cli)  # --vectors and --model_dir listed in --help too
  flags.DEFINE_string("csv", None,
                      f"IMDB CSV with 'review' and 'sentiment' columns (.csv or .csv.gz). "
                      f"Default: {DEFAULT_CSV}, else {DEFAULT_CSV}.gz.")
  flags.DEFINE_integer("max_reviews", 0,
                       "Use only the first N rows (half train, half test); 0 = all.")
  flags.DEFINE_string("stopwords", "nltk",
                      "Stopwords removed when cleaning: 'nltk', 'none' or a one-word-per-line "
                      "file (use the trainer's setting).")
  flags.DEFINE_float("l2", 1.0, "L2 strength of the logistic regression.")
  flags.DEFINE_integer("seed", 0, "Seed of the random baseline vectors.")
  flags.DEFINE_string("output_json", None, "Write the results as JSON here.")


def _csv_path(explicit: str | None) -> str:
  if explicit:
    return explicit
  for candidate in (DEFAULT_CSV, DEFAULT_CSV + ".gz"):
    if os.path.exists(candidate):
      return candidate
  raise UserError(f"no {DEFAULT_CSV}[.gz]: pass --csv with the IMDB 'review,sentiment' CSV")


def main(argv: Sequence[str]) -> None:
  from w2v_tf.fileio import atomic_write_json  # pylint: disable=import-outside-toplevel
  cli.check_no_args(argv)
  f = flags.FLAGS
  if f.max_reviews < 0:
    raise UsageError(f"--max_reviews={f.max_reviews}: must be 0 (all) or more")
  if f.l2 < 0:
    raise UsageError(f"--l2={f.l2}: must be 0 or more")
  csv_path = _csv_path(f.csv)
  _check_readable(csv_path)
  word_vectors, source = cli.load_from_flags(f.vectors, f.model_dir)
  reviews, labels = read_labelled_reviews(csv_path, f.max_reviews)
  from w2v_tf import text  # pylint: disable=import-outside-toplevel  (imports TensorFlow)
  stopwords = text.load_stopwords(f.stopwords)
  start = time.perf_counter()
  token_lists = text.tokenize_texts(reviews, stopwords)
  tokenize_seconds = time.perf_counter() - start
  result = evaluate_sentiment(word_vectors.words, word_vectors.vectors, token_lists, labels,
                              l2=f.l2, seed=f.seed)
  result.update(vectors=source, csv=csv_path, stopwords=f.stopwords,
                tokenize_seconds=tokenize_seconds)
  print(f"vectors: {source} ({len(word_vectors)} x {word_vectors.dim}); reviews: {csv_path} "
        f"({result['train_reviews']} train / {result['test_reviews']} test, first half / "
        "second half)")
  print(f"tokens with a vector: {100 * result['token_coverage']:.1f}%")
  print(f"{'features':<34} {'train acc':>9} {'test acc':>9}")
  print(f"{'averaged word vectors':<34} {100 * result['train_accuracy']:>8.2f}% "
        f"{100 * result['test_accuracy']:>8.2f}%")
  print(f"{'random vectors, same shape':<34} {100 * result['random_train_accuracy']:>8.2f}% "
        f"{100 * result['random_test_accuracy']:>8.2f}%")
  print(f"{'majority class':<34} {'':>9} {100 * result['majority_accuracy']:>8.2f}%")
  if f.output_json:
    atomic_write_json(f.output_json, result)


if __name__ == "__main__":
  cli.run(main, define_flags)
