"""Fetches the IMDB reviews (Maas et al. 2011) as a Kaggle-style review,sentiment CSV + eval sets.

    python -m w2v_tf.get_data                        # download, convert, fetch the eval sets
    python -m w2v_tf.get_data --source aclImdb_v1.tar.gz   # convert a local tarball (or aclImdb/)

The Large Movie Review Dataset v1.0 ships as aclImdb/{train,test}/{pos,neg}/<id>_<rating>.txt
(plus unlabelled train/unsup reviews, ignored here). Its 50,000 labelled reviews are written to
`<data_dir>/IMDB_Dataset.csv` in the layout of the widely used Kaggle file: a `review,sentiment`
header, the review text verbatim (`<br />` tags kept), `positive`/`negative`, minimal csv
quoting, CRLF row ends, utf-8, rows shuffled with a fixed seed. The tarball is read as a stream,
never unpacked. The analogy set (questions-words.txt) and WordSim353 go next to it; offline, the
copies gensim ships in its package are used when gensim is installed.
"""

from __future__ import annotations

import csv
import dataclasses
import http.client
import importlib.util
import os
import random
import re
import shutil
import sys
import tarfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from typing import IO, Iterable, Iterator

from absl import flags

from w2v_tf.errors import UsageError, UserError, run_main
from w2v_tf.fileio import atomic_open, disk_errors

IMDB_URL = "https://ai.stanford.edu/~amaas/data/sentiment/aclImdb_v1.tar.gz"
CSV_NAME = "IMDB_Dataset.csv"
EVAL_SET_URLS = {
    "questions-words.txt":
        "https://raw.githubusercontent.com/tmikolov/word2vec/master/questions-words.txt",
    "wordsim353.tsv":
        "https://raw.githubusercontent.com/RaRe-Technologies/gensim/develop/gensim/test/"
        "test_data/wordsim353.tsv",
}
FULL_DATASET_ROWS = 50_000
SOURCE_HINT = "use --source PATH to convert a local aclImdb_v1.tar.gz or aclImdb/ folder"

_SENTIMENTS = {"pos": "positive", "neg": "negative"}
# <anything>/{train,test}/{pos,neg}/<id>_<rating>.txt; train/unsup and the other files never match.
_REVIEW_PATH = re.compile(r"(?:^|/)(train|test)/(pos|neg)/(\d+)_(\d+)\.txt$")
_URL_SCHEMES = ("http", "https", "ftp", "file")
_CHUNK_BYTES = 1 << 20

FLAGS = flags.FLAGS
flags.DEFINE_string("source", IMDB_URL,
                    "Where the reviews come from: a URL of aclImdb_v1.tar.gz (http, https or "
                    "file://), a local aclImdb_v1.tar.gz, or an unpacked aclImdb/ folder.")
flags.DEFINE_string("data_dir", "data",
                    "Output folder for IMDB_Dataset.csv, the eval sets and a downloaded tarball.")
flags.DEFINE_integer("seed", 0, "Seed of the row shuffle (same seed, same file).")
flags.DEFINE_bool("skip_eval_sets", False,
                  "Do not fetch questions-words.txt and wordsim353.tsv.")
flags.DEFINE_bool("skip_imdb", False, "Only fetch the eval sets; leave the CSV alone.")
flags.DEFINE_bool("overwrite", False,
                  "Replace an existing CSV and eval sets, and download the tarball again.")
flags.DEFINE_float("timeout", 60.0, "Network timeout in seconds (per connect / read).")
flags.DEFINE_string("questions_words_url", EVAL_SET_URLS["questions-words.txt"],
                    "Where to download questions-words.txt (Mikolov et al. 2013 analogies).")
flags.DEFINE_string("wordsim353_url", EVAL_SET_URLS["wordsim353.tsv"],
                    "Where to download wordsim353.tsv (Finkelstein et al. 2002).")


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


class DownloadError(UserError):
  """A download failed: no network, unreachable host, HTTP error or cut-off transfer."""

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


def iter_tarball(path: str) -> Iterator[tuple[Review, bool]]:
  """Streams the labelled reviews out of an aclImdb tarball (any compression), in archive order.

  Args:
    path: a .tar.gz (or .tar, .tar.bz2, ...) holding aclImdb/{train,test}/{pos,neg}/*.txt.

  Yields:
    (review, whether its bytes were not valid utf-8).

  Raises:
    UserError: the file is not a readable tar archive.
  """
  try:
    with tarfile.open(path, mode="r|*") as archive:  # streaming: one pass, nothing unpacked
      for member in archive:
        match = _REVIEW_PATH.search(member.name)
        if not match or not member.isfile():
          continue
        yield _review(match, archive.extractfile(member).read())
  except (tarfile.TarError, EOFError, zlib.error, OSError) as e:
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
  if is_url(source):
    name = os.path.basename(urllib.parse.urlsplit(source).path) or "aclImdb_v1.tar.gz"
    local = os.path.join(data_dir, name)
    if os.path.exists(local) and not overwrite:
      print(f"using {local}, downloaded before (pass --overwrite to fetch it again)",
            file=sys.stderr)
    else:
      try:
        download(source, local, timeout=timeout, progress=progress)
      except DownloadError as e:
        raise UserError(f"{e}: {SOURCE_HINT}") from e
    try:
      reviews, undecodable = read_reviews(local)
    except UserError as e:
      raise UserError(f"{e} (delete it or pass --overwrite to download it again)") from e
  else:
    reviews, undecodable = read_reviews(source)
  summary = write_csv(csv_path, reviews, seed=seed)
  return dataclasses.replace(summary, undecodable=undecodable)


def gensim_copy(name: str) -> str | None:
  """The path of the copy of eval set `name` inside gensim's package (its test data), if any.

  Same file as `gensim.test.utils.datapath(name)`, found without importing gensim (slow, and
  its test utils log at import).
  """
  try:
    spec = importlib.util.find_spec("gensim")
  except (ImportError, ValueError):
    return None
  if spec is None or not spec.submodule_search_locations:
    return None
  for package_dir in spec.submodule_search_locations:
    path = os.path.join(package_dir, "test", "test_data", name)
    if os.path.isfile(path):
      return path
  return None


def fetch_eval_sets(data_dir: str, urls: dict[str, str] | None = None, overwrite: bool = False,
                    timeout: float = 60.0, progress: bool = True) -> list[str]:
  """Downloads the eval sets into `data_dir`, falling back to gensim's packaged copies offline.

  Args:
    data_dir: output folder.
    urls: file name -> URL; default `EVAL_SET_URLS` (questions-words.txt, wordsim353.tsv).
    overwrite: fetch even the files already present.
    timeout: network timeout in seconds.
    progress: show download progress on stderr.

  Returns:
    One line per file saying where it came from.

  Raises:
    UserError: a download failed and gensim (with its copy) is not installed.
  """
  report = []
  for name, url in (urls or EVAL_SET_URLS).items():
    dest = os.path.join(data_dir, name)
    if os.path.exists(dest) and not overwrite:
      report.append(f"{dest}: already there (pass --overwrite to fetch it again)")
      continue
    try:
      size = download(url, dest, timeout=timeout, progress=progress)
      report.append(f"{dest}: downloaded from {url} ({size:,} bytes)")
    except DownloadError as e:
      fallback = gensim_copy(name)
      if fallback is None:
        raise UserError(f"{e}: cannot fetch {name}; put a copy in {data_dir}/ yourself, "
                        "install gensim (its package ships one), or pass --skip_eval_sets") from e
      print(f"{e}: using the copy of {name} that gensim ships with its package", file=sys.stderr)
      with disk_errors(dest), open(fallback, "rb") as src, atomic_open(dest, "wb") as f:
        shutil.copyfileobj(src, f)
      report.append(f"{dest}: copied from gensim's package ({fallback})")
  return report


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.timeout <= 0:
    raise UsageError(f"--timeout must be positive, got {FLAGS.timeout}")
  if FLAGS.skip_imdb and FLAGS.skip_eval_sets:
    raise UsageError("--skip_imdb and --skip_eval_sets together leave nothing to do")
  with disk_errors(FLAGS.data_dir):
    os.makedirs(FLAGS.data_dir, exist_ok=True)
  if not FLAGS.skip_imdb:
    summary = convert(FLAGS.source, FLAGS.data_dir, seed=FLAGS.seed, overwrite=FLAGS.overwrite,
                      timeout=FLAGS.timeout)
    print(f"wrote {summary.rows:,} reviews ({summary.positive:,} positive, "
          f"{summary.negative:,} negative) to {summary.path}")
    if summary.rows != FULL_DATASET_ROWS:
      print(f"note: the full Large Movie Review Dataset has {FULL_DATASET_ROWS:,} labelled "
            f"reviews; this source had {summary.rows:,}")
    if summary.undecodable:
      print(f"note: {summary.undecodable:,} reviews were not valid utf-8; their bad bytes are "
            "now U+FFFD")
  if not FLAGS.skip_eval_sets:
    urls = {"questions-words.txt": FLAGS.questions_words_url,
            "wordsim353.tsv": FLAGS.wordsim353_url}
    for line in fetch_eval_sets(FLAGS.data_dir, urls, overwrite=FLAGS.overwrite,
                                timeout=FLAGS.timeout):
      print(line)


if __name__ == "__main__":
  run_main(main)
