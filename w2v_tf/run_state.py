"""The state of a training run: counters, checkpoints (save, restore with fallback), the model dir.

A checkpoint holds the model, the optimizer slots, the step, the epoch, the position in the
epoch and the words processed. All randomness of training is stateless and seeded by (seed,
epoch, batch), so that position is the whole random state: a run restored from a checkpoint sees
the batches it would have seen.

A model dir belongs to one run at a time (`ModelDirLock`, `model_dir/.lock`). `prepare_model_dir`
takes the lock and checks, reading only, that this run may continue what the dir holds: its
config.json must agree on everything that changes shapes or data, including the data's
fingerprint (the corpus cache key: the CSV's content and the cleaning options), and its
checkpoints on the shapes and on the epochs done. The builder then restores the checkpoint, and
only then does `write_model_dir` write anything.
"""

from __future__ import annotations

import atexit
import dataclasses
import datetime
import errno
import json
import os
import shutil
import signal
import socket
from typing import Callable

import numpy as np
import tensorflow as tf

from w2v_tf import checkpoints, sources
from w2v_tf.config import DataConfig, ExperimentConfig, flat_fields
from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_write_text, disk_errors
from w2v_tf.vocab import Vocab

CONFIG_FILE = "config.json"
VOCAB_FILE = "vocab.tsv"
LOCK_FILE = ".lock"
FINGERPRINT_KEY = "data_fingerprint"  # in config.json: `PreparedData.fingerprint`
# Config keys that change shapes or data: a model_dir trained with other values is refused.
# The data's: each input format's own fields (`sources.config_fields`) and these, in the order
# of the config.
_DATA_KEYS = ("max_documents", "cleaning", "lowercase", "max_document_tokens", "phrases",
              "phrase_min_count", "phrase_threshold", "phrase_scoring", "stopwords", "min_count",
              "max_vocab", "subsample", "window", "batch_size", "heldout_documents", "seed")
_INCOMPATIBLE_KEYS = {
    "data": tuple(field.name for field in dataclasses.fields(DataConfig)
                  if field.name in _DATA_KEYS or field.name in sources.config_fields()),
    "model": ("embedding_dim", "model"),
    "train": ("optimizer",),
}
_EMBEDDINGS_KEY = "model/input_embeddings/.ATTRIBUTES/VARIABLE_VALUE"
_COUNTER_KEYS = tuple(f"{name}/.ATTRIBUTES/VARIABLE_VALUE" for name in ("epoch", "step"))


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
    self.manager = tf.train.CheckpointManager(self.checkpoint, model_dir,
                                              max_to_keep=keep_checkpoints)
    self.loss_sum = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.loss_count = tf.Variable(0.0, dtype=tf.float64, trainable=False)
    self.restored_checkpoint: str | None = None
    self._last_good: str | None = None
    self.lock: ModelDirLock | None = None  # set by the builder; released by `release`

  def reopen_manager(self) -> None:
    """Re-reads the state file (after `write_model_dir` repaired it), so rotation sees all."""
    self.manager = tf.train.CheckpointManager(self.checkpoint, self.model_dir,
                                              max_to_keep=self.keep_checkpoints)

  def release(self) -> None:
    """Releases the model dir (the run is over, or failed)."""
    if self.lock is not None:
      self.lock.release()

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


def config_payload(experiment: ExperimentConfig, vocab_size: int,
                   fingerprint: str | None = None) -> dict:
  """What config.json holds: the resolved config, the vocabulary size, the data fingerprint."""
  payload = {**experiment.to_dict(), "vocab_size": vocab_size}
  if fingerprint is not None:
    payload[FINGERPRINT_KEY] = fingerprint
  return payload


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


def prepare_model_dir(experiment: ExperimentConfig, vocab_size: int, fingerprint: str | None,
                      log: Callable[[str], None]) -> ModelDirLock:
  """Takes the model dir's lock and checks that this run may continue what it holds.

  Reads only (an existing dir gets nothing but the lock file, removed again on refusal):
  config.json must agree on the shapes and the data (`fingerprint`, the corpus cache key;
  None: not known, not checked), the checkpoints on the shapes and the epochs done. With
  `overwrite` this project's files are cleared instead (once the lock is ours).

  Returns:
    The lock, held; the caller releases it (`RunState.release`).
  """
  train = experiment.train
  model_dir = train.model_dir
  if os.path.exists(model_dir) and not os.path.isdir(model_dir):
    raise UserError(f"--model_dir={model_dir} is a file, not a directory: choose another "
                    "--model_dir")
  with disk_errors(model_dir):
    os.makedirs(model_dir, exist_ok=True)
  lock = ModelDirLock(model_dir, log, train.overwrite)
  try:
    if train.overwrite:
      clear_model_dir(model_dir)
    else:
      _check_model_dir(experiment, vocab_size, fingerprint, log)
  except BaseException:
    lock.release()
    raise
  return lock


def write_model_dir(experiment: ExperimentConfig, vocab: Vocab, fingerprint: str | None,
                    log: Callable[[str], None]) -> None:
  """Once the run is known to fit the model dir: repairs what a crash left, writes config + vocab.

  An unreadable checkpoint state file is rebuilt and partial checkpoint writes are removed, so
  that resuming (and rotation) sees every good checkpoint.
  """
  model_dir = experiment.train.model_dir
  config_path = os.path.join(model_dir, CONFIG_FILE)
  checkpoints.repair_state(model_dir, log)  # an unreadable state file would lose the run
  checkpoints.remove_partial_writes(model_dir, log)  # safe: the lock is ours
  if fingerprint is None and os.path.exists(config_path):
    try:  # a fingerprint this run cannot compute (not a regular file): keep the recorded one
      with open(config_path, encoding="utf-8") as f:
        fingerprint = json.load(f).get(FINGERPRINT_KEY)
    except (OSError, ValueError, AttributeError):
      pass
  with disk_errors(config_path):
    atomic_write_text(config_path, json.dumps(config_payload(experiment, len(vocab), fingerprint),
                                              indent=2, sort_keys=True) + "\n")
  vocab.save_tsv(os.path.join(model_dir, VOCAB_FILE))


def _check_model_dir(experiment: ExperimentConfig, vocab_size: int, fingerprint: str | None,
                     log: Callable[[str], None]) -> None:
  """Refuses a model dir whose config or checkpoints this run cannot continue (reads only)."""
  model_dir = experiment.train.model_dir
  config_path = os.path.join(model_dir, CONFIG_FILE)
  if not checkpoints.has_checkpoint(model_dir):
    return  # nothing trained yet: config.json and vocab.tsv are rewritten
  if os.path.exists(config_path):
    try:
      with open(config_path, encoding="utf-8") as f:
        previous = json.load(f)
      differences = _differences(previous, config_payload(experiment, vocab_size))
    except (OSError, ValueError, AttributeError, KeyError, TypeError) as e:
      raise UserError(f"{config_path} is unreadable ({type(e).__name__}: {e}): put back a good "
                      "copy, or move it away to resume from the checkpoints alone (their "
                      "shapes are checked), or choose another --model_dir") from e
    recorded = previous.get(FINGERPRINT_KEY)
    if recorded is None:  # written before fingerprints: accepted, and recorded from now on
      log(f"warning: {config_path} records no data fingerprint (an earlier version wrote it): "
          "cannot check that the data is what it was trained on; recording this run's")
    elif fingerprint is not None and recorded != fingerprint:
      also = f"; also {'; '.join(differences)}" if differences else ""
      raise UserError(
          f"the training data changed since {model_dir} was trained (data fingerprint "
          f"{recorded} -> {fingerprint}: the content of "
          f"{experiment.data.train_text or experiment.data.train_csv}, the options that "
          f"clean it or the chunk size of this version differ{also}): resume with the data "
          "and the version it was trained with, or choose another --model_dir")
    if differences:
      raise UserError(f"{model_dir} holds a run with another configuration "
                      f"({'; '.join(differences)}): pass --overwrite to replace it or "
                      "choose another --model_dir")
  _check_checkpoints(experiment, vocab_size, os.path.exists(config_path))


def _check_checkpoints(experiment: ExperimentConfig, vocab_size: int, has_config: bool) -> None:
  """Refuses checkpoints of other shapes, or with more epochs done than --epochs asks for.

  Looks at the newest checkpoint whose files read (the one a restore would take); damaged ones
  are left to the restore, which falls back or says so.
  """
  model_dir = experiment.train.model_dir
  for path in checkpoints.candidates(model_dir)[0]:
    try:
      shapes, counters = checkpoints.peek(path, _COUNTER_KEYS)
      break
    except Exception:  # pylint: disable=broad-except  # damaged: the restore reports it
      continue
  else:
    return
  saved, dim = shapes.get(_EMBEDDINGS_KEY), experiment.model.embedding_dim
  if saved is not None and list(saved) != [vocab_size, dim]:
    held = []
    if saved[1] != dim:
      held.append(f"embedding_dim {saved[1]}, this run asks for {dim}")
    if saved[0] != vocab_size:
      held.append(f"a vocabulary of {saved[0]:,} words, this run's has {vocab_size:,} (other "
                  "data, --min_count or --max_vocab)")
    missing = "" if has_config else f" ({model_dir} has no {CONFIG_FILE} to compare the flags)"
    raise UserError(f"the checkpoints in {model_dir} hold {'; and '.join(held)}{missing}: run "
                    "with the flags they were trained with, or choose another --model_dir")
  # Epochs done = completed epochs: --epochs equal to them ends at once (a part-way epoch
  # beyond them is left as it is); fewer would resume "epoch 3 of 1".
  epoch, step = (int(counters[key]) for key in _COUNTER_KEYS)
  epochs = experiment.train.epochs
  if epochs < epoch:
    raise UserError(f"{model_dir} has trained {epoch} epochs (step {step}), more than "
                    f"--epochs={epochs}: pass --epochs={epoch} or more to resume it (--epochs "
                    "can only be raised), or choose another --model_dir")


def _differences(previous: dict, current: dict) -> list[str]:
  """"section.key: old -> new" for every incompatible key that differs."""
  # A key that an earlier version did not write had its default then (new options default to
  # the old behaviour).
  flat_previous = {**flat_fields(ExperimentConfig().to_dict()), **flat_fields(previous)}
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


_HELD: dict[str, "ModelDirLock"] = {}  # real path of a model dir -> this process's lock on it


class ModelDirLock:
  """An exclusive lock on a model dir: `model_dir/.lock`, flock'ed while held, naming its owner.

  The file holds the owner's pid, host and start time; it is removed when the lock is released
  (at the end of the run, on errors, on SIGINT / SIGTERM, at exit). The kernel drops a flock
  when its process dies, so a file left by a killed run is taken over with a warning; a file
  naming another host cannot be checked from here and is refused. A second lock on the same dir
  in the same process (a Trainer built but never run) takes the first one's place.
  """

  def __init__(self, model_dir: str, log: Callable[[str], None], overwrite: bool = False):
    import fcntl  # pylint: disable=import-outside-toplevel  # POSIX only
    self.model_dir, self.path = model_dir, os.path.join(model_dir, LOCK_FILE)
    self._key, self._fd, self._sigterm = os.path.realpath(model_dir), None, None
    earlier = _HELD.get(self._key)
    if earlier is not None and earlier._fd is not None:  # pylint: disable=protected-access
      self._fd, self._sigterm = earlier._fd, earlier._sigterm  # pylint: disable=protected-access
      earlier._fd = earlier._sigterm = None  # pylint: disable=protected-access
      _HELD[self._key] = self
      return
    for _ in range(100):  # a releasing owner unlinks the file we opened: open it again
      with disk_errors(self.path):
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
      try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held = True
      except BlockingIOError:
        held = False
      except OSError as e:  # no flock on this file system: the file's pid is all there is
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL):
          os.close(fd)
          raise
        held = not _alive(_read_owner(fd))
      if held and _same_file(fd, self.path):
        break
      if not held:
        owner = _read_owner(fd, wait=True)
        os.close(fd)
        raise UserError(_refusal(model_dir, owner, overwrite))
      os.close(fd)
    else:
      raise UserError(f"could not take {self.path}: other runs keep replacing it")
    previous = _read_owner(fd)
    if previous and previous.get("host") != socket.gethostname():
      os.close(fd)
      raise UserError(f"{self.path} names pid {previous.get('pid')} on host "
                      f"{previous.get('host')}, another machine that may still be training in "
                      f"{model_dir}: if that run has ended, delete {self.path}; else choose "
                      "another --model_dir")
    if previous:
      log(f"warning: took over {self.path}: it was left by pid {previous.get('pid')} on "
          f"{previous.get('host')} (since {previous.get('since')}), which is no longer running")
    owner = {"pid": os.getpid(), "host": socket.gethostname(),
             "since": datetime.datetime.now().isoformat(timespec="seconds")}
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(owner) + "\n").encode("utf-8"), 0)
    self._fd = fd
    _HELD[self._key] = self
    self._catch_sigterm()

  def _catch_sigterm(self) -> None:
    """Outside the loop (which checkpoints on it), SIGTERM unwinds like Ctrl-C, releasing."""
    try:
      if signal.getsignal(signal.SIGTERM) == signal.SIG_DFL:
        signal.signal(signal.SIGTERM, _interrupt)
        self._sigterm = _interrupt
    except ValueError:  # not the main thread
      pass

  def release(self) -> None:
    """Removes the lock file and drops the lock (idempotent; a lock handed on does nothing)."""
    fd, self._fd = self._fd, None
    if fd is None:
      return
    try:
      if _same_file(fd, self.path):
        os.remove(self.path)  # while still locked: a waiting run then opens a fresh file
    except OSError:
      pass
    finally:
      os.close(fd)
      if _HELD.get(self._key) is self:
        del _HELD[self._key]
      try:
        if self._sigterm is not None and signal.getsignal(signal.SIGTERM) is self._sigterm:
          signal.signal(signal.SIGTERM, signal.SIG_DFL)
      except ValueError:
        pass


def _interrupt(signum, frame):  # pylint: disable=unused-argument
  raise KeyboardInterrupt(signal.Signals(signum).name)


def _same_file(fd: int, path: str) -> bool:
  try:
    return os.path.samestat(os.fstat(fd), os.stat(path))
  except OSError:
    return False


def _read_owner(fd: int, wait: bool = False) -> dict:
  """The owner recorded in an open lock file ({} if none; `wait`: give a new owner 1 s)."""
  for _ in range(50 if wait else 1):
    try:
      owner = json.loads(os.pread(fd, 4096, 0).decode("utf-8", "replace") or "{}")
      if isinstance(owner, dict) and owner:
        return owner
    except ValueError:
      pass
    if wait:
      import time  # pylint: disable=import-outside-toplevel
      time.sleep(0.02)
  return {}


def _alive(owner: dict) -> bool:
  """Whether the owner a lock file names may still run (no flock to ask: its pid on this host)."""
  if not owner:
    return False
  if owner.get("host") != socket.gethostname():
    return True
  try:
    os.kill(int(owner["pid"]), 0)
  except ProcessLookupError:
    return False
  except (OSError, KeyError, ValueError, TypeError):
    return True
  return True


def _refusal(model_dir: str, owner: dict, overwrite: bool) -> str:
  who = (f"pid {owner.get('pid')} on host {owner.get('host')}, since {owner.get('since')}"
         if owner else "its owner is not recorded yet")
  if overwrite:
    return (f"--overwrite refused: {model_dir} is in use by another training run ({who}); "
            "stop that run first (--overwrite would delete its files), or choose another "
            "--model_dir")
  return (f"{model_dir} is in use by another training run ({who}): wait for it to end or stop "
          "it, or choose another --model_dir")


@atexit.register
def _release_all() -> None:
  for lock in list(_HELD.values()):
    lock.release()


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
