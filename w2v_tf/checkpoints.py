"""Finding and restoring checkpoints in a model dir, robust to crashes and damaged files.

`tf.train.CheckpointManager` writes each checkpoint's files first and the `checkpoint` state file
(which lists them) last, atomically, so a run killed at any moment leaves a state file that
names only complete checkpoints. What can still go wrong is damage afterwards (a truncated copy,
a bad disk, an edited file): `restore_newest_readable` tries the listed checkpoints newest first
and falls back to older ones, saying so, and `repair_state` rebuilds a state file that is
unreadable from the `ckpt-N` files on disk (TF would silently ignore it and start afresh,
overwriting the run). A checkpoint is called damaged only when its files do not read; one that
reads but does not fit the model (other shapes, other optimizer) is a mismatch, and says so.

A live run deletes its oldest checkpoint when it saves a new one (`keep_checkpoints`): it holds
an exclusive `rotation_lock` on the model dir while saving, and readers (`python -m
w2v_tf.export`) hold a shared one while they read, so the checkpoint they chose stays on disk.

TensorFlow matches the checkpoint paths it is given as glob patterns (its readers look a prefix's
`.index` up with GetMatchingPaths, CheckpointManager deletes old checkpoints by pattern), so a
model dir named `run[1]` would write checkpoints it can never read or rotate: `tf_path` gives
TensorFlow a pattern-free alias of such a directory instead.

TensorFlow is imported where a checkpoint is read, not at import: `w2v_tf.model_dir` (which the
eval binaries import) checks model dirs with this module.
"""

from __future__ import annotations

import contextlib
import dataclasses
import errno
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterator

from w2v_tf import errors
from w2v_tf.fileio import atomic_write_text, disk_errors

STATE_FILE = "checkpoint"
_CHECKPOINT_INDEX = re.compile(r"^ckpt-(\d+)\.index$")


# What TensorFlow's GetMatchingPaths treats as pattern syntax (tensorflow/tsl file_system_helper).
_GLOB_CHARS = frozenset("*?[\\")
_aliases: dict[str, str] = {}  # {absolute directory: its alias}, for this process


def tf_path(path: str, is_directory: bool = False) -> str:
  """`path` as TensorFlow's checkpoint code may be given it: itself, or a pattern-free alias.

  A path holding glob characters gets its directory (`path` itself when `is_directory`, else
  its parent, as for a checkpoint prefix `D/ckpt-N`) replaced by a symlink to it in a private
  temporary folder, removed when the process exits. The link names the directory by its path
  (not an open handle), so a model dir cleared and made again by --overwrite is still the one
  reached, and it may not exist yet.
  """
  path = os.fspath(path)
  if not _GLOB_CHARS.intersection(path):
    return path
  directory, name = (path, "") if is_directory else os.path.split(path)
  if _GLOB_CHARS.intersection(name):
    raise ValueError(f"{path}: only its directory may hold glob characters")
  directory = os.path.abspath(directory)
  if directory not in _aliases:
    if not _aliases:
      home = tempfile.mkdtemp(prefix="w2v-tf-paths-")  # [A-Za-z0-9_] names: no pattern
      errors.at_exit(shutil.rmtree, home, True)  # removes the links, never their targets
      _aliases[""] = home
    alias = os.path.join(_aliases[""], f"dir{len(_aliases)}")
    os.symlink(directory, alias)
    _aliases[directory] = alias
  return os.path.join(_aliases[directory], name) if name else _aliases[directory]


def checkpoints_on_disk(model_dir: str) -> list[str]:
  """Prefixes `model_dir/ckpt-N` that have an index and a data file, oldest (smallest N) first."""
  try:
    names = os.listdir(model_dir)
  except OSError:
    return []
  found = []
  for name in names:
    match = _CHECKPOINT_INDEX.match(name)
    if match and any(n.startswith(f"ckpt-{match.group(1)}.data-") for n in names):
      found.append((int(match.group(1)), os.path.join(model_dir, name[:-len(".index")])))
  return [path for _, path in sorted(found)]


def read_state(model_dir: str) -> list[str] | None:
  """The checkpoints the state file lists, oldest first (absolute or model_dir-relative paths).

  Returns:
    None when there is no state file; raises ValueError when it exists but cannot be parsed or
    names no checkpoint.
  """
  path = os.path.join(model_dir, STATE_FILE)
  if not os.path.exists(path):
    return None
  from google.protobuf import text_format  # pylint: disable=import-outside-toplevel
  from tensorflow.python.training import (  # pylint: disable=import-outside-toplevel
      checkpoint_state_pb2)
  state = checkpoint_state_pb2.CheckpointState()
  try:
    with open(path, encoding="utf-8") as f:
      text_format.Parse(f.read(), state)
  except (OSError, UnicodeDecodeError, text_format.ParseError) as e:
    raise ValueError(f"{path} is unreadable ({str(e).splitlines()[0][:120]})") from e
  if not state.model_checkpoint_path:
    raise ValueError(f"{path} names no checkpoint")
  paths = [p if os.path.isabs(p) else os.path.join(model_dir, p)
           for p in state.all_model_checkpoint_paths]
  latest = state.model_checkpoint_path
  latest = latest if os.path.isabs(latest) else os.path.join(model_dir, latest)
  if latest not in paths:
    paths.append(latest)
  return paths


def candidates(model_dir: str) -> tuple[list[str], str | None]:
  """Checkpoints to try, newest first, and a warning when the state file had to be bypassed.

  The state file's list when it is readable; else every complete-looking `ckpt-N` on disk.
  """
  try:
    listed = read_state(model_dir)
    problem = None if listed is not None else _missing_state(model_dir)
  except ValueError as e:
    listed, problem = None, str(e)
  if problem is None:
    return list(reversed(listed or [])), None
  on_disk = checkpoints_on_disk(model_dir)
  return list(reversed(on_disk)), (f"{problem}; using the {len(on_disk)} ckpt-N file(s) on "
                                   "disk instead")


def _missing_state(model_dir: str) -> str | None:
  """The problem when the state file is missing but `ckpt-N` files are on disk (else None).

  TensorFlow alone then starts afresh: a deleted state file would lose the run.
  """
  if not checkpoints_on_disk(model_dir):
    return None
  return f"{os.path.join(model_dir, STATE_FILE)} is missing"


class _StateFileWarnings:
  """A logging filter: drops TensorFlow's warnings about an unreadable state file."""

  @staticmethod
  def filter(record) -> bool:
    return not (record.funcName == "get_checkpoint_state"
                and record.pathname.endswith("checkpoint_management.py"))


@contextlib.contextmanager
def quiet_state_warnings() -> Iterator[None]:
  """Hides TensorFlow's warnings about an unreadable `checkpoint` state file, which
  `repair_state` reports in one line: `tf.train.CheckpointManager` logged 4 (a ParseError and
  "Checkpoint ignored", each through TensorFlow's handler and absl's) before it."""
  import logging  # pylint: disable=import-outside-toplevel
  logger = logging.getLogger("tensorflow")
  quiet = _StateFileWarnings()
  logger.addFilter(quiet)
  try:
    yield
  finally:
    logger.removeFilter(quiet)


def repair_state(model_dir: str, log: Callable[[str], None]) -> None:
  """Rewrites an unreadable or missing state file from the `ckpt-N` files on disk (an unreadable
  one is removed if there are none).

  A state file that is missing with no `ckpt-N` beside it is left missing (a fresh model dir, or
  a run killed before its first checkpoint).
  """
  try:
    problem = None if read_state(model_dir) is not None else _missing_state(model_dir)
  except ValueError as e:
    problem = str(e)
  if problem is None:
    return
  state_path = os.path.join(model_dir, STATE_FILE)
  on_disk = [os.path.basename(p) for p in checkpoints_on_disk(model_dir)]
  with disk_errors(state_path):
    if not on_disk:
      os.remove(state_path)
      log(f"warning: {problem} and no ckpt-N files are on disk; removed it, starting afresh")
      return
    # CheckpointManager only manages listed checkpoints newer than last_preserved_timestamp.
    times = [os.path.getmtime(os.path.join(model_dir, name + ".index")) for name in on_disk]
    atomic_write_text(state_path, "".join(
        [f'model_checkpoint_path: "{on_disk[-1]}"\n']
        + [f'all_model_checkpoint_paths: "{name}"\n' for name in on_disk]
        + [f"all_model_checkpoint_timestamps: {t!r}\n" for t in times]
        + [f"last_preserved_timestamp: {min(times) - 1.0!r}\n"]))
  log(f"warning: {problem}; rebuilt it from the checkpoint files on disk ({', '.join(on_disk)})")


def remove_partial_writes(model_dir: str, log: Callable[[str], None]) -> None:
  """Deletes `ckpt-N_temp/` folders: TF's staging area of a save that was killed part-way.

  Call it only when no other process trains in `model_dir`.
  """
  try:
    names = sorted(n for n in os.listdir(model_dir)
                   if re.fullmatch(r"ckpt-\d+_temp", n)
                   and os.path.isdir(os.path.join(model_dir, n)))
  except OSError:
    return
  for name in names:
    shutil.rmtree(os.path.join(model_dir, name), ignore_errors=True)
  if names:
    log(f"removed {', '.join(names)}: partial checkpoint write(s) of an interrupted run")


@dataclasses.dataclass(frozen=True)
class RestoreFailure:
  """Why one checkpoint was not restored; `damaged`: its files do not read (else: a mismatch)."""
  path: str
  reason: str
  damaged: bool

  def __str__(self) -> str:
    return f"{self.path} ({self.reason})"


def _reason(error: Exception) -> str:
  reason = (str(error).splitlines() or [type(error).__name__])[0]
  return f"{type(error).__name__}: {reason.split('}} ')[-1][:160]}"


def damage(path: str) -> str | None:
  """Why checkpoint `path`'s files do not read (None: every tensor reads)."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  try:
    reader = tf.train.load_checkpoint(tf_path(path))
    for key in reader.get_variable_to_shape_map():
      reader.get_tensor(key)
  except Exception as e:  # pylint: disable=broad-except  # TF raises many kinds for bad files
    return _reason(e)
  return None


def peek(path: str, keys: tuple[str, ...]) -> tuple[dict[str, list[int]], dict[str, object]]:
  """(shape of every tensor, values of `keys`) of checkpoint `path`, without a model.

  Raises whatever TF raises for files that do not read.
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  reader = tf.train.load_checkpoint(tf_path(path))
  return reader.get_variable_to_shape_map(), {key: reader.get_tensor(key) for key in keys}


def restore_newest_readable(restore: Callable[[str], object], paths_newest_first: list[str],
                            log: Callable[[str], None],
                            failures: list[RestoreFailure] | None = None) -> str | None:
  """Restores the first checkpoint of `paths_newest_first` that reads completely and fits.

  When an older checkpoint is restored, one warning line per skipped newer one is logged, then
  one naming the checkpoint used. When none is restored nothing is logged (the caller raises
  one error); `failures` receives the reasons.

  Args:
    restore: restores one checkpoint prefix, raising if it is unreadable or does not match
      (e.g. `make_restore(checkpoint)`).
    paths_newest_first: candidate prefixes.
    log: prints one line.
    failures: if given, receives one `RestoreFailure` per checkpoint not restored.

  Returns:
    The prefix restored, or None when there was no candidate or none was restored.
  """
  skipped = []
  for path in paths_newest_first:
    try:
      restore(path)
    except Exception as e:  # pylint: disable=broad-except  # TF raises many kinds for bad files
      damaged = damage(path)  # only on this path: reads the checkpoint once more
      skipped.append(RestoreFailure(path, damaged or _reason(e), damaged is not None))
      continue
    for failure in skipped:
      log(f"warning: checkpoint {failure.path} is "
          f"{'unreadable' if failure.damaged else 'for another model'} ({failure.reason})")
    if skipped:
      log(f"warning: fell back to the older checkpoint {path} (the newer ones are "
          f"{'damaged' if all(f.damaged for f in skipped) else 'damaged or do not match'})")
    return path
  if failures is not None:
    failures.extend(skipped)
  return None


@contextlib.contextmanager
def rotation_lock(model_dir: str, exclusive: bool, log: Callable[[str], None],
                  timeout: float = 60.0) -> Iterator[None]:
  """Holds a shared (readers) or exclusive (the saving run) flock on the model dir itself.

  Nothing is written: the lock is on the directory. Where the file system has no flock, or
  the other side holds it past `timeout` (a stopped reader), it goes on unlocked with a warning.
  """
  import fcntl  # pylint: disable=import-outside-toplevel  # POSIX only
  try:
    fd = os.open(model_dir, os.O_RDONLY)
  except OSError:
    yield  # no model dir yet: nothing to rotate
    return
  try:
    deadline = time.monotonic() + timeout
    while True:
      try:
        fcntl.flock(fd, (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB)
        break
      except BlockingIOError:
        if time.monotonic() > deadline:
          log(f"warning: {model_dir}'s checkpoints stayed locked by "
              f"{'a reader' if exclusive else 'the training run'} for {timeout:.0f} s; "
              "going on without the lock")
          break
        time.sleep(0.01)
      except OSError as e:
        if e.errno not in (errno.ENOLCK, errno.EOPNOTSUPP, errno.EINVAL, errno.EBADF):
          raise
        break  # no flock here: as before locks existed
    yield
  finally:
    os.close(fd)  # releases the flock


def has_checkpoint(model_dir: str) -> bool:
  """Whether the state file (or, when it is unreadable, the disk) holds any checkpoint."""
  return bool(candidates(model_dir)[0])


def make_restore(checkpoint, partial: bool = False) -> Callable[[str], None]:
  """A `restore` callable for `restore_newest_readable` that reads every value of `checkpoint`.

  Args:
    checkpoint: a `tf.train.Checkpoint` of the objects to restore.
    partial: the checkpoint may hold more objects than `checkpoint` (e.g. the optimizer when
      only the model is wanted).
  """
  def restore(path: str) -> None:
    status = checkpoint.restore(tf_path(path))
    if partial:
      status.expect_partial()
    status.assert_existing_objects_matched()
  return restore
