"""A CSV with a header row (`--train_csv`, `.gz` = gzip): one document a row, in `--text_column`.

Rows are parsed by tf.data's CsvDataset (RFC 4180 quoting, `""` escapes). Blank lines are empty
documents; a row too short to have the text column, or an unbalanced or stray quote, is a
malformed record: one error naming the physical line where the record starts. A `.gz` that ends
before gzip's end-of-stream marker (a cut download or copy) is refused as truncated before
anything is read: tf.data's reader would quietly stop at the cut.
"""

from __future__ import annotations

import csv
import gzip
import io
import os

import tensorflow as tf

from w2v_tf.errors import UserError
from w2v_tf.fileio import check_gzip_complete, not_a_file
from w2v_tf.sources import base


def _open_text(path: str):
  if path.endswith(".gz"):
    return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace", newline="")
  return open(path, encoding="utf-8", errors="replace", newline="")


def read_header(path: str) -> list[str]:
  """The CSV's column names. Raises UserError for a missing, unreadable, empty or truncated file."""
  if os.path.islink(path) and not os.path.exists(path):
    raise UserError(f"{path}: {not_a_file(path)}: fix the link, or pass another --train_csv")
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
  # A default makes blank lines and short rows empty documents instead of errors.
  return tf.data.experimental.CsvDataset(
      path, [tf.constant("", tf.string)], header=True, select_cols=[header.index(text_column)],
      compression_type="GZIP" if path.endswith(".gz") else "", buffer_size=1 << 20)


def read_rows(path: str, text_column: str = "review", max_documents: int = 0) -> tf.data.Dataset:
  """A dataset of the raw text of each row of a CSV / CSV.gz.

  Args:
    path: the CSV file; `.gz` means gzip.
    text_column: name of the text column in the header.
    max_documents: read only the first N rows (0 = all).

  Returns:
    tf.data.Dataset of scalar tf.string.
  """
  header = read_header(path)
  check_text_column(path, header, text_column)
  dataset = _csv_dataset(path, text_column, header)
  dataset = dataset.map(lambda row: row)
  if max_documents > 0:
    dataset = dataset.take(max_documents)
  return dataset


class CsvFormat(base.InputFormat):
  """A CSV, one document a row (module doc)."""
  name = "csv"
  config_fields = ("train_csv", "text_column")
  records = "rows"
  noun = "review(s)"

  def check(self, spec: base.CorpusSpec) -> list[str]:
    check_text_column(spec.source, read_header(spec.source), spec.text_column)
    return [spec.source]

  def key_parts(self, spec: base.CorpusSpec, digests: list[str]) -> list[str]:
    # The IMDB rules with the default document and type-table bounds add nothing: the key of
    # the versions before those options, so their caches and model dirs are still found.
    parts = ["2", *digests, spec.text_column, str(spec.max_documents),
             "\n".join(sorted(spec.stopwords))]
    defaults = base.CorpusSpec()
    options = (spec.cleaning, spec.lowercase, spec.max_document_tokens, spec.max_vocab_size)
    if options != (defaults.cleaning, defaults.lowercase, defaults.max_document_tokens,
                   defaults.max_vocab_size):
      parts += [spec.cleaning, str(spec.lowercase), str(spec.max_document_tokens),
                str(spec.max_vocab_size)]
    return parts

  def batches(self, spec: base.CorpusSpec, paths: list[str], errors: list) -> tf.data.Dataset:
    """Rows are whole documents; their line is found on demand (`where`)."""
    del paths, errors  # one file, read by TensorFlow
    dataset = read_rows(spec.source, spec.text_column, spec.max_documents).batch(base.READ_BATCH)
    return dataset.map(lambda rows: (rows, tf.zeros_like(rows, tf.bool),
                                     tf.zeros_like(rows, tf.int32), tf.fill(tf.shape(rows), -1)))

  def read_error(self, spec: base.CorpusSpec, reason: str) -> UserError:
    reason = reason.rstrip(". ")
    line = record_line(spec.source, _count_readable_records(spec.source, spec.text_column))
    fix = ('quote a field that holds a quote, double the quotes inside it ("a ""b"" c"), and '
           "close every opening quote" if "quote" in reason.lower() else
           "every row needs as many fields as the header has up to the text column")
    return UserError(f"{spec.source}: malformed CSV record starting on line {line} ({reason}): "
                     f"{fix}")

  def where(self, spec: base.CorpusSpec, document: int) -> str:
    return f"row {document + 1}, line {record_line(spec.source, document)}"
