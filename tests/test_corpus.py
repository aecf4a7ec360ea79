"""Reading the CSV with tf.data, the token cache, and the corpus on the real IMDB file."""

import gzip
import os

import numpy as np
import pytest

from w2v_tf import corpus as corpus_lib
from w2v_tf.errors import UserError
from w2v_tf.sources import csv as csv_source

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
  reviews = [r.numpy().decode() for r in csv_source.read_rows(path)]
  assert reviews == ['He said "great", then left.<br /><br />Great acting, great film!',
                     "Plain words here", 'Commas, commas, and "quotes"']
  assert len(list(csv_source.read_rows(path, max_documents=2))) == 2


def test_tokens_types_and_offsets(tmp_path):
  path = _write(tmp_path, "r.csv", CSV)
  corpus = corpus_lib.load_corpus(path, stopwords=frozenset({"and", "then"}), cache_dir=None,
                                  progress=False)
  words = [[corpus.types[i] for i in corpus.token_ids[s:e]]
           for s, e in zip(corpus.document_offsets[:-1], corpus.document_offsets[1:])]
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
  corpus = corpus_lib.load_corpus(imdb_csv, max_documents=2000, stopwords=nltk_stopwords,
                                  cache_dir=str(tmp_path), progress=False)
  assert corpus.num_documents == 2000
  assert corpus.types[0] in ("movie", "film")
  assert 150_000 < corpus.num_tokens < 400_000
  assert "the" not in corpus.types[:1000] and "br" not in corpus.types[:1000]


def test_invalid_utf8_is_counted_and_strict_mode_refuses_even_from_the_cache(tmp_path, capsys):
  path = tmp_path / "latin1.csv"
  path.write_bytes(b'review\nplain words\n"caf\xe9 au lait"\nmore words\n"na\xefve ""quote"""\n')
  cache = str(tmp_path / "cache")
  corpus = corpus_lib.load_corpus(str(path), cache_dir=cache, progress=False)
  assert (corpus.invalid_utf8_documents, corpus.first_invalid_utf8_document) == (2, 1)
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
  assert csv_source.record_line(path, 0) == 2 and csv_source.record_line(path, 2) == 5
  # A blank line is an empty document, not an error.
  blank = _write(tmp_path, "b.csv", "review\nsome words\n\nmore words\n\n")
  assert corpus_lib.load_corpus(blank, cache_dir=None, progress=False).num_documents == 4


def write_key_inputs(folder):
  """The small inputs whose cache keys `test_cache_keys_are_those_of_earlier_versions` pins."""
  (folder / "r.csv").write_text('review,sentiment\n"The film was good, the end",positive\n'
                                '"A bad <br />film",negative\nplain words here,positive\n',
                                encoding="utf-8")
  (folder / "a.txt").write_text("one two three\nfour five\n", encoding="utf-8")
  # gzip.compress(b"six seven\n", mtime=0) on Python 3.11+; 3.10's header says OS 255 (unknown)
  # instead of 3 (Unix), other bytes and so another key.
  (folder / "b.txt.gz").write_bytes(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03+\xce\xacP(N-K\xcd"
                                    b"\xe3\x02\x00E\x0c\xbby\n\x00\x00\x00")
  return str(folder / "r.csv")


def test_cache_keys_are_those_of_earlier_versions(tmp_path):
  """The keys b9ce296 computed for these inputs: an existing cache (and a model dir's data
  fingerprint) must still be found."""
  csv_path = write_key_inputs(tmp_path)
  spec = corpus_lib.CorpusSpec
  stopwords = frozenset({"the", "a"})
  text = {"input_format": "text", "source": str(tmp_path / "*.txt*")}
  keys = {
      "csv": spec(source=csv_path, stopwords=stopwords),
      "csv, first 2": spec(source=csv_path, stopwords=stopwords, max_documents=2),
      "csv, no cleaning": spec(source=csv_path, cleaning="none", lowercase=True),
      "text file": spec(input_format="text", source=str(tmp_path / "a.txt"), cleaning="none"),
      "text glob": spec(**text, max_documents=3, stopwords=stopwords, max_document_tokens=7,
                        max_vocab_size=9)}
  assert {name: corpus_lib.spec_key(value) for name, value in keys.items()} == {
      "csv": "0d597e008bfe964303ee25dd", "csv, first 2": "920e24a3235a9bc6905cbfe4",
      "csv, no cleaning": "93b1569080bd2eac269024e6", "text file": "c96a711f3a3b91d2304c07e7",
      "text glob": "6250a25d62abd687df1f4c9f"}
  corpus_lib.load(keys["csv"], str(tmp_path / "cache"), progress=False)
  # v4: control characters separate words (the keys are unchanged, the folders' names not).
  assert os.listdir(tmp_path / "cache") == ["corpus-v4-0d597e008bfe964303ee25dd"]
