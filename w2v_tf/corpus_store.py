"""The on-disk corpus cache: token ids and document offsets in files, read chunk by chunk.

A cache is a folder `corpus-KEY/`:

  tokens.i32    [T] int32 token ids, documents one after the other (little-endian, raw)
  offsets.i64   [R + 1] int64 token offset of each document
  types.txt     the U distinct words, one a line, by descending count then alphabetically
  counts.i64    [U] int64 their counts
  meta.json     version, sizes, the invalid-UTF-8 record, vocabulary pruning

Ids index `types`; the id U stands for a word that the type table had to drop while counting
(`max_vocab_size`, as gensim's pruning): it is out of every vocabulary. Since types are sorted
by count, a vocabulary is a prefix of them and a token is in it when its id is below V.

`CorpusWriter` builds a cache in one streaming pass (provisional ids in first-seen order, then
one pass that rewrites them as ranks) and publishes it by renaming its folder, so a crash never
leaves a half-written cache. `StoredCorpus` reads one: the offsets (8 bytes a document), the
types and counts are in memory; tokens are read from disk a block at a time.
"""

from __future__ import annotations

import atexit
import json
import os
import shutil
import tempfile
from typing import Iterator

import numpy as np
import tensorflow as tf

from w2v_tf.errors import UserError

FORMAT_VERSION = 1
_TOKENS, _OFFSETS, _TYPES, _COUNTS, _META = (
    "tokens.i32", "offsets.i64", "types.txt", "counts.i64", "meta.json")
_REWRITE_BLOCK = 1 << 22
PRUNED_ID = -1  # a provisional id `add_tokens` takes for a token of a pruned word (-> U)  # tokens per read/remap/write block of the final pass


class StoredCorpus:
  """A cleaned corpus in a cache folder (before min_count and subsampling).

  Attributes:
    path: the cache folder.
    types: [U] distinct words, by descending count then alphabetically.
    type_counts: [U] int64 counts of `types`.
    review_offsets: [R + 1] int64; document r is tokens[review_offsets[r]:review_offsets[r+1]].
    meta: the cache's meta.json (invalid UTF-8 record, pruning).
  """

  def __init__(self, path: str):
    self.path = path
    with open(os.path.join(path, _META), encoding="utf-8") as f:
      self.meta = json.load(f)
    if self.meta.get("version") != FORMAT_VERSION:
      raise ValueError(f"cache format {self.meta.get('version')}, expected {FORMAT_VERSION}")
    with open(os.path.join(path, _TYPES), "rb") as f:
      text = f.read().decode("utf-8")
    self.types = tuple(text.split("\n")[:-1]) if text else ()
    self.type_counts = np.fromfile(os.path.join(path, _COUNTS), np.int64)
    self.review_offsets = np.fromfile(os.path.join(path, _OFFSETS), np.int64)
    token_bytes = os.path.getsize(os.path.join(path, _TOKENS))
    if (len(self.types) != len(self.type_counts) or len(self.review_offsets) < 1
        or token_bytes != 4 * int(self.review_offsets[-1])
        or self.meta.get("num_tokens") != int(self.review_offsets[-1])):
      raise ValueError("the cache's files disagree on their sizes")

  @property
  def num_reviews(self) -> int:
    return len(self.review_offsets) - 1

  @property
  def num_tokens(self) -> int:
    return int(self.review_offsets[-1])

  @property
  def invalid_utf8_reviews(self) -> int:
    return int(self.meta.get("invalid_utf8_reviews", 0))

  @property
  def first_invalid_utf8_review(self) -> int:
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
    offsets = self.review_offsets
    first = 0
    while first < self.num_reviews:
      last = int(np.searchsorted(offsets, offsets[first] + block_tokens, side="right")) - 1
      last = min(max(last, first + 1), self.num_reviews)
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
    atexit.register(shutil.rmtree, _TEMPORARY[0], True)
  return _TEMPORARY[0]


def fingerprints(words) -> tf.Tensor:
  """[n] int64 64-bit fingerprints (FarmHash, >= 0) of [n] tf.string words: the writer's keys."""
  return tf.strings.to_hash_bucket_fast(words, (1 << 63) - 1)


class CorpusWriter:
  """Builds a cache folder in one pass over the documents, in bounded memory.

  Call `add_words` with each batch's distinct words (it returns their provisional ids and
  counts them), `add_tokens` with the batch's ids and document lengths, then `finish`.
  The type table is pruned as gensim's `max_vocab_size` prunes: when it holds more than
  `max_types` words, those seen fewer than `min_reduce` times are dropped, and `min_reduce`
  grows (from 1: the first prune drops nothing, as gensim's).
  """

  def __init__(self, final_path: str, max_types: int = 0):
    self.final_path = final_path
    parent = os.path.dirname(os.path.abspath(final_path))
    os.makedirs(parent, exist_ok=True)
    self.work_path = tempfile.mkdtemp(prefix=os.path.basename(final_path) + ".tmp-", dir=parent)
    self.max_types = max_types
    # fingerprint -> provisional id. A TF dense table: 0.9 ms per 13k-word batch where a Python
    # dict took 17 ms (IMDB's cold pass has 98 such batches). Fingerprints are >= 0.
    self._table = tf.lookup.experimental.DenseHashTable(tf.int64, tf.int64, default_value=-1,
                                                        empty_key=-1, deleted_key=-2)
    self._size = 0  # provisional ids given
    self._live = 0  # words in the table (not pruned)
    self._words = np.full([1 << 16], None, object)  # provisional id -> word (None: pruned)
    self._keys = np.zeros([1 << 16], np.int64)  # provisional id -> fingerprint
    self._counts = np.zeros([1 << 16], np.int64)  # provisional id -> count
    self._tokens = open(os.path.join(self.work_path, "provisional.i32"), "wb")
    self._lengths = open(os.path.join(self.work_path, "lengths.i64"), "wb")
    self.num_tokens = 0
    self.num_documents = 0
    self.min_reduce = 1
    self.prune_events = 0
    self.meta: dict = {}

  def add_words(self, keys: np.ndarray, words: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """[u] int32 provisional ids of a batch's distinct words, adding their `counts`.

    Args:
      keys: [u] int64 `fingerprints` of the words.
      words: [u] bytes, the words (object array).
      counts: [u] int64, their counts in the batch.

    Words are told apart by their fingerprints: deduplicating fingerprints in tf.data took
    0.14 s per 10k IMDB reviews, the strings 0.43 s. Each batch's words are compared with the
    words their fingerprints first stood for, so two words sharing one (about 1 chance in
    10^5 for 10M distinct words) stop the run instead of merging silently.
    """
    ids = self._table.lookup(tf.constant(keys, tf.int64)).numpy()  # [u], -1 for new words
    new = np.flatnonzero(ids < 0)
    known = np.flatnonzero(ids >= 0)
    if len(known):
      seen = self._words[ids[known]]
      differ = np.flatnonzero(seen != words[known])
      if len(differ):
        clash = known[differ[0]]
        raise UserError(f"the words {words[clash]!r} and {self._words[ids[clash]]!r} share a "
                        "64-bit fingerprint, which this corpus cache cannot tell apart: please "
                        "report it (renaming one of the words in the corpus works around it)")
    if len(new):
      new_ids = np.arange(self._size, self._size + len(new), dtype=np.int64)
      self._table.insert(tf.constant(keys[new], tf.int64), tf.constant(new_ids))
      self._size += len(new)
      while self._size > len(self._counts):
        grow = len(self._counts)
        self._counts = np.concatenate([self._counts, np.zeros(grow, np.int64)])
        self._words = np.concatenate([self._words, np.full(grow, None, object)])
        self._keys = np.concatenate([self._keys, np.zeros(grow, np.int64)])
      self._words[new_ids] = words[new]
      self._keys[new_ids] = keys[new]
      self._live += len(new)
      ids[new] = new_ids
    self._counts[ids] += np.asarray(counts, np.int64)  # ids are distinct within a batch
    return ids.astype(np.int32)

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
    live = np.flatnonzero(self._words[:self._size] != None)  # noqa: E711 (elementwise)
    dropped = live[self._counts[live] < self.min_reduce]
    self._table.erase(tf.constant(self._keys[dropped], tf.int64))
    self._words[dropped] = None
    self._counts[dropped] = 0
    self._live -= len(dropped)
    self.min_reduce += 1
    self.prune_events += 1

  @property
  def num_types(self) -> int:
    return self._live

  def finish(self, meta: dict) -> StoredCorpus:
    """Ranks the types, rewrites the ids as ranks, writes the tables and publishes the folder."""
    self._tokens.close()
    self._lengths.close()
    live = np.flatnonzero(self._words[:self._size] != None)  # noqa: E711 (elementwise)
    words = [word.decode("utf-8") for word in self._words[live].tolist()]
    counts = self._counts[live]
    order = np.lexsort((np.asarray(words, dtype=object), -counts)) if len(words) else live
    rank = np.full(self._size + 1, len(words), np.int32)  # pruned (and PRUNED_ID = -1) -> U
    rank[live[order]] = np.arange(len(order), dtype=np.int32)
    work = self.work_path
    pruned = 0
    with open(os.path.join(work, "provisional.i32"), "rb") as source, \
        open(os.path.join(work, _TOKENS), "wb") as target:
      while True:
        block = np.fromfile(source, np.int32, count=_REWRITE_BLOCK)
        if not len(block):
          break
        ranked = rank[block]
        pruned += int(np.count_nonzero(ranked == len(words)))
        ranked.tofile(target)
      target.flush()
      os.fsync(target.fileno())
    os.remove(os.path.join(work, "provisional.i32"))
    lengths = np.fromfile(os.path.join(work, "lengths.i64"), np.int64)
    os.remove(os.path.join(work, "lengths.i64"))
    np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64).tofile(
        os.path.join(work, _OFFSETS))
    counts[order].astype(np.int64).tofile(os.path.join(work, _COUNTS))
    with open(os.path.join(work, _TYPES), "wb") as f:
      f.write("".join(words[i] + "\n" for i in order).encode("utf-8"))
    self.meta = {**meta, "version": FORMAT_VERSION, "num_tokens": self.num_tokens,
                 "num_documents": self.num_documents, "pruned_tokens": pruned,
                 "prune_events": self.prune_events,
                 "prune_below_count": self.min_reduce - 1 if self.prune_events else 0}
    with open(os.path.join(work, _META), "w", encoding="utf-8") as f:
      json.dump(self.meta, f, indent=1)
    if os.path.exists(self.final_path):  # another process built it meanwhile, or a bad one
      shutil.rmtree(self.final_path, ignore_errors=True)
    os.rename(work, self.final_path)
    return StoredCorpus(self.final_path)

  def abandon(self) -> None:
    """Removes the unfinished folder (after an error)."""
    for handle in (self._tokens, self._lengths):
      if not handle.closed:
        handle.close()
    shutil.rmtree(self.work_path, ignore_errors=True)

