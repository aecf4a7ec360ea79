"""Data preparation for a run: corpus (cached) -> vocabulary -> training tokens -> held-out examples.

`prepare_data` does everything that reads the corpus once per run; `epoch_batches` gives one
epoch's batches with the negatives of the step's loss drawn inside tf.data, ahead of the step.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import tensorflow as tf

from w2v_tf import corpus as corpus_lib
from w2v_tf import allocator, phrases, pipeline, text
from w2v_tf import vocab as vocab_lib
from w2v_tf.config import DataConfig
from w2v_tf.errors import UsageError, UserError

HELDOUT_EPOCH = 1_000_000  # a random stream no training epoch uses


@dataclasses.dataclass
class PreparedData:
  """Everything the loop needs from the corpus.

  Attributes:
    vocab: the frequency-sorted vocabulary.
    tokens: in-vocabulary tokens of the training documents.
    keep_probability: [V] float32 subsampling keep-probabilities.
    heldout: a fixed grouped batch {"center" [H], "contexts" [H, 2W], "mask" [H, 2W]} of
      held-out documents, as numpy ({} when no document is held out).
    corpus_tokens: tokens of the whole cleaned corpus (before min_count).
    estimated_steps_per_epoch: expected batches of an epoch (subsampling keeps each token with
      its probability; every chunk's last batch is padded).
    fingerprint: what a model dir records of its data (`data_fingerprint`).
  """
  vocab: vocab_lib.Vocab
  tokens: pipeline.TrainingTokens
  keep_probability: np.ndarray
  heldout: dict
  corpus_tokens: int
  estimated_steps_per_epoch: int = 1
  fingerprint: str = ""


def prepare_data(data: DataConfig, num_sampled: int | None = None, progress: bool = True,
                 heldout_centers: int = 1000) -> PreparedData:
  """Reads (or loads the cached) corpus and derives what training needs.

  Args:
    data: where the corpus is and how it is cleaned, counted and split.
    num_sampled: candidates per group of a sampled loss: must be below the vocabulary size
      (None: no such loss).
    progress: show the first read's progress.
    heldout_centers: centers in the fixed held-out set.
  """
  corpus, fingerprint = _load(data, progress, with_fingerprint=True)
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, data.min_count, data.max_vocab)
  if len(vocab) < 2:
    raise UserError(f"vocabulary has {len(vocab)} word(s) after --min_count={data.min_count}: "
                    "lower --min_count or use a larger corpus")
  if num_sampled is not None and num_sampled >= len(vocab):
    raise UsageError(f"--num_sampled={num_sampled} must be smaller than the vocabulary "
                     f"({len(vocab)} words): lower it or --min_count")
  heldout_mask = pipeline.split_heldout(corpus.num_documents, data.heldout_documents, data.seed)
  keep = vocab.keep_probabilities(data.subsample)
  tokens = pipeline.training_tokens(corpus, len(vocab), ~heldout_mask, keep_probability=keep)
  if tokens.num_tokens == 0:
    raise UserError("no in-vocabulary tokens in the training documents: lower --min_count or "
                    "--heldout_documents")
  heldout_tokens = pipeline.training_tokens(corpus, len(vocab), heldout_mask)
  steps = int(np.ceil(tokens.chunk_expected_kept / data.batch_size).sum())
  return PreparedData(vocab, tokens, keep,
                      heldout_examples(heldout_tokens, data.window, heldout_centers, data.seed),
                      corpus.num_tokens, max(steps, 1), fingerprint)


def load_data_corpus(data: DataConfig, progress: bool = True):
  """The cleaned corpus a data config names (from the cache; with its phrase passes).

  Raises:
    UserError: one line for a missing, empty, unreadable or malformed input.
  """
  return _load(data, progress, with_fingerprint=False)[0]


def _load(data: DataConfig, progress: bool, with_fingerprint: bool):
  """(the corpus `load_data_corpus` gives, its `data_fingerprint` or None).

  The input is checked once, before the stopwords are read, and its files hashed at most once
  (for the cache and the fingerprint both).
  """
  allocator.prepare_process()  # before TensorFlow's threads first allocate
  paths = corpus_lib.check_input(corpus_lib.spec_of(data, frozenset()))
  spec = corpus_lib.spec_of(data, text.load_stopwords(data.stopwords))
  key = corpus_lib.spec_key(spec, paths) if with_fingerprint or data.cache_dir else None
  corpus = corpus_lib.load(spec, data.cache_dir or None, progress, data.strict_utf8, paths, key)
  settings = phrases.PhraseSettings.of(data) if data.phrases else None
  if settings:
    corpus = phrases.phrased_corpus(corpus, settings, data.cache_dir or None, progress)
  return corpus, data_fingerprint(key, settings) if with_fingerprint else None


def data_fingerprint(key: str, settings: phrases.PhraseSettings | None) -> str:
  """What a model dir records of its data: the corpus cache key, the chunk size and the phrase
  settings (e.g. `0d597e008bfe964303ee25dd+chunks:131072+phrases:1,5,10,default`).

  The chunk size decides each epoch's batch order, so a mid-epoch checkpoint resumes exactly only
  with it; the phrase passes change the tokens.
  """
  fingerprint = f"{key}+chunks:{pipeline.CHUNK_TOKENS}"
  if settings is not None and settings.passes:
    fingerprint += f"+phrases:{settings.fingerprint_part()}"
  return fingerprint


def heldout_examples(tokens: pipeline.TrainingTokens, window: int, max_centers: int,
                     seed: int) -> dict:
  """A fixed sample of grouped examples (no subsampling) from held-out documents, as numpy."""
  if tokens.num_tokens == 0:
    return {}
  batch = next(iter(pipeline.epoch_dataset(
      tokens, np.ones([tokens.vocab_size], np.float32), window,
      batch_size=max_centers, seed=seed, epoch=HELDOUT_EPOCH)))
  return {key: value.numpy() for key, value in batch.items() if key != "words"}


def epoch_batches(prepared: PreparedData, data: DataConfig, epoch: int, skip: int,
                  negatives: Callable[[dict, tf.Tensor], object]) -> tf.data.Dataset:
  """The epoch's batches with their negatives ("negatives"), from batch `skip` on.

  Negatives depend only on (seed, epoch, batch index), not on the model, so they are drawn
  inside tf.data ahead of the step, and a resumed run draws exactly the same ones: the
  checkpoint's (epoch, batch_in_epoch) is the whole random state of training.

  Args:
    prepared: the run's data.
    data: the data config (window, batch size, seed).
    epoch: epoch index.
    skip: batches of the epoch already trained.
    negatives: (batch, seed [2] int64) -> the batch's negatives (`TrainStep.negatives`).
  """
  dataset = pipeline.epoch_dataset(prepared.tokens, prepared.keep_probability, data.window,
                                   data.batch_size, data.seed, epoch).enumerate()
  if skip:
    dataset = dataset.skip(skip)

  def add_negatives(index, batch):
    seed = tf.stack([tf.constant(data.seed, tf.int64),
                     tf.constant(epoch, tf.int64) * (1 << 32) + index])
    return {**batch, "negatives": negatives(batch, seed)}
  # tf.data's autotuning is off: its optimisation thread sleeps between rounds, and deleting
  # an epoch's iterator waited for it (up to 18 s at every epoch end, measured on IMDB).
  # Without it, AUTOTUNE parallelism means one call per core.
  options = tf.data.Options()
  options.autotune.enabled = False
  return dataset.map(tf.autograph.experimental.do_not_convert(add_negatives),
                     num_parallel_calls=tf.data.AUTOTUNE,
                     deterministic=True).prefetch(2).with_options(options)
