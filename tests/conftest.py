"""Shared test fixtures: paths to the shared data (present in CI, maybe not elsewhere)."""

import os

import pytest

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(os.path.dirname(REPO_ROOT), "shared", "data")
IMDB_CSV = os.path.join(SHARED_DATA, "imdb", "IMDB_Dataset.csv.gz")
QUESTIONS_WORDS = os.path.join(SHARED_DATA, "eval", "questions-words.txt")
WORDSIM353 = os.path.join(SHARED_DATA, "eval", "wordsim353.tsv")
NLTK_DATA = os.path.join(SHARED_DATA, "nltk_data")

if os.path.isdir(NLTK_DATA) and "NLTK_DATA" not in os.environ:
  os.environ["NLTK_DATA"] = NLTK_DATA
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
# Commands run outside a data/ folder keep their data in the user's cache directory
# (w2v_tf.data_home): the tests' runs (and their subprocesses) use a folder of their own.
os.environ.pop("W2V_TF_DATA", None)
os.environ["XDG_CACHE_HOME"] = os.path.join(
    os.environ.get("TMPDIR", "/tmp"), f"w2v_tf-tests-cache-{os.getuid()}")


def _require(path):
  if not os.path.exists(path):
    pytest.skip(f"{path} is absent (shared data not beside the repo)")
  return path


@pytest.fixture
def imdb_csv():
  """The real 50k-review IMDB CSV (skips when absent)."""
  return _require(IMDB_CSV)


@pytest.fixture
def nltk_stopwords():
  """NLTK's English stopwords from the shared data (skips when absent)."""
  _require(os.path.join(NLTK_DATA, "corpora"))
  from w2v_tf import text  # pylint: disable=import-outside-toplevel
  return text.load_stopwords("nltk")


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
  """A generated corpus with planted relations and its analogy file (tests/planted.py)."""
  from tests.planted import write_planted_corpus  # pylint: disable=import-outside-toplevel
  folder = tmp_path_factory.mktemp("planted")
  csv_path, questions = str(folder / "planted.csv"), str(folder / "planted-questions.txt")
  write_planted_corpus(csv_path, questions, reviews=6000)
  return csv_path, questions
