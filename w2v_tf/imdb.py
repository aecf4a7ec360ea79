"""IMDB reviews (aclImdb_v1 tarball, its unpacked folder, or its URL) -> review,sentiment CSV.

    summary = convert("aclImdb_v1.tar.gz", "data")   # writes data/IMDB_Dataset.csv

Only the labelled reviews count: aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt (train/unsup
and the other files are skipped). The CSV copies the Kaggle file's layout so the trainer reads
either: header `review,sentiment`, text verbatim, labels positive/negative, csv.writer's excel
dialect (minimal quoting, CRLF), utf-8, rows in a seeded shuffle of a canonical order. Tarballs
are streamed (`tarfile` "r|"), never unpacked; one that ends early (a cut download or copy) is
refused as truncated, not converted in part: `tarfile` alone stops quietly at a cut header.
`python -m w2v_tf.get_data` is its binary.
"""

from __future__ import annotations

import bz2
import contextlib
import csv
import dataclasses
import gzip
import lzma
import os
import random
import re
import sys
import tarfile
import urllib.parse
import zlib
from typing import Iterable, Iterator

from w2v_tf import download
from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_open, disk_errors

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
CSV_NAME = "IMDB_Dataset.csv"
FULL_DATASET_ROWS = 50_000
SOURCE_HINT = "use --source PATH to convert a local aclImdb_v1.tar.gz or aclImdb/ folder"

_SENTIMENTS = {"pos": "positive", "neg": "negative"}
# <anything>/{train,test}/{pos,neg}/<id>_<rating>.txt; train/unsup and the other files never match.
_REVIEW_PATH = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
# Compressed tarballs by their first bytes (what tarfile's "r|*" recognises). Each reader raises
# EOFError when its stream ends before the end-of-stream marker, which tarfile would not.
_COMPRESSIONS = ((b"\x1f\x8b", lambda f: gzip.GzipFile(fileobj=f, mode="rb")),
                 (b"BZh", bz2.BZ2File), (b"\xfd7zXZ\x00", lzma.LZMAFile))


@dataclasses.dataclass(frozen=True)
class Review:
  """One labelled review.

  Attributes:
    split: "train" or "test".
    sentiment: "positive" or "negative".
    review_id: the <id> of <id>_<rating>.txt.
    rating: the star rating 1-10 of <id>_<rating>.txt.
    text: the review, verbatim.
  """
  split: str
  sentiment: str
  review_id: int
  rating: int
  text: str


@dataclasses.dataclass(frozen=True)
class Summary:
  """What a conversion wrote.

  Attributes:
    path: the CSV written.
    rows: reviews written.
    positive: rows labelled positive.
    negative: rows labelled negative.
    undecodable: reviews that were not valid utf-8 (bad bytes replaced by U+FFFD).
  """
  path: str
  rows: int
  positive: int
  negative: int
  undecodable: int = 0


def _decode(data: bytes) -> tuple[str, bool]:
  """Decodes utf-8; returns (text, whether bad bytes had to be replaced)."""
  try:
    return data.decode("utf-8"), False
  except UnicodeDecodeError:
    return data.decode("utf-8", errors="replace"), True


def _review(match: re.Match, data: bytes) -> tuple[Review, bool]:
  split, label, review_id, rating = match.groups()
  text, replaced = _decode(data)
  return Review(split, _SENTIMENTS[label], int(review_id), int(rating), text), replaced


def _decompressed(raw):
  """The tar bytes of an open tarball: `raw` itself, or a gzip / bzip2 / xz reader over it."""
  magic = raw.read(6)
  raw.seek(0)
  for prefix, opener in _COMPRESSIONS:
    if magic.startswith(prefix):
      return opener(raw)
  return contextlib.nullcontext(raw)


def iter_tarball(path: str) -> Iterator[tuple[Review, bool]]:
  """Streams the labelled reviews out of an aclImdb tarball (any compression), in archive order.

  Args:
    path: a .tar.gz (or .tar, .tar.bz2, ...) holding aclImdb/{train,test}/{pos,neg}/*.txt.

  Yields:
    (review, whether its bytes were not valid utf-8).

  Raises:
    UserError: the file is not a readable tar archive, or it is truncated (checked to the end
      of the compressed stream, so the error may come after the last review was yielded).
  """
  truncated = (f"{path} is truncated (the archive ends early, as a cut download or copy does): "
               "download or copy it again")
  try:
    with open(path, "rb") as raw, _decompressed(raw) as stream, \
        tarfile.open(fileobj=stream, mode="r|") as archive:  # streaming: nothing unpacked
      for member in archive:
        match = _REVIEW_PATH.search(member.name)
        if not match or not member.isfile():
          continue
        yield _review(match, archive.extractfile(member).read())
      # tarfile ends its loop quietly on a short (cut) header block; a complete archive ends
      # with a full block of zeros (the header read last, at archive.offset).
      if archive.fileobj.tell() - archive.offset < tarfile.BLOCKSIZE:
        raise UserError(truncated)
      while stream.read(1 << 20):  # the rest: a compressed stream must reach its end marker
        pass
  except EOFError as e:  # "Compressed file ended before the end-of-stream marker was reached"
    raise UserError(truncated) from e
  except (tarfile.TarError, zlib.error, lzma.LZMAError, OSError) as e:
    if isinstance(e, tarfile.ReadError) and str(e) == "unexpected end of data":
      raise UserError(truncated) from e  # cut inside a member's data
    if isinstance(e, OSError) and e.errno is not None:
      raise UserError(f"cannot read {path}: {e.strerror}") from e
    raise UserError(f"cannot read {path} as a tar archive ({e}): expected aclImdb_v1.tar.gz "
                    "or an unpacked aclImdb/ folder") from e


def iter_folder(path: str) -> Iterator[tuple[Review, bool]]:
  """Reads the labelled reviews from an unpacked aclImdb/ folder (or the folder holding it).

  Args:
    path: the aclImdb folder (with train/ and test/ inside) or its parent.

  Yields:
    (review, whether its bytes were not valid utf-8).
  """
  if not os.path.isdir(os.path.join(path, "train")) and os.path.isdir(
      os.path.join(path, "aclImdb")):
    path = os.path.join(path, "aclImdb")
  for split in ("train", "test"):
    for label in ("pos", "neg"):
      directory = os.path.join(path, split, label)
      if not os.path.isdir(directory):
        continue
      for name in sorted(os.listdir(directory)):
        match = _REVIEW_PATH.search(f"{split}/{label}/{name}")
        if match:
          with open(os.path.join(directory, name), "rb") as f:
            yield _review(match, f.read())


def read_reviews(path: str) -> tuple[list[Review], int]:
  """Reads every labelled review of a local tarball or folder, in a canonical order.

  The order (split, sentiment, id) does not depend on the archive's member order, so a tarball
  and its unpacked folder give the same CSV for the same seed.

  Args:
    path: local aclImdb_v1.tar.gz or aclImdb/ folder.

  Returns:
    (reviews, number of reviews that were not valid utf-8).

  Raises:
    UserError: `path` does not exist, cannot be read, or holds no labelled review.
  """
  path = os.path.expanduser(path)
  if not os.path.exists(path):
    raise UserError(f"--source {path} does not exist: give a URL, an aclImdb_v1.tar.gz or an "
                    "unpacked aclImdb/ folder")
  if path.endswith((".csv", ".csv.gz")):
    raise UserError(f"{path} looks like the review,sentiment CSV itself, which needs no "
                    f"conversion: copy it to data/{CSV_NAME} (gunzip a .csv.gz) or point the "
                    "trainer at it")
  pairs = list(iter_folder(path) if os.path.isdir(path) else iter_tarball(path))
  if not pairs:
    raise UserError(f"no labelled reviews in {path}: expected "
                    "aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt")
  reviews = sorted((review for review, _ in pairs),
                   key=lambda r: (r.split, r.sentiment, r.review_id, r.rating))
  return reviews, sum(replaced for _, replaced in pairs)


def write_csv(path: str, reviews: Iterable[Review], seed: int = 0) -> Summary:
  """Writes reviews as a shuffled `review,sentiment` CSV (the Kaggle layout), atomically.

  Args:
    path: output CSV.
    reviews: the reviews, in canonical order.
    seed: seed of the shuffle.

  Returns:
    A `Summary` (its `undecodable` left at 0).
  """
  rows = [(review.text, review.sentiment) for review in reviews]
  random.Random(seed).shuffle(rows)
  with disk_errors(path), atomic_open(path, "w") as f:
    writer = csv.writer(f)  # excel dialect: QUOTE_MINIMAL, "" escapes, \r\n, as the Kaggle file
    writer.writerow(("review", "sentiment"))
    writer.writerows(rows)
  positive = sum(sentiment == "positive" for _, sentiment in rows)
  return Summary(path=path, rows=len(rows), positive=positive, negative=len(rows) - positive)


def convert(source: str, data_dir: str, seed: int = 0, overwrite: bool = False,
            timeout: float = 60.0, progress: bool = True) -> Summary:
  """Produces `<data_dir>/IMDB_Dataset.csv` from a URL, a local tarball or an aclImdb/ folder.

  A URL is downloaded first to `<data_dir>/<its file name>` and kept there, so a second run
  converts it again without downloading (unless `overwrite`).

  Args:
    source: URL, local .tar.gz, or aclImdb/ folder.
    data_dir: output folder.
    seed: seed of the row shuffle.
    overwrite: replace an existing CSV (and re-download a kept tarball).
    timeout: network timeout in seconds.
    progress: show download progress on stderr.

  Returns:
    A `Summary` of the CSV written.

  Raises:
    UserError: the CSV exists and `overwrite` is off, the source cannot be fetched or read
      (the message names --source as the way out when offline), or the disk is full.
  """
  csv_path = os.path.join(data_dir, CSV_NAME)
  if os.path.exists(csv_path) and not overwrite:
    raise UserError(f"{csv_path} already exists: pass --overwrite to replace it")
  if download.is_url(source):
    name = os.path.basename(urllib.parse.urlsplit(source).path) or "aclImdb_v1.tar.gz"
    local = os.path.join(data_dir, name)
    if os.path.exists(local) and not overwrite:
      print(f"using {local}, downloaded before (pass --overwrite to fetch it again)",
            file=sys.stderr)
    else:
      try:
        download.download(source, local, timeout=timeout, progress=progress)
      except download.DownloadError as e:
        raise UserError(f"{e}: {SOURCE_HINT}") from e
    try:
      reviews, undecodable = read_reviews(local)
    except UserError as e:
      raise UserError(f"{e} (delete it or pass --overwrite to download it again)") from e
  else:
    reviews, undecodable = read_reviews(source)
  summary = write_csv(csv_path, reviews, seed=seed)
  return dataclasses.replace(summary, undecodable=undecodable)
