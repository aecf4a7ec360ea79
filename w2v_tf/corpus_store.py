"""The on-disk corpus cache: token ids and document offsets in files, read chunk by chunk.

A cache is a folder `corpus-KEY/`:

  tokens.i32    [T] int32 token ids, documents one after the other (little-endian, raw)
  offsets.i64   [R + 1] int64 token offset of each document
  types.txt     the U distinct words, one a line, by descending count then alphabetically
  counts.i64    [U] int64 their counts
  meta.json     version, sizes, the invalid-UTF-8 record, vocabulary pruning
  manifest.json every file's size and CRC-32 (`cache_check`), checked when it is opened

Ids index `types`; the id U stands for a word that the type table had to drop while counting
(`max_vocab_size`, as gensim's pruning): it is out of every vocabulary. Since types are sorted
by count, a vocabulary is a prefix of them and a token is in it when its id is below V.

`CorpusWriter` builds a cache in one streaming pass (provisional ids given as words are first
seen, looked up by 64-bit fingerprint in a TF dense table; then one pass that rewrites them as
ranks) and publishes it by renaming its folder, so a crash never leaves a half-written cache;
a valid folder another builder published meanwhile is kept (`cache_check.publish`), and temp
folders of dead builders are removed. `StoredCorpus` reads one, after checking its checksums
and structure (`cache_check`): the offsets (8 bytes a document), the types and counts are in
memory; tokens are read from disk a block at a time.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from typing import Iterator

import numpy as np
import tensorflow as tf

from w2v_tf import cache_check
from w2v_tf.cache_check import CacheError
from w2v_tf.errors import UserError, at_exit
from w2v_tf.fileio import owner_tag, remove_stale

FORMAT_VERSION = 1
_TOKENS, _OFFSETS, _TYPES, _COUNTS, _META = (
    "tokens.i32", "offsets.i64", "types.txt", "counts.i64", "meta.json")
_FILES = (_TOKENS, _OFFSETS, _TYPES, _COUNTS, _META)
_REWRITE_BLOCK = 1 << 22  # tokens per read/remap/write block of the final pass
PRUNED_ID = -1  # a provisional id `add_tokens` takes for a token of a pruned word (-> U)


class StoredCorpus:
  """A cleaned corpus in a cache folder (before min_count and subsampling).

  Attributes:
    path: the cache folder.
    types: [U] distinct words, by descending count then alphabetically.
    type_counts: [U] int64 counts of `types`.
    document_offsets: [D + 1] int64; document d is
      tokens[document_offsets[d]:document_offsets[d + 1]].
    meta: the cache's meta.json (invalid UTF-8 record, pruning).
  """

  def __init__(self, path: str, check: bool = True):
    """Opens the folder `path`; `check`: verify its checksums and ids (a folder this process
    just wrote needs none).

    Raises:
      CacheError: a file is missing, unreadable, changed since it was written, or the tables
        disagree (one line naming the file).
    """
    self.path = path
    try:
      with open(os.path.join(path, _META), "rb") as f:
        self.meta = cache_check.check_meta(json.loads(f.read().decode("utf-8")))
      if self.meta["version"] != FORMAT_VERSION:
        raise CacheError(f"cache format {self.meta['version']}, expected {FORMAT_VERSION}")
      with open(os.path.join(path, _TYPES), "rb") as f:
        text = f.read().decode("utf-8")
      self.types = tuple(text.split("\n")[:-1]) if text else ()
      self.type_counts = np.fromfile(os.path.join(path, _COUNTS), np.int64)
      self.document_offsets = np.fromfile(os.path.join(path, _OFFSETS), np.int64)
      token_bytes = os.path.getsize(os.path.join(path, _TOKENS))
    except CacheError:
      raise
    except FileNotFoundError as e:
      raise CacheError(f"{os.path.basename(e.filename or '?')} is missing") from e
    except (OSError, ValueError) as e:  # also UnicodeDecodeError, JSONDecodeError
      raise CacheError(f"cannot read it ({cache_check.first_line(e)})") from e
    cache_check.check_tables(self.meta, self.types, self.type_counts, self.document_offsets,
                             token_bytes)
    if check:
      ids = cache_check.id_range_check(_TOKENS, len(self.types))  # U: a pruned word's id
      cache_check.verify(path, _FILES, lambda name: ids if name == _TOKENS else None)

  @property
  def num_documents(self) -> int:
    return len(self.document_offsets) - 1

  @property
  def num_tokens(self) -> int:
    return int(self.document_offsets[-1])

  # The names of earlier versions, which the benchmarks still read.
  review_offsets = property(lambda self: self.document_offsets)
  num_reviews = property(lambda self: self.num_documents)

  # meta.json keeps the keys of the caches written before (they are still found).
  @property
  def invalid_utf8_documents(self) -> int:
    return int(self.meta.get("invalid_utf8_reviews", 0))

  @property
  def first_invalid_utf8_document(self) -> int:
    return int(self.meta.get("first_invalid_utf8_review", -1))

  @property
  def first_invalid_utf8_location(self) -> str:
    """Where the first invalid document is ('' for a CSV: its line is found on demand)."""
    return self.meta.get("first_invalid_utf8_location", "")

  @property
  def pruned_tokens(self) -> int:
    """Tokens whose word the type table dropped while counting (id U)."""
    return int(self.meta.get("pruned_tokens", 0))

  def read_tokens(self, start: int, end: int) -> np.ndarray:
    """[end - start] int32 token ids of positions start..end (read from disk, not mapped)."""
    return np.fromfile(os.path.join(self.path, _TOKENS), np.int32, count=end - start,
                       offset=4 * start)

  def blocks(self, block_tokens: int = 1 << 22) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """Whole documents, about `block_tokens` tokens at a time.

    Yields:
      (first_document, token_ids [n] int32, offsets [d + 1] int64 relative to the block).
    """
    offsets = self.document_offsets
    first = 0
    while first < self.num_documents:
      last = int(np.searchsorted(offsets, offsets[first] + block_tokens, side="right")) - 1
      last = min(max(last, first + 1), self.num_documents)
      start, end = int(offsets[first]), int(offsets[last])
      yield first, self.read_tokens(start, end), offsets[first:last + 1] - start
      first = last

  @property
  def token_ids(self) -> np.ndarray:
    """[T] int32: the whole token stream in memory (for small corpora, tests and tools)."""
    return self.read_tokens(0, self.num_tokens)


_TEMPORARY: list[str] = []


def temporary_folder() -> str:
  """This process's folder for corpora without a cache (they still stream from disk); removed
  at exit."""
  if not _TEMPORARY:
    _TEMPORARY.append(tempfile.mkdtemp(prefix="w2v_tf-corpus-"))
    at_exit(shutil.rmtree, _TEMPORARY[0], True)
  return _TEMPORARY[0]


def fingerprints(words) -> tf.Tensor:
  """[n] int64 64-bit fingerprints (FarmHash, >= 0) of [n] tf.string words: the writer's keys."""
  return tf.strings.to_hash_bucket_fast(words, (1 << 63) - 1)


def check_keys(words) -> tf.Tensor:
  """[n] int64 in [0, 2^32): a second hash of [n] tf.string words (TF's legacy Hash64, not
  FarmHash), stored beside each key so that two words sharing a fingerprint are told apart."""
  return tf.bitwise.bitwise_and(tf.strings.to_hash_bucket(words, (1 << 63) - 1), 0xFFFFFFFF)


def _rank_order(words: np.ndarray, counts: np.ndarray) -> np.ndarray:
  """[u] int64 the order of [u] distinct words (UTF-8 bytes) by descending count, then bytes.

  As fixed-width bytes when that copy is small: IMDB's 161k types sorted in 0.10 s, as Python
  objects in 0.39 s. numpy's `S` compares without trailing NULs, so a word holding a NUL
  (possible with --cleaning=none) sorts as an object.
  """
  if not len(words):
    return np.zeros([0], np.int64)
  listed = words.tolist()
  longest = max(map(len, listed))
  fixed = len(listed) * longest <= 1 << 28 and b"\0" not in b"".join(listed)
  keys = words.astype(f"S{max(longest, 1)}") if fixed else words
  by_word = np.argsort(keys, kind="stable")
  return by_word[np.argsort(-counts[by_word], kind="stable")]


def lookup_tokens(table: tf.lookup.experimental.DenseHashTable, keys: tf.Tensor,
                  checks: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
  """A batch's tokens in a `CorpusWriter.table`: ([n] int64 provisional ids, -1 where not in it;
  [] int64 the first token whose check key differs from its fingerprint's, -1 if none).

  Args:
    keys: [n] int64 `fingerprints` of the tokens; checks: [n] int64 their `check_keys`.
  """
  found = table.lookup(keys)
  ids = tf.bitwise.right_shift(found, 32)  # arithmetic: -1 stays -1
  clashes = tf.where((ids >= 0) & (tf.bitwise.bitwise_and(found, 0xFFFFFFFF) != checks))[:, 0]
  return ids, tf.concat([clashes, [-1]], 0)[0]


class CorpusWriter:
  """Builds a cache folder in one pass over the documents, in bounded memory.

  Call `add_batch` with each batch's tokens (or `add_words` with distinct words and their
  counts), `add_tokens` with the provisional ids it returned and the documents' lengths, then
  `finish`. The type table is pruned as gensim's `max_vocab_size` prunes: when it holds more
  than `max_types` words, those seen fewer than `min_reduce` times are dropped, and
  `min_reduce` grows (from 1: the first prune drops nothing, as gensim's).
  """

  def __init__(self, final_path: str, max_types: int = 0):
    self.final_path = final_path
    parent = os.path.dirname(os.path.abspath(final_path))
    os.makedirs(parent, exist_ok=True)
    remove_stale(parent, ".tmp-", any_stem=True)  # folders of builders killed here
    self.work_path = tempfile.mkdtemp(
        prefix=f"{os.path.basename(final_path)}.tmp-{owner_tag()}.", dir=parent)
    self.max_types = max_types
    # fingerprint -> provisional id << 32 | check key. A TF dense table: it looks up a batch's
    # 230k IMDB tokens in 8 ms, where a Python dict took 17 ms for its 13k distinct words (and
    # finding those, `tf.unique`, 28 ms). Fingerprints are >= 0.
    self._table = tf.lookup.experimental.DenseHashTable(tf.int64, tf.int64, default_value=-1,
                                                        empty_key=-1, deleted_key=-2)
    self._size = 0  # provisional ids given
    self._live = 0  # words in the table that can enter the corpus (not pruned, not filtered)
    self._words = np.full([1 << 16], None, object)  # provisional id -> word (None: pruned)
    self._keys = np.zeros([1 << 16], np.int64)  # provisional id -> fingerprint
    self._counts = np.zeros([1 << 16], np.int64)  # provisional id -> count
    self._filtered = np.zeros([1 << 16], bool)  # provisional id -> a word the filter drops
    self._alive = np.zeros([(1 << 16) + 1], bool)  # provisional id -> in the table (not pruned)
    self._tokens = open(os.path.join(self.work_path, "provisional.i32"), "wb")
    self._lengths = open(os.path.join(self.work_path, "lengths.i64"), "wb")
    self.num_tokens = 0
    self.num_documents = 0
    self.min_reduce = 1
    self.prune_events = 0
    self.pruned_words = 0  # words the prunes dropped (the first prune drops none)
    self.meta: dict = {}

  @property
  def table(self) -> tf.lookup.experimental.DenseHashTable:
    """fingerprint -> provisional id << 32 | check key (-1: not in the table), for
    `lookup_tokens` made ahead of `add_batch` (on tf.data's threads)."""
    return self._table

  def _known(self, ids: np.ndarray, clash: int, words_at) -> np.ndarray:
    """[n] int64 provisional ids from `lookup_tokens`: -1 for words not in the table, or
    pruned since the lookup; a clash stops the run.

    `words_at(positions)` gives the words there (bytes), for the message when a word's check
    key differs from the one stored under its fingerprint: two words share it (about 1 chance
    in 10^5 for 10M distinct words), and the run stops instead of merging them silently.
    """
    if clash >= 0:
      self._refuse_clash(words_at([clash])[0], self._words[ids[clash]])
    if self.prune_events:
      ids[~self._alive[ids]] = -1  # pruned since the lookup (ids -1 read the last entry: False)
    return ids

  def _lookup(self, keys: np.ndarray, checks: np.ndarray, words_at) -> np.ndarray:
    """`_known` of the words with `keys` / `checks` [n], looked up now."""
    ids, clash = lookup_tokens(self._table, tf.constant(keys, tf.int64),
                               tf.constant(checks, tf.int64))
    return self._known(ids.numpy(), int(clash), words_at)

  @staticmethod
  def _refuse_clash(word, other) -> None:
    raise UserError(f"the words {word!r} and {other!r} share a 64-bit fingerprint, which this "
                    "corpus cache cannot tell apart: please report it (renaming one of the words "
                    "in the corpus works around it)")

  def _insert(self, keys: np.ndarray, checks: np.ndarray, words: np.ndarray,
              filtered: np.ndarray) -> np.ndarray:
    """[u] int64 new provisional ids for [u] distinct words not in the table."""
    new_ids = np.arange(self._size, self._size + len(keys), dtype=np.int64)
    self._table.insert(tf.constant(keys, tf.int64), tf.constant(new_ids << 32 | checks))
    self._size += len(keys)
    while self._size > len(self._counts):
      grow = len(self._counts)
      self._counts = np.concatenate([self._counts, np.zeros(grow, np.int64)])
      self._words = np.concatenate([self._words, np.full(grow, None, object)])
      self._keys = np.concatenate([self._keys, np.zeros(grow, np.int64)])
      self._filtered = np.concatenate([self._filtered, np.zeros(grow, bool)])
      self._alive = np.concatenate([self._alive, np.zeros(grow, bool)])
    self._words[new_ids] = words
    self._keys[new_ids] = keys
    self._filtered[new_ids] = filtered
    self._alive[new_ids] = True
    self._live += int(np.count_nonzero(~filtered))
    return new_ids

  def add_words(self, keys: np.ndarray, words: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """[u] int32 provisional ids of distinct words, adding their `counts`.

    Args:
      keys: [u] int64 `fingerprints` of the words.
      words: [u] bytes, the words (object array).
      counts: [u] int64, their counts.
    """
    checks = check_keys(tf.constant(words.tolist(), tf.string, [len(words)])).numpy()
    ids = self._lookup(keys, checks, lambda positions: words[positions])
    new = np.flatnonzero(ids < 0)
    if len(new):
      ids[new] = self._insert(keys[new], checks[new], words[new], np.zeros(len(new), bool))
    self._counts[ids] += np.asarray(counts, np.int64)  # ids are distinct
    return ids.astype(np.int32)

  def add_batch(self, tokens: tf.Tensor, keys: np.ndarray, checks: np.ndarray, ids: np.ndarray,
                clash: int, keep_words) -> tuple[np.ndarray, np.ndarray]:
    """Counts a batch's tokens: (provisional ids [k] int32 of the tokens kept, kept [n] bool).

    Args:
      tokens: [n] tf.string, the batch's tokens.
      keys: [n] int64 their `fingerprints`.
      checks: [n] int64 their `check_keys`.
      ids, clash: `lookup_tokens(table, keys, checks)`, made any time before (earlier batches
        may have added words since: those are looked up again).
      keep_words: [m] tf.string words -> [m] bool tf.Tensor, the word filter (stopwords...).
        It runs once per word, when the word is first seen: a token of a word it refused is
        not kept (and not counted).
    """
    words_at = lambda positions: tf.gather(tokens, positions).numpy()  # noqa: E731
    ids = self._known(ids, clash, words_at)
    unknown = np.flatnonzero(ids < 0)
    if len(unknown):  # tf.data looks batches up ahead (~3): words may have been added since
      ids[unknown] = self._lookup(keys[unknown], checks[unknown],
                                  lambda positions: words_at(unknown[positions]))
      unknown = unknown[ids[unknown] < 0]
    if len(unknown):
      new_keys, first, inverse = np.unique(keys[unknown], return_index=True, return_inverse=True)
      at = unknown[first]
      differ = np.flatnonzero(checks[unknown] != checks[at][inverse])  # a clash within the batch
      if len(differ):
        pair = words_at([unknown[differ[0]], at[inverse[differ[0]]]])
        self._refuse_clash(pair[0], pair[1])
      words = tf.gather(tokens, at)  # missing from the table just now: all new
      ids[unknown] = self._insert(new_keys, checks[at], words.numpy(),
                                  ~keep_words(words).numpy())[inverse]
    kept = ~self._filtered[ids]
    kept_ids = ids[kept]
    # Work per token, not per type: a bincount over a 10M-type table took 44 ms a batch, this 1 ms.
    np.add.at(self._counts, kept_ids, 1)
    return kept_ids.astype(np.int32), kept

  def add_tokens(self, token_ids: np.ndarray, document_lengths: np.ndarray) -> None:
    """Appends a batch's provisional ids [n] and its documents' lengths [d] (sum n).

    An id may be PRUNED_ID: a token whose word is not kept (it becomes U, as pruned words do).
    """
    np.asarray(token_ids, np.int32).tofile(self._tokens)
    np.asarray(document_lengths, np.int64).tofile(self._lengths)
    self.num_tokens += len(token_ids)
    self.num_documents += len(document_lengths)
    if self.max_types and self._live > self.max_types:
      self._prune()

  def _prune(self) -> None:
    # gensim's utils.prune_vocab keeps a word when keep_vocab_item: count >= min_reduce (its
    # comment says "<= min_reduce"; the code, checked against gensim 4.4.0, drops count < it).
    live = self._live_ids()
    dropped = live[self._counts[live] < self.min_reduce]
    self._table.erase(tf.constant(self._keys[dropped], tf.int64))
    self._words[dropped] = None
    self._alive[dropped] = False
    self._counts[dropped] = 0
    self._live -= len(dropped)
    self.pruned_words += len(dropped)
    self.min_reduce += 1
    self.prune_events += 1

  def _live_ids(self) -> np.ndarray:
    """Provisional ids of the words that can enter the corpus (not pruned, not filtered)."""
    return np.flatnonzero(self._alive[:self._size] & ~self._filtered[:self._size])

  @property
  def num_types(self) -> int:
    return self._live

  def finish(self, meta: dict) -> StoredCorpus:
    """Ranks the types, rewrites the ids as ranks, writes the tables and publishes the folder."""
    self._tokens.close()
    self._lengths.close()
    live = self._live_ids()
    words = self._words[live]  # UTF-8 bytes, which sort as their code points do
    counts = self._counts[live]
    order = _rank_order(words, counts)
    rank = np.full(self._size + 1, len(words), np.int32)  # pruned (and PRUNED_ID = -1) -> U
    rank[live[order]] = np.arange(len(order), dtype=np.int32)
    work = self.work_path
    pruned = 0
    checksums = cache_check.Checksums()  # CRC-32 as the files are written: no second read
    with open(os.path.join(work, "provisional.i32"), "rb") as source, \
        open(os.path.join(work, _TOKENS), "wb") as target:
      while True:
        block = np.fromfile(source, np.int32, count=_REWRITE_BLOCK)
        if not len(block):
          break
        ranked = rank[block].astype("<i4", copy=False)
        pruned += int(np.count_nonzero(ranked == len(words)))
        ranked.tofile(target)
        checksums.update(_TOKENS, ranked)
      target.flush()
      os.fsync(target.fileno())
    os.remove(os.path.join(work, "provisional.i32"))
    lengths = np.fromfile(os.path.join(work, "lengths.i64"), np.int64)
    os.remove(os.path.join(work, "lengths.i64"))
    np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64).tofile(
        os.path.join(work, _OFFSETS))
    counts[order].astype(np.int64).tofile(os.path.join(work, _COUNTS))
    with open(os.path.join(work, _TYPES), "wb") as f:
      f.write(b"\n".join(words[order].tolist()) + b"\n" if len(order) else b"")
    self.meta = {**meta, "version": FORMAT_VERSION, "num_tokens": self.num_tokens,
                 "num_documents": self.num_documents, "pruned_tokens": pruned,
                 "prune_events": self.prune_events,
                 "prune_below_count": self.min_reduce - 1 if self.prune_events else 0}
    with open(os.path.join(work, _META), "w", encoding="utf-8") as f:
      json.dump(self.meta, f, indent=1)
    for name in (_OFFSETS, _COUNTS, _TYPES, _META):  # small: read back
      checksums.add_file(work, name)
    checksums.write(work)  # last: a folder with a manifest is complete
    existing = []
    if not cache_check.publish(work, self.final_path,
                               lambda path: existing.append(StoredCorpus(path))):
      return existing[-1]  # another process built it meanwhile: its folder stays
    return StoredCorpus(self.final_path, check=False)

  def abandon(self) -> None:
    """Removes the unfinished folder (after an error)."""
    for handle in (self._tokens, self._lengths):
      if not handle.closed:
        handle.close()
    shutil.rmtree(self.work_path, ignore_errors=True)

