"""The state of a training run: counters, checkpoints (save, restore with fallback), the model dir.

A checkpoint holds the model, the optimizer slots, the step, the epoch, the position in the
epoch and the words processed. All randomness of training is stateless and seeded by (seed,
epoch, batch), so that position is the whole random state: a run restored from a checkpoint sees
the batches it would have seen. `prepare_model_dir` checks that a model dir may be written by
this run (its config.json must agree on everything that changes shapes or data) before anything
in it is written.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
from typing import Callable

import numpy as np
import tensorflow as tf

from w2v_tf import checkpoints
from w2v_tf.config import ExperimentConfig, flat_fields
from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_write_text, disk_errors
from w2v_tf.vocab import Vocab

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.tsv"
# Config keys that change shapes or data: a model_dir trained with other values is refused.
_INCOMPATIBLE_KEYS = {
    "data": ("train_csv", "text_column", "max_reviews", "stopwords", "min_count", "max_vocab",
             "subsample", "window", "batch_size", "heldout_reviews", "seed"),
    "model": ("embedding_dim", "model"),
    "train": ("optimizer",),
}


class RunState:
  """Counters, the loss sums since the last log line, and the checkpoint of model + optimizer.

  Create it under the strategy's scope (the runner's `scope()`), like the model.

  Attributes:
    model, optimizer: what the checkpoint holds besides the counters.
    step, epoch, batch_in_epoch: int64 variables; words_done: float64 (corpus words so far).
    loss_sum, loss_count: float64 sums of the training loss and of its pairs since last taken.
    restored_checkpoint: the prefix `restore` loaded (None: started afresh).
  """

  def __init__(self, model, optimizer, model_dir: str, keep_checkpoints: int,
               log: Callable[[str], None]):
    self.model, self.optimizer, self.model_dir, self.log = model, optimizer, model_dir, log
    self.step = tf.Variable(0, dtype=tf.int64, name="step")
    self.epoch = tf.Variable(0, dtype=tf.int64, name="epoch")
    self.batch_in_epoch = tf.Variable(0, dtype=tf.int64, name="batch_in_epoch")
    self.words_done = tf.Variable(0.0, dtype=tf.float64, name="words_done")
    self.checkpoint = tf.train.Checkpoint(
        model=model, optimizer=optimizer, step=self.step, epoch=self.epoch,
        batch_in_epoch=self.batch_in_epoch, words_done=self.words_done)
    self.manager = tf.train.CheckpointManager(self.checkpoint, model_dir,
                                              max_to_keep=keep_checkpoints)
    self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.loss_count = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.restored_checkpoint: str | None = None
    self._last_good: str | None = None

  def advance(self, words) -> None:
    """The counters after one step on a batch of `words` corpus words (graph-safe)."""
    self.words_done.assign_add(tf.cast(words, tf.float64))
    self.step.assign_add(1)
    self.batch_in_epoch.assign_add(1)

  def add_loss(self, total, count) -> None:
    self.loss_sum.assign_add(tf.cast(total, tf.float64))
    self.loss_count.assign_add(tf.cast(count, tf.float64))

  def take_mean_loss(self) -> float:
    """The mean training loss per pair since the last call (and resets the sums)."""
    mean = float(self.loss_sum.numpy()) / max(float(self.loss_count.numpy()), 1.0)
    self.loss_sum.assign(0.0)
    self.loss_count.assign(0.0)
    return mean

  def is_finite(self) -> bool:
    return bool(np.all(np.isfinite(self.model.input_embeddings.numpy()))
                and np.isfinite(self.loss_sum.numpy()))

  def restore(self, directory: str | None = None, strict: bool = True) -> bool:
    """Restores the newest readable checkpoint of `directory` (default: the model dir).

    Falls back to older checkpoints with a warning line naming each damaged one. True if one
    was restored. `strict`: raise when checkpoints exist but none is readable.
    """
    directory = directory or self.model_dir
    # The state file's list, not `manager.checkpoints`: the manager drops entries that have no
    # timestamp (a state file written by hand or by older tools) and would start afresh.
    candidates, _ = checkpoints.candidates(directory)
    failures = []
    self.restored_checkpoint = checkpoints.restore_newest_readable(
        checkpoints.make_restore(self.checkpoint), candidates, self.log, failures)
    self._last_good = self.restored_checkpoint
    if self.restored_checkpoint is None and candidates and strict:
      raise UserError(f"no readable checkpoint in {directory} ({len(candidates)} tried, all "
                      f"damaged; newest: {failures[0]}): pass --overwrite to start afresh")
    return self.restored_checkpoint is not None

  def last_good(self) -> str:
    """For error messages: which checkpoint a failed run leaves intact."""
    if not self._last_good:
      return "no checkpoint was written yet"
    return f"the last good checkpoint, {self._last_good}, is intact"

  def save(self) -> str:
    """Writes a checkpoint (numbered by step); a full disk becomes a clear error."""
    step = int(self.step.numpy())
    try:
      path = self.manager.save(checkpoint_number=step)
    except (OSError, tf.errors.OpError) as e:
      # TF writes into ckpt-N_temp/ before moving the files into place: free that space.
      shutil.rmtree(os.path.join(self.model_dir, f"ckpt-{step}_temp"), ignore_errors=True)
      message = (str(e).splitlines() or [type(e).__name__])[0].split("}} ")[-1][:200]
      if "No space left" in message or getattr(e, "errno", None) == errno.ENOSPC:
        message = f"disk full: {message}"
      raise UserError(f"could not write a checkpoint in {self.model_dir} ({message}); "
                      f"{self.last_good()}: free disk space and run the same command again "
                      "to resume") from e
    self._last_good = path
    return path


# --- the model dir ------------------------------------------------------------------------------


def config_payload(experiment: ExperimentConfig, vocab_size: int) -> dict:
  """What config.json holds: the resolved experiment config and the vocabulary size."""
  return {**experiment.to_dict(), "vocab_size": vocab_size}


def read_config(model_dir: str) -> tuple[ExperimentConfig, int]:
  """(experiment config, vocabulary size) from `model_dir/config.json`; UserError if unusable."""
  path = os.path.join(model_dir, CONFIG_FILE)
  try:
    with open(path, encoding="utf-8") as f:
      payload = json.load(f)
    # Earlier versions kept the vocabulary size under "model".
    vocab_size = payload.get("vocab_size", payload.get("model", {}).get("vocab_size"))
    return ExperimentConfig.from_dict(payload, ignore=("vocab_size",)), int(vocab_size)
  except FileNotFoundError as e:
    raise UserError(f"{model_dir} has no {CONFIG_FILE}: not a model dir written by "
                    "`python -m w2v_tf.train`") from e
  except (OSError, ValueError, KeyError, TypeError, AttributeError, UserError) as e:
    raise UserError(f"{path} is unreadable ({type(e).__name__}: {e}); re-run training to "
                    "rewrite it") from e


def prepare_model_dir(experiment: ExperimentConfig, vocab: Vocab,
                      log: Callable[[str], None]) -> None:
  """Checks that `experiment.train.model_dir` may hold this run, then writes config + vocab.

  A model dir holding a run with another shape or data is refused (unless `overwrite`, which
  clears this project's files from it first). An unreadable checkpoint state file is repaired
  and partial checkpoint writes are removed, so that resuming sees every good checkpoint.
  """
  train = experiment.train
  model_dir = train.model_dir
  config_path = os.path.join(model_dir, CONFIG_FILE)
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise UserError(f"--model_dir={model_dir} is a file, not a directory: choose another "
                    "--model_dir")
  if os.path.isdir(model_dir) and not train.overwrite:
    checkpoints.repair_state(model_dir, log)  # an unreadable state file would lose the run
    checkpoints.remove_partial_writes(model_dir, log)
  current = config_payload(experiment, len(vocab))
  if os.path.exists(config_path) and (checkpoints.has_checkpoint(model_dir) or train.overwrite):
    if train.overwrite:
      clear_model_dir(model_dir)
    else:
      try:
        with open(config_path, encoding="utf-8") as f:
          previous = json.load(f)
      except (OSError, json.JSONDecodeError) as e:
        raise UserError(f"{config_path} is unreadable ({e}); pass --overwrite to start "
                        "afresh or choose another --model_dir") from e
      differences = _differences(previous, current)
      if differences:
        raise UserError(f"{model_dir} holds a run with another configuration "
                        f"({'; '.join(differences)}): pass --overwrite to replace it or "
                        "choose another --model_dir")
  with disk_errors(model_dir):
    os.makedirs(model_dir, exist_ok=True)
  with disk_errors(config_path):
    atomic_write_text(config_path, json.dumps(current, indent=2, sort_keys=True) + "\n")
  vocab.save_tsv(os.path.join(model_dir, VOCAB_FILE))


def _differences(previous: dict, current: dict) -> list[str]:
  """"section.key: old -> new" for every incompatible key that differs."""
  flat_previous = flat_fields(previous)
  flat_previous["vocab_size"] = previous.get("vocab_size", flat_previous.get("vocab_size"))
  pairs = [(f"{section}.{key}", flat_previous.get(key), current[section][key])
           for section, keys in _INCOMPATIBLE_KEYS.items() for key in keys]
  pairs.append(("vocab_size", flat_previous["vocab_size"], current["vocab_size"]))
  return [f"{name}: {old!r} -> {new!r}" for name, old, new in pairs if old != new]


def clear_model_dir(model_dir: str) -> None:
  """Removes what a previous run wrote (only this project's files)."""
  for name in os.listdir(model_dir):
    path = os.path.join(model_dir, name)
    if (name.startswith(("ckpt-", "events.out.tfevents.", "vectors.")) or name in (
        checkpoints.STATE_FILE, CONFIG_FILE, VOCAB_FILE)):
      if os.path.isdir(path):  # ckpt-N_temp/ left by a save that was killed
        shutil.rmtree(path)
      else:
        os.remove(path)
    elif name == "projector" and os.path.isdir(path):
      shutil.rmtree(path)


class SignalCatcher:
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
