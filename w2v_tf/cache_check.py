"""Checksums, structure checks and safe publishing of the on-disk caches.

A cache folder (a corpus `corpus-v4-KEY/`, a phrase pass, a folder of training chunks) is
written under a temp name and renamed into place. Its writer records `manifest.json` last:
the size and CRC-32 of every file. Opening the folder checks every size first (a deleted,
truncated or grown file costs nothing to find), then reads every file once in blocks of
`_BLOCK` bytes (bounded memory) for the CRC-32 and the cheap structure checks that the same
read allows (token ids below the type count, a chunk's header and lengths); the tables that
are read whole anyway (offsets, counts, meta.json) are checked in `check_tables`. Sizes alone
let a reversed counts.i64, two swapped lines of types.txt, shuffled tokens or ids >= V train
with exit 0 on wrong data.

What checking costs: one sequential read of the cache, about 4 bytes per corpus token (tokens.i32)
plus 4 per training token (the chunk files), CRC-32 and min / max over it; nothing is written.
`python -m benchmarks.cache_check` measures it on the IMDB cache and on a generated cache of
~100M tokens (against the time to open the cache without checking, and to build it).

A folder that fails is `CacheError` (one line naming the file and what is wrong); the callers
rebuild it with one warning. `publish` never deletes or moves a folder that passes its check
(a live reader may have it open): a second builder of the same key discards its own copy.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import zlib
from typing import Callable

import numpy as np

from w2v_tf.fileio import owner_tag

MANIFEST = "manifest.json"
MANIFEST_FORMAT = 1
_BLOCK = 1 << 22  # bytes per read (a multiple of 8: blocks hold whole int32 / int64 values)


class CacheError(ValueError):
  """A cache folder that fails its checks; the message says which file and how (one line)."""


class Checksums:
  """The manifest of a folder being written: {file name: (bytes, CRC-32)}."""

  def __init__(self):
    self.files: dict[str, tuple[int, int]] = {}

  def update(self, name: str, data) -> None:
    """Adds `data` (bytes, or a numpy array's buffer) to the end of file `name`'s record."""
    size, crc = self.files.get(name, (0, 0))
    view = memoryview(data).cast("B")
    self.files[name] = (size + len(view), zlib.crc32(view, crc))

  def add_file(self, folder: str, name: str) -> None:
    """Records a file already written (read back in blocks)."""
    self.files[name] = _scan(os.path.join(folder, name), None)

  def write(self, folder: str) -> None:
    """Writes `folder/manifest.json` (the folder is not published yet: no rename needed)."""
    with open(os.path.join(folder, MANIFEST), "w", encoding="utf-8") as f:
      json.dump({"format": MANIFEST_FORMAT,
                 "files": {name: {"bytes": size, "crc32": crc}
                           for name, (size, crc) in sorted(self.files.items())}}, f, indent=1)
      f.flush()
      os.fsync(f.fileno())


def record(folder: str, names) -> None:
  """Writes the manifest of files `names` of `folder` as they are now (tools and tests)."""
  checksums = Checksums()
  for name in names:
    checksums.add_file(folder, name)
  checksums.write(folder)


def _scan(path: str, on_block: Callable[[bytes], None] | None) -> tuple[int, int]:
  """(bytes, CRC-32) of a file, read in blocks; `on_block(block)` sees each block."""
  size, crc = 0, 0
  buffer = bytearray(_BLOCK)
  with open(path, "rb", buffering=0) as f:
    while True:
      count = f.readinto(buffer)
      if not count:
        return size, crc
      block = memoryview(buffer)[:count]
      crc = zlib.crc32(block, crc)
      size += count
      if on_block is not None:
        on_block(block)


def read_manifest(folder: str) -> dict[str, tuple[int, int]]:
  """{file name: (bytes, CRC-32)} the folder's writer recorded."""
  path = os.path.join(folder, MANIFEST)
  try:
    with open(path, "rb") as f:
      manifest = json.loads(f.read().decode("utf-8"))
  except FileNotFoundError as e:
    raise CacheError(f"it has no {MANIFEST}, so its files cannot be checked (an earlier "
                     "version wrote it, or it is incomplete)") from e
  except (OSError, ValueError) as e:  # UnicodeDecodeError and JSONDecodeError are ValueErrors
    raise CacheError(f"{MANIFEST} is unreadable ({first_line(e)})") from e
  files = manifest.get("files") if isinstance(manifest, dict) else None
  if (not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT
      or not isinstance(files, dict)):
    raise CacheError(f"{MANIFEST} is not a manifest of format {MANIFEST_FORMAT}")
  try:
    return {str(name): (_whole(entry["bytes"]), _whole(entry["crc32"]))
            for name, entry in files.items()}
  except (KeyError, TypeError, ValueError) as e:
    raise CacheError(f"{MANIFEST} holds a malformed entry ({first_line(e)})") from e


def _whole(value) -> int:
  if isinstance(value, bool) or not isinstance(value, int) or value < 0:
    raise ValueError(f"{value!r} is not a size or a CRC")
  return value


def first_line(error: Exception) -> str:
  text = str(error).strip()
  return (text.splitlines()[0] if text else type(error).__name__)[:160]


def verify(folder: str, required: tuple[str, ...] = (),
           on_block: Callable[[str], Callable[[bytes], None] | None] | None = None
           ) -> dict[str, tuple[int, int]]:
  """Checks every file the manifest of `folder` lists: its size, then its CRC-32.

  Args:
    folder: the cache folder.
    required: files the manifest must list.
    on_block: name -> a function given each block of that file as it is read (structure
      checks that raise CacheError), or None.

  Returns:
    The manifest.

  Raises:
    CacheError: the first problem found.
  """
  manifest = read_manifest(folder)
  for name in required:
    if name not in manifest:
      raise CacheError(f"{MANIFEST} does not list {name}")
  for name, (size, _) in sorted(manifest.items()):  # sizes first: no read at all
    try:
      found = os.stat(os.path.join(folder, name)).st_size
    except FileNotFoundError as e:
      raise CacheError(f"{name} is missing") from e
    except OSError as e:
      raise CacheError(f"cannot read {name} ({e.strerror})") from e
    if found != size:
      raise CacheError(f"{name} holds {found:,} bytes, its writer wrote {size:,}")
  for name, (_, crc) in sorted(manifest.items()):
    try:
      _, found = _scan(os.path.join(folder, name), on_block(name) if on_block else None)
    except OSError as e:
      raise CacheError(f"cannot read {name} ({e.strerror})") from e
    if found != crc:
      raise CacheError(f"{name} fails its checksum (CRC-32 {found:08x}, its writer recorded "
                       f"{crc:08x}): its content changed since it was written")
  return manifest


def id_range_check(name: str, limit: int) -> Callable[[bytes], None]:
  """A block check of an int32 file of ids: each in [0, limit] (`limit`: the pruned id U)."""
  def check(block) -> None:
    if len(block) % 4:
      raise CacheError(f"{name} is not a whole number of int32 ids")
    ids = np.frombuffer(block, "<i4")
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) > limit):
      bad = int(ids.min()) if int(ids.min()) < 0 else int(ids.max())
      raise CacheError(f"{name} holds the id {bad:,}, outside the {limit:,} types")
  return check


# meta.json's keys the readers use: (type, required).
_META_KEYS = {"version": (int, True), "num_tokens": (int, True), "num_documents": (int, True),
              "pruned_tokens": (int, False), "prune_events": (int, False),
              "prune_below_count": (int, False), "invalid_utf8_reviews": (int, False),
              "first_invalid_utf8_review": (int, False),
              "first_invalid_utf8_location": (str, False), "seconds": ((int, float), False),
              "phrases": (dict, False), "phrase_types": (int, False),
              "phrase_joins": (int, False), "phrase_len_vocab": (int, False)}


def check_meta(meta) -> dict:
  """meta.json's object, when it is one with the keys and types the reader uses."""
  if not isinstance(meta, dict):
    raise CacheError(f"meta.json holds a JSON {type(meta).__name__}, not an object")
  for key, (kind, required) in _META_KEYS.items():
    if key not in meta:
      if required:
        raise CacheError(f"meta.json has no {key!r}")
      continue
    value = meta[key]
    if isinstance(value, bool) or not isinstance(value, kind):
      raise CacheError(f"meta.json's {key!r} is {value!r}, not of the type its reader expects")
  return meta


def check_tables(meta: dict, types: tuple, counts: np.ndarray, offsets: np.ndarray,
                 token_bytes: int) -> None:
  """The corpus tables' structure: sizes that agree, offsets sorted within the tokens, counts
  positive and sorted as the types are (by descending count)."""
  num_tokens = meta["num_tokens"]
  if len(types) != len(counts):
    raise CacheError(f"types.txt holds {len(types):,} words, counts.i64 {len(counts):,} counts")
  if len(offsets) != meta["num_documents"] + 1 or not len(offsets):
    raise CacheError(f"offsets.i64 holds {len(offsets):,} offsets, meta.json counts "
                     f"{meta['num_documents']:,} documents")
  if offsets[0] != 0 or offsets[-1] != num_tokens or token_bytes != 4 * num_tokens:
    raise CacheError(f"the files disagree on the token count (offsets {int(offsets[0]):,} .. "
                     f"{int(offsets[-1]):,}, meta.json {num_tokens:,}, tokens.i32 "
                     f"{token_bytes:,} bytes)")
  steps = np.diff(offsets)
  if len(steps) and steps.min() < 0:
    document = int(np.argmax(steps < 0))
    raise CacheError(f"offsets.i64 is not sorted (document {document:,} ends before it starts)")
  if len(counts) and (counts.min() < 1 or (np.diff(counts) > 0).any()):
    raise CacheError("counts.i64 is not a list of positive counts in descending order")


def publish(work: str, final: str, check: Callable[[str], object]) -> bool:
  """Renames the complete folder `work` to `final`; True if it was published.

  A folder already at `final` that passes `check` (raises nothing) is kept and `work` removed:
  another builder published the same content, and a reader may have it open (removing it and
  renaming, as this did before, crashed a trainer reading it with NotFoundError). One that
  fails its check is renamed aside and removed, then `work` takes its place.
  """
  for _ in range(10):  # each round, another builder may have published or replaced it
    try:
      os.rename(work, final)
      return True
    except OSError as e:
      if e.errno not in (errno.ENOTEMPTY, errno.EEXIST, errno.ENOTDIR, errno.EISDIR):
        raise
    try:
      check(final)
    except CacheError:
      aside = tempfile.mkdtemp(prefix=f"{os.path.basename(final)}.tmp-{owner_tag()}.",
                               dir=os.path.dirname(final))
      try:
        os.replace(final, os.path.join(aside, "old"))
      except FileNotFoundError:
        pass
      shutil.rmtree(aside, ignore_errors=True)
      continue
    except OSError:  # gone meanwhile (a file there, removed): try again
      continue
    shutil.rmtree(work, ignore_errors=True)
    return False
  raise OSError(errno.EBUSY, f"{final} keeps changing under other builders")


def chunk_name(index: int) -> str:
  return f"chunk-{index:06d}.i32"


def _chunk_check(name: str, size: int, vocab_size: int) -> Callable[[bytes], None]:
  """A block check of a chunk file: int32 [n, d], n ids in [0, V), d lengths summing to n."""
  state = {"at": 0, "n": 0, "d": 0, "sum": 0}

  def check(block) -> None:
    values = np.frombuffer(block, "<i4")
    at = state["at"]
    state["at"] += len(values)
    if at == 0:
      n, d = (int(values[0]), int(values[1])) if len(values) >= 2 else (-1, -1)
      if n < 0 or d < 0 or 4 * (2 + n + d) != size:
        raise CacheError(f"{name}'s header ({n:,} tokens, {d:,} documents) does not fit its "
                         f"{size:,} bytes")
      state.update(n=n, d=d)
    n = state["n"]
    ids = values[max(0, 2 - at):max(0, 2 + n - at)]
    if len(ids) and (int(ids.min()) < 0 or int(ids.max()) >= vocab_size):
      raise CacheError(f"{name} holds an id outside the vocabulary of {vocab_size:,} words")
    lengths = values[max(0, 2 + n - at):]
    if len(lengths) and int(lengths.min()) < 1:
      raise CacheError(f"{name} holds a document length below 1")
    state["sum"] += int(lengths.sum(dtype=np.int64))
    if state["at"] * 4 == size and state["sum"] != n:
      raise CacheError(f"{name}'s document lengths add up to {state['sum']:,}, not its {n:,} "
                       "tokens")
  return check


def verify_chunks(folder: str, num_chunks: int, vocab_size: int) -> None:
  """Checks a folder of training chunks (`pipeline.write_chunks`): every chunk is listed and
  passes its checksum and structure check."""
  def on_block(name: str):
    return _chunk_check(name, os.path.getsize(os.path.join(folder, name)), vocab_size)
  manifest = verify(folder, tuple(chunk_name(i) for i in range(num_chunks)), on_block)
  if len(manifest) != num_chunks:
    raise CacheError(f"{MANIFEST} lists {len(manifest):,} chunks, the corpus makes "
                     f"{num_chunks:,}")
