"""`ModelDirLock`: a model dir belongs to one training run at a time (`model_dir/.lock`).

The mechanics of ownership, apart from what the model dir holds (`w2v_tf.model_dir`, whose
`ModelDir` holds one of these from the compatibility check to the end of the run): an flock'ed
file naming its owner, taken over from a dead owner, refused to a live one or one on another
host, released at the end, on errors, on SIGINT / SIGTERM and at exit.
"""

from __future__ import annotations

import datetime
import errno
import json
import os
import signal
import socket
from typing import Callable

from w2v_tf import errors
from w2v_tf.errors import UserError
from w2v_tf.fileio import disk_errors

LOCK_FILE = ".lock"

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


_interrupt = errors.raise_interrupted


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


def _release_all() -> None:
  for lock in list(_HELD.values()):
    lock.release()


errors.at_exit(_release_all)


