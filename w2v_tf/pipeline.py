"""Per-epoch tf.data pipeline: subsample -> dynamic-window skip-gram / CBOW examples -> shuffle -> batch.

Examples are grouped by center word (Mikolov et al. 2013; word2vec's dynamic window): each
element of a batch is one kept center token with its up-to-2*window context tokens and a mask,

  center   [B]          int32 word id
  contexts [B, 2W]      int32 word ids (0 where masked)
  mask     [B, 2W]      bool, True for a real context

which is both the skip-gram input (center -> each context, `mask.sum()` pairs) and the CBOW input
(masked mean of contexts -> center). Per center token the effective window b is drawn uniformly
from 1..window and every token within b positions on either side is a context; never across a
document boundary. Subsampling removes tokens before windowing, as the C tool and gensim do, and is
drawn afresh each epoch. All randomness is stateless, seeded by (seed, epoch, chunk), so an epoch is
reproducible and a resumed run sees exactly the batches it would have seen.

The corpus is cut at document boundaries into chunks of about `chunk_tokens` tokens, each processed
as whole tensors (no per-token Python; one built ahead of the one being batched); chunk order is
shuffled per epoch and centers are shuffled within their chunk.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import shutil
import tempfile

import numpy as np
import tensorflow as tf

from w2v_tf import cache_check, corpus_store
from w2v_tf.errors import UserError, warn
from w2v_tf.fileio import owner_tag, remove_stale

_SEED_STRIDE = 1_000_003
CHUNK_FORMAT = 1  # bump when the chunk files change
_READ_TOKENS = 1 << 22  # corpus tokens read at once by `TrainingTokens.chunk` (16 MB)
# Tokens per chunk. A chunk's examples and its windowing transients are what the input pipeline
# holds. 5 epochs of IMDB, two runs each: peak RSS 935 / 942 MiB with 2^17 against 1,033 / 1,034
# with 2^18, at 360k-408k words/s against 368k-416k (AMD EPYC with AVX-512, 2 cores, a loaded
# host); 2^16 halved the pipeline's pairs/s in an earlier measurement.
CHUNK_TOKENS = 1 << 17


@dataclasses.dataclass(frozen=True)
class TrainingTokens:
  """In-vocabulary tokens of the training documents, in corpus order, read chunk by chunk.

  Only per-document and per-chunk tables are in memory; `chunk` reads a chunk's tokens from the
  corpus (from disk for a `StoredCorpus`), so memory does not grow with the corpus.

  Attributes:
    corpus: the corpus (`corpus_store.StoredCorpus`, or an in-memory `corpus.Corpus`).
    vocab_size: V; ids >= V are out of vocabulary (word2vec removes them before windowing).
    document_mask: [R] bool, documents used (None: all).
    chunk_documents: [C + 1] int64 document bounds of the chunks.
    chunk_bounds: [C + 1] int64 offsets of the chunks in the stream of training tokens.
    chunk_expected_kept: [C] float64 expected tokens of each chunk after subsampling (the
      keep-probabilities given to `training_tokens`; zeros without them).
    chunk_folder: where `write_chunks` put one file per chunk for `epoch_dataset` ("": not
      written yet).
  """
  corpus: object
  vocab_size: int
  document_mask: np.ndarray | None
  chunk_documents: np.ndarray
  chunk_bounds: np.ndarray
  chunk_expected_kept: np.ndarray
  chunk_folder: str = ""

  def chunk_path(self, index: int) -> str:
    return os.path.join(self.chunk_folder, cache_check.chunk_name(index))

  @property
  def num_tokens(self) -> int:
    return int(self.chunk_bounds[-1])

  @property
  def num_chunks(self) -> int:
    return len(self.chunk_bounds) - 1

  def chunk(self, index: int) -> tuple[np.ndarray, np.ndarray]:
    """(token_ids [n] int32, document_ids [n] int32 document of each token) of chunk `index`.

    Read in blocks of at most `_READ_TOKENS` corpus tokens: a chunk of held-out documents
    (1% of them, scattered) spans ~100x its own size of the corpus, 13M tokens for 2^17.
    """
    first, last = int(self.chunk_documents[index]), int(self.chunk_documents[index + 1])
    offsets = self.corpus.document_offsets
    token_parts, document_parts = [], []
    while first < last:
      end = int(np.searchsorted(offsets, offsets[first] + _READ_TOKENS, side="right")) - 1
      end = min(max(end, first + 1), last)
      if self.document_mask is not None and not self.document_mask[first:end].any():
        first = end
        continue
      token_ids = self.corpus.read_tokens(int(offsets[first]), int(offsets[end]))
      document_ids = np.repeat(np.arange(first, end, dtype=np.int32),
                             np.diff(offsets[first:end + 1]))
      keep = token_ids < self.vocab_size
      if self.document_mask is not None:
        keep &= self.document_mask[document_ids]
      token_parts.append(token_ids[keep])
      document_parts.append(document_ids[keep])
      first = end
    if not token_parts:
      return np.zeros([0], np.int32), np.zeros([0], np.int32)
    return np.concatenate(token_parts), np.concatenate(document_parts)

  @property
  def token_ids(self) -> np.ndarray:
    """[T] int32, all chunks in memory (small corpora and tests)."""
    return np.concatenate([self.chunk(i)[0] for i in range(self.num_chunks)] or [[]]).astype(
        np.int32)

  @property
  def document_ids(self) -> np.ndarray:
    """[T] int32 document of each token, all chunks in memory (small corpora and tests)."""
    return np.concatenate([self.chunk(i)[1] for i in range(self.num_chunks)] or [[]]).astype(
        np.int32)


def _chunk_folder_name(tokens: TrainingTokens) -> str:
  digest = hashlib.sha256()
  mask = tokens.document_mask
  for part in (str(CHUNK_FORMAT), str(tokens.vocab_size), tokens.chunk_documents.tobytes(),
               b"" if mask is None else np.packbits(mask).tobytes()):
    digest.update(part if isinstance(part, bytes) else part.encode("ascii"))
  return f"chunks-{digest.hexdigest()[:20]}"


def write_chunks(tokens: TrainingTokens, parent: str) -> TrainingTokens:
  """Writes each chunk's tokens to its own file under `parent` (reused when there); returns
  `tokens` with `chunk_folder` set.

  A chunk file is int32: [n, d] then n token ids then the d documents' lengths. `epoch_dataset`
  reads them with `tf.io.read_file`, inside the graph. Reading chunks in a Python generator
  (`tf.data.Dataset.from_generator`) halved training's words/s (99k against 193k on IMDB),
  though the pipeline alone was as fast: the generator op lowers glibc's mmap threshold
  (`w2v_tf/allocator.py`, found later), which the corpus pass now undoes; the in-graph reader needs
  no Python thread either way. The folder is named by the vocabulary size and the chunks'
  documents, so a run with another vocabulary or held-out split writes its own.
  """
  folder = os.path.join(parent, _chunk_folder_name(tokens))
  done = dataclasses.replace(tokens, chunk_folder=folder)

  def check(path):  # checksums, header, ids < V (cost: `cache_check`)
    cache_check.verify_chunks(path, tokens.num_chunks, tokens.vocab_size)
  if os.path.isdir(folder):
    try:
      check(folder)
      return done
    except cache_check.CacheError as e:
      warn(f"ignoring the training chunks {folder}: {e}; rebuilding them")
  os.makedirs(parent, exist_ok=True)
  remove_stale(parent, ".tmp-", any_stem=True)  # folders of writers killed here
  work = tempfile.mkdtemp(prefix=f"{os.path.basename(folder)}.tmp-{owner_tag()}.", dir=parent)
  try:
    checksums = cache_check.Checksums()
    for index in range(tokens.num_chunks):
      token_ids, document_ids = tokens.chunk(index)
      starts = np.flatnonzero(np.r_[True, document_ids[1:] != document_ids[:-1]]) if len(
          document_ids) else np.zeros([0], np.int64)
      lengths = np.diff(np.r_[starts, len(document_ids)]).astype(np.int32)
      data = np.concatenate([np.array([len(token_ids), len(lengths)], np.int32), token_ids,
                             lengths]).astype("<i4")
      data.tofile(os.path.join(work, cache_check.chunk_name(index)))
      checksums.update(cache_check.chunk_name(index), data)
    checksums.write(work)
    cache_check.publish(work, folder, check)  # another run's valid chunks are kept
  except BaseException:
    shutil.rmtree(work, ignore_errors=True)
    raise
  return done


def _read_chunk(path) -> tuple[tf.Tensor, tf.Tensor]:
  """(token_ids [n] int32, document_ids [n] int32: 0.. within the chunk) from a chunk file."""
  raw = tf.io.decode_raw(tf.io.read_file(path), tf.int32)
  count, documents = raw[0], raw[1]
  token_ids = raw[2:2 + count]
  lengths = raw[2 + count:2 + count + documents]
  return token_ids, tf.repeat(tf.range(documents, dtype=tf.int32), lengths)


def split_heldout(num_documents: int, heldout_documents: float, seed: int) -> np.ndarray:
  """[D] bool, True for the documents held out of training (a fraction if < 1, else a count)."""
  count = (int(round(heldout_documents * num_documents)) if heldout_documents < 1
           else int(heldout_documents))
  if count and count >= num_documents:  # clamping it trained on a single document
    raise UserError(f"--heldout_documents={heldout_documents:g} holds out {count:,} documents "
                    f"of a corpus of {num_documents:,}, leaving none to train on: lower it")
  heldout = np.zeros(num_documents, bool)
  heldout[np.random.default_rng([seed, 7]).choice(num_documents, count, replace=False)] = True
  return heldout


def training_tokens(corpus, vocab_size: int, document_mask: np.ndarray | None = None,
                    chunk_tokens: int = CHUNK_TOKENS,
                    keep_probability: np.ndarray | None = None) -> TrainingTokens:
  """Selects the in-vocabulary tokens of the chosen documents and cuts them into chunks.

  One streaming pass over the corpus counts each document's in-vocabulary tokens; chunks are
  cut at the first document start at or after each multiple of `chunk_tokens`; a second writes
  the chunks' files (`write_chunks`).

  Args:
    corpus: the cleaned corpus (its type ids are frequency-sorted, so the vocabulary is the
      first `vocab_size` types); `StoredCorpus` or `Corpus`.
    vocab_size: V; ids >= V are out of vocabulary.
    document_mask: [R] bool, documents to use (None: all).
    chunk_tokens: approximate tokens per chunk.
    keep_probability: [V] subsampling keep-probabilities, for `chunk_expected_kept`.
  """
  num_documents = corpus.num_documents
  lengths = np.zeros(num_documents, np.int64)  # [R] training tokens of each document
  kept = np.zeros(num_documents, np.float64)  # [R] their expected count after subsampling
  for first, token_ids, offsets in corpus.blocks():
    count = len(offsets) - 1
    document = np.repeat(np.arange(count), np.diff(offsets))
    keep = token_ids < vocab_size
    lengths[first:first + count] = np.bincount(document[keep], minlength=count)
    if keep_probability is not None:
      kept[first:first + count] = np.bincount(
          document[keep], weights=keep_probability[token_ids[keep]], minlength=count)
  if document_mask is not None:
    lengths[~document_mask] = 0
    kept[~document_mask] = 0
  starts = np.concatenate([[0], np.cumsum(lengths)])  # [R + 1]
  total = int(starts[-1])
  nonempty = np.flatnonzero(lengths > 0)
  document_starts = starts[nonempty]
  targets = np.arange(chunk_tokens, total, chunk_tokens)
  cut_index = np.unique(np.searchsorted(document_starts, targets))
  cut_index = cut_index[cut_index < len(document_starts)]
  cut_positions = document_starts[cut_index]
  inside = (cut_positions > 0) & (cut_positions < total)
  documents = np.array([0, *nonempty[cut_index[inside]], num_documents], np.int64)
  bounds = np.array([0, *cut_positions[inside], total], np.int64)
  kept_sums = np.concatenate([[0.0], np.cumsum(kept)])
  tokens = TrainingTokens(corpus, vocab_size, document_mask, documents, bounds,
                          np.diff(kept_sums[documents]))
  # Beside a cached corpus (reused by the next run), else in this process's temporary folder.
  parent = getattr(corpus, "path", None) or corpus_store.temporary_folder()
  try:
    return write_chunks(tokens, parent)
  except OSError:  # a read-only cache, say: the chunks are this run's only
    return write_chunks(tokens, corpus_store.temporary_folder())


def window_offsets(window: int) -> np.ndarray:
  """[2W] relative positions -W..-1, 1..W of the context slots."""
  return np.array([*range(-window, 0), *range(1, window + 1)], np.int32)


def window_contexts(token_ids, document_ids, effective_window, window: int):
  """Contexts of every position for given effective windows (never across documents).

  Args:
    token_ids: [n] int32.
    document_ids: [n] int32.
    effective_window: [n] int32 b per center, 1 <= b <= window.
    window: max window W.

  Returns:
    contexts [n, 2W] int32 (token at offset -W..-1, 1..W) and mask [n, 2W] bool.
  """
  count = tf.size(token_ids)
  offsets = tf.constant(window_offsets(window))  # [2W]
  positions = tf.range(count)[:, None] + offsets[None, :]  # [n, 2W]
  inside = (positions >= 0) & (positions < count)
  positions = tf.clip_by_value(positions, 0, tf.maximum(count - 1, 0))
  contexts = tf.gather(token_ids, positions)  # [n, 2W]
  mask = (inside
          & tf.equal(tf.gather(document_ids, positions), document_ids[:, None])
          & (tf.abs(offsets)[None, :] <= effective_window[:, None]))
  return contexts, mask


def _chunk_examples(token_ids, document_ids, keep_probability, window: int, seed):
  """Subsamples one chunk and builds its grouped examples (all tensors; see module doc).

  Args:
    token_ids: [n] int32.
    document_ids: [n] int32.
    keep_probability: [V] float32.
    window: max window W.
    seed: [2] int64 stateless seed.

  Returns:
    (center [m], contexts [m, 2W], mask [m, 2W]) shuffled, for the m kept centers that have at
    least one context.
  """
  seeds = tf.random.experimental.stateless_split(seed, num=3)
  keep = tf.random.stateless_uniform(tf.shape(token_ids), seeds[0]) < tf.gather(
      keep_probability, token_ids)
  token_ids = tf.boolean_mask(token_ids, keep)  # [n']
  document_ids = tf.boolean_mask(document_ids, keep)
  count = tf.size(token_ids)
  effective_window = tf.random.stateless_uniform(
      [count], seeds[1], minval=1, maxval=window + 1, dtype=tf.int32)  # [n'] b in 1..W
  contexts, mask = window_contexts(token_ids, document_ids, effective_window, window)
  has_context = tf.reduce_any(mask, axis=1)
  order = tf.random.experimental.stateless_shuffle(
      tf.cast(tf.where(has_context)[:, 0], tf.int32), seeds[2])
  mask = tf.gather(mask, order)
  contexts = tf.gather(contexts, order) * tf.cast(mask, tf.int32)
  return tf.gather(token_ids, order), contexts, mask


def _batches(center, contexts, mask, chunk_words, batch_size: int) -> tf.data.Dataset:
  """Splits one chunk's examples into batches of exactly `batch_size` centers.

  The last batch of a chunk is padded with masked-out rows (center 0, no contexts), so every
  batch has the same shape and a compiled step never recompiles. Each batch also carries
  "words": its share of the chunk's corpus tokens (before subsampling), so that summing it over
  an epoch gives the corpus size (word2vec's progress measure).
  """
  count = tf.size(center)
  num_batches = (count + batch_size - 1) // batch_size
  padding = num_batches * batch_size - count
  words_per_center = tf.cast(chunk_words, tf.float32) / tf.cast(tf.maximum(count, 1), tf.float32)
  def pad_and_split(x):
    row_shape = x.shape[1:].as_list()  # static ([2W] for contexts): batches keep a full shape
    x = tf.pad(x, [[0, padding]] + [[0, 0]] * len(row_shape))
    return tf.reshape(x, [num_batches, batch_size] + row_shape)
  real_centers = tf.minimum(batch_size, count - tf.range(num_batches) * batch_size)
  return tf.data.Dataset.from_tensor_slices(
      {"center": pad_and_split(center), "contexts": pad_and_split(contexts),
       "mask": pad_and_split(mask),
       "words": words_per_center * tf.cast(real_centers, tf.float32)})


def epoch_dataset(tokens: TrainingTokens, keep_probability: np.ndarray, window: int,
                  batch_size: int, seed: int, epoch: int) -> tf.data.Dataset:
  """One epoch of grouped examples, batched and prefetched.

  Args:
    tokens: training tokens with chunk bounds.
    keep_probability: [V] subsampling keep-probabilities (ones to disable).
    window: maximum window W (>= 1).
    batch_size: centers per batch.
    seed: run seed.
    epoch: epoch index (changes the subsample, windows and order).

  Returns:
    Dataset of {"center": [B], "contexts": [B, 2W], "mask": [B, 2W], "words": []}, every batch
    of exactly B rows (padding rows have an all-False mask), where "words" is the batch's share
    of corpus tokens (sums to tokens.num_tokens over the epoch).
  """
  if not tokens.chunk_folder:
    raise ValueError("epoch_dataset reads chunk files: pass write_chunks(tokens, folder)")
  order = np.random.default_rng([seed, epoch, 11]).permutation(tokens.num_chunks)
  keep_probability = tf.constant(keep_probability, tf.float32)

  def make_chunk(chunk_index, path):
    token_ids, document_ids = _read_chunk(path)
    chunk_seed = tf.stack([tf.constant(seed, tf.int64),
                           tf.constant(epoch, tf.int64) * _SEED_STRIDE + chunk_index])
    center, contexts, mask = _chunk_examples(token_ids, document_ids, keep_probability, window,
                                             chunk_seed)
    return center, contexts, mask, tf.size(token_ids, tf.int64)

  dataset = tf.data.Dataset.from_tensor_slices(
      (tf.constant(order, tf.int64),
       tf.constant([tokens.chunk_path(int(i)) for i in order], tf.string)))
  # The tf.data functions here and in training_data are not converted by AutoGraph (no Python
  # control flow on tensors): step 1 came at 22.3 and 22.8 s from process start, against 26.7
  # and 24.0 s with the conversion (benchmarks/first_step.py, AMD EPYC, 2 cores).
  plain = tf.autograph.experimental.do_not_convert
  # One chunk is built ahead of the one being batched, not one per core. With 2^18-token chunks
  # (IMDB, AMD EPYC with AVX-512, 2 cores): RSS after the first batch 743 MiB against 808, after
  # 300 steps 962 against 1,026, and the step with the live pipeline 8.3 / 9.0 ms against
  # 9.5 / 7.9 (profile_step, alternating): no slower.
  dataset = dataset.map(plain(make_chunk), num_parallel_calls=1,
                        deterministic=True)
  dataset = dataset.flat_map(plain(lambda c, x, m, n: _batches(c, x, m, n, batch_size)))
  return dataset.prefetch(tf.data.AUTOTUNE)


def real_centers(batch: dict) -> tf.Tensor:
  """[B] bool: rows that are real centers (padding rows have no context)."""
  return tf.reduce_any(batch["mask"], axis=1)


def skipgram_pairs(batch: dict) -> tuple[tf.Tensor, tf.Tensor]:
  """Flattens a grouped batch into (center [P], context [P]) pairs, P = mask.sum()."""
  centers = tf.broadcast_to(batch["center"][:, None], tf.shape(batch["contexts"]))
  return tf.boolean_mask(centers, batch["mask"]), tf.boolean_mask(batch["contexts"], batch["mask"])


def take_part(batch: dict, part, parts: int, rows: int, groups: int) -> dict:
  """Part `part` of `parts` equal parts of a batch: its centers and its groups' negatives.

  Args:
    batch: {"center" [rows], "contexts", "mask" [rows, 2W], "negatives", optional "words"}.
    part: which part, an int or an int32 scalar tensor (a replica id).
    parts: how many parts; divides `rows` and `groups`.
    rows: centers in the batch.
    groups: candidate groups in the batch (sampled softmax / NCE negatives are [groups, S]).

  Returns:
    The same structure with rows [part * rows/parts, (part+1) * rows/parts) and the matching
    groups of candidates ("words" is kept whole: it counts the corpus words of the whole batch).
  """
  row_count, group_count = rows // parts, groups // parts

  def cut(tensor, size):
    start = part * size
    return tensor[start:start + size]

  result = {key: cut(batch[key], row_count) for key in ("center", "contexts", "mask")}
  # Each kind of negatives (`w2v_tf.losses.base`) cuts its per-row and per-group parts.
  result["negatives"] = batch["negatives"].take(lambda tensor: cut(tensor, row_count),
                                                lambda tensor: cut(tensor, group_count))
  if "words" in batch:
    result["words"] = batch["words"]
  return result

