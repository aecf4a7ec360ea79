"""The state of a training run: counters, checkpoints (save, restore with fallback), signals.

A checkpoint holds the model, the optimizer slots, the step, the epoch, the position in the
epoch and the words processed. All randomness of training is stateless and seeded by (seed,
epoch, batch), so that position is the whole random state: a run restored from a checkpoint sees
the batches it would have seen.

What else the model dir holds (its lock, config.json, vocab.tsv) and whether a run may continue
it are `w2v_tf.model_dir`'s.
"""

from __future__ import annotations

import errno
import os
import shutil
import signal
from typing import Callable

import numpy as np
import tensorflow as tf

from w2v_tf import checkpoints
from w2v_tf.errors import UserError


def model_key(name: str) -> str:
  """The checkpoint key of the model's variable `name` (e.g. "input_embeddings")."""
  return f"model/{name}/.ATTRIBUTES/VARIABLE_VALUE"


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
    self.keep_checkpoints = keep_checkpoints
    self._manager: tf.train.CheckpointManager | None = None  # opened when first saving
    self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.loss_count = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.restored_checkpoint: str | None = None
    self._last_good: str | None = None

  def reopen_manager(self) -> None:
    """Re-reads the state file (after `ModelDir.write` repaired it), so rotation sees all."""
    self._manager = None

  @property
  def manager(self) -> tf.train.CheckpointManager:
    """The checkpoint manager, opened on first use: after `ModelDir.write` has repaired a
    garbled state file. Opened at construction, before the repair, it printed TensorFlow's 4
    warning lines about the file ahead of the repair's one, and an empty file raised
    ValueError (a traceback)."""
    if self._manager is None:
      # It rotates by glob: given a pattern-free alias of a model dir such as run[1].
      with checkpoints.quiet_state_warnings():  # a state file damaged since: `restore` says so
        self._manager = tf.train.CheckpointManager(
            self.checkpoint, checkpoints.tf_path(self.model_dir, is_directory=True),
            max_to_keep=self.keep_checkpoints)
    return self._manager

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
      mismatched = [failure for failure in failures if not failure.damaged]
      if mismatched:  # the files read: never call them damaged, never advise deleting them
        raise UserError(f"the checkpoints in {directory} do not fit this run's model or "
                        f"--optimizer (newest: {mismatched[0]}): run with the flags they were "
                        "trained with, or choose another --model_dir")
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
      # Saving deletes the oldest checkpoint: not while a reader (export) is reading one.
      with checkpoints.rotation_lock(self.model_dir, True, self.log):
        path = self.manager.save(checkpoint_number=step)
      path = os.path.join(self.model_dir, os.path.basename(path))  # the user's path, not the alias
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
