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

import importlib.util
import os
import shutil
import sys

from absl import flags

from w2v_tf import data_home, download, imdb
from w2v_tf.errors import UsageError, UserError, run_main
from w2v_tf.fileio import atomic_open, disk_errors

# The conversion itself is w2v_tf.imdb and the HTTP fetching w2v_tf.download, so both can be used
# (and tested) without this binary's flags.
EVAL_SET_URLS = {
    "questions-words.txt":
        "https://raw.githubusercontent.com/tmikolov/word2vec/master/questions-words.txt",
    "wordsim353.tsv":
        "https://raw.githubusercontent.com/RaRe-Technologies/gensim/develop/gensim/test/"
        "test_data/wordsim353.tsv",
}

FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines the binary's flags; called only when run as `python -m w2v_tf.get_data`.

  Importing the module (tests, other code) then defines none, so its flags cannot clash with
  those of a process that imports it.
  """
  flags.DEFINE_string("source", imdb.IMDB_URL,
                      "Where the reviews come from: a URL of aclImdb_v1.tar.gz (http, https or "
                      "file://), a local aclImdb_v1.tar.gz, or an unpacked aclImdb/ folder.")
  flags.DEFINE_string("data_dir", data_home.data_dir(),
                      "Output folder for IMDB_Dataset.csv, the eval sets and a downloaded "
                      "tarball: where the other commands look by default. "
                      + data_home.describe())
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
      size = download.download(url, dest, timeout=timeout, progress=progress)
      report.append(f"{dest}: downloaded from {url} ({size:,} bytes)")
    except download.DownloadError as e:
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
  if not 0 <= FLAGS.seed < 2 ** 32:  # numpy's shuffle seed
    raise UsageError(f"--seed must be in [0, 2**32), got {FLAGS.seed}")
  if FLAGS.skip_imdb and FLAGS.skip_eval_sets:
    raise UsageError("--skip_imdb and --skip_eval_sets together leave nothing to do")
  with disk_errors(FLAGS.data_dir):
    os.makedirs(FLAGS.data_dir, exist_ok=True)
  if not FLAGS.skip_imdb:
    summary = imdb.convert(FLAGS.source, FLAGS.data_dir, seed=FLAGS.seed,
                           overwrite=FLAGS.overwrite, timeout=FLAGS.timeout)
    print(f"wrote {summary.rows:,} reviews ({summary.positive:,} positive, "
          f"{summary.negative:,} negative) to {summary.path}")
    if summary.rows != imdb.FULL_DATASET_ROWS:
      print(f"note: the full Large Movie Review Dataset has {imdb.FULL_DATASET_ROWS:,} labelled "
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


def run() -> None:
  """The `w2v-get-data` command (and `python -m w2v_tf.get_data`)."""
  define_flags()
  run_main(main)


if __name__ == "__main__":
  run()
