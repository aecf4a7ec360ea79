"""The tokenized corpus: one tf.data pass over the CSV (read + clean), cached on disk.

The cache holds every distinct cleaned word with its count (sorted by descending count, ties
alphabetical, so any vocabulary built from it is a prefix of it), the token ids of the whole
corpus and the review offsets. It is keyed by the CSV's content and every option that changes the
tokens, so a second run skips cleaning, and a changed file or option rebuilds it.
"""

from __future__ import annotations

import csv
import dataclasses
import gzip
import hashlib
import io
import os
import sys
import time

import numpy as np
import tensorflow as tf

from w2v_tf import text
from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_open

# Bump when the cleaning rules or the cache layout change.
CACHE_VERSION = 1
_READ_BATCH = 512


@dataclasses.dataclass(frozen=True)
class Corpus:
  """A cleaned corpus (before min_count and subsampling).

  Attributes:
    types: [U] distinct words, by descending count then alphabetically.
    type_counts: [U] int64 counts of `types`.
    token_ids: [T] int32 ids into `types`, reviews one after the other.
    review_offsets: [R + 1] int64; review r is token_ids[review_offsets[r]:review_offsets[r+1]].
  """
  types: tuple[str, ...]
  type_counts: np.ndarray
  token_ids: np.ndarray
  review_offsets: np.ndarray

  @property
  def num_reviews(self) -> int:
    return len(self.review_offsets) - 1

  @property
  def num_tokens(self) -> int:
    return len(self.token_ids)


def _open_text(path: str):
  if path.endswith(".gz"):
    return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
  return open(path, encoding="utf-8", errors="replace", newline="")


def read_header(path: str) -> list[str]:
  """The CSV's column names. Raises UserError for a missing, unreadable or empty file."""
  if not os.path.exists(path):
    raise UserError(f"{path}: no such file: pass --train_csv, or fetch the data with "
                    "`python -m w2v_tf.get_data`")
  try:
    with _open_text(path) as f:
      header = next(csv.reader(f), None)
  except (OSError, EOFError, gzip.BadGzipFile) as e:
    raise UserError(f"{path}: cannot read it ({e}); check the file (a .gz must be gzip)") from e
  if not header:
    raise UserError(f"{path}: file is empty; expected a CSV with a header row")
  return header


def read_reviews(path: str, text_column: str = "review", max_reviews: int = 0) -> tf.data.Dataset:
  """A dataset of raw review strings from a CSV / CSV.gz (RFC 4180 quoting, `""` escapes).

  Args:
    path: the CSV file; `.gz` means gzip.
    text_column: name of the text column in the header.
    max_reviews: read only the first N rows (0 = all).

  Returns:
    tf.data.Dataset of scalar tf.string.
  """
  header = read_header(path)
  if text_column not in header:
    raise UserError(f"{path}: no column {text_column!r} in the header {header[:10]}; "
                    "pass --text_column with one of those")
  dataset = tf.data.experimental.CsvDataset(
      path, [tf.string], header=True, select_cols=[header.index(text_column)],
      compression_type="GZIP" if path.endswith(".gz") else "", buffer_size=1 << 20)
  dataset = dataset.map(lambda review: review)
  if max_reviews > 0:
    dataset = dataset.take(max_reviews)
  return dataset


def _file_digest(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def cache_key(path: str, text_column: str, max_reviews: int, stopwords: frozenset[str]) -> str:
  """A digest of the file content and every option that changes the tokens."""
  digest = hashlib.sha256()
  for part in (str(CACHE_VERSION), _file_digest(path), text_column, str(max_reviews),
               "\n".join(sorted(stopwords))):
    digest.update(part.encode("utf-8"))
    digest.update(b"\0")
  return digest.hexdigest()[:24]


def tokenize_csv(path: str, text_column: str, max_reviews: int,
                 stopwords: frozenset[str], progress: bool = True) -> Corpus:
  """Reads and cleans the CSV with tf.data (no cache). See `load_corpus`."""
  table = text.stopword_table(stopwords)
  dataset = read_reviews(path, text_column, max_reviews).batch(_READ_BATCH)
  dataset = dataset.map(lambda reviews: text.clean_reviews(reviews, table),
                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(4)
  token_batches, lengths = [], []
  started = time.time()
  try:
    for batch_index, tokens in enumerate(dataset):
      token_batches.append(tokens.flat_values)
      lengths.append(tokens.row_lengths().numpy())
      if progress and batch_index % 20 == 19:
        reviews_done = sum(len(x) for x in lengths)
        print(f"\rcleaning {path}: {reviews_done:,} reviews, "
              f"{reviews_done / (time.time() - started):,.0f} reviews/s", end="", file=sys.stderr)
  except tf.errors.InvalidArgumentError as e:
    raise UserError(f"{path}: malformed CSV ({e.message.splitlines()[0]}); "
                    "check quoting near row " f"{sum(len(x) for x in lengths) + 2}") from e
  if progress:
    print(file=sys.stderr)
  row_lengths = np.concatenate(lengths) if lengths else np.zeros([0], np.int64)
  if not token_batches or row_lengths.sum() == 0:
    raise UserError(f"{path}: no tokens left after cleaning ({len(row_lengths)} rows read); "
                    "check --text_column, --stopwords and the file's content")
  all_tokens = tf.concat(token_batches, axis=0)
  types, ids, counts = tf.unique_with_counts(all_tokens, out_idx=tf.int32)
  types = [t.decode("utf-8") for t in types.numpy()]
  counts = counts.numpy().astype(np.int64)
  order = np.lexsort((np.asarray(types, dtype=object), -counts))  # by -count, then word
  rank = np.empty_like(order)
  rank[order] = np.arange(len(order))
  return Corpus(
      types=tuple(types[i] for i in order),
      type_counts=counts[order],
      token_ids=rank[ids.numpy()].astype(np.int32),
      review_offsets=np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int64))


def _save(corpus: Corpus, path: str) -> None:
  with atomic_open(path, "wb") as f:
    np.savez(f, types="\n".join(corpus.types).encode("utf-8"), type_counts=corpus.type_counts,
             token_ids=corpus.token_ids, review_offsets=corpus.review_offsets)


def _load(path: str) -> Corpus:
  with np.load(path) as data:
    types = bytes(data["types"]).decode("utf-8")
    return Corpus(types=tuple(types.split("\n")) if types else (),
                  type_counts=data["type_counts"], token_ids=data["token_ids"],
                  review_offsets=data["review_offsets"])


def load_corpus(path: str, text_column: str = "review", max_reviews: int = 0,
                stopwords: frozenset[str] = frozenset(), cache_dir: str | None = "data/cache",
                progress: bool = True) -> Corpus:
  """The cleaned corpus of a CSV, from the cache when it is there.

  Args:
    path: CSV / CSV.gz file.
    text_column: column with the text.
    max_reviews: first N rows only (0 = all).
    stopwords: the stopword set (part of the cache key).
    cache_dir: cache folder (None: no cache).
    progress: print progress on stderr while cleaning.
  """
  read_header(path)  # clear errors before hashing
  if cache_dir is None:
    return tokenize_csv(path, text_column, max_reviews, stopwords, progress)
  cache_path = os.path.join(cache_dir, f"corpus-{cache_key(path, text_column, max_reviews, stopwords)}.npz")
  if os.path.exists(cache_path):
    try:
      return _load(cache_path)
    except Exception as e:  # pylint: disable=broad-except
      text.warn(f"ignoring unreadable corpus cache {cache_path} ({e}); rebuilding it")
  corpus = tokenize_csv(path, text_column, max_reviews, stopwords, progress)
  try:
    _save(corpus, cache_path)
  except OSError as e:
    text.warn(f"could not write the corpus cache {cache_path} ({e.strerror}); continuing without")
  return corpus
