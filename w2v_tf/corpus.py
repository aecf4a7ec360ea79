"""The tokenized corpus: one tf.data pass over the CSV (read + clean), cached on disk.

The cache holds every distinct cleaned word with its count (sorted by descending count, ties
alphabetical, so any vocabulary built from it is a prefix of it), the token ids of the whole
corpus and the review offsets. It is keyed by the CSV's content and every option that changes the
tokens, so a second run skips cleaning, and a changed file or option rebuilds it.

Bad input gets one clear error (`UserError`): a missing, unreadable or empty file, a header
without the text column, a malformed CSV record (an unbalanced or stray quote; the message
gives the physical line where the record starts), no token left after cleaning. Bytes that are
not UTF-8 are replaced by U+FFFD (they never form a token) and the affected reviews are counted
and reported in one warning; with `strict_utf8` such a file is refused, naming the first bad
row. The count is stored in the cache, so the check also holds when the cache is hit. Blank
lines are empty reviews; a row too short to have the text column is a malformed record.
A `.gz` that ends before gzip's end-of-stream marker (a cut download or copy) is refused as
truncated before anything is read: tf.data's reader would quietly stop at the cut.
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
from w2v_tf.fileio import atomic_open, check_gzip_complete

# Bump when the cleaning rules or the cache layout change.
CACHE_VERSION = 2
_READ_BATCH = 512


@dataclasses.dataclass(frozen=True)
class Corpus:
  """A cleaned corpus (before min_count and subsampling).

  Attributes:
    types: [U] distinct words, by descending count then alphabetically.
    type_counts: [U] int64 counts of `types`.
    token_ids: [T] int32 ids into `types`, reviews one after the other.
    review_offsets: [R + 1] int64; review r is token_ids[review_offsets[r]:review_offsets[r+1]].
    invalid_utf8_reviews: how many reviews held bytes that are not UTF-8 (replaced by U+FFFD).
    first_invalid_utf8_review: 0-based index of the first such review (-1: none).
  """
  types: tuple[str, ...]
  type_counts: np.ndarray
  token_ids: np.ndarray
  review_offsets: np.ndarray
  invalid_utf8_reviews: int = 0
  first_invalid_utf8_review: int = -1

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
  """The CSV's column names. Raises UserError for a missing, unreadable, empty or truncated file."""
  if not os.path.exists(path):
    raise UserError(f"{path}: no such file: pass --train_csv, or fetch the data with "
                    "`python -m w2v_tf.get_data`")
  if not (os.path.isfile(path) or os.path.isdir(path)):
    # A FIFO or process substitution: the corpus is read more than once (header, hash, rows),
    # and a second read hung or saw the header again.
    raise UserError(f"{path}: is a pipe or a device, not a file: the CSV is read more than "
                    "once; write it to a file first (e.g. `... > reviews.csv`)")
  if path.endswith(".gz") and os.path.isfile(path):
    check_gzip_complete(path)  # tf.data's reader would stop quietly at a cut
  try:
    with _open_text(path) as f:
      header = next(csv.reader(f), None)
  except (OSError, EOFError, gzip.BadGzipFile, csv.Error) as e:
    raise UserError(f"{path}: cannot read it ({e}); check the file (a .gz must be gzip)") from e
  if not header:
    raise UserError(f"{path}: file is empty; expected a CSV with a header row naming the "
                    "text column (e.g. review,sentiment)")
  header[0] = header[0].removeprefix("\ufeff")  # a UTF-8 byte-order mark
  return header


def check_text_column(path: str, header: list[str], text_column: str) -> None:
  """Raises UserError unless `text_column` names exactly one column of `header`."""
  if text_column not in header:
    raise UserError(f"{path}: no column {text_column!r} in the header {header[:10]}; "
                    "pass --text_column with one of those")
  if header.count(text_column) > 1:  # the first was used silently
    columns = [index + 1 for index, name in enumerate(header) if name == text_column]
    raise UserError(f"{path}: the header names {text_column!r} {len(columns)} times (columns "
                    f"{', '.join(map(str, columns))}): rename the duplicates, or pass "
                    "--text_column with another column")


def record_line(path: str, index: int) -> int:
  """The physical line (1-based) where data record `index` (0-based, after the header) starts.

  Records may span lines (quoted newlines), so this re-reads the file with Python's csv module;
  it is meant for error messages, not the hot path.
  """
  with _open_text(path) as f:
    reader = csv.reader(f)
    next(reader, None)  # the header
    try:
      for _ in range(index):
        if next(reader, None) is None:
          break
    except csv.Error:
      pass
    return reader.line_num + 1


def _count_readable_records(path: str, text_column: str) -> int:
  """How many data records CsvDataset reads before its first error (the bad one's index)."""
  count = 0
  try:
    for _ in _csv_dataset(path, text_column, read_header(path)):
      count += 1
  except tf.errors.OpError:
    pass
  return count


def _csv_dataset(path: str, text_column: str, header: list[str]) -> tf.data.Dataset:
  # A default makes blank lines and short rows empty reviews instead of errors.
  return tf.data.experimental.CsvDataset(
      path, [tf.constant("", tf.string)], header=True, select_cols=[header.index(text_column)],
      compression_type="GZIP" if path.endswith(".gz") else "", buffer_size=1 << 20)


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
  check_text_column(path, header, text_column)
  dataset = _csv_dataset(path, text_column, header)
  dataset = dataset.map(lambda review: review)
  if max_reviews > 0:
    dataset = dataset.take(max_reviews)
  return dataset


# {(path, device, inode, size, mtime): sha256}: the trainer asks for the key twice per run (the
# cache, then the model dir's data fingerprint); the file is hashed once.
_DIGESTS: dict[tuple, str] = {}


def _file_digest(path: str) -> str:
  stat = os.stat(path)
  identity = (os.path.abspath(path), stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns)
  if identity in _DIGESTS:
    return _DIGESTS[identity]
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  _DIGESTS[identity] = digest.hexdigest()
  return _DIGESTS[identity]


def cache_key(path: str, text_column: str, max_reviews: int, stopwords: frozenset[str]) -> str:
  """A digest of the file content and every option that changes the tokens.

  It is also a model dir's data fingerprint (`run_state`): a resumed run must see the same key.
  """
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
  dataset = dataset.map(lambda reviews: text.clean_reviews(reviews, table, True),
                        num_parallel_calls=tf.data.AUTOTUNE).prefetch(4)
  token_batches, lengths = [], []
  invalid_utf8, first_invalid = 0, -1
  started = time.time()
  progress_shown = False
  try:
    for batch_index, (tokens, invalid) in enumerate(dataset):
      token_batches.append(tokens.flat_values)
      invalid = invalid.numpy()
      if invalid.any():
        if first_invalid < 0:
          first_invalid = sum(len(x) for x in lengths) + int(np.argmax(invalid))
        invalid_utf8 += int(invalid.sum())
      lengths.append(tokens.row_lengths().numpy())
      if progress and batch_index % 20 == 19:
        reviews_done = sum(len(x) for x in lengths)
        progress_shown = True
        print(f"\rcleaning {path}: {reviews_done:,} reviews, "
              f"{reviews_done / (time.time() - started):,.0f} reviews/s", end="", file=sys.stderr)
  except tf.errors.InvalidArgumentError as e:
    if progress_shown:
      print(file=sys.stderr)
    reason = e.message.splitlines()[0].split("}} ")[-1].split(" [Op:")[0].rstrip(". ")
    line = record_line(path, _count_readable_records(path, text_column))
    fix = ('quote a field that holds a quote, double the quotes inside it ("a ""b"" c"), and '
           "close every opening quote" if "quote" in reason.lower() else
           "every row needs as many fields as the header has up to the text column")
    raise UserError(f"{path}: malformed CSV record starting on line {line} ({reason}): "
                    f"{fix}") from e
  except tf.errors.OpError as e:
    if progress_shown:
      print(file=sys.stderr)
    reason = e.message.splitlines()[0].split("}} ")[-1].split(" [Op:")[0]
    raise UserError(f"{path}: cannot read it ({reason}); check the file (a .gz must be a "
                    "complete gzip file)") from e
  if progress_shown:
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
      review_offsets=np.concatenate([[0], np.cumsum(row_lengths)]).astype(np.int64),
      invalid_utf8_reviews=invalid_utf8, first_invalid_utf8_review=first_invalid)


def _save(corpus: Corpus, path: str) -> None:
  with atomic_open(path, "wb") as f:
    np.savez(f, types="\n".join(corpus.types).encode("utf-8"), type_counts=corpus.type_counts,
             token_ids=corpus.token_ids, review_offsets=corpus.review_offsets,
             invalid_utf8=np.asarray([corpus.invalid_utf8_reviews,
                                      corpus.first_invalid_utf8_review], np.int64))


def _load(path: str) -> Corpus:
  with np.load(path) as data:
    types = bytes(data["types"]).decode("utf-8")
    invalid_utf8, first_invalid = (int(x) for x in data["invalid_utf8"])
    return Corpus(types=tuple(types.split("\n")) if types else (),
                  type_counts=data["type_counts"], token_ids=data["token_ids"],
                  review_offsets=data["review_offsets"], invalid_utf8_reviews=invalid_utf8,
                  first_invalid_utf8_review=first_invalid)


def check_utf8(corpus: Corpus, path: str, strict: bool) -> None:
  """Warns once about reviews with bytes that are not UTF-8, or refuses them when `strict`.

  Raises:
    UserError: `strict` and some review is not valid UTF-8 (names the first one).
  """
  if not corpus.invalid_utf8_reviews:
    return
  row = corpus.first_invalid_utf8_review
  where = f"row {row + 1}, line {record_line(path, row)}"
  count = corpus.invalid_utf8_reviews
  if strict:
    raise UserError(f"{path}: {count:,} review(s) hold bytes that are not UTF-8, the first at "
                    f"{where}: convert the file to UTF-8 (e.g. `iconv -f latin1 -t utf-8`) or "
                    "drop --strict_utf8 to replace those bytes")
  text.warn(f"{path}: {count:,} review(s) hold bytes that are not UTF-8 (first at {where}); "
            "they were replaced by U+FFFD and form no token (--strict_utf8 refuses such files)")


def load_corpus(path: str, text_column: str = "review", max_reviews: int = 0,
                stopwords: frozenset[str] = frozenset(), cache_dir: str | None = "data/cache",
                progress: bool = True, strict_utf8: bool = False) -> Corpus:
  """The cleaned corpus of a CSV, from the cache when it is there.

  Args:
    path: CSV / CSV.gz file.
    text_column: column with the text.
    max_reviews: first N rows only (0 = all).
    stopwords: the stopword set (part of the cache key).
    cache_dir: cache folder (None: no cache).
    progress: print progress on stderr while cleaning.
    strict_utf8: refuse a file with bytes that are not UTF-8 (else: replace, count, warn once).

  Raises:
    UserError: the file is missing, unreadable, empty, malformed or yields no token.
  """
  check_text_column(path, read_header(path), text_column)  # clear errors before hashing
  if cache_dir is None:
    corpus = tokenize_csv(path, text_column, max_reviews, stopwords, progress)
    check_utf8(corpus, path, strict_utf8)
    return corpus
  cache_path = os.path.join(cache_dir, f"corpus-{cache_key(path, text_column, max_reviews, stopwords)}.npz")
  if os.path.exists(cache_path):
    try:
      corpus = _load(cache_path)
    except Exception as e:  # pylint: disable=broad-except
      text.warn(f"ignoring unreadable corpus cache {cache_path} ({e}); rebuilding it")
    else:
      check_utf8(corpus, path, strict_utf8)
      return corpus
  corpus = tokenize_csv(path, text_column, max_reviews, stopwords, progress)
  try:
    _save(corpus, cache_path)
  except OSError as e:
    text.warn(f"could not write the corpus cache {cache_path} ({e.strerror}); continuing without")
  check_utf8(corpus, path, strict_utf8)
  return corpus
