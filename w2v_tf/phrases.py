"""Phrase detection: join frequent bigrams ('new york' -> new_york) before training.

This is section 4 of Mikolov et al. 2013, "Distributed Representations of Words and Phrases and
their Compositionality" (the C tool word2phrase), as gensim's `Phrases` implements it: count
the words and the bigrams of adjacent words, score each bigram, and join the pairs that score
above a threshold, greedily from left to right. Each pass joins pairs of tokens, so a second
pass over the first one's output can join new_york and city into new_york_city.

The result equals gensim 4.4's `Phrases(sentences, min_count, threshold, scoring='default',
delimiter='_')[sentence]` token for token (tested; no connector words), including gensim's
one-dictionary quirk: words and joined bigram strings share one table, so a word `new_york`
(from an earlier pass) and the bigram ('new', 'york') count together and count once in
`len(vocab)` (`phrase_vocab`). Scoring 'word2phrase' is the C tool's score instead (see
`scores`).

A pass streams over the cached corpus (`corpus_store`) twice, a block of whole documents at a
time, with numpy: once to count the bigrams (int64 keys a * (U + 1) + b, per block with
`np.unique`, merged), once to join and write a new cache (`CorpusWriter`) whose types include
the joined tokens, counted again from the new stream. Memory holds the distinct-bigram table
(as gensim's vocab does) and one block. Each pass's output is cached next to its input, keyed
by the input's key, the settings and the pass, so a second run reuses it.

Tokens whose word was pruned while counting (id U) are out of every vocabulary: they never
join, and a bigram is never counted across them (gensim, which never sees them, would pair
their neighbours; the two differ only for corpora that `max_vocab_size` pruned).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import sys
import time

import numpy as np

import tensorflow as tf

from w2v_tf import corpus_store
from w2v_tf.phrase_vocab import vocab_counts
from w2v_tf.config import PHRASE_SCORINGS
from w2v_tf.errors import UsageError, warn
from w2v_tf.fileio import disk_errors

# Bump when the counting, scoring or joining rules change: it enters every cache name.
PHRASES_VERSION = 1
_BLOCK_TOKENS = 1 << 22


@dataclasses.dataclass(frozen=True)
class PhraseSettings:
  """How phrases are detected.

  Attributes:
    passes: how many passes (0: none); pass p runs on pass p - 1's output.
    min_count: subtracted from a bigram's count before scoring (gensim), or the least count of a
      word or bigram that may join at all (word2phrase).
    threshold: a bigram joins when its score is strictly above this.
    scoring: 'default' (gensim's original_scorer) or 'word2phrase' (the C tool's); see `scores`.
    delimiter: what joins the two words of a phrase.
  """
  passes: int = 1
  min_count: int = 5
  threshold: float = 10.0
  scoring: str = "default"
  delimiter: str = "_"

  def __post_init__(self):
    if self.passes < 0:
      raise UsageError(f"--phrases must be >= 0 (got {self.passes})")
    if self.min_count < 1:
      raise UsageError(f"--phrase_min_count must be >= 1 (got {self.min_count})")
    if self.scoring not in PHRASE_SCORINGS:
      raise UsageError(f"--phrase_scoring must be one of {', '.join(PHRASE_SCORINGS)} "
                       f"(got {self.scoring!r})")
    # gensim refuses it for 'default'; for 'word2phrase' a threshold <= 0 would join every
    # pair the C tool scores 0 (words below min_count), which is no phrase detection.
    if not self.threshold > 0:
      raise UsageError(f"--phrase_threshold must be > 0 (got {self.threshold})")
    if not self.delimiter:
      raise UsageError("the phrase delimiter must not be empty")

  @classmethod
  def of(cls, data_config) -> PhraseSettings:
    """The settings of a `config.DataConfig` (its phrase_* fields)."""
    return cls(passes=data_config.phrases, min_count=data_config.phrase_min_count,
               threshold=float(data_config.phrase_threshold),
               scoring=data_config.phrase_scoring)

  def fingerprint_part(self) -> str:
    """The settings in a model dir's data fingerprint: 'passes,min_count,threshold,scoring'."""
    return f"{self.passes},{self.min_count},{self.threshold:g},{self.scoring}"

  def digest(self, pass_index: int) -> str:
    """A digest of what pass `pass_index` (1-based) computes: its cache folder's suffix.

    `passes` does not enter it: pass 1 of a two-pass run is the whole of a one-pass run.
    """
    key = json.dumps({"version": PHRASES_VERSION, "pass": pass_index,
                      "min_count": self.min_count, "threshold": repr(float(self.threshold)),
                      "scoring": self.scoring, "delimiter": self.delimiter}, sort_keys=True)
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:16]


def pair_keys(token_ids: np.ndarray, offsets: np.ndarray, num_types: int
              ) -> tuple[np.ndarray, np.ndarray]:
  """The bigram key of every adjacent pair of a block, and which pairs are bigrams.

  Args:
    token_ids: [n] int32 ids (U = num_types: pruned).
    offsets: [d + 1] int64 document offsets relative to the block.
    num_types: U.

  Returns:
    (keys [n - 1] int64 a * (U + 1) + b of pair i = (token i, token i + 1), valid [n - 1]
    bool: both tokens are words (not U) of the same document).
  """
  ids = np.asarray(token_ids, np.int64)
  if len(ids) < 2:
    return np.zeros([0], np.int64), np.zeros([0], bool)
  left, right = ids[:-1], ids[1:]
  keys = left * (num_types + 1) + right
  valid = (left != num_types) & (right != num_types)
  # Pair i crosses a boundary when token i + 1 starts a document (empty documents repeat an
  # offset; offsets 0 and n start no pair).
  starts = offsets[(offsets > 0) & (offsets < len(ids))]
  valid[starts - 1] = False
  return keys, valid


def count_bigrams(corpus, block_tokens: int = _BLOCK_TOKENS) -> tuple[np.ndarray, np.ndarray]:
  """Every distinct bigram of adjacent words within documents, with its count.

  Args:
    corpus: a `StoredCorpus` (or anything with `types` and `blocks`).
    block_tokens: tokens read at a time.

  Returns:
    (keys [B] int64 sorted a * (U + 1) + b, counts [B] int64).
  """
  num_types = len(corpus.types)
  keys = np.zeros([0], np.int64)
  counts = np.zeros([0], np.int64)
  for _, token_ids, offsets in corpus.blocks(block_tokens):
    block_keys, valid = pair_keys(token_ids, offsets, num_types)
    new_keys, new_counts = np.unique(block_keys[valid], return_counts=True)
    if not len(keys):
      keys, counts = new_keys, new_counts.astype(np.int64)
      continue
    # Both tables are sorted and unique: add the known keys in place, insert the new ones.
    at = np.searchsorted(keys, new_keys)
    known = at < len(keys)
    known[known] = keys[at[known]] == new_keys[known]
    counts[at[known]] += new_counts[known]
    keys = np.insert(keys, at[~known], new_keys[~known])
    counts = np.insert(counts, at[~known], new_counts[~known])
  return keys, counts


def scores(word_a: np.ndarray, word_b: np.ndarray, bigram: np.ndarray, settings: PhraseSettings,
           len_vocab: int, train_words: int) -> np.ndarray:
  """Which bigrams join: their score is above the threshold.

  'default' is gensim's `original_scorer` in its float arithmetic (float64):
  (bigram - min_count) / float(word_a * word_b) * len_vocab, joined when > threshold.

  'word2phrase' is word2phrase.c's `TrainModel`: a bigram whose first word, second word or
  itself was seen fewer than min_count times scores 0 (the C tool drops such entries from its
  vocabulary, and an entry it cannot find is "oov"); the others score
  (bigram - min_count) / a / b * train_words, evaluated as the C tool does in `real` (float32),
  left to right; joined when > threshold. train_words is the total token count. (The C tool
  also counts bigrams across line ends, which this does not: documents are kept apart.)

  Args:
    word_a: [B] int64 vocab counts of each bigram's first word.
    word_b: [B] int64 of its second word.
    bigram: [B] int64 of the bigram.
    settings: min_count, threshold, scoring.
    len_vocab: gensim's len(vocab).
    train_words: the corpus's token count.

  Returns:
    [B] bool.
  """
  if settings.scoring == "default":
    denominator = (word_a * word_b).astype(np.float64)
    # gensim returns -inf for a word it has not seen; every word here was seen.
    score = (bigram - settings.min_count).astype(np.float64) / denominator * float(len_vocab)
    return score > settings.threshold
  f32 = np.float32
  score = ((bigram - settings.min_count).astype(f32) / word_a.astype(f32) / word_b.astype(f32)
           * f32(train_words))
  rare = (word_a < settings.min_count) | (word_b < settings.min_count) | (
      bigram < settings.min_count)
  return ~rare & (score > f32(settings.threshold))


def greedy_joins(qualifies: np.ndarray) -> np.ndarray:
  """Which pairs gensim's `analyze_sentence` joins, reading left to right.

  Pair i is (token i, token i + 1). A joined pair consumes both tokens, so the next candidate
  starts at the token after it: in a run of consecutive qualifying pairs starting at pair s,
  pairs s, s + 2, s + 4, ... join (a b c with ab and bc qualifying gives a_b c).

  Args:
    qualifies: [n - 1] bool, False for pairs across a document boundary.

  Returns:
    [n - 1] bool.
  """
  index = np.arange(len(qualifies))
  starts = qualifies.copy()
  starts[1:] &= ~qualifies[:-1]
  run_start = np.maximum.accumulate(np.where(starts, index, 0)) if len(index) else index
  return qualifies & ((index - run_start) % 2 == 0)


def join_block(token_ids: np.ndarray, offsets: np.ndarray, num_types: int,
               phrase_keys: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
  """Joins a block's qualifying pairs.

  Args:
    token_ids: [n] int32 ids (U = num_types: pruned).
    offsets: [d + 1] int64 document offsets relative to the block.
    num_types: U.
    phrase_keys: [P] int64 sorted keys of the bigrams that qualify.

  Returns:
    (ids [m] int64: old ids, or U + 1 + k for phrase k; offsets [d + 1] int64 of the new
    documents; joined [j] int64: the phrase k of each join).
  """
  keys, valid = pair_keys(token_ids, offsets, num_types)
  ids = np.asarray(token_ids, np.int64)
  if not len(phrase_keys) or not len(keys):
    return ids, np.asarray(offsets, np.int64), np.zeros([0], np.int64)
  # Binary search only the pairs whose two words both start and end some phrase: on IMDB
  # a third of them, and the search was most of the pass.
  base = num_types + 1
  starts_one, ends_one = np.zeros([base], bool), np.zeros([base], bool)
  starts_one[phrase_keys // base] = True
  ends_one[phrase_keys % base] = True
  candidates = np.flatnonzero(valid & starts_one[ids[:-1]] & ends_one[ids[1:]])
  at = np.minimum(np.searchsorted(phrase_keys, keys[candidates]), len(phrase_keys) - 1)
  hit = phrase_keys[at] == keys[candidates]
  qualifies = np.zeros([len(keys)], bool)
  qualifies[candidates[hit]] = True
  phrase_of = np.zeros([len(keys)], np.int64)
  phrase_of[candidates[hit]] = at[hit]
  joins = greedy_joins(qualifies)
  joined = phrase_of[joins]
  out = ids.copy()
  out[:-1][joins] = num_types + 1 + joined
  keep = np.ones(len(ids), bool)
  keep[1:][joins] = False  # the second word of a joined pair
  kept_before = np.concatenate([[0], np.cumsum(keep)])
  return out[keep], kept_before[offsets].astype(np.int64), joined


def _add_words(writer: corpus_store.CorpusWriter, words: np.ndarray, present: np.ndarray,
               counts: np.ndarray) -> np.ndarray:
  """`writer.add_words` for the words [present] (distinct) with their counts: [p] int32 ids."""
  chosen = words[present]
  keys = corpus_store.fingerprints(tf.constant(chosen.tolist(), tf.string)).numpy()
  return writer.add_words(keys, chosen, counts)


@dataclasses.dataclass(frozen=True)
class PassStats:
  """What one pass did.

  Attributes:
    phrase_types: distinct phrase strings that were formed.
    joins: pairs joined (the stream is that many tokens shorter).
    qualifying: distinct bigrams that scored above the threshold.
    seconds: time taken.
  """
  phrase_types: int
  joins: int
  qualifying: int
  seconds: float


def phrase_pass(corpus, settings: PhraseSettings, target: str, meta: dict | None = None,
                block_tokens: int = _BLOCK_TOKENS) -> tuple[corpus_store.StoredCorpus,
                                                            PassStats]:
  """One pass: count, score, join, and write the joined corpus to the cache folder `target`.

  Args:
    corpus: the input `StoredCorpus`.
    settings: the phrase settings.
    target: the new cache folder (published by renaming; replaced if there).
    meta: extra entries for its meta.json.
    block_tokens: tokens read at a time.

  Returns:
    (the joined corpus, what the pass did).
  """
  started = time.time()
  types = corpus.types
  num_types = len(types)
  base = num_types + 1
  keys, counts = count_bigrams(corpus, block_tokens)
  word_counts, bigram_counts, len_vocab = vocab_counts(
      types, corpus.type_counts, keys, counts, settings.delimiter)
  qualifies = scores(word_counts[keys // base], word_counts[keys % base], bigram_counts,
                     settings, len_vocab, corpus.num_tokens)
  phrase_keys = keys[qualifies]
  del keys, counts, word_counts, bigram_counts, qualifies
  phrase_words = [types[a] + settings.delimiter + types[b] for a, b in
                  zip((phrase_keys // base).tolist(), (phrase_keys % base).tolist())]
  # Extended ids: the old types, U (pruned), then the phrases. One word may have several (a
  # phrase new_york of pass 2 and the word new_york of pass 1, or the phrases new_york + city
  # and new + york_city): `canonical` maps each to the first, as the writer wants every word
  # once in a batch.
  canonical = np.arange(base + len(phrase_words), dtype=np.int64)
  first = {word: i for i, word in enumerate(types) if settings.delimiter in word}
  for k, word in enumerate(phrase_words):
    canonical[base + k] = first.setdefault(word, base + k)
  word_bytes = np.array([w.encode("utf-8") for w in types] + [b""]
                        + [w.encode("utf-8") for w in phrase_words], dtype=object)
  formed = np.zeros([len(phrase_keys)], bool)
  joins = 0
  writer = corpus_store.CorpusWriter(target)
  try:
    for _, token_ids, offsets in corpus.blocks(block_tokens):
      ids, new_offsets, joined = join_block(token_ids, offsets, num_types, phrase_keys)
      ids = canonical[ids]
      formed[joined] = True
      joins += len(joined)
      # A bincount over the extended ids instead of np.unique: no sort of the block.
      block_counts = np.bincount(ids, minlength=len(word_bytes))
      block_counts[num_types] = 0  # pruned tokens (id U) are no word
      present = np.flatnonzero(block_counts)
      provisional = np.full([len(word_bytes)], corpus_store.PRUNED_ID, np.int32)
      provisional[present] = _add_words(writer, word_bytes, present, block_counts[present])
      writer.add_tokens(provisional[ids], np.diff(new_offsets))
    formed_words = {phrase_words[k] for k in np.flatnonzero(formed).tolist()}
    stats = PassStats(phrase_types=len(formed_words), joins=joins,
                      qualifying=len(phrase_keys), seconds=0.0)
    inherited = {key: value for key, value in corpus.meta.items()
                 if key.startswith(("invalid_utf8", "first_invalid_utf8"))}
    result = writer.finish({**inherited, **(meta or {}),
                            "phrase_types": stats.phrase_types, "phrase_joins": joins,
                            "phrase_len_vocab": len_vocab})
  except BaseException:
    writer.abandon()
    raise
  return result, dataclasses.replace(stats, seconds=time.time() - started)


def phrased_corpus(corpus, settings: PhraseSettings, cache_dir: str | None = None,
                   progress: bool = True) -> corpus_store.StoredCorpus:
  """The corpus after `settings.passes` phrase passes, from the cache when it is there.

  Pass p is cached as `corpus-<key>-phrases-<digest of the settings and p>` in `cache_dir`
  (None: beside the input's folder), where <key> is the input's folder name without its
  `corpus-` prefix, the digest of its content and cleaning.

  Args:
    corpus: the cleaned `StoredCorpus` (`corpus.load`).
    settings: the phrase settings (passes 0: the corpus itself).
    cache_dir: where the passes' folders go.
    progress: one line per pass on stderr (phrase types formed, pairs joined, seconds).

  Returns:
    The joined corpus: its types include the phrases ('new_york'), counted in the new stream.
  """
  base_key = os.path.basename(os.path.normpath(corpus.path)).removeprefix("corpus-")
  folder = cache_dir or os.path.dirname(os.path.abspath(corpus.path))
  for pass_index in range(1, settings.passes + 1):
    name = f"corpus-{base_key}-phrases-{settings.digest(pass_index)}"
    target = os.path.join(folder, name)
    if os.path.isdir(target):
      try:
        corpus = corpus_store.StoredCorpus(target)
      except corpus_store.CacheError as e:
        warn(f"ignoring the phrase cache {target}: {e}; rebuilding it")
      else:
        if progress:
          print(f"phrases pass {pass_index}/{settings.passes}: from the cache "
                f"({corpus.meta.get('phrase_types', 0):,} phrase types)", file=sys.stderr)
        continue
    meta = {"phrases": {"source": base_key, "pass": pass_index, "min_count": settings.min_count,
                        "threshold": settings.threshold, "scoring": settings.scoring,
                        "delimiter": settings.delimiter}}
    try:
      joined, stats = phrase_pass(corpus, settings, target, meta)
    except OSError as e:  # as `corpus.load`: an unwritable cache is no reason to stop
      warn(f"could not write the phrase cache in {folder} ({e.strerror}); continuing with a "
           "temporary one")
      folder = corpus_store.temporary_folder()
      with disk_errors(folder):
        joined, stats = phrase_pass(corpus, settings, os.path.join(folder, name), meta)
    if progress:
      print(f"phrases pass {pass_index}/{settings.passes}: {stats.phrase_types:,} phrase types "
            f"formed, {stats.joins:,} bigrams joined ({corpus.num_tokens:,} -> "
            f"{joined.num_tokens:,} tokens), {stats.seconds:.1f} s", file=sys.stderr)
    corpus = joined
  return corpus
