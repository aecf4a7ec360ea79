"""Atomic file writes: write to a temp file beside the target, fsync, then rename.

A crash (or a full disk) never leaves a half-written file under the final name: either the old
file or the complete new one is there. `read_lines` reads a small text input file (an
evaluation set) with one-line errors; `decode_utf8` is the strict decoding every text input
(stopwords, evaluation sets, vectors text) goes through, so a file in another encoding is one
line naming the file and the first bad byte instead of a traceback or silently replaced words;
`check_gzip_complete` refuses a truncated `.gz` input.

Temp files and folders carry their writer's pid and host (`owner_tag`): one left by a writer
that died (`kill -9`, power loss) is removed by the next writer of the same place
(`remove_stale`), never one whose writer may still run.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import socket
import tempfile
import zlib
from typing import IO, Iterator

from w2v_tf.errors import UserError


_COMPLETE_GZIP: set[tuple] = set()  # (path, size, mtime) of .gz files already checked


def check_gzip_complete(path: str) -> None:
  """Raises UserError when a .gz file ends before its end-of-stream marker (is truncated).

  Readers that stream a .gz (tf.data's GZIP reader, pandas with `nrows`) stop quietly at the
  cut: a CSV cut at a record boundary trained on half the reviews, one cut inside a record was
  blamed on its quoting. So the whole stream is decompressed once here (about 0.4 s for IMDB's
  26 MB), output discarded, and the result remembered for the process. Bytes after the last
  member that do not start another member are ignored, as gzip -d does with zeros.
  """
  stat = os.stat(path)
  key = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
  if key in _COMPLETE_GZIP:
    return
  decompressor = zlib.decompressobj(wbits=31)  # gzip framing: header, CRC and length checked
  read = 0
  try:
    with open(path, "rb") as f:
      for block in iter(lambda: f.read(1 << 20), b""):
        read += len(block)
        while block:
          decompressor.decompress(block, 1 << 22)  # output discarded; bounded per call
          block = decompressor.unconsumed_tail
          if decompressor.eof and decompressor.unused_data[:2] == b"\x1f\x8b":
            block = decompressor.unused_data  # the next member of a multi-member file
            decompressor = zlib.decompressobj(wbits=31)
  except zlib.error as e:
    raise UserError(f"{path}: cannot read it (gzip: {e}); check the file (a .gz must be a "
                    "complete gzip file)") from e
  except OSError as e:
    raise UserError(f"{path}: cannot read it ({e}); check the file (a .gz must be gzip)") from e
  if not decompressor.eof:
    raise UserError(f"{path}: the gzip stream is truncated (it ends after {read:,} bytes, "
                    "before gzip's end-of-stream marker; `gzip -t` fails on it): download or "
                    "copy the file again")
  _COMPLETE_GZIP.add(key)


def _host() -> str:
  return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"


def owner_tag() -> str:
  """`PID@HOST` of this process, put into the names of its temp files (`remove_stale`)."""
  return f"{os.getpid()}@{_host()}"


def _dead(pid: int, host: str) -> bool:
  """Whether the writer `pid` on `host` is known to be gone (another host: never known)."""
  if host != _host():
    return False
  try:
    os.kill(pid, 0)
  except ProcessLookupError:
    return True
  except OSError:  # EPERM: alive, another user's
    return False
  return False  # alive, or a recycled pid: kept (a leftover, never a live writer's file)


def remove_stale(directory: str, prefix: str, suffix: str = "", any_stem: bool = False
                 ) -> list[str]:
  """Removes the temp files / folders `prefix + PID@HOST + "." + random + suffix` (plus `.old`)
  in `directory` whose writer is dead; returns their names.

  Args:
    directory: the place (a missing one holds nothing).
    prefix: what the names start with, e.g. ".vectors.txt." or "corpus-v4-KEY.tmp-".
    suffix: what they end with, e.g. ".tmp".
    any_stem: `prefix` may follow any name (".tmp-": every cache folder's temp copies).
  """
  pattern = re.compile((".+" if any_stem else "") + re.escape(prefix)
                       + r"(\d+)@([A-Za-z0-9-]+)\.[A-Za-z0-9_]+" + re.escape(suffix) + r"(\.old)?")
  try:
    names = os.listdir(directory)
  except OSError:
    return []
  removed = []
  for name in names:
    match = pattern.fullmatch(name)
    if match and _dead(int(match.group(1)), match.group(2)):
      path = os.path.join(directory, name)
      if os.path.isdir(path) and not os.path.islink(path):
        shutil.rmtree(path, ignore_errors=True)
      else:
        with contextlib.suppress(OSError):
          os.remove(path)
      removed.append(name)
  return removed


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
    if e.errno == errno.EEXIST:  # makedirs of a parent that is a file
      raise UserError(f"cannot write {path}: {e.filename} is a file, not a directory") from e
    if e.errno in (errno.EACCES, errno.EPERM, errno.EROFS, errno.EISDIR, errno.ENOTDIR,
                   errno.ENOENT, errno.ENAMETOOLONG, errno.ELOOP):
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
  with disk_errors(path):  # a parent that is a file, or cannot be made: one line
    os.makedirs(directory, exist_ok=True)
    remove_stale(directory, "." + os.path.basename(path) + ".", ".tmp")  # a killed writer's
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{owner_tag()}.",
                                    suffix=".tmp", dir=directory)
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


# Byte-order marks of encodings that are not UTF-8 (UTF-32 first: its LE mark starts like UTF-16's).
_FOREIGN_BOMS = ((b"\xff\xfe\x00\x00", "UTF-32"), (b"\x00\x00\xfe\xff", "UTF-32"),
                 (b"\xff\xfe", "UTF-16"), (b"\xfe\xff", "UTF-16"))


def decode_utf8(data: bytes, path: str | os.PathLike, what: str = "") -> str:
  """Decodes a text input file strictly as UTF-8 (a leading UTF-8 byte-order mark is dropped).

  Args:
    data: the file's bytes.
    path: the file, named in the message.
    what: what the file is ("analogy file"), prefixed to the path in the message.

  Raises:
    UserError: one line naming the file and the problem: a UTF-16/32 byte-order mark, a NUL byte
      (UTF-16 without a mark, or a binary file) or the first byte that is not UTF-8.
  """
  name = f"{what} {os.fspath(path)}" if what else os.fspath(path)
  fix = "convert it to UTF-8 (e.g. `iconv -f {} -t utf-8`)"
  for bom, encoding in _FOREIGN_BOMS:
    if data.startswith(bom):
      raise UserError(f"{name} is {encoding} text, not UTF-8 (it starts with a {encoding} "
                      f"byte-order mark): {fix.format(encoding.lower())}")
  nul = data.find(b"\0")
  if nul >= 0:  # valid UTF-8, but never in a text file: UTF-16 without a mark, or binary data
    raise UserError(f"{name} is not UTF-8 text (NUL byte at offset {nul}: UTF-16, or not a text "
                    f"file?): {fix.format('utf-16')}")
  try:
    return data.decode("utf-8-sig")
  except UnicodeDecodeError as e:
    raise UserError(f"{name} is not UTF-8 text (byte 0x{data[e.start]:02x} at offset {e.start}): "
                    f"{fix.format('latin1')}") from e


def not_a_file(path: str) -> str:
  """Why an input path that is not a regular file is none: "not found", "is a directory", ..."""
  if os.path.islink(path) and not os.path.exists(path):
    return f"is a symlink to {os.readlink(path)}, which does not exist (a dangling link)"
  if os.path.isdir(path):
    return "is a directory, not a file"
  if os.path.exists(path):
    return "is a pipe or a device, not a file"
  return "not found"


def read_lines(path: str | os.PathLike, what: str, hint: str) -> list[str]:
  """The lines of a UTF-8 text file; one-line UserError if it is missing, unreadable or not UTF-8.

  Args:
    path: the file.
    what: what the file is, for messages ("analogy file").
    hint: how to fix a missing file ("pass --analogies with ...").

  Returns:
    The lines without their line ends.
  """
  path = os.fspath(path)
  if not os.path.isfile(path):
    raise UserError(f"{what} {path} {not_a_file(path)}: {hint}")
  try:
    with open(path, "rb") as f:
      data = f.read()
  except OSError as e:
    raise UserError(f"cannot read {what} {path} ({e.strerror}): check its permissions") from e
  return decode_utf8(data, path, what).splitlines()
