"""Plain text (`--train_text`): a file, a folder of shards or a glob; one document per line.

`text_paths` resolves what `--train_text` names into an ordered list of files; `read_pieces`
streams their lines as bytes in bounded pieces, so a corpus of any size (text8 is one 100 MB
line) is read in bounded memory. Files ending in `.gz` or `.bz2` are decompressed as they are
read; a stream that ends early is refused as truncated, naming the file (gzip and bz2 both
notice the missing end-of-stream marker). A 0-byte file is empty, whatever its suffix.

Bad input is one line (`UserError`): no file matches, a folder without files, a file that
cannot be read, a binary file (a NUL byte), a truncated compressed shard.
"""

from __future__ import annotations

import bz2
import gzip
import os
import re
from typing import Iterator

import tensorflow as tf

from w2v_tf.errors import UserError
from w2v_tf.sources import base

# A line longer than this is handed on in pieces cut at whitespace (its tokens are joined back
# into one document): cleaning a 100 MB line at once took ~1 GB of string tensors.
PIECE_BYTES = 1 << 20
_ASCII_WHITESPACE = b" \t\n\r\x0b\x0c"
_WANTED = "a text file, a folder of text files or a glob (e.g. 'shards/*.txt.gz')"


def text_paths(spec: str) -> list[str]:
  """The files `spec` names, in reading order (`base.resolve_paths` for --train_text)."""
  return base.resolve_paths(spec, "--train_text", _WANTED)


def _open_binary(path: str):
  if path.endswith(".gz"):
    return gzip.open(path, "rb")
  if path.endswith(".bz2"):
    return bz2.open(path, "rb")
  return open(path, "rb")


def _cut(piece: bytes) -> int:
  """Where to cut an unfinished line: after its last ASCII whitespace (never inside a token,
  nor between `<br` and `/>`, which the IMDB rules read as one line break)."""
  cut = max(piece.rfind(bytes([c])) for c in _ASCII_WHITESPACE) + 1
  if cut <= 0:
    return len(piece)  # a megabyte without whitespace: one (absurd) token, cut anyway
  if piece[:cut - 1].endswith(b"<br"):
    cut = max(cut - 4, 0) or cut
  return cut


# What a file that is not text usually is, by its first bytes (none of them starts UTF-8 text:
# each holds a byte that is invalid there or a control character), and what to do about it.
_SIGNATURES = ((re.compile(b"\x1f\x8b"), "gzip data", "name it *.gz"),
               (re.compile(b"BZh[1-9]1AY&SY"), "bzip2 data", "name it *.bz2"),
               (re.compile(b"PK\x03\x04"), "a zip archive", "unzip it"),
               (re.compile(b"\xfd7zXZ\x00"), "xz data", "decompress it (unxz)"),
               (re.compile(b"\xff\xfe|\xfe\xff"), "UTF-16 text",
                "convert it: iconv -f utf-16 -t utf-8"))


def _check_text(path: str, start: bytes) -> None:
  """UserError when the first line (`start`) says the file is not UTF-8 text, naming what it is.

  A NUL byte there is never text; a compressed stream under a plain name or UTF-16 was only
  called "a NUL byte" before.
  """
  for signature, what, fix in _SIGNATURES:
    if signature.match(start):
      raise UserError(f"{path}: is {what}, not text: {fix} (--train_text reads UTF-8 text, one "
                      "document per line; .gz and .bz2 names are decompressed)")
  if b"\0" not in start:
    return
  pairs = start[:200]
  if len(pairs) >= 4 and (pairs[1::2].count(0) > len(pairs) // 4 or
                          pairs[0::2].count(0) > len(pairs) // 4):
    raise UserError(f"{path}: is not UTF-8 text (NUL bytes between the characters near its "
                    "start): probably UTF-16 without a byte-order mark; convert it: iconv -f "
                    "utf-16le -t utf-8 (or utf-16be)")
  raise UserError(f"{path}: is not a text file (a NUL byte near its start): "
                  "--train_text reads text, one document per line (.txt, .gz, .bz2)")


def _fragments(f, piece_bytes: int) -> Iterator[tuple[bytes, bool]]:
  """(bytes, ends a line) from a binary file: lines end at "\n", "\r\n" or a lone "\r".

  A lone "\r" (classic Mac OS files) ends a line as "\n" does (`str.splitlines`, Python's
  universal newlines): before, such a file was one document. A fragment that does not end a
  line is at most `piece_bytes` long (readline's limit).
  """
  after_cr = False  # the previous fragment ended at a "\r": a "\n" now is the same line end
  while True:
    chunk = f.readline(piece_bytes)
    if not chunk:
      return
    if after_cr and chunk.startswith(b"\n"):
      chunk = chunk[1:]  # the "\n" of a "\r\n" that readline's limit cut in two
      if not chunk:
        after_cr = False
        continue
    ended = chunk.endswith(b"\n")
    body = chunk[:-2] if chunk.endswith(b"\r\n") else chunk[:-1] if ended else chunk
    parts = body.split(b"\r")
    for part in parts[:-1]:
      yield part, True
    after_cr = not ended and body.endswith(b"\r")
    if ended or parts[-1]:  # an empty part after a lone "\r" is no fragment yet
      yield parts[-1], ended


def read_pieces(paths: list[str], piece_bytes: int = PIECE_BYTES
                ) -> Iterator[tuple[bytes, bool, str, int]]:
  """Streams the files' lines as pieces of at most about `piece_bytes` bytes.

  Lines end at "\n", "\r\n" or a lone "\r".

  Yields:
    (piece, continues, path, line): the bytes (without the line end); whether the next piece
    belongs to the same line (document); and where it is (1-based line) for messages.

  Raises:
    UserError: a file that cannot be read, a binary file, a truncated .gz / .bz2.
  """
  for path in paths:
    line_number = 0
    try:
      if os.path.getsize(path) == 0:
        # 0 bytes are an empty file whatever the name says: no lines, as a plain empty file
        # (gzip read it as empty, bz2 as a truncated stream). A truncated stream that holds
        # bytes is still refused.
        continue
      with _open_binary(path) as f:
        carry = b""
        open_line = False  # a piece with continues=True was the last one handed on
        first = True
        for fragment, ended in _fragments(f, piece_bytes):
          if first:
            _check_text(path, fragment)
          first = False
          piece = carry + fragment
          if ended:
            line_number += 1
            carry, open_line = b"", False
            yield piece, False, path, line_number
          elif len(piece) < piece_bytes:
            carry = piece  # the rest of the line follows (or the file ends)
          else:
            cut = _cut(piece)
            carry, open_line = piece[cut:], True
            yield piece[:cut], True, path, line_number + 1
        if carry or open_line:  # the last line, without a line end: close its document
          yield carry, False, path, line_number + 1
    except EOFError as e:
      raise UserError(f"{path}: the compressed stream is truncated (after line {line_number:,};"
                      f" {e}): download or copy the file again") from e
    except (OSError, gzip.BadGzipFile, ValueError) as e:
      raise UserError(f"{path}: cannot read it ({e}); check the file (.gz must be gzip, .bz2 "
                      "bzip2, anything else plain text)") from e


class TextFormat(base.InputFormat):
  """Plain text, one document a line (module doc)."""
  name = "text"
  config_fields = ("train_text",)
  records = "lines"
  noun = "line(s)"

  def check(self, spec: base.CorpusSpec) -> list[str]:
    return text_paths(spec.source)

  def key_parts(self, spec: base.CorpusSpec, digests: list[str]) -> list[str]:
    return ["text", *digests, str(spec.max_documents), "\n".join(sorted(spec.stopwords)),
            spec.cleaning, str(spec.lowercase), str(spec.max_document_tokens),
            str(spec.max_vocab_size)]

  def batches(self, spec: base.CorpusSpec, paths: list[str], errors: list) -> tf.data.Dataset:
    """The lines in pieces (`read_pieces`), batched by count and by bytes."""
    file_index = {path: index for index, path in enumerate(paths)}

    def generate():
      try:
        yield from read()
      except UserError as e:  # tf.data would wrap it in its own error: the caller raises it
        errors.append(e)

    def read():
      pieces, continues, files, lines = [], [], [], []
      documents = size = 0
      for piece, more, path, line in read_pieces(paths):
        pieces.append(piece)
        size += len(piece)
        continues.append(more)
        files.append(file_index[path])
        lines.append(line)
        documents += not more
        last = spec.max_documents and documents >= spec.max_documents
        if len(pieces) == base.READ_BATCH or size >= base.READ_BATCH_BYTES or last:
          yield pieces, continues, files, lines
          pieces, continues, files, lines = [], [], [], []
          size = 0
        if last:
          return
      if pieces:
        yield pieces, continues, files, lines

    return tf.data.Dataset.from_generator(generate, output_signature=base.BATCH_SIGNATURE)
