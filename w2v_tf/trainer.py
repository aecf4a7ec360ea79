"""The training loop: sampled softmax (or NCE, negative sampling, full softmax) with the exact loss alongside.

Every `eval_every_steps` steps the exact full-softmax cross-entropy is computed on the current
training batch and on a fixed held-out set from reviews excluded from training, and logged next
to the running training loss (console and TensorBoard). Checkpoints (model, optimizer slots,
step, epoch, position in the epoch, words processed, the sampler's RNG) go to `model_dir` with
`tf.train.CheckpointManager`; a run started again on the same `model_dir` resumes exactly where
the last checkpoint was taken. SIGINT / SIGTERM save a checkpoint before exiting.

The learning rate decays linearly with the corpus words processed, from `learning_rate` down to
1e-4 of it at the end of the last epoch (word2vec's schedule).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import math
import os
import shutil
import signal
import sys
import time
from typing import Callable

import numpy as np
import tensorflow as tf

from w2v_tf import checkpoints
from w2v_tf import corpus as corpus_lib
from w2v_tf import export, losses, pipeline, text
from w2v_tf import vocab as vocab_lib
from w2v_tf.config import DataConfig, to_json
from w2v_tf.errors import UsageError, UserError
from w2v_tf.fileio import atomic_write_text, disk_errors
from w2v_tf.model import ModelConfig, Word2Vec
from w2v_tf.optim import DEFAULT_LEARNING_RATES, make_optimizer
from w2v_tf.sampling import GroupCandidates, UnigramSampler

LOSSES = ("sampled_softmax", "nce", "negative_sampling", "full_softmax")
MODELS = ("skipgram", "cbow")
STRATEGIES = ("default", "mirrored", "multi_worker", "parameter_server")
MIN_LEARNING_RATE_FRACTION = 1e-4
NUM_VALIDATION_WORDS = 16
_HELDOUT_EPOCH = 1_000_000  # a random stream no training epoch uses
_FULL_SOFTMAX_SLICE = 256  # centers per [centers, V] logit matrix of the exact loss
_FULL_SOFTMAX_BATCH_CENTERS = 1024  # centers of the training batch the exact loss is taken on
_STEP_PARTS = 4  # row slices of a compiled step's loss (see Trainer._loss_and_gradients)

# Config keys that change shapes or data: a model_dir trained with other values is refused.
_INCOMPATIBLE_KEYS = {
    "data": ("train_csv", "text_column", "max_reviews", "stopwords", "min_count", "max_vocab",
             "subsample", "window", "batch_size", "heldout_reviews", "seed"),
    "model": ("vocab_size", "embedding_dim", "model"),
    "train": ("optimizer",),
}


@dataclasses.dataclass(frozen=True)
class TrainConfig:
  """How to train and where to write.

  Attributes:
    model_dir: checkpoints, TensorBoard events, config.json and exported vectors.
    epochs: passes over the corpus.
    learning_rate: initial rate (None: 0.025 skip-gram / 0.05 CBOW for SGD, 0.1 Adagrad,
      0.001 Adam); decays linearly to 1e-4 of it.
    optimizer: "sgd" (word2vec's), "adagrad" or "adam" (lazy); all update only touched rows.
    checkpoint_every_steps: also checkpoint at each epoch end and on SIGINT/SIGTERM.
    keep_checkpoints: how many checkpoints to keep.
    eval_every_steps: interval of the full-softmax comparison and the console log line.
    heldout_centers: center words (with their contexts) in the fixed held-out set.
    analogies: analogy file evaluated at each epoch end (None: skip).
    overwrite: start afresh in a model_dir that holds another run.
    jit_compile: compile the loss and gradient with XLA.
    progress: draw the per-epoch progress bar on stderr.
    strategy: "default" (one device, this class) or a tf.distribute strategy: "mirrored",
      "multi_worker", "parameter_server" (`w2v_tf.distributed.make_trainer` picks the class).
    cpu_devices: split the CPU into this many logical devices for "mirrored" (0: don't).
    steps_per_call: training steps run in one tf.function call between Python's checks
      (signals, progress); calls also end at each loss comparison and checkpoint.
  """
  model_dir: str = "checkpoints/imdb"
  epochs: int = 5
  learning_rate: float | None = None
  optimizer: str = "sgd"
  checkpoint_every_steps: int = 5000
  keep_checkpoints: int = 3
  eval_every_steps: int = 2000
  heldout_centers: int = 1000
  analogies: str | None = None
  overwrite: bool = False
  jit_compile: bool = True
  progress: bool = True
  strategy: str = "default"
  cpu_devices: int = 0
  steps_per_call: int = 50


def default_learning_rate(optimizer: str, model: str) -> float:
  return DEFAULT_LEARNING_RATES[(optimizer, model)]


def validate(data: DataConfig, model: ModelConfig, train: TrainConfig) -> None:
  """Raises UsageError for values that cannot work (before any data is read)."""
  problems = []
  for name, value in (("--window", data.window), ("--embedding_dim", model.embedding_dim),
                      ("--batch_size", data.batch_size), ("--epochs", train.epochs),
                      ("--min_count", data.min_count), ("--num_sampled", model.num_sampled),
                      ("--keep_checkpoints", train.keep_checkpoints),
                      ("--checkpoint_every_steps", train.checkpoint_every_steps),
                      ("--eval_every_steps", train.eval_every_steps),
                      ("--steps_per_call", train.steps_per_call)):
    if value <= 0:
      problems.append(f"{name} must be positive (got {value})")
  if train.learning_rate is not None and not train.learning_rate > 0:
    problems.append(f"--learning_rate must be > 0 (got {train.learning_rate})")
  if not 0 <= data.subsample < 1:
    problems.append(f"--subsample must be in [0, 1) (got {data.subsample})")
  if data.heldout_reviews < 0:
    problems.append(f"--heldout_reviews must be >= 0 (got {data.heldout_reviews})")
  if model.sample_group_centers <= 0 or data.batch_size % model.sample_group_centers:
    problems.append(f"--batch_size ({data.batch_size}) must be a multiple of "
                    f"--sample_group_centers ({model.sample_group_centers})")
  if model.loss not in LOSSES:
    problems.append(f"--loss must be one of {', '.join(LOSSES)} (got {model.loss!r})")
  if model.model not in MODELS:
    problems.append(f"--model must be one of {', '.join(MODELS)} (got {model.model!r})")
  if train.optimizer not in ("sgd", "adagrad", "adam"):
    problems.append(f"--optimizer must be sgd, adagrad or adam (got {train.optimizer!r})")
  if train.strategy not in STRATEGIES:
    problems.append(f"--strategy must be one of {', '.join(STRATEGIES)} "
                    f"(got {train.strategy!r})")
  if train.cpu_devices < 0 or (train.cpu_devices and train.strategy != "mirrored"):
    problems.append(f"--cpu_devices ({train.cpu_devices}) must be >= 0, and is for "
                    "--strategy=mirrored only")
  if problems:
    raise UsageError("; ".join(problems))


@dataclasses.dataclass
class PreparedData:
  """Everything the loop needs from the corpus."""
  vocab: vocab_lib.Vocab
  tokens: pipeline.TrainingTokens
  keep_probability: np.ndarray
  heldout: dict
  corpus_tokens: int


def prepare_data(data: DataConfig, num_sampled: int | None = None, progress: bool = True,
                 heldout_centers: int = 1000) -> PreparedData:
  """Corpus (cached) -> vocabulary -> training tokens and the held-out examples."""
  corpus_lib.read_header(data.train_csv)  # a missing / empty file first, before stopwords
  stopwords = text.load_stopwords(data.stopwords)
  corpus = corpus_lib.load_corpus(data.train_csv, data.text_column, data.max_reviews, stopwords,
                                  data.cache_dir or None, progress, data.strict_utf8)
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, data.min_count, data.max_vocab)
  if len(vocab) < 2:
    raise UserError(f"vocabulary has {len(vocab)} word(s) after --min_count={data.min_count}: "
                    "lower --min_count or use a larger corpus")
  if num_sampled is not None and num_sampled >= len(vocab):
    raise UsageError(f"--num_sampled={num_sampled} must be smaller than the vocabulary "
                     f"({len(vocab)} words): lower it or --min_count")
  heldout_mask = pipeline.split_heldout(corpus.num_reviews, data.heldout_reviews, data.seed)
  tokens = pipeline.training_tokens(corpus, len(vocab), ~heldout_mask)
  if tokens.num_tokens == 0:
    raise UserError("no in-vocabulary tokens in the training reviews: lower --min_count or "
                    "--heldout_reviews")
  heldout_tokens = pipeline.training_tokens(corpus, len(vocab), heldout_mask)
  return PreparedData(vocab, tokens, vocab.keep_probabilities(data.subsample),
                      heldout_examples(heldout_tokens, data.window, heldout_centers, data.seed),
                      corpus.num_tokens)


def heldout_examples(tokens: pipeline.TrainingTokens, window: int, max_centers: int,
                     seed: int) -> dict:
  """A fixed sample of grouped examples (no subsampling) from held-out reviews, as numpy."""
  if tokens.num_tokens == 0:
    return {}
  batch = next(iter(pipeline.epoch_dataset(
      tokens, np.ones([int(tokens.token_ids.max()) + 1], np.float32), window,
      batch_size=max_centers, seed=seed, epoch=_HELDOUT_EPOCH)))
  return {key: value.numpy() for key, value in batch.items() if key != "words"}


class _SignalCatcher:
  """Records SIGINT / SIGTERM so the loop can checkpoint before exiting."""

  def __init__(self):
    self.received: int | None = None
    self._previous = {}

  def __enter__(self):
    for signum in (signal.SIGINT, signal.SIGTERM):
      try:
        self._previous[signum] = signal.signal(signum, self._handle)
      except ValueError:  # not the main thread: signals stay with the caller
        pass
    return self

  def _handle(self, signum, frame):  # pylint: disable=unused-argument
    self.received = signum

  def __exit__(self, *exc):
    for signum, handler in self._previous.items():
      signal.signal(signum, handler)


class _ProgressBar:
  """One line per epoch on stderr: bar, percent, words/s, ETA (redrawn at most 4 times/s)."""

  def __init__(self, enabled: bool, total_words: float, epoch: int, epochs: int):
    self.enabled = enabled
    self.total = total_words
    self.title = f"epoch {epoch + 1}/{epochs}"
    self.tty = sys.stderr.isatty()
    self.last_draw = 0.0
    self.last_percent = -10

  def update(self, done_words: float, words_per_sec: float, loss: float | None, force=False):
    if not self.enabled:
      return
    now = time.time()
    fraction = min(done_words / max(self.total, 1), 1.0)
    percent = int(fraction * 100)
    if self.tty and not force and now - self.last_draw < 0.25:
      return
    if not self.tty and not force and percent < self.last_percent + 10:
      return
    self.last_draw, self.last_percent = now, percent
    eta = (self.total - done_words) / words_per_sec if words_per_sec > 0 else float("nan")
    bar = "#" * int(fraction * 30)
    line = (f"{self.title} [{bar:<30}] {percent:3d}% {words_per_sec / 1e3:,.0f}k words/s "
            f"ETA {_format_seconds(eta)}" + (f" loss {loss:.3f}" if loss is not None else ""))
    print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=sys.stderr,
          flush=True)

  def clear(self):
    if self.enabled and self.tty:
      print("\r" + " " * 110 + "\r", end="", file=sys.stderr, flush=True)


def _format_seconds(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "--:--"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


class Trainer:
  """Trains one model in `train.model_dir`; `run()` returns a summary dict."""

  def __init__(self, data: DataConfig, model: ModelConfig, train: TrainConfig,
               log: Callable[[str], None] | None = None):
    validate(data, model, train)
    if train.strategy != "default" and self.__class__ is Trainer:
      raise UsageError(f"strategy {train.strategy!r} needs w2v_tf.distributed.make_trainer")
    self.data_config, self.train_config = data, train
    self.log = log or (lambda message: print(message, file=sys.stderr, flush=True))
    self.prepared = prepare_data(data, model.num_sampled if model.loss in (
        "sampled_softmax", "nce") else None, train.progress, train.heldout_centers)
    self.model_config = dataclasses.replace(model, vocab_size=len(self.prepared.vocab))
    self.learning_rate = train.learning_rate or default_learning_rate(train.optimizer, model.model)
    self._check_model_dir()
    self.sampler = UnigramSampler(self.prepared.vocab.counts)
    self.num_sample_groups = data.batch_size // model.sample_group_centers
    self._build_state()
    # With SGD the loss, its gradient and the row updates compile into one XLA program; the
    # other optimizers' updates (tf.unique) run outside it. Negatives are drawn in the input
    # pipeline (`epoch_batches`), in parallel with the step.
    self._fused_update = train.jit_compile and self.optimizer.xla_compatible
    self._step_parts = _STEP_PARTS if self._fused_update and self.num_sample_groups % (
        _STEP_PARTS) == 0 and data.batch_size >= 1024 * _STEP_PARTS else 1
    self._compute = tf.function(self._loss_and_gradients, jit_compile=train.jit_compile,
                                reduce_retracing=True)
    self._update = tf.function(self._loss_gradients_and_update, jit_compile=self._fused_update,
                               reduce_retracing=True)
    self._train_step = tf.function(self._step, reduce_retracing=True)
    self._train_loop = tf.function(self._steps_in_graph)
    self._full_softmax = tf.function(self._full_softmax_sum, input_signature=[{
        "center": tf.TensorSpec([None], tf.int32),
        "contexts": tf.TensorSpec([None, None], tf.int32),
        "mask": tf.TensorSpec([None, None], tf.bool)}])

  def _build_state(self) -> None:
    """Creates the training state: tables, optimizer slots, counters, checkpoint, loss sums.

    `w2v_tf.distributed.DistributedTrainer` creates them under its strategy's scope.
    """
    self.model = Word2Vec(self.model_config, self.data_config.seed)
    self.variables = [self.model.input_embeddings, self.model.output_weights,
                      self.model.output_bias]
    self.optimizer = make_optimizer(self.train_config.optimizer, self.variables)
    self.step = tf.Variable(0, dtype=tf.int64, name="step")
    self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
    self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, name="batch_in_epoch")
    self.words_done = tf.Variable(0.0, dtype=tf.float64, name="words_done")
    self.checkpoint = tf.train.Checkpoint(
        model=self.model, optimizer=self.optimizer, step=self.step,
        epoch=self.epoch, batch_in_epoch=self.batch_in_epoch, words_done=self.words_done)
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.train_config.model_dir,
                                              max_to_keep=self.train_config.keep_checkpoints)
    self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.loss_count = tf.Variable(0.0, dtype=tf.float64, trainable=False)

  # --- model dir -----------------------------------------------------------------------------

  def _config_json(self) -> str:
    return to_json(self.data_config, self.model_config, self.train_config)

  def _check_model_dir(self) -> None:
    model_dir = self.train_config.model_dir
    config_path = os.path.join(model_dir, "config.json")
    if os.path.exists(model_dir) and not os.path.isdir(model_dir):
      raise UserError(f"--model_dir={model_dir} is a file, not a directory: choose another "
                      "--model_dir")
    if os.path.isdir(model_dir) and not self.train_config.overwrite:
      checkpoints.repair_state(model_dir, self.log)  # an unreadable state file would lose the run
      checkpoints.remove_partial_writes(model_dir, self.log)
    has_checkpoint = checkpoints.has_checkpoint(model_dir)
    if os.path.exists(config_path) and (has_checkpoint or self.train_config.overwrite):
      if self.train_config.overwrite:
        _clear_model_dir(model_dir)
      else:
        try:
          with open(config_path, encoding="utf-8") as f:
            previous = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
          raise UserError(f"{config_path} is unreadable ({e}); pass --overwrite to start "
                          "afresh or choose another --model_dir") from e
        current = json.loads(self._config_json())
        differences = [
            f"{section}.{key}: {previous.get(section, {}).get(key)!r} -> "
            f"{current[section][key]!r}"
            for section, keys in _INCOMPATIBLE_KEYS.items() for key in keys
            if previous.get(section, {}).get(key) != current[section][key]]
        if differences:
          raise UserError(f"{model_dir} holds a run with another configuration "
                          f"({'; '.join(differences)}): pass --overwrite to replace it or "
                          "choose another --model_dir")
    with disk_errors(model_dir):
      os.makedirs(model_dir, exist_ok=True)
    with disk_errors(config_path):
      atomic_write_text(config_path, self._config_json())
    self.prepared.vocab.save_tsv(os.path.join(model_dir, "vocab.tsv"))

  def restore(self) -> bool:
    """Restores the newest readable checkpoint (falling back to older ones). True if restored.

    Sets `restored_checkpoint` (None when starting afresh); a damaged newer checkpoint is
    skipped with a warning line naming it.
    """
    # The state file's list, not `manager.checkpoints`: the manager drops entries that have no
    # timestamp (a state file written by hand or by older tools) and would start afresh.
    candidates, _ = checkpoints.candidates(self.train_config.model_dir)
    failures = []
    self.restored_checkpoint = checkpoints.restore_newest_readable(
        checkpoints.make_restore(self.checkpoint), candidates, self.log, failures)
    self._last_good_checkpoint = self.restored_checkpoint
    if self.restored_checkpoint is None and candidates:
      raise UserError(f"no readable checkpoint in {self.train_config.model_dir} "
                      f"({len(candidates)} tried, all damaged; newest: {failures[0]}): pass "
                      "--overwrite to start afresh")
    return self.restored_checkpoint is not None

  def _last_good(self) -> str:
    path = getattr(self, "_last_good_checkpoint", None)
    if not path:
      return "no checkpoint was written yet"
    return f"the last good checkpoint, {path}, is intact"

  def save(self) -> str:
    """Writes a checkpoint (numbered by step); a full disk becomes a clear error."""
    step = int(self.step.numpy())
    try:
      path = self.manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
      # TF writes into ckpt-N_temp/ before moving the files into place: free that space.
      shutil.rmtree(os.path.join(self.train_config.model_dir, f"ckpt-{step}_temp"),
                    ignore_errors=True)
      message = (str(e).splitlines() or [type(e).__name__])[0].split("}} ")[-1][:200]
      if "No space left" in message or getattr(e, "errno", None) == errno.ENOSPC:
        message = f"disk full: {message}"
      raise UserError(f"could not write a checkpoint in {self.train_config.model_dir} "
                      f"({message}); {self._last_good()}: free disk space and run "
                      "the same command again to resume") from e
    self._last_good_checkpoint = path
    return path

  # --- the step ----------------------------------------------------------------------------

  def _labels(self, batch):
    """[B, C] target ids: the contexts (skip-gram) or the center (CBOW)."""
    return batch["center"][:, None] if self.model_config.model == "cbow" else batch["contexts"]

  def _expected_counts_in_step(self) -> bool:
    """Whether the compiled step computes the labels' expected counts (see `_negative_info`)."""
    return self._fused_update

  def _negative_info(self, batch, seed):
    """The batch's negatives, drawn statelessly from `seed` [2] (run seed, epoch/batch index).

    For the compiled SGD step the sampled losses get `GroupCandidates`: the step adds the
    labels' expected counts itself (`_loss_gradients_and_update`), fused by XLA.
    """
    loss = self.model_config.loss
    labels = self._labels(batch)
    if loss in ("sampled_softmax", "nce") and self._expected_counts_in_step():
      return self.sampler.sample_candidates(seed, self.model_config.num_sampled,
                                            self.num_sample_groups)
    if loss in ("sampled_softmax", "nce"):
      return self.sampler.sample_unique(seed, self.model_config.num_sampled, labels,
                                        self.num_sample_groups)
    if loss == "negative_sampling":
      shape = tf.concat([tf.shape(labels), [self.model_config.num_sampled]], 0)
      return self.sampler.sample(seed, shape)
    return ()

  def epoch_batches(self, epoch: int, skip: int = 0) -> tf.data.Dataset:
    """The epoch's batches with their negatives ("negatives"), from batch `skip` on.

    Negatives depend only on (seed, epoch, batch index), not on the model, so they are drawn
    inside tf.data ahead of the step, and a resumed run draws exactly the same ones: the
    checkpoint's (epoch, batch_in_epoch) is the whole random state of training.
    """
    prepared, data = self.prepared, self.data_config
    dataset = pipeline.epoch_dataset(prepared.tokens, prepared.keep_probability, data.window,
                                     data.batch_size, data.seed, epoch).enumerate()
    if skip:
      dataset = dataset.skip(skip)
    def add_negatives(index, batch):
      seed = tf.stack([tf.constant(data.seed, tf.int64),
                       tf.constant(epoch, tf.int64) * (1 << 32) + index])
      return {**batch, "negatives": self._negative_info(batch, seed)}
    # tf.data's autotuning is off: its optimisation thread sleeps between rounds, and deleting
    # an epoch's iterator waited for it (up to 18 s at every epoch end, measured on IMDB).
    # Without it, AUTOTUNE parallelism means one call per core.
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.map(add_negatives, num_parallel_calls=tf.data.AUTOTUNE,
                       deterministic=True).prefetch(2).with_options(options)

  def _per_example_loss(self, inputs, labels, mask, negative_info):
    model = self.model
    loss = self.model_config.loss
    if loss == "sampled_softmax":
      return losses.grouped_sampled_softmax_loss(inputs, labels, mask, model.output_weights,
                                                 model.output_bias, negative_info)
    if loss == "nce":
      return losses.nce_loss(inputs, labels, mask, model.output_weights, model.output_bias,
                             negative_info)
    if loss == "negative_sampling":
      return losses.negative_sampling_loss(inputs, labels, mask, model.output_weights,
                                           model.output_bias, negative_info)
    return losses.full_softmax_loss(inputs, labels, mask, model.output_weights,
                                    model.output_bias)

  def _loss_and_gradients(self, batch, negative_info, parts: int = 1):
    """(summed loss, pairs, gradients) of a batch, its loss summed over `parts` row slices.

    The slices (whole candidate groups each) give the same loss and gradients; compiled with
    XLA, four slices of 1024 centers run about 20% faster than one of 4096 (each slice's
    [rows, 2W, d] gathered output rows stay in cache).
    """
    whole = {**batch, "negatives": negative_info}
    pieces = [whole] if parts == 1 else [
        pipeline.take_part(whole, part, parts, batch["center"].shape[0], self.num_sample_groups)
        for part in range(parts)]
    with tf.GradientTape() as tape:
      total = count = 0.0
      for piece in pieces:
        inputs, labels, mask = self.model.inputs(piece)
        total += tf.reduce_sum(self._per_example_loss(inputs, labels, mask, piece["negatives"]))
        count += tf.reduce_sum(tf.cast(mask, tf.float32))
    return total, count, tape.gradient(total, self.variables)

  def _loss_gradients_and_update(self, batch, negative_info, learning_rate):
    if isinstance(negative_info, GroupCandidates):
      negative_info = self.sampler.with_true_expected_counts(negative_info, self._labels(batch))
    if self._fused_update:
      total, count, gradients = self._loss_and_gradients(batch, negative_info, self._step_parts)
    else:
      total, count, gradients = self._compute(batch, negative_info)
    self.optimizer.apply(gradients, self.variables, learning_rate, xla=self._fused_update)
    return total, count

  def _step(self, batch, learning_rate):
    examples = {key: batch[key] for key in ("center", "contexts", "mask")}
    total, count = self._update(examples, batch["negatives"], learning_rate)
    self.loss_sum.assign_add(tf.cast(total, tf.float64))
    self.loss_count.assign_add(tf.cast(count, tf.float64))

  def _full_softmax_sum(self, batch):
    """(sum of exact full-softmax losses, number of pairs) of a grouped batch."""
    inputs, labels, mask = self.model.inputs(batch)
    per_example = losses.full_softmax_loss(inputs, labels, mask, self.model.output_weights,
                                           self.model.output_bias)
    return tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(mask, tf.float32))

  def mean_full_softmax(self, examples: dict, max_centers: int | None = None) -> float:
    """Exact full-softmax cross-entropy per pair, in slices of 256 centers ([256, V] logits)."""
    total = count = 0.0
    rows = len(examples["center"]) if max_centers is None else min(
        max_centers, len(examples["center"]))
    for start in range(0, rows, _FULL_SOFTMAX_SLICE):
      end = min(start + _FULL_SOFTMAX_SLICE, rows)
      loss_sum, pairs = self._full_softmax(
          {key: examples[key][start:end] for key in ("center", "contexts", "mask")})
      total += float(loss_sum.numpy())
      count += float(pairs.numpy())
    return total / max(count, 1.0)

  # --- the loop ----------------------------------------------------------------------------

  def _learning_rate(self) -> tf.Tensor:
    """The rate for the next step (float32), from the words processed so far (linear decay)."""
    total_words = float(max(self.train_config.epochs * self.prepared.tokens.num_tokens, 1))
    remaining = tf.maximum(tf.constant(MIN_LEARNING_RATE_FRACTION, tf.float64),
                           1.0 - self.words_done / total_words)
    return tf.cast(self.learning_rate * remaining, tf.float32)

  def current_learning_rate(self) -> float:
    return float(self._learning_rate().numpy())

  def _advance(self, batch) -> None:
    """The counters after a step on `batch`: words processed, step, position in the epoch."""
    self.words_done.assign_add(tf.cast(batch["words"], tf.float64))
    self.step.assign_add(1)
    self.batch_in_epoch.assign_add(1)

  def _steps_in_graph(self, iterator, max_steps):
    """Up to `max_steps` steps from `iterator` in one call (no Python between steps).

    Returns the number of steps taken: fewer than `max_steps` when the epoch ran out.
    """
    taken = tf.constant(0)
    for _ in tf.range(max_steps):
      element = iterator.get_next_as_optional()
      if not element.has_value():
        break
      batch = element.get_value()
      self._step(batch, self._learning_rate())
      self._advance(batch)
      taken += 1
    return taken

  def train_steps(self, iterator, max_steps: int) -> int:
    """Runs up to `max_steps` steps; the number taken (fewer at the end of the epoch)."""
    return int(self._train_loop(iterator, tf.constant(max_steps)).numpy())

  def _train_one(self, batch) -> None:
    """One step on a batch held in Python (the steps whose batch the loss comparison uses).

    It goes through the same compiled loop as the other steps (an iterator over just this
    batch has the epoch iterator's type), so nothing is traced or compiled twice.
    """
    self.train_steps(iter(tf.data.Dataset.from_tensors(batch)), 1)

  def run(self) -> dict:
    """Trains up to `epochs`, resuming from the latest checkpoint; exports the vectors."""
    train = self.train_config
    prepared = self.prepared
    if self.restore():
      self.log(f"resumed from {self.restored_checkpoint}: step {int(self.step.numpy())}, "
               f"epoch {int(self.epoch.numpy()) + 1}, learning rate "
               f"{self.current_learning_rate():.6g}")
    self.log(f"vocabulary {len(prepared.vocab):,} words, {prepared.tokens.num_tokens:,} training "
             f"tokens, {len(prepared.heldout.get('center', [])):,} held-out centers; "
             f"{self.model_config.model} / {self.model_config.loss} / {train.optimizer}, "
             f"learning rate {self.learning_rate:g}, model_dir {train.model_dir}")
    writer = tf.summary.create_file_writer(train.model_dir)
    summary = {"interrupted": False, "curve": [], "eval_seconds": 0.0}
    started = time.time()
    words_at_start = float(self.words_done.numpy())
    with _SignalCatcher() as signals, writer.as_default():
      while int(self.epoch.numpy()) < train.epochs:
        if not self._run_epoch(signals, summary):
          summary["interrupted"] = True
          break
      seconds = time.time() - started
      summary.update(step=int(self.step.numpy()), epoch=int(self.epoch.numpy()),
                     train_seconds=seconds,
                     words_per_sec=(float(self.words_done.numpy()) - words_at_start) / max(
                         seconds, 1e-9))
      self.log(f"full-softmax comparison: {summary['eval_seconds']:.1f}s, "
               f"{summary['eval_seconds'] / max(seconds, 1e-9):.1%} of {seconds:.0f}s of training")
      if not summary["interrupted"]:
        summary["exported"] = self.export()
      writer.flush()
    return summary

  def _run_epoch(self, signals: _SignalCatcher, summary: dict) -> bool:
    """One epoch from the saved position. False if a signal stopped it.

    Steps run in calls of up to `steps_per_call` inside one tf.function (the Python loop
    would otherwise cost about a millisecond per step); a call ends early at the next loss
    comparison or checkpoint. The comparison's step runs on its own, so its batch is at hand.
    """
    train, prepared = self.train_config, self.prepared
    epoch = int(self.epoch.numpy())
    iterator = iter(self.epoch_batches(epoch, skip=int(self.batch_in_epoch.numpy())))
    epoch_words = prepared.tokens.num_tokens
    words_before = float(self.words_done.numpy()) - epoch * epoch_words
    bar = _ProgressBar(train.progress, epoch_words, epoch, train.epochs)
    window_start, window_words = time.time(), 0.0
    words_per_sec = 0.0
    step = int(self.step.numpy())
    while True:
      next_evaluation = 1 if step == 0 else _next_multiple(step, train.eval_every_steps)
      if next_evaluation == step + 1:
        batch = next(iterator, None)
        if batch is None:
          break
        learning_rate = self.current_learning_rate()
        self._train_one(batch)
        taken = 1
      else:
        batch = None
        taken = self.train_steps(iterator, min(
            self.train_config.steps_per_call, next_evaluation - 1 - step,
            _next_multiple(step, train.checkpoint_every_steps) - step))
        if not taken:
          break
      step += taken
      words_now = float(self.words_done.numpy()) - epoch * epoch_words
      window_words += words_now - words_before
      words_before = words_now
      elapsed = time.time() - window_start
      if elapsed > 0.5:
        words_per_sec = window_words / elapsed
      if batch is not None:
        bar.clear()
        evaluation_started = time.time()
        self._evaluate_losses(batch, step, learning_rate, words_per_sec, summary)
        summary["eval_seconds"] += time.time() - evaluation_started
        window_start, window_words = time.time(), 0.0
      if step % train.checkpoint_every_steps == 0:
        self._check_finite(step, self.current_learning_rate())
        self.save()
      if signals.received is not None:
        bar.clear()
        self._check_finite(step, self.current_learning_rate())
        path = self.save()
        self.log(f"stopped by {signal.Signals(signals.received).name} at step {step}: "
                 f"checkpoint saved to {path}; run the same command to resume")
        return False
      bar.update(words_before, words_per_sec, None)
    bar.update(epoch_words, words_per_sec, None, force=True)
    bar.clear()
    self.epoch.assign_add(1)
    self.batch_in_epoch.assign(0)
    step = int(self.step.numpy())
    self._check_finite(step, self.current_learning_rate())
    path = self.save()
    self._end_of_epoch(epoch, step, path, summary)
    return True

  def _check_finite(self, step: int, learning_rate: float) -> None:
    if not np.all(np.isfinite(self.model.input_embeddings.numpy())) or not np.isfinite(
        self.loss_sum.numpy()):
      raise UserError(
          f"non-finite loss at step {step} (learning rate {learning_rate:.6g}): training "
          f"stopped and nothing was saved; {self._last_good()}: lower --learning_rate and run "
          "again (with --overwrite to start afresh)")

  def _evaluate_losses(self, batch, step, learning_rate, words_per_sec, summary):
    count = float(self.loss_count.numpy())
    train_loss = float(self.loss_sum.numpy()) / max(count, 1.0)
    self.loss_sum.assign(0.0)
    self.loss_count.assign(0.0)
    if not math.isfinite(train_loss):
      self._check_finite(step, learning_rate)
    # The batch's first 1024 centers (rows are shuffled): the exact loss costs a [centers, V]
    # logit matrix, so a sample keeps it cheap; the held-out set is fixed.
    full_batch = self.mean_full_softmax(batch, max_centers=_FULL_SOFTMAX_BATCH_CENTERS)
    heldout = (self.mean_full_softmax(self.prepared.heldout) if self.prepared.heldout
               else float("nan"))
    name = self.model_config.loss.replace("_", " ")
    self.log(f"step {step} | {name} {train_loss:.2f} | full softmax (batch) {full_batch:.2f} | "
             f"full softmax (held-out) {heldout:.2f} | {words_per_sec / 1e3:,.0f}k words/s | "
             f"lr {learning_rate:.5f}")
    tf.summary.scalar("loss/train", train_loss, step=step)
    tf.summary.scalar("loss/full_softmax_batch", full_batch, step=step)
    tf.summary.scalar("loss/full_softmax_heldout", heldout, step=step)
    tf.summary.scalar("learning_rate", learning_rate, step=step)
    tf.summary.scalar("words_per_sec", words_per_sec, step=step)
    summary["curve"].append({"step": step, "train": train_loss, "full_softmax_batch": full_batch,
                             "full_softmax_heldout": heldout})

  def _end_of_epoch(self, epoch: int, step: int, checkpoint_path: str, summary: dict) -> None:
    self.log(f"epoch {epoch + 1} done at step {step}; checkpoint {checkpoint_path}")
    vectors = self.model.normalized_embeddings()
    words = self.prepared.vocab.words
    tf.summary.text("nearest_neighbors", _neighbors_markdown(vectors, words), step=step)
    if self.train_config.analogies:
      from eval.analogy import evaluate_analogies  # pylint: disable=import-outside-toplevel
      result = evaluate_analogies(self.model.input_embeddings.numpy(), list(words),
                                  self.train_config.analogies)
      for part in ("total", "semantic", "syntactic"):
        tf.summary.scalar(f"analogy/{part}", result[part]["accuracy"], step=step)
      summary.setdefault("analogy", []).append(
          {"epoch": epoch + 1, **{p: result[p] for p in ("total", "semantic", "syntactic")}})
      total = result["total"]
      self.log(f"epoch {epoch + 1} analogies: total {total['accuracy']:.1%} "
               f"({total['correct']}/{total['seen']} seen of {total['questions']}), "
               f"semantic {result['semantic']['accuracy']:.1%}, "
               f"syntactic {result['syntactic']['accuracy']:.1%}")

  def export(self) -> dict:
    """Writes vectors.txt, vectors.bin, vocab.tsv and projector files into model_dir."""
    vocab = self.prepared.vocab
    vectors = self.model.input_embeddings.numpy()
    paths = export.export_all(self.train_config.model_dir, list(vocab.words), vocab.counts,
                              vectors)
    self.log(f"exported {len(vocab):,} x {vectors.shape[1]} vectors to "
             f"{paths.get('binary')} and {paths.get('text')}")
    return paths


def _next_multiple(step: int, interval: int) -> int:
  """The first multiple of `interval` after `step`."""
  return (step // interval + 1) * interval


def validation_word_ids(vocab_size: int, seed: int = 0) -> np.ndarray:
  """16 frequent words (ids below 100), as the seed tutorials pick them."""
  pool = min(100, vocab_size)
  return np.sort(np.random.default_rng([seed, 23]).choice(
      pool, min(NUM_VALIDATION_WORDS, pool), replace=False))


def nearest_neighbors(unit_vectors: np.ndarray, words, ids, top_k: int = 8):
  """[(word, [(neighbor, cosine), ...]), ...] for the given ids."""
  scores = unit_vectors[ids] @ unit_vectors.T  # [n, V]
  scores[np.arange(len(ids)), ids] = -np.inf
  result = []
  for row, word_id in zip(scores, ids):
    best = np.argsort(-row)[:top_k]
    result.append((words[word_id], [(words[i], float(row[i])) for i in best]))
  return result


def _neighbors_markdown(unit_vectors: np.ndarray, words) -> str:
  lines = ["| word | nearest neighbours |", "| --- | --- |"]
  for word, neighbors in nearest_neighbors(unit_vectors, words,
                                           validation_word_ids(len(words))):
    lines.append(f"| {word} | " + ", ".join(f"{n} ({s:.2f})" for n, s in neighbors) + " |")
  return "\n".join(lines)


def _clear_model_dir(model_dir: str) -> None:
  """Removes what a previous run wrote (only this project's files)."""
  for name in os.listdir(model_dir):
    path = os.path.join(model_dir, name)
    if (name.startswith(("ckpt-", "events.out.tfevents.", "vectors.")) or name in (
        "checkpoint", "config.json", "vocab.tsv")):
      if os.path.isdir(path):  # ckpt-N_temp/ left by a save that was killed
        shutil.rmtree(path)
      else:
        os.remove(path)
    elif name == "projector" and os.path.isdir(path):
      shutil.rmtree(path)
