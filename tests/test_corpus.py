"""Reading the CSV with tf.data, the token cache, and the corpus on the real IMDB file."""

import gzip
import os

import numpy as np
import pytest

from w2v_tf import corpus as corpus_lib
from w2v_tf.errors import UserError

CSV = ('id,review,sentiment\n'
       '1,"He said ""great"", then left.<br /><br />Great acting, great film!",positive\n'
       '2,Plain words here,negative\n'
       '3,"Commas, commas, and ""quotes""",positive\n')


def _write(tmp_path, name, content, gz=False):
  path = tmp_path / name
  data = content.encode("utf-8")
  path.write_bytes(gzip.compress(data) if gz else data)
  return str(path)


@pytest.mark.parametrize("gz", [False, True])
def test_quoted_fields_and_gzip(tmp_path, gz):
  path = _write(tmp_path, "r.csv.gz" if gz else "r.csv", CSV, gz)
  reviews = [r.numpy().decode() for r in corpus_lib.read_reviews(path)]
  assert reviews == ['He said "great", then left.<br /><br />Great acting, great film!',
                     "Plain words here", 'Commas, commas, and "quotes"']
  assert len(list(corpus_lib.read_reviews(path, max_reviews=2))) == 2


def test_tokens_types_and_offsets(tmp_path):
  path = _write(tmp_path, "r.csv", CSV)
  corpus = corpus_lib.load_corpus(path, stopwords=frozenset({"and", "then"}), cache_dir=None,
                                  progress=False)
  words = [[corpus.types[i] for i in corpus.token_ids[s:e]]
           for s, e in zip(corpus.review_offsets[:-1], corpus.review_offsets[1:])]
  assert words == [["he", "said", "great", "left", "great", "acting", "great", "film"],
                   ["plain", "words", "here"], ["commas", "commas", "quotes"]]
  assert corpus.types[:2] == ("great", "commas")  # by count, ties alphabetical
  assert corpus.type_counts[:2].tolist() == [3, 2]


def test_cache_reused_and_invalidated(tmp_path):
  path = _write(tmp_path, "r.csv", CSV)
  cache = tmp_path / "cache"
  first = corpus_lib.load_corpus(path, cache_dir=str(cache), progress=False)
  files = os.listdir(cache)
  assert len(files) == 1
  # A second run reads the cache: make cleaning impossible and load again.
  original = corpus_lib.tokenize
  corpus_lib.tokenize = None
  try:
    again = corpus_lib.load_corpus(path, cache_dir=str(cache), progress=False)
  finally:
    corpus_lib.tokenize = original
  np.testing.assert_array_equal(first.token_ids, again.token_ids)
  assert again.types == first.types
  # A changed option or file content makes a new cache entry.
  corpus_lib.load_corpus(path, cache_dir=str(cache), stopwords=frozenset({"great"}), progress=False)
  _write(tmp_path, "r.csv", CSV.replace("Plain", "Other"))
  changed = corpus_lib.load_corpus(path, cache_dir=str(cache), progress=False)
  assert "other" in changed.types
  assert len(os.listdir(cache)) == 3


def test_clear_errors(tmp_path):
  with pytest.raises(UserError, match="no such file"):
    corpus_lib.load_corpus(str(tmp_path / "missing.csv"), cache_dir=None)
  with pytest.raises(UserError, match="empty"):
    corpus_lib.load_corpus(_write(tmp_path, "empty.csv", ""), cache_dir=None)
  with pytest.raises(UserError, match="--text_column"):
    corpus_lib.load_corpus(_write(tmp_path, "h.csv", "a,b\n1,2\n"), cache_dir=None)
  with pytest.raises(UserError, match="no tokens"):
    corpus_lib.load_corpus(_write(tmp_path, "n.csv", "review\n123\n!!\n"), cache_dir=None,
                           progress=False)


def test_real_imdb_subset(imdb_csv, nltk_stopwords, tmp_path):
  corpus = corpus_lib.load_corpus(imdb_csv, max_reviews=2000, stopwords=nltk_stopwords,
                                  cache_dir=str(tmp_path), progress=False)
  assert corpus.num_reviews == 2000
  assert corpus.types[0] in ("movie", "film")
  assert 150_000 < corpus.num_tokens < 400_000
  assert "the" not in corpus.types[:1000] and "br" not in corpus.types[:1000]


def test_invalid_utf8_is_counted_and_strict_mode_refuses_even_from_the_cache(tmp_path, capsys):
  path = tmp_path / "latin1.csv"
  path.write_bytes(b'review\nplain words\n"caf\xe9 au lait"\nmore words\n"na\xefve ""quote"""\n')
  cache = str(tmp_path / "cache")
  corpus = corpus_lib.load_corpus(str(path), cache_dir=cache, progress=False)
  assert (corpus.invalid_utf8_reviews, corpus.first_invalid_utf8_review) == (2, 1)
  assert "caf" not in corpus.types and "au" in corpus.types  # the bad word forms no token
  warnings = capsys.readouterr().err.strip().splitlines()
  assert warnings == [(f"warning: {path}: 2 review(s) hold bytes that are not UTF-8 (first at "
                       "row 2, line 3); they were replaced by U+FFFD and form no token "
                       "(--strict_utf8 refuses such files)")]
  assert len(os.listdir(cache)) == 1
  with pytest.raises(UserError, match=r"2 review\(s\) hold bytes that are not UTF-8, the first "
                                      r"at row 2, line 3: convert the file"):
    corpus_lib.load_corpus(str(path), cache_dir=cache, progress=False, strict_utf8=True)
  with pytest.raises(UserError, match="the first at row 2"):
    corpus_lib.load_corpus(str(path), cache_dir=None, progress=False, strict_utf8=True)


def test_malformed_record_reports_its_first_line(tmp_path):
  """Records may span lines: the error names the physical line where the bad one starts."""
  path = _write(tmp_path, "q.csv", 'review,label\n"two\nlines",a\n\nok,b\n"bad "quote",c\nx,d\n')
  with pytest.raises(UserError, match=r"q\.csv: malformed CSV record starting on line 6 "
                                      r"\(Quote inside a string has to be escaped"):
    corpus_lib.load_corpus(path, cache_dir=None, progress=False)
  assert corpus_lib.record_line(path, 0) == 2 and corpus_lib.record_line(path, 2) == 5
  # A blank line is an empty review, not an error.
  blank = _write(tmp_path, "b.csv", "review\nsome words\n\nmore words\n\n")
  assert corpus_lib.load_corpus(blank, cache_dir=None, progress=False).num_reviews == 4
