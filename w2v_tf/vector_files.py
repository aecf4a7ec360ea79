"""Word-vector files: Mikolov's word2vec text and binary formats (read, write), GloVe text (read).

Formats are detected from the bytes, not the file name:

* word2vec binary (the C tool's `-binary 1`, gensim `binary=True`): a `V d` header line, then
  per word its UTF-8 bytes, a space and d little-endian float32; the C tool ends each record
  with a newline, gensim does not, both are read.
* word2vec text: the `V d` header, then `word v1 ... vd` per line.
* GloVe text: no header; `word v1 ... vd` per line, d taken from the first line.

A `.gz` name means gzip. Rows are kept in file order, which all these tools write most frequent
first (what `restrict_vocab` relies on). Bad files raise `UserError` with one line that names
the file, the line (or record) and the fix: missing, unreadable, empty, a truncated `.gz`, a
text file that is not UTF-8, a row whose number of values disagrees with the header (or, for
GloVe, the first row), a binary header that promises more records than the file can hold
(only what the file can hold is allocated), a truncated binary file.
Repeated words keep their first row (a warning says how many were dropped), like gensim.

The writers produce what the C tool writes (binary records end with a newline; text uses
`%.6f`), in chunks of rows (bounded memory for large vocabularies), through
`fileio.atomic_open`: a crash or a full disk leaves the previous file in place. A `.gz` name is
written gzip-compressed, as it is read.
`w2v_tf.word_vectors.WordVectors` is the interface; these are its pure functions.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import os
import re
import warnings
from typing import Sequence

import numpy as np

from w2v_tf.errors import UserError, warn
from w2v_tf.fileio import atomic_open, decode_utf8, disk_errors, not_a_file

_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")
_CONTROL = re.compile(rb"[\x00-\x1f]")  # never inside a word; common in float32 bytes
# What no exported word may hold: whitespace (Python's, which str.split / splitlines cut at) and
# control characters (the binary readers refuse them in a word); the cleaning splits on both.
_NOT_IN_A_WORD = re.compile(r"[\s\x00-\x1f\x7f-\x9f\ufeff]")

# Rows formatted or packed per write call: bounds memory for large vocabularies. A text chunk is
# Python floats and strings (~5 KB a row at d = 100): exporting IMDB's 42k x 100 vectors peaked
# 32-40 MiB above the table with 4,096 rows; 512 keep it to a few MiB.
CHUNK_ROWS = 512


# --- Reading ------------------------------------------------------------------------------------


def _read_bytes(path: str) -> bytes:
  """Returns the whole (possibly gzipped) file; UserError for missing / unreadable / empty."""
  if not os.path.exists(path):
    raise UserError(f"vectors file {path} {not_a_file(path)}: pass --vectors with a word2vec "
                    ".bin/.txt or GloVe .txt file, or --model_dir with a trained model")
  if os.path.isdir(path):
    raise UserError(f"{path} is a directory, not a vectors file: pass it as --model_dir, or "
                    "pass --vectors with a file")
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        data = f.read()
    else:
      with open(path, "rb") as f:
        data = f.read()
  except EOFError as e:  # gzip's "Compressed file ended before the end-of-stream marker ..."
    raise UserError(f"vectors file {path} is truncated ({e}): re-export or copy it again") from e
  except OSError as e:
    reason = getattr(e, "strerror", None) or str(e)
    raise UserError(f"cannot read vectors file {path} ({reason}): check the file and its "
                    "permissions") from e
  if not data.strip():
    raise UserError(f"vectors file {path} is empty: re-export the vectors or pass another file")
  return data


def _parse_floats(text: str, dim: int, where: str) -> np.ndarray:
  """Parses exactly `dim` whitespace-separated numbers, else UserError naming `where`."""
  values = np.array(text.split(), dtype=object)
  if len(values) != dim:
    raise UserError(f"{where}: {len(values)} values, expected {dim}: the rows disagree with "
                    "the vectors' dimension (corrupt or truncated file?); re-export the vectors")
  try:
    return values.astype(np.float32)
  except ValueError as e:
    bad = next(v for v in values if not is_float(v))
    raise UserError(f"{where}: {bad[:30]!r} is not a number: expected 'word v1 ... vd' rows "
                    "(is this a word2vec/GloVe vectors file?)") from e


def is_float(text: str) -> bool:
  """Whether `float(text)` parses (a vector value, a similarity score)."""
  try:
    float(text)
    return True
  except ValueError:
    return False


def _parse_text(path: str, data: bytes, has_header: bool) -> tuple[list[str], np.ndarray]:
  """Parses the word2vec text format (`has_header`) or GloVe text (no header)."""
  lines = decode_utf8(data, path, "vectors file").splitlines()
  if has_header:
    num_words, dim = (int(x) for x in lines[0].split())
    first = 1
  else:
    num_words, dim, first = None, len(lines[0].split()) - 1, 0
    if dim < 1:
      raise UserError(f"{path}:1: expected 'word v1 ... vd' rows (GloVe) or a 'V d' header "
                      "(word2vec): is this a vectors file?")
  words: list[str] = []
  rows: list[np.ndarray] = []
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # np.fromstring on a bad row
    for line_number in range(first, len(lines)):
      fields = lines[line_number].strip().replace("\t", " ")
      word, _, rest = fields.partition(" ")
      if not word:
        continue  # blank line
      try:
        row = np.fromstring(rest, dtype=np.float32, sep=" ")  # C-speed parse of one row
      except ValueError:  # numpy versions that refuse text they cannot parse
        row = None
      if row is None or row.shape[0] != dim:
        row = _parse_floats(rest, dim, f"{path}:{line_number + 1}")  # exact error message
      words.append(word)
      rows.append(row)
  if num_words is not None and len(words) != num_words:
    raise UserError(f"{path}: the header says {num_words} words but the file has {len(words)} "
                    "rows (truncated or edited?): re-export the vectors")
  return words, np.stack(rows).astype(np.float32, copy=False)


def _parse_binary(path: str, data: bytes, header_end: int, num_words: int, dim: int
                  ) -> tuple[list[str], np.ndarray]:
  """Parses the word2vec binary format after its header line."""
  row_bytes = 4 * dim
  size = len(data)
  # A record is at least a space and d floats, so the file holds at most `fits` of them. Only
  # those are allocated: a header that lies about the count (or d) asked numpy for terabytes;
  # now the loop below stops at the first record past the end and says so.
  fits = (size - header_end) // (row_bytes + 1)
  promised = ""
  if num_words > fits:
    promised = (f"; the header promises {num_words:,} x {dim} vectors, at least "
                f"{num_words * (row_bytes + 1):,} bytes, but {size - header_end:,} follow it")
  vectors = np.empty((min(num_words, fits), dim), dtype=np.float32)  # [V, d]
  words: list[str] = []
  pos = header_end
  newline_terminated = None
  for i in range(num_words):
    while pos < size and data[pos] in (0x0A, 0x0D):  # the previous record's newline
      pos += 1
    space = data.find(b" ", pos, pos + 10_000)
    if space < 0 or space + 1 + row_bytes > size:
      raise UserError(f"{path}: record {i + 1} of {num_words} (byte {pos}) runs past the end "
                      "of the file: the file is truncated or its rows disagree with the header "
                      f"({num_words} x {dim}){promised}; re-export the vectors")
    if _CONTROL.search(data, pos, space):
      raise UserError(f"{path}: record {i + 1} (byte {pos}) does not start with a word: the "
                      f"rows disagree with the header's dimension ({num_words} x {dim}) or the "
                      "file is corrupt; re-export the vectors")
    word = data[pos:space].decode("utf-8", errors="replace")
    start = space + 1
    vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=start)
    pos = start + row_bytes
    terminated = pos < size and data[pos] == 0x0A
    if newline_terminated is None:
      newline_terminated = terminated or pos >= size
    elif newline_terminated and not terminated and i + 1 < num_words:
      raise UserError(f"{path}: record {i + 1} ({word[:30]!r}) is not followed by a newline "
                      f"after {dim} floats: the rows disagree with the header's dimension; "
                      "re-export the vectors")
    words.append(word)
  if data[pos:].strip():
    raise UserError(f"{path}: {size - pos} bytes left after the {num_words} records the "
                    f"header announces ({num_words} x {dim}): the rows disagree with the header; "
                    "re-export the vectors")
  return words, vectors


def detect_format(data: bytes) -> str:
  """Returns "word2vec_binary", "word2vec_text" or "glove" for the start of a vectors file."""
  header_end = data.find(b"\n")
  first_line = data[:header_end if header_end >= 0 else len(data)]
  match = _HEADER.match(first_line)
  if not match:
    return "glove"
  dim = int(match.group(2))
  end = data.find(b"\n", header_end + 1)
  record = data[header_end + 1:end if end >= 0 else len(data)]
  try:
    tokens = record.decode("utf-8").split()
  except UnicodeDecodeError:
    # A text row whose word is not UTF-8 (Latin-1, say) is still text: its reader reports the
    # encoding; float32 bytes almost never read as `word v1 ... vd`.
    tokens = record.decode("latin-1").split()
    if not (len(tokens) == dim + 1 and all(is_float(t) for t in tokens[1:])):
      return "word2vec_binary"
  if len(tokens) == dim + 1 and all(is_float(t) for t in tokens[1:]):
    return "word2vec_text"
  if len(tokens) > 1 and all(is_float(t) for t in tokens[1:]):
    return "word2vec_text"  # a text file whose first row has the wrong length: report it
  return "word2vec_binary"


def _header(path: str, data: bytes) -> tuple[int, int]:
  """The `V d` of a word2vec file's first line; UserError when it announces no vectors."""
  end = data.find(b"\n")
  num_words, dim = (int(x) for x in data[:end if end >= 0 else len(data)].split())
  if num_words < 1 or dim < 1:
    raise UserError(f"{path}: header says {num_words} x {dim}: no vectors in the file")
  return num_words, dim


def read_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
  """Reads a vectors file in word2vec binary, word2vec text or GloVe text format.

  Args:
    path: the file (`.gz` means gzip); the format is detected from its content.

  Returns:
    (words, vectors): V words in file order and float32 [V, d] vectors (row i is words[i]).
    Repeated words keep their first row only.

  Raises:
    UserError: missing, unreadable or empty file, or rows inconsistent with the header.
  """
  path = os.fspath(path)
  data = _read_bytes(path)
  fmt = detect_format(data)
  if fmt == "word2vec_binary":
    num_words, dim = _header(path, data)
    words, vectors = _parse_binary(path, data, data.find(b"\n") + 1, num_words, dim)
  else:
    if fmt == "word2vec_text":
      _header(path, data)
    words, vectors = _parse_text(path, data, has_header=fmt == "word2vec_text")
  return _drop_duplicates(path, words, vectors)


def _drop_duplicates(path: str, words: list[str], vectors: np.ndarray
                     ) -> tuple[list[str], np.ndarray]:
  """Keeps the first row of each word (gensim's rule), warning once if any were dropped."""
  if len(set(words)) == len(words):
    return words, vectors
  seen: set[str] = set()
  keep = []
  for i, word in enumerate(words):
    if word not in seen:
      seen.add(word)
      keep.append(i)
  warn(f"{path}: {len(words) - len(keep)} repeated words; kept the first row of each")
  return [words[i] for i in keep], vectors[keep]


# --- Writing ------------------------------------------------------------------------------------


def check_words(words: Sequence[str], num_rows: int | None = None) -> None:
  """Raises ValueError for words the line-based formats cannot hold, or a length mismatch.

  Args:
    words: the words to write.
    num_rows: rows of the matrix written with them (None: not checked).
  """
  if num_rows is not None and len(words) != num_rows:
    raise ValueError(f"{len(words)} words but {num_rows} vector rows")
  for i, word in enumerate(words):
    if not isinstance(word, str) or not word or _NOT_IN_A_WORD.search(word):
      raise ValueError(f"word {i} ({word!r}) is empty or holds whitespace or a control "
                       "character: the word2vec and TSV formats separate fields with spaces/tabs "
                       "and lines with newlines, and their readers refuse control characters")


def as_matrix(vectors: np.ndarray) -> np.ndarray:
  """Returns `vectors` as a 2-D float32 array [V, d] (ValueError for another rank)."""
  vectors = np.asarray(vectors)
  if vectors.ndim != 2:
    raise ValueError(f"vectors must be 2-D [V, d], got shape {vectors.shape}")
  return vectors.astype(np.float32, copy=False)


@contextlib.contextmanager
def _open_for_writing(path: str | os.PathLike, mode: str):
  """`atomic_open(path, mode)`, gzip-compressed when the name ends in `.gz`.

  The readers take a `.gz` name to mean gzip; writing plain bytes under one made a file that
  nothing could read back (`--output v.txt.gz`). `mtime=0`: the same vectors, the same bytes.
  """
  if not os.fspath(path).endswith(".gz"):
    with atomic_open(path, mode) as f:
      yield f
    return
  with atomic_open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as packed:
    if mode == "wb":
      yield packed
    else:
      with io.TextIOWrapper(packed, encoding="utf-8", newline="\n") as text:
        yield text


def write_word2vec_text(path: str | os.PathLike, words: Sequence[str], vectors: np.ndarray,
                        float_format: str = "%.6f") -> None:
  """Writes the word2vec text format: a `V d` header, then `word v1 ... vd` per line.

  Args:
    path: output file (e.g. model_dir/vectors.txt).
    words: V words, row i of `vectors` belongs to words[i]; no whitespace inside a word.
    vectors: [V, d] floats.
    float_format: printf format of one value; "%.6f" is what the C tool writes ("%lf").
      Use "%.9g" for an exact float32 round trip.
  """
  vectors = as_matrix(vectors)  # [V, d]
  num_words, dim = vectors.shape
  check_words(words, num_words)
  row_format = " ".join([float_format] * dim)
  with disk_errors(path), _open_for_writing(path, "w") as f:
    f.write(f"{num_words} {dim}\n")
    for start in range(0, num_words, CHUNK_ROWS):
      rows = vectors[start:start + CHUNK_ROWS].tolist()  # Python floats format fastest
      f.write("".join(f"{word} {row_format % tuple(row)}\n"
                      for word, row in zip(words[start:start + CHUNK_ROWS], rows)))


def write_word2vec_binary(path: str | os.PathLike, words: Sequence[str],
                          vectors: np.ndarray) -> None:
  """Writes the C word2vec binary format.

  Layout: b"V d\\n", then per word: utf-8 bytes, b" ", d little-endian float32, b"\\n".

  Args:
    path: output file (e.g. model_dir/vectors.bin).
    words: V words without whitespace.
    vectors: [V, d] floats.
  """
  vectors = np.ascontiguousarray(as_matrix(vectors), dtype="<f4")  # [V, d]
  num_words, dim = vectors.shape
  check_words(words, num_words)
  row_bytes = 4 * dim
  with disk_errors(path), _open_for_writing(path, "wb") as f:
    f.write(f"{num_words} {dim}\n".encode("ascii"))
    for start in range(0, num_words, CHUNK_ROWS):
      block = vectors[start:start + CHUNK_ROWS].tobytes()  # rows packed back to back
      f.write(b"".join(
          word.encode("utf-8") + b" " + block[i * row_bytes:(i + 1) * row_bytes] + b"\n"
          for i, word in enumerate(words[start:start + CHUNK_ROWS])))
