"""The TF cleaning rules against their plain-Python twin, on edge cases and real reviews."""

import os
import string
import subprocess
import sys
import types
import unicodedata
import zipfile

import pandas as pd

import pytest

from w2v_tf import text
from w2v_tf.errors import UserError


def python_twin(review: str, stopwords: frozenset[str]) -> list[str]:
  """The cleaning rules in plain Python (see w2v_tf/text.py)."""
  review = review.replace("<br />", " ")
  review = review.translate(str.maketrans("", "", string.punctuation))
  review = "".join(" " if unicodedata.category(c) == "Cc" or c == "\ufeff" else c
                   for c in review)  # control characters separate words
  tokens = [token.lower() for token in review.split() if token.isalpha()]
  return [token for token in tokens if token not in stopwords and len(token) > 1]


EDGE_CASES = [
    "café Café CAFÉ",
    "don't x-men X-Men's",
    "<br /><br />",
    "one<br />two<br /><br />three",
    "1990s 42 abc123 2nd ok",
    "",
    "   ",
    "a I an the to",
    "İstanbul ΟΔΟΣ straße ǅemal naïve",
    "non\u00a0breaking\u2009thin\u3000ideographic\u0085next\tab\nnewline",
    "e\u0301te combining",
    "日本語 映画 Ω",
    "\"quoted, with commas\" (parens) [brackets] {braces}",
    "emoji 🎬 movie🎬 🎬🎬",
    "under_score hyphen-ated slash/ed",
    "file\x1cgroup\x1drecord\x1eunit\x1fsep\x0bvt\x0cff\rcr",
    "ΣΟΦΟΣ. ΟΔΟΣ123 ΣΣ",
    "foo\x00bar nul\x07bel esc\x1b[0m del\x7fete c1\x80\x9fxy bom\ufeffxy line\u2028sep",
]


def test_a_batch_mixing_the_slow_and_fast_orders_matches_the_twin():
  # U+0130 or invalid UTF-8 in one review switches its whole batch to the slow order.
  stopwords = frozenset({"the"})
  batch = ["İstanbul the CITY", "Plain REVIEW here", "ΟΔΟΣ naïve"]
  assert text.tokenize_texts(batch, stopwords) == [python_twin(r, stopwords) for r in batch]
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  table = text.stopword_table(stopwords)
  tokens, invalid = text.clean_reviews(tf.constant([b"Good\xff MOVIE", b"Fine Film"]), table, True)
  assert tokens.to_list() == [[b"movie"], [b"fine", b"film"]]
  assert invalid.numpy().tolist() == [True, False]


@pytest.mark.parametrize("review", EDGE_CASES)
def test_edge_cases_match_twin(review):
  stopwords = frozenset({"the", "to", "an", "with", "dont"})
  assert text.tokenize_texts([review], stopwords) == [python_twin(review, stopwords)]


def test_specific_rules():
  tokens = text.tokenize_texts(["Don't<br />X-Men café 1990s a b zz"], frozenset())[0]
  assert tokens == ["dont", "xmen", "café", "zz"]


def test_invalid_utf8_is_replaced_not_tokenized():
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  table = text.stopword_table(frozenset())
  tokens = text.clean_reviews(tf.constant([b"good \xff\xfe bad mo\xffvie"]), table).to_list()
  assert tokens == [[b"good", b"bad"]]


def test_real_reviews_match_twin(imdb_csv, nltk_stopwords):
  reviews = pd.read_csv(imdb_csv, nrows=3000)["review"].tolist()
  assert len(reviews) >= 2000
  got = text.tokenize_texts(reviews, nltk_stopwords)
  mismatches = [i for i, (r, g) in enumerate(zip(reviews, got)) if python_twin(r, nltk_stopwords) != g]
  assert not mismatches, f"{len(mismatches)} reviews differ, first {mismatches[:5]}"
  assert sum(map(len, got)) > 200_000


def test_stopword_specs(tmp_path, nltk_stopwords):
  assert "the" in nltk_stopwords and len(nltk_stopwords) > 100
  assert text.load_stopwords("none") == frozenset()
  path = tmp_path / "stop.txt"
  path.write_text("# comment\nMovie\n\nfilm\n", encoding="utf-8")
  assert text.load_stopwords(str(path)) == frozenset({"movie", "film"})
  with pytest.raises(UserError, match="--stopwords"):
    text.load_stopwords(str(tmp_path / "missing.txt"))


def test_missing_nltk_corpus_names_the_fix(monkeypatch, tmp_path):
  import nltk  # pylint: disable=import-outside-toplevel
  import nltk.corpus  # pylint: disable=import-outside-toplevel
  def missing(*args, **kwargs):
    raise LookupError("Resource stopwords not found")
  # A stand-in for the lazy corpus: patching an attribute of the real one loads it first, which
  # fails where no stopwords are installed (a clone without ../shared/data).
  monkeypatch.setattr(nltk.corpus, "stopwords", types.SimpleNamespace(words=missing))
  monkeypatch.delenv("NLTK_DATA", raising=False)  # else the list is read from there
  calls = []
  monkeypatch.setattr(nltk, "download", lambda *a, **k: calls.append(a) or False)
  with pytest.raises(UserError) as info:
    text.load_stopwords("nltk")
  assert calls == [("stopwords",)]  # tried once
  message = str(info.value)
  assert "nltk.downloader stopwords" in message and "NLTK_DATA" in message
  assert "--stopwords=none" in message


def test_the_nltk_list_is_read_from_nltk_data_as_nltk_reads_it(nltk_stopwords):
  import nltk.corpus  # pylint: disable=import-outside-toplevel
  assert text._stopwords_on_nltk_data() is not None  # the fast path ran
  assert text._nltk_english_stopwords() == nltk.corpus.stopwords.words("english")
  assert nltk_stopwords == frozenset(nltk.corpus.stopwords.words("english"))


def test_reading_the_nltk_list_does_not_import_nltk(nltk_stopwords):
  code = ("import sys; from w2v_tf import text; words = text.load_stopwords('nltk'); "
          "print(len(words), 'nltk' in sys.modules)")
  out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                       cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
  count, imported = out.stdout.split()
  assert int(count) == len(nltk_stopwords) and imported == "False"


def test_the_first_nltk_data_folder_with_the_resource_wins(monkeypatch, tmp_path):
  def folder(name, kind):
    root = tmp_path / name
    (root / "corpora").mkdir(parents=True)
    if kind in ("zip", "zip-other"):
      with zipfile.ZipFile(root / "corpora" / "stopwords.zip", "w") as archive:
        archive.writestr("stopwords/english" if kind == "zip" else "stopwords/french", "of\n")
    elif kind:
      (root / "corpora" / "stopwords").mkdir()
      if kind == "english":
        (root / "corpora" / "stopwords" / "english").write_text("a\n\nthe\n")
    return str(root)
  def found(*folders):
    monkeypatch.setenv("NLTK_DATA", os.pathsep.join(folders))
    return text._stopwords_on_nltk_data()
  empty, zipped, zip_other, other, english = (
      folder("empty", None), folder("zip", "zip"), folder("zip-other", "zip-other"),
      folder("other", "other"), folder("en", "english"))
  assert found(empty, english) == "a\n\nthe\n"
  assert found("", english) == "a\n\nthe\n"
  assert found(zipped, english) == "of\n"  # NLTK's own zip layout
  assert found(zip_other, english) is None  # the first resource lacks english: NLTK decides
  assert found(other, english) is None
  assert found(empty) is None
  monkeypatch.setenv("NLTK_DATA", english)
  assert text._nltk_english_stopwords() == ["a", "the"]
