"""Downloads a URL to a file: progress on stderr, an atomic write, one-line errors.

    size = download(url, "data/aclImdb_v1.tar.gz")   # raises DownloadError, never half a file

The bytes go to a temp file beside the target (`w2v_tf.fileio.atomic_open`), renamed only once
the transfer is complete, so an interrupted or cut-off download leaves the target as it was.
"""

from __future__ import annotations

import http.client
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from typing import IO

from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_open, disk_errors

_URL_SCHEMES = ("http", "https", "ftp", "file")
_CHUNK_BYTES = 1 << 20


class DownloadError(UserError):
  """A download failed: no network, unreachable host, HTTP error or cut-off transfer.

  Attributes:
    url: the URL that failed.
    host: its host name (the URL itself for a file:// URL).
    reason: what went wrong, e.g. "HTTP 404 Not Found" or "[Errno 111] Connection refused".
  """

  def __init__(self, url: str, reason: str, unreachable: bool = True):
    self.url = url
    self.host = urllib.parse.urlsplit(url).hostname or url
    self.reason = reason
    what = f"cannot reach {self.host}" if unreachable else f"cannot download {url}"
    super().__init__(f"{what} ({reason})")


def is_url(source: str) -> bool:
  """Whether `source` is a URL (http, https, ftp, file) rather than a local path."""
  return urllib.parse.urlsplit(source).scheme.lower() in _URL_SCHEMES


class _Progress:
  """Download progress on stderr: a rewritten line on a terminal, a line per 10% otherwise."""

  def __init__(self, label: str, total: int | None, stream: IO[str] | None = None):
    self._label, self._total = label, total
    self._stream = stream or sys.stderr
    self._tty = self._stream.isatty()
    self._last_time, self._last_tenth = 0.0, -1

  def _line(self, done: int) -> str:
    if self._total:
      return (f"{self._label}: {done / 2**20:.1f} / {self._total / 2**20:.1f} MiB "
              f"({100 * done // self._total}%)")
    return f"{self._label}: {done / 2**20:.1f} MiB"

  def update(self, done: int) -> None:
    if self._tty:
      now = time.monotonic()
      if now - self._last_time >= 0.2:
        self._last_time = now
        self._stream.write("\r" + self._line(done))
        self._stream.flush()
    elif self._total:
      tenth = 10 * done // self._total
      if tenth > self._last_tenth:
        self._last_tenth = tenth
        print(self._line(done), file=self._stream, flush=True)

  def finish(self, done: int) -> None:
    if self._tty:
      self._stream.write("\r" + self._line(done) + "\n")
    elif not self._total:
      print(self._line(done), file=self._stream)
    self._stream.flush()


def download(url: str, dest: str, timeout: float = 60.0, progress: bool = True) -> int:
  """Downloads `url` to `dest`; `dest` appears only once the transfer is complete.

  Args:
    url: http(s)://, ftp:// or file:// URL.
    dest: final file name; the bytes go to a temp file beside it, renamed at the end.
    timeout: seconds for the connection and for each read.
    progress: show bytes / total on stderr.

  Returns:
    Bytes written.

  Raises:
    DownloadError: the host cannot be reached, answers with an error, or the transfer is cut
      short (fewer bytes than its Content-Length). `dest` is then left as it was.
    UserError: the disk is full or `dest` cannot be written.
  """
  done = 0
  try:
    with urllib.request.urlopen(url, timeout=timeout) as response:
      length = response.headers.get("Content-Length")
      total = int(length) if length and length.strip().isdigit() else None
      reporter = _Progress(f"downloading {url}", total) if progress else None
      with disk_errors(dest), atomic_open(dest, "wb") as f:
        while chunk := response.read(_CHUNK_BYTES):
          f.write(chunk)
          done += len(chunk)
          if reporter:
            reporter.update(done)
        if reporter:
          reporter.finish(done)
        if total is not None and done != total:
          raise DownloadError(url, f"transfer cut off after {done:,} of {total:,} bytes")
  except urllib.error.HTTPError as e:
    raise DownloadError(url, f"HTTP {e.code} {e.reason}", unreachable=False) from e
  except urllib.error.URLError as e:
    raise DownloadError(url, str(e.reason)) from e
  except (TimeoutError, ConnectionError, http.client.HTTPException) as e:
    raise DownloadError(url, f"{type(e).__name__}: {e}" if str(e) else type(e).__name__) from e
  return done
