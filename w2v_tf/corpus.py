"""The tokenized corpus: one streaming pass over the input (read + clean + count), cached on disk.

The input is a CSV (`--train_csv`, one review a row) or plain text (`--train_text`: a file, a
folder of shards or a glob, one document a line; `sources`). Cleaning is chosen: `imdb` (the
rules of `text.clean_reviews`) or `none` (split on whitespace, optionally lowercase: the corpus
was tokenised already). A document longer than `max_document_tokens` is cut into documents of
that many tokens (as gensim's LineSentence cuts at 10,000).

The cache (`corpus_store`) holds every distinct cleaned word with its count (sorted by
descending count, ties alphabetical, so any vocabulary built from it is a prefix of it), the
token ids of the whole corpus and the document offsets, on disk: memory holds the type table
and one batch of documents, never the corpus. It is keyed by the input's content and every
option that changes the tokens, so a second run skips cleaning, and a changed file or option
rebuilds it.

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

from typing import Iterator

import numpy as np
import tensorflow as tf

from w2v_tf import allocator, corpus_store, sources, text
from w2v_tf.errors import UserError
from w2v_tf.fileio import check_gzip_complete, disk_errors

# Bump when the cleaning rules or the cache layout change.
CACHE_VERSION = 3
# Documents (rows, pieces of lines) cleaned together, and for text at most about this many bytes
# (so a batch of text8's 1 MiB pieces stays small). 2048 against 512: IMDB's pass 3.9 s against
# 4.4 s as text, 4.3 against 4.4 as CSV (medians of 3, AMD EPYC, 2 cores).
_READ_BATCH = 2048
_READ_BATCH_BYTES = 1 << 22
CLEANINGS = ("imdb", "none")


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

  first_invalid_utf8_location = ""
  pruned_tokens = 0

  def read_tokens(self, start: int, end: int) -> np.ndarray:
    """[end - start] int32 token ids of positions start..end (as `StoredCorpus.read_tokens`)."""
    return np.asarray(self.token_ids[start:end], np.int32)

  def blocks(self, block_tokens: int = 1 << 22):
    """The whole corpus as one block (as `StoredCorpus.blocks`)."""
    del block_tokens
    yield 0, np.asarray(self.token_ids, np.int32), np.asarray(self.review_offsets, np.int64)


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




@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  """What the corpus is and how it is cleaned: everything that changes its tokens.

  Attributes:
    csv_path: a CSV / CSV.gz with a header row (or None).
    text_spec: plain text: a file, a folder or a glob (or None); exactly one of the two is set.
    text_column: the CSV's text column.
    max_reviews: only the first N documents (rows / lines; 0 = all).
    stopwords: the stopword set.
    cleaning: 'imdb' (`text.clean_reviews`) or 'none' (split on whitespace).
    lowercase: with cleaning 'none', lowercase the tokens ('imdb' always does).
    max_document_tokens: cut longer documents into documents of this many tokens (0: never).
    max_vocab_size: prune the type table while counting when it holds more words (0: never).
  """
  csv_path: str | None = None
  text_spec: str | None = None
  text_column: str = "review"
  max_reviews: int = 0
  stopwords: frozenset[str] = frozenset()
  cleaning: str = "imdb"
  lowercase: bool = False
  max_document_tokens: int = 10_000
  max_vocab_size: int = 10_000_000

  @property
  def name(self) -> str:
    return self.csv_path or self.text_spec or ""


def spec_of(data, stopwords: frozenset[str]) -> CorpusSpec:
  """The CorpusSpec of a `config.DataConfig` (its cleaning resolved)."""
  text_spec = data.train_text or None
  return CorpusSpec(
      csv_path=None if text_spec else data.train_csv, text_spec=text_spec,
      text_column=data.text_column, max_reviews=data.max_reviews, stopwords=stopwords,
      cleaning=data.resolved_cleaning, lowercase=data.lowercase,
      max_document_tokens=data.max_document_tokens, max_vocab_size=data.max_vocab_size)


def check_input(spec: CorpusSpec) -> list[str]:
  """The input's files, after the one-line checks (missing, empty, no text column, a pipe)."""
  if spec.text_spec:
    return sources.text_paths(spec.text_spec)
  check_text_column(spec.csv_path, read_header(spec.csv_path), spec.text_column)
  return [spec.csv_path]


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


def spec_key(spec: CorpusSpec) -> str:
  """A digest of the input's content and every option that changes the tokens.

  It is also a model dir's data fingerprint (`model_dir`): a resumed run must see the same key.
  The files' names do not enter it (a moved corpus is the same corpus), their order does. A CSV
  with the IMDB rules and the default document and type-table bounds gets the key of earlier
  versions, so their model dirs still resume.
  """
  digest = hashlib.sha256()
  digests = [_file_digest(path) for path in check_input(spec)]
  defaults = CorpusSpec()
  if spec.csv_path:
    parts = ["2", *digests, spec.text_column, str(spec.max_reviews),
             "\n".join(sorted(spec.stopwords))]
    options = (spec.cleaning, spec.lowercase, spec.max_document_tokens, spec.max_vocab_size)
    if options != (defaults.cleaning, defaults.lowercase, defaults.max_document_tokens,
                   defaults.max_vocab_size):
      parts += [spec.cleaning, str(spec.lowercase), str(spec.max_document_tokens),
                str(spec.max_vocab_size)]
  else:
    parts = ["text", *digests, str(spec.max_reviews), "\n".join(sorted(spec.stopwords)),
             spec.cleaning, str(spec.lowercase), str(spec.max_document_tokens),
             str(spec.max_vocab_size)]
  for part in parts:
    digest.update(part.encode("utf-8"))
    digest.update(b"\0")
  return digest.hexdigest()[:24]


def cache_key(path: str, text_column: str, max_reviews: int, stopwords: frozenset[str]) -> str:
  """`spec_key` of a CSV cleaned with the IMDB rules (the defaults otherwise)."""
  return spec_key(CorpusSpec(csv_path=path, text_column=text_column, max_reviews=max_reviews,
                             stopwords=stopwords))


def _csv_batches(spec: CorpusSpec) -> tf.data.Dataset:
  """Batches of (documents [b] string, continues [b] bool, file [b] int32, line [b] int64)."""
  dataset = read_reviews(spec.csv_path, spec.text_column, spec.max_reviews).batch(_READ_BATCH)
  # CSV rows are whole documents; their line is found on demand (`record_line`).
  return dataset.map(lambda rows: (rows, tf.zeros_like(rows, tf.bool),
                                   tf.zeros_like(rows, tf.int32), tf.fill(tf.shape(rows), -1)))


def _text_batches(spec: CorpusSpec, paths: list[str], errors: list) -> tf.data.Dataset:
  """As `_csv_batches`, for plain-text files read in bounded pieces (`sources.read_pieces`).

  A UserError of the reader ends the stream and is appended to `errors`.
  """
  file_index = {path: index for index, path in enumerate(paths)}

  def generate():
    try:
      yield from read()
    except UserError as e:  # tf.data would wrap it in its own error: `tokenize` raises it
      errors.append(e)

  def read():
    pieces, continues, files, lines = [], [], [], []
    documents = size = 0
    for piece, more, path, line in sources.read_pieces(paths):
      pieces.append(piece)
      size += len(piece)
      continues.append(more)
      files.append(file_index[path])
      lines.append(line)
      documents += not more
      last = spec.max_reviews and documents >= spec.max_reviews
      if len(pieces) == _READ_BATCH or size >= _READ_BATCH_BYTES or last:
        yield pieces, continues, files, lines
        pieces, continues, files, lines = [], [], [], []
        size = 0
      if last:
        return
    if pieces:
      yield pieces, continues, files, lines

  signature = (tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.bool),
               tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64))
  return tf.data.Dataset.from_generator(generate, output_signature=signature)


def _document_lengths(lengths: np.ndarray, continues: np.ndarray, open_length: int,
                      max_tokens: int) -> tuple[list[int] | np.ndarray, int]:
  """Documents' lengths from pieces' lengths, cutting at `max_tokens` (0: never).

  Returns:
    (lengths of the documents that ended, tokens of the document still open).
  """
  if not open_length and not continues.any() and (not max_tokens or lengths.max(initial=0)
                                                   <= max_tokens):
    return lengths, 0  # the usual batch: every piece is a whole, short document
  ended = []
  for length, more in zip(lengths.tolist(), continues.tolist()):
    open_length += length
    if max_tokens:
      while open_length > max_tokens:
        ended.append(max_tokens)
        open_length -= max_tokens
    if not more:
      ended.append(open_length)
      open_length = 0
  return ended, open_length


def _clean_batch_fn(spec: CorpusSpec, table: tf.lookup.experimental.DenseHashTable):
  """documents [b] -> (tokens [n] before the word filter, their fingerprints [n], check keys [n],
  `lookup_tokens` in the writer's `table` (ids [n], clash []), row splits [b + 1], invalid UTF-8
  [b], and the batch's continues / file / line).

  The word filter (stopwords, one-letter words) is left to the writer, which runs it once per
  distinct word (`CorpusWriter.add_batch`): per token it took 0.12 s per 10k IMDB reviews.
  """
  def clean(documents, continues, files, lines):
    if spec.cleaning == "imdb":
      tokens, invalid = text.candidate_tokens(documents)
    else:
      tokens, invalid = text.whitespace_tokens(documents, spec.lowercase)
    flat = tokens.flat_values
    keys = corpus_store.fingerprints(flat)
    # Looked up here, on tf.data's threads, not in the loop that writes: that loop was the
    # pass's critical path (3.2 of its 3.9 s, 0.8 s of them lookups).
    checks = corpus_store.check_keys(flat)
    ids, clash = corpus_store.lookup_tokens(table, keys, checks)
    return flat, keys, checks, ids, clash, tokens.row_splits, invalid, continues, files, lines
  return clean


def _word_filter(spec: CorpusSpec):
  """[m] tf.string words -> [m] bool: the words the cleaning keeps (not a stopword; with the
  IMDB rules, longer than one letter)."""
  table = text.stopword_table(spec.stopwords)
  min_chars = 2 if spec.cleaning == "imdb" else 1
  return lambda words: text.keep_words(words, table, min_chars)


def tokenize(spec: CorpusSpec, target: str, progress: bool = True
             ) -> corpus_store.StoredCorpus:
  """Reads, cleans and counts the input into the cache folder `target` (see module doc)."""
  allocator.limit_arenas()  # before tf.data's threads first allocate
  paths = check_input(spec)
  if spec.csv_path and spec.csv_path.endswith(".gz"):
    check_gzip_complete(spec.csv_path)
  reader_errors: list[UserError] = []
  batches = _csv_batches(spec) if spec.csv_path else _text_batches(spec, paths, reader_errors)
  writer = corpus_store.CorpusWriter(target, spec.max_vocab_size)
  # Autotuning off (AUTOTUNE parallelism is then one call per core): with it on, deleting the
  # iterator at the end of the pass took 2.2 s in 4 of 6 IMDB passes (its model thread), 0.01 s
  # without, at the same 2.8 s of reading and cleaning (AMD EPYC, 2 cores). One batch prefetched,
  # not 4: the lookups made ahead find fewer words missing (3.89-4.00 s against 3.90-4.24).
  options = tf.data.Options()
  options.autotune.enabled = False
  # Not converted by AutoGraph (the function has no Python control flow on tensors): converting
  # it took 1.5 of the 1.9 s that tracing it did, a third of IMDB's cold pass.
  clean = tf.autograph.experimental.do_not_convert(_clean_batch_fn(spec, writer.table))
  dataset = batches.map(clean, num_parallel_calls=tf.data.AUTOTUNE,
                        deterministic=True).prefetch(1).with_options(options)
  keep_words = _word_filter(spec)
  invalid_utf8, first_invalid, first_location = 0, -1, ""
  started = time.time()
  progress_shown = False
  open_length = 0
  open_piece_invalid = False
  rows_done = 0  # input documents (rows, lines) before the batch: what messages count
  try:
    for index, (tokens, keys, checks, ids, clash, splits, invalid, continues, files,
                lines) in enumerate(dataset):
      if index == 0:  # the generator op is built by now, and has set TensorFlow's threshold
        # (our only generator: undone here, it is undone for the training that follows too).
        # IMDB as text took 7.6 and 9.0 s with 57k page faults, against 8.6 and 10.0 s with
        # 665k (peak RSS of the pass 793 against 742 MiB, below training's)
        allocator.keep_large_buffers()
      type_ids, kept = writer.add_batch(tokens, keys.numpy(), checks.numpy(), ids.numpy(),
                                        int(clash), keep_words)
      kept_before = np.concatenate([[0], np.cumsum(kept)])[splits.numpy()]
      lengths, continues = np.diff(kept_before), continues.numpy()
      documents, open_length = _document_lengths(lengths, continues, open_length,
                                                 spec.max_document_tokens)
      invalid = invalid.numpy()
      if invalid.any():
        first = int(np.argmax(invalid))
        if first_invalid < 0:
          first_invalid = rows_done + int(np.count_nonzero(~continues[:first]))
          if spec.text_spec:
            first_location = f"{paths[int(files[first])]} line {int(lines[first])}"
        # A document is invalid when any of its pieces is: count each at its first bad piece.
        previous_continues = np.r_[open_piece_invalid, invalid[:-1] & continues[:-1]]
        invalid_utf8 += int(np.count_nonzero(invalid & ~previous_continues))
      open_piece_invalid = bool(invalid[-1] and continues[-1])
      rows_done += int(np.count_nonzero(~continues))
      writer.add_tokens(type_ids, documents)
      if progress and index % 5 == 4:  # every ~10k documents (batches of 2,048)
        progress_shown = True
        print(f"\rcleaning {spec.name}: {writer.num_documents:,} documents, "
              f"{writer.num_tokens / (time.time() - started):,.0f} tokens/s", end="",
              file=sys.stderr)
  except tf.errors.InvalidArgumentError as e:
    writer.abandon()
    if progress_shown:
      print(file=sys.stderr)
    if spec.text_spec:
      raise UserError(f"{spec.name}: cannot read it ({_op_reason(e)})") from e
    reason = _op_reason(e).rstrip(". ")
    line = record_line(spec.csv_path, _count_readable_records(spec.csv_path, spec.text_column))
    fix = ('quote a field that holds a quote, double the quotes inside it ("a ""b"" c"), and '
           "close every opening quote" if "quote" in reason.lower() else
           "every row needs as many fields as the header has up to the text column")
    raise UserError(f"{spec.csv_path}: malformed CSV record starting on line {line} ({reason}): "
                    f"{fix}") from e
  except tf.errors.OpError as e:
    writer.abandon()
    if progress_shown:
      print(file=sys.stderr)
    raise UserError(f"{spec.name}: cannot read it ({_op_reason(e)}); check the file (a .gz "
                    "must be a complete gzip file)") from e
  except BaseException:
    writer.abandon()
    raise
  if progress_shown:
    print(file=sys.stderr)
  if reader_errors:
    writer.abandon()
    raise reader_errors[0]
  if writer.num_tokens == 0:
    writer.abandon()
    raise UserError(f"{spec.name}: no tokens left after cleaning ({rows_done:,} "
                    f"{'rows' if spec.csv_path else 'lines'} read); check --text_column, --cleaning, --stopwords and the "
                    "file's content")
  if writer.prune_events:
    text.warn(f"{spec.name}: the word table outgrew --max_vocab_size={spec.max_vocab_size:,} "
              f"{writer.prune_events} time(s): words seen fewer than {writer.min_reduce - 1} "
              "time(s) at those points were dropped (as gensim's max_vocab_size does); raise it "
              "for exact counts")
  return writer.finish({"invalid_utf8_reviews": invalid_utf8,
                        "first_invalid_utf8_review": first_invalid,
                        "first_invalid_utf8_location": first_location,
                        "seconds": round(time.time() - started, 3)})


def _op_reason(error: tf.errors.OpError) -> str:
  return error.message.splitlines()[0].split("}} ")[-1].split(" [Op:")[0]


def tokenize_csv(path: str, text_column: str, max_reviews: int,
                 stopwords: frozenset[str], progress: bool = True) -> Corpus:
  """Reads and cleans a CSV in memory, without a cache (tests and small tools)."""
  stored = load(CorpusSpec(csv_path=path, text_column=text_column, max_reviews=max_reviews,
                           stopwords=stopwords), None, progress)
  return Corpus(stored.types, stored.type_counts, stored.token_ids, stored.review_offsets,
                stored.invalid_utf8_reviews, stored.first_invalid_utf8_review)


def check_utf8(corpus, spec: CorpusSpec, strict: bool) -> None:
  """Warns once about documents with bytes that are not UTF-8, or refuses them when `strict`.

  Raises:
    UserError: `strict` and some document is not valid UTF-8 (names the first one).
  """
  if not corpus.invalid_utf8_reviews:
    return
  row = corpus.first_invalid_utf8_review
  where = corpus.first_invalid_utf8_location or (
      f"row {row + 1}, line {record_line(spec.csv_path, row)}")
  count = corpus.invalid_utf8_reviews
  noun = "review(s)" if spec.csv_path else "line(s)"
  if strict:
    raise UserError(f"{spec.name}: {count:,} {noun} hold bytes that are not UTF-8, the "
                    f"first at {where}: convert the file to UTF-8 (e.g. `iconv -f latin1 -t "
                    "utf-8`) or drop --strict_utf8 to replace those bytes")
  text.warn(f"{spec.name}: {count:,} {noun} hold bytes that are not UTF-8 (first at "
            f"{where}); they were replaced by U+FFFD and form no token (--strict_utf8 refuses "
            "such files)")


def load(spec: CorpusSpec, cache_dir: str | None = "data/cache", progress: bool = True,
         strict_utf8: bool = False) -> corpus_store.StoredCorpus:
  """The cleaned corpus, from the cache when it is there (see module doc).

  Args:
    spec: the input and its cleaning.
    cache_dir: cache folder (None: a temporary one, removed at exit).
    progress: print progress on stderr while cleaning.
    strict_utf8: refuse an input with bytes that are not UTF-8 (else: replace, count, warn once).

  Raises:
    UserError: the input is missing, unreadable, empty, malformed or yields no token.
  """
  check_input(spec)  # clear errors before hashing
  if cache_dir is None:
    folder = corpus_store.temporary_folder()
    target = os.path.join(folder, f"corpus-{len(os.listdir(folder))}")
    with disk_errors(folder):
      corpus = tokenize(spec, target, progress)
    check_utf8(corpus, spec, strict_utf8)
    return corpus
  target = os.path.join(cache_dir, f"corpus-v{CACHE_VERSION}-{spec_key(spec)}")
  if os.path.isdir(target):
    try:
      corpus = corpus_store.StoredCorpus(target)
    except (OSError, ValueError, KeyError) as e:
      text.warn(f"ignoring unreadable corpus cache {target} ({e}); rebuilding it")
    else:
      check_utf8(corpus, spec, strict_utf8)
      return corpus
  try:
    corpus = tokenize(spec, target, progress)
  except OSError as e:
    text.warn(f"could not write the corpus cache in {cache_dir} ({e.strerror}); continuing "
              "with a temporary one")
    return load(spec, None, progress, strict_utf8)
  check_utf8(corpus, spec, strict_utf8)
  return corpus


def load_corpus(path: str, text_column: str = "review", max_reviews: int = 0,
                stopwords: frozenset[str] = frozenset(), cache_dir: str | None = "data/cache",
                progress: bool = True, strict_utf8: bool = False) -> corpus_store.StoredCorpus:
  """`load` for a CSV cleaned with the IMDB rules."""
  return load(CorpusSpec(csv_path=path, text_column=text_column, max_reviews=max_reviews,
                         stopwords=stopwords), cache_dir, progress, strict_utf8)


def documents(corpus) -> Iterator[list[str]]:
  """The corpus as lists of words, one document at a time (dumps and peers; not the hot path).

  Tokens whose word was pruned while counting have no word and are left out.
  """
  types = np.asarray(corpus.types + ("",), dtype=object)
  for _, token_ids, offsets in corpus.blocks():
    words = types[token_ids]
    for start, end in zip(offsets[:-1], offsets[1:]):
      yield [w for w in words[start:end] if w] if corpus.pruned_tokens else list(words[start:end])
