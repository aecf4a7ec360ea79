"""Atomic file writes: write to a temp file beside the target, fsync, then rename.

A crash (or a full disk) never leaves a half-written file under the final name: either the old
file or the complete new one is there. `read_lines` reads a small text input file (an
evaluation set) with one-line errors.
"""

from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from typing import IO, Iterator

from w2v_tf.errors import UserError


@contextlib.contextmanager
def disk_errors(path: str | os.PathLike) -> Iterator[None]:
  """Turns a full disk (or a read-only / forbidden target) into a one-line `UserError`.

  Args:
    path: the file being written, named in the message.

  Yields:
    Nothing; wrap the write in `with disk_errors(path):`.
  """
  try:
    yield
  except OSError as e:
    path = os.fspath(path)
    if e.errno in (errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC)):
      raise UserError(f"disk full while writing {path}: free some space and run again "
                      f"(the previous file, if any, is unchanged)") from e
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR):
      raise UserError(f"cannot write {path}: {e.strerror}") from e
    raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w", encoding: str | None = "utf-8"
                ) -> Iterator[IO]:
  """Opens a temp file in the target's directory; renames it to `path` on success.

  Args:
    path: final file name.
    mode: "w" (text) or "wb" (binary).
    encoding: text encoding (ignored for binary mode).

  Yields:
    The open temp file. On any exception the temp file is removed and the target is untouched.
  """
  if mode not in ("w", "wb"):
    raise ValueError(f"atomic_open supports 'w' and 'wb', not {mode!r}")
  path = os.fspath(path)
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  fd, tmp_path = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp",
                                  dir=directory)
  try:
    kwargs = {} if "b" in mode else {"encoding": encoding, "newline": "\n"}
    with os.fdopen(fd, mode, **kwargs) as f:
      yield f
      f.flush()
      os.fsync(f.fileno())
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp_path, 0o666 & ~umask)  # mkstemp makes 0600; give the file normal permissions
    os.replace(tmp_path, path)
  except BaseException:
    with contextlib.suppress(OSError):
      os.remove(tmp_path)
    raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
  """Writes `text` to `path` atomically."""
  with atomic_open(path, "w") as f:
    f.write(text)


def atomic_write_json(path: str | os.PathLike, payload, sort_keys: bool = False) -> None:
  """Writes `payload` as indented JSON (and a final newline) to `path` atomically."""
  import json  # pylint: disable=import-outside-toplevel
  atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=sort_keys) + "\n")


def read_lines(path: str | os.PathLike, what: str, hint: str) -> list[str]:
  """The lines of a UTF-8 text file; one-line UserError if it is missing or unreadable.

  Args:
    path: the file.
    what: what the file is, for messages ("analogy file").
    hint: how to fix a missing file ("pass --analogies with ...").

  Returns:
    The lines without their line ends (undecodable bytes become U+FFFD).
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f"{what} {path} not found: {hint}")
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return f.read().splitlines()
  except OSError as e:
    raise UserError(f"cannot read {what} {path} ({e.strerror}): check its permissions") from e
