"""The tokenized corpus: one streaming pass over the input (read + clean + count), cached on disk.

The input is read by its format (`sources`: a CSV, `--train_csv`, one document a row; plain
text, `--train_text`, a file, a folder of shards or a glob, one document a line). Cleaning is
chosen: `imdb` (the rules of `text.clean_reviews`) or `none` (split on whitespace, optionally
lowercase: the corpus was tokenised already). A document longer than `max_document_tokens` is
cut into documents of that many tokens (as gensim's LineSentence cuts at 10,000).

The cache (`corpus_store`) holds every distinct cleaned word with its count (sorted by
descending count, ties alphabetical, so any vocabulary built from it is a prefix of it), the
token ids of the whole corpus and the document offsets, on disk: memory holds the type table
and one batch of documents, never the corpus. It is keyed by the input's content and every
option that changes the tokens (`spec_key`), so a second run skips cleaning, and a changed file
or option rebuilds it.

Bad input gets one clear error (`UserError`): the format's (a missing, unreadable or empty
file, a header without the text column, a malformed CSV record) or no token left after
cleaning. Bytes that are not UTF-8 are replaced by U+FFFD (they never form a token) and the
affected documents are counted and reported in one warning; with `strict_utf8` such a file is
refused, naming the first bad document. The count is stored in the cache, so the check also
holds when the cache is hit.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import sys
import time

from typing import Iterator

import numpy as np
import tensorflow as tf

from w2v_tf import allocator, corpus_store, sources, text
from w2v_tf.errors import UserError
from w2v_tf.fileio import disk_errors
from w2v_tf.sources import CorpusSpec

# Bump when the cleaning rules or the cache layout change.
CACHE_VERSION = 4


@dataclasses.dataclass(frozen=True)
class Corpus:
  """A cleaned corpus in memory (before min_count and subsampling), read as a `StoredCorpus`.

  Attributes:
    types: [U] distinct words, by descending count then alphabetically.
    type_counts: [U] int64 counts of `types`.
    token_ids: [T] int32 ids into `types`, documents one after the other.
    document_offsets: [D + 1] int64; document d is
      token_ids[document_offsets[d]:document_offsets[d + 1]].
    invalid_utf8_documents: how many documents held bytes that are not UTF-8 (now U+FFFD).
    first_invalid_utf8_document: 0-based index of the first such document (-1: none).
  """
  types: tuple[str, ...]
  type_counts: np.ndarray
  token_ids: np.ndarray
  document_offsets: np.ndarray
  invalid_utf8_documents: int = 0
  first_invalid_utf8_document: int = -1

  @property
  def num_documents(self) -> int:
    return len(self.document_offsets) - 1

  @property
  def num_tokens(self) -> int:
    return len(self.token_ids)

  # The names of earlier versions, which the benchmarks still read.
  review_offsets = property(lambda self: self.document_offsets)
  num_reviews = property(lambda self: self.num_documents)
  first_invalid_utf8_location = ""
  pruned_tokens = 0

  def read_tokens(self, start: int, end: int) -> np.ndarray:
    """[end - start] int32 token ids of positions start..end (as `StoredCorpus.read_tokens`)."""
    return np.asarray(self.token_ids[start:end], np.int32)

  def blocks(self, block_tokens: int = 1 << 22):
    """The whole corpus as one block (as `StoredCorpus.blocks`)."""
    del block_tokens
    yield 0, np.asarray(self.token_ids, np.int32), np.asarray(self.document_offsets, np.int64)


def spec_of(data, stopwords: frozenset[str]) -> CorpusSpec:
  """The CorpusSpec of a `config.DataConfig` (its input format and cleaning resolved)."""
  return CorpusSpec(
      source=data.input_source, input_format=data.input_format, text_column=data.text_column,
      max_documents=data.max_documents, stopwords=stopwords, cleaning=data.resolved_cleaning,
      lowercase=data.lowercase, max_document_tokens=data.max_document_tokens,
      max_vocab_size=data.max_vocab_size)


def check_input(spec: CorpusSpec) -> list[str]:
  """The input's files, after its format's one-line checks (missing, empty, no text column, a
  pipe)."""
  return sources.format_of(spec).check(spec)


def _file_digest(path: str) -> str:
  digest = hashlib.sha256()
  with open(path, "rb") as f:
    for block in iter(lambda: f.read(1 << 20), b""):
      digest.update(block)
  return digest.hexdigest()


def prune_message(name: str, max_vocab_size: int, events: int, dropped: int, kept: int) -> str:
  """The warning after the word table outgrew --max_vocab_size: what the prunes really did.

  gensim's rule drops, at the k-th prune, the words seen fewer than k times, so the first prune
  drops nothing: a corpus whose table outgrew the bound once kept every word (the warning said
  words "seen fewer than 1 time(s)" were dropped).
  """
  checked = (f"{name}: the word table outgrew --max_vocab_size={max_vocab_size:,} "
             f"{events} time(s) (checked after each batch of documents)")
  if not dropped:
    return (f"{checked}, but no word was dropped: gensim's rule drops, at the k-th prune, the "
            f"words seen fewer than k times, and the first prune drops none; the table kept "
            f"all its {kept:,} words. Counts are exact; the bound was not enforced")
  return (f"{checked}: {dropped:,} words were dropped (the k-th prune drops those seen fewer "
          f"than k times so far, as gensim's max_vocab_size does; the last, fewer than "
          f"{events}), {kept:,} kept; raise it for exact counts")


def spec_key(spec: CorpusSpec, paths: list[str] | None = None) -> str:
  """A digest of the input's content and every option that changes the tokens.

  It is also the start of a model dir's data fingerprint (`training_data`, checked by `model_dir`): a resumed run must
  see the same key. The files' names do not enter it (a moved corpus is the same corpus), their
  order does; the format says what else does (`InputFormat.key_parts`).

  Args:
    spec: the input and its cleaning.
    paths: its files as `check_input` gave them (None: checked here).
  """
  paths = check_input(spec) if paths is None else paths
  parts = sources.format_of(spec).key_parts(spec, [_file_digest(path) for path in paths])
  digest = hashlib.sha256()
  for part in parts:
    digest.update(part.encode("utf-8"))
    digest.update(b"\0")
  return digest.hexdigest()[:24]


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


def tokenize(spec: CorpusSpec, target: str, progress: bool = True,
             paths: list[str] | None = None) -> corpus_store.StoredCorpus:
  """Reads, cleans and counts the input into the cache folder `target` (see module doc).

  `paths`: the input's files as `check_input` gave them (None: checked here).
  """
  allocator.prepare_process()  # before tf.data's threads first allocate
  paths = check_input(spec) if paths is None else paths
  input_format = sources.format_of(spec)
  reader_errors: list[UserError] = []
  batches = input_format.batches(spec, paths, reader_errors)
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
          if lines[first] >= 0:  # else found on demand (`InputFormat.where`)
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
    raise input_format.read_error(spec, _op_reason(e)) from e
  except tf.errors.OpError as e:
    writer.abandon()
    if progress_shown:
      print(file=sys.stderr)
    raise UserError(f"{spec.name}: cannot read it ({_op_reason(e)}); check the file (a .gz "
                    "must be a complete gzip file)") from e
  except BaseException:  # Ctrl-C, SIGTERM: end the progress line before the message
    writer.abandon()
    if progress_shown:
      print(file=sys.stderr)
    raise
  if progress_shown:
    print(file=sys.stderr)
  if reader_errors:
    writer.abandon()
    raise reader_errors[0]
  if writer.num_tokens == 0:
    writer.abandon()
    raise UserError(f"{spec.name}: no tokens left after cleaning ({rows_done:,} "
                    f"{input_format.records} read); check --text_column, --cleaning, --stopwords "
                    "and the file's content")
  if writer.prune_events:
    text.warn(prune_message(spec.name, spec.max_vocab_size, writer.prune_events,
                            writer.pruned_words, writer.num_types))
  # meta.json keeps the keys of earlier versions: their caches are read as they are.
  return writer.finish({"invalid_utf8_reviews": invalid_utf8,
                        "first_invalid_utf8_review": first_invalid,
                        "first_invalid_utf8_location": first_location,
                        "seconds": round(time.time() - started, 3)})


def _op_reason(error: tf.errors.OpError) -> str:
  return error.message.splitlines()[0].split("}} ")[-1].split(" [Op:")[0]


def tokenize_csv(path: str, text_column: str, max_documents: int,
                 stopwords: frozenset[str], progress: bool = True) -> Corpus:
  """Reads and cleans a CSV in memory, without a cache (tests and small tools)."""
  stored = load(CorpusSpec(source=path, text_column=text_column, max_documents=max_documents,
                           stopwords=stopwords), None, progress)
  return Corpus(stored.types, stored.type_counts, stored.token_ids, stored.document_offsets,
                stored.invalid_utf8_documents, stored.first_invalid_utf8_document)


def check_utf8(corpus, spec: CorpusSpec, strict: bool) -> None:
  """Warns once about documents with bytes that are not UTF-8, or refuses them when `strict`.

  Raises:
    UserError: `strict` and some document is not valid UTF-8 (names the first one).
  """
  if not corpus.invalid_utf8_documents:
    return
  input_format = sources.format_of(spec)
  where = corpus.first_invalid_utf8_location or input_format.where(
      spec, corpus.first_invalid_utf8_document)
  count = corpus.invalid_utf8_documents
  noun = input_format.noun
  if strict:
    raise UserError(f"{spec.name}: {count:,} {noun} hold bytes that are not UTF-8, the "
                    f"first at {where}: convert the file to UTF-8 (e.g. `iconv -f latin1 -t "
                    "utf-8`) or drop --strict_utf8 to replace those bytes")
  text.warn(f"{spec.name}: {count:,} {noun} hold bytes that are not UTF-8 (first at "
            f"{where}); they were replaced by U+FFFD and form no token (--strict_utf8 refuses "
            "such files)")


def load(spec: CorpusSpec, cache_dir: str | None = "data/cache", progress: bool = True,
         strict_utf8: bool = False, paths: list[str] | None = None,
         key: str | None = None) -> corpus_store.StoredCorpus:
  """The cleaned corpus, from the cache when it is there (see module doc).

  Args:
    spec: the input and its cleaning.
    cache_dir: cache folder (None: a temporary one, removed at exit).
    progress: print progress on stderr while cleaning.
    strict_utf8: refuse an input with bytes that are not UTF-8 (else: replace, count, warn once).
    paths: the input's files as `check_input` gave them (None: checked here).
    key: its `spec_key` (None: computed here when the cache needs it).

  Raises:
    UserError: the input is missing, unreadable, empty, malformed or yields no token.
  """
  paths = check_input(spec) if paths is None else paths  # clear errors before hashing
  if cache_dir is None:
    folder = corpus_store.temporary_folder()
    target = os.path.join(folder, f"corpus-{len(os.listdir(folder))}")
    with disk_errors(folder):
      corpus = tokenize(spec, target, progress, paths)
    check_utf8(corpus, spec, strict_utf8)
    return corpus
  key = spec_key(spec, paths) if key is None else key
  target = os.path.join(cache_dir, f"corpus-v{CACHE_VERSION}-{key}")
  if os.path.isdir(target):
    try:
      corpus = corpus_store.StoredCorpus(target)
    except corpus_store.CacheError as e:  # damaged, changed or partly deleted
      text.warn(f"ignoring the corpus cache {target}: {e}; rebuilding it")
    else:
      check_utf8(corpus, spec, strict_utf8)
      return corpus
  try:
    corpus = tokenize(spec, target, progress, paths)
  except OSError as e:
    text.warn(f"could not write the corpus cache in {cache_dir} ({e.strerror}); continuing "
              "with a temporary one")
    return load(spec, None, progress, strict_utf8, paths)
  check_utf8(corpus, spec, strict_utf8)
  return corpus


def load_corpus(path: str, text_column: str = "review", max_documents: int = 0,
                stopwords: frozenset[str] = frozenset(), cache_dir: str | None = "data/cache",
                progress: bool = True, strict_utf8: bool = False) -> corpus_store.StoredCorpus:
  """`load` for a CSV cleaned with the IMDB rules."""
  return load(CorpusSpec(source=path, text_column=text_column, max_documents=max_documents,
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
