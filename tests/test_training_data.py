"""Plain-text corpora through `training_data`: a CSV, a text file, gzip shards in a folder and a
glob of shards give the same vocabulary, tokens and batches; documents cut at
--max_document_tokens; --cleaning=none; .bz2; --max_documents on lines."""

import bz2
import functools
import gzip
import os

import numpy as np
import pytest

from w2v_tf import corpus as corpus_lib
from w2v_tf import pipeline, training_data
from w2v_tf.sources import text as text_source
from w2v_tf.config import DataConfig

_REVIEWS = 800


def _lines(reviews):
  """One document a line: line breaks inside a review become spaces."""
  return [r.replace("\r\n", " ").replace("\n", " ").replace("\r", " ") for r in reviews]


def _text(lines):
  return ("\n".join(lines) + "\n").encode("utf-8")


@pytest.fixture(name="inputs", scope="module")
def fixture_inputs(tmp_path_factory):
  """The first IMDB reviews as (a) a CSV, (b) a .txt, (c) a folder of 3 gzip shards, (d) a glob
  of .txt shards; returns {name: path} and the lines."""
  from tests.conftest import IMDB_CSV  # pylint: disable=import-outside-toplevel
  if not os.path.exists(IMDB_CSV):
    pytest.skip(f"{IMDB_CSV} is absent (shared data not beside the repo)")
  import pandas as pd  # pylint: disable=import-outside-toplevel
  folder = tmp_path_factory.mktemp("sources")
  frame = pd.read_csv(IMDB_CSV, nrows=_REVIEWS)[["review"]]
  assert len(frame) == _REVIEWS
  frame.to_csv(folder / "slice.csv", index=False)
  lines = _lines(frame["review"].tolist())
  (folder / "reviews.txt").write_bytes(_text(lines))
  thirds = [lines[:267], lines[267:534], lines[534:]]
  os.mkdir(folder / "gz")
  os.mkdir(folder / "glob")
  for index, part in enumerate(thirds):
    (folder / "gz" / f"shard-{index}.txt.gz").write_bytes(gzip.compress(_text(part)))
    (folder / "glob" / f"part-{index}.txt").write_bytes(_text(part))
  (folder / "glob" / "README.md").write_text("not a shard\n", encoding="utf-8")
  (folder / "reviews.txt.bz2").write_bytes(bz2.compress(_text(lines)))
  paths = {"csv": str(folder / "slice.csv"), "txt": str(folder / "reviews.txt"),
           "gz": str(folder / "gz"), "glob": str(folder / "glob" / "part-*.txt"),
           "bz2": str(folder / "reviews.txt.bz2"), "folder": str(folder)}
  return paths, lines


def _data(inputs, name, cache, **overrides):
  paths, _ = inputs
  source = ({"train_csv": paths["csv"]} if name == "csv" else
            {"train_text": paths[name], "cleaning": "imdb"})
  return DataConfig(**{"stopwords": "none", "cache_dir": str(cache), "batch_size": 256,
                       "heldout_documents": 0.05, **source, **overrides})


def _seed_as_negatives(batch, seed):
  """A trivial `negatives` function: the batch's seed."""
  del batch
  return seed


def _epoch(prepared, data, epoch=0):
  """Every batch of an epoch as {key: numpy}, negatives drawn by a trivial function."""
  batches = training_data.epoch_batches(prepared, data, epoch, 0, _seed_as_negatives)
  return [{key: value.numpy() for key, value in batch.items()} for batch in batches]


@pytest.mark.slow  # ~12 s here: four cold passes and four epochs of ~420 batches
def test_csv_text_gzip_folder_and_glob_train_alike(inputs, tmp_path):
  """The issue's acceptance test: four forms of one corpus, one training input."""
  results = {}
  for name in ("csv", "txt", "gz", "glob"):
    data = _data(inputs, name, tmp_path / f"cache-{name}")
    prepared = training_data.prepare_data(data, num_sampled=16, progress=False)
    results[name] = (prepared, _epoch(prepared, data))
    assert len(os.listdir(tmp_path / f"cache-{name}")) == 1  # its own cache was written
  reference, batches = results["csv"]
  assert len(reference.vocab) > 1000 and reference.tokens.num_tokens > 100_000
  assert len(batches) > 100
  for name in ("txt", "gz", "glob"):
    prepared, other = results[name]
    assert prepared.vocab.words == reference.vocab.words, name
    np.testing.assert_array_equal(prepared.vocab.counts, reference.vocab.counts)
    assert prepared.corpus_tokens == reference.corpus_tokens
    assert prepared.tokens.num_tokens == reference.tokens.num_tokens, name
    np.testing.assert_array_equal(prepared.tokens.chunk_bounds, reference.tokens.chunk_bounds)
    np.testing.assert_array_equal(prepared.keep_probability, reference.keep_probability)
    assert prepared.estimated_steps_per_epoch == reference.estimated_steps_per_epoch
    assert prepared.heldout.keys() == reference.heldout.keys() and prepared.heldout
    for key, value in reference.heldout.items():
      np.testing.assert_array_equal(prepared.heldout[key], value)
    assert len(other) == len(batches), name
    for index, (ours, theirs) in enumerate(zip(other, batches)):
      for key in ("center", "contexts", "mask", "words", "negatives"):
        np.testing.assert_array_equal(ours[key], theirs[key], err_msg=f"{name} {index} {key}")


def test_the_cached_corpus_is_reused_for_text(inputs, tmp_path):
  data = _data(inputs, "gz", tmp_path / "cache")
  first = training_data.load_data_corpus(data, progress=False)
  original = corpus_lib.tokenize
  corpus_lib.tokenize = None  # a second load must not clean again
  try:
    again = training_data.load_data_corpus(data, progress=False)
  finally:
    corpus_lib.tokenize = original
  assert again.path == first.path and again.types == first.types


def _spec(spec_fields):
  """A CorpusSpec; {"text": path} and {"csv": path} name the input and its format."""
  fields = dict(spec_fields)
  for input_format in ("text", "csv"):
    if input_format in fields:
      fields.update(source=fields.pop(input_format), input_format=input_format)
  return corpus_lib.CorpusSpec(**fields)


def _corpus(spec_fields, tmp_path=None):
  return corpus_lib.load(_spec(spec_fields), str(tmp_path) if tmp_path else None,
                         progress=False)


def _same_corpus(one, other):
  assert one.types == other.types
  np.testing.assert_array_equal(one.type_counts, other.type_counts)
  np.testing.assert_array_equal(one.document_offsets, other.document_offsets)
  np.testing.assert_array_equal(one.token_ids, other.token_ids)


def test_bz2_equals_the_text_file(inputs):
  paths, _ = inputs
  plain = _corpus({"text": paths["txt"]})
  packed = _corpus({"text": paths["bz2"]})
  assert plain.num_documents == _REVIEWS
  _same_corpus(packed, plain)


def test_max_documents_on_text_counts_lines(inputs, tmp_path):
  paths, lines = inputs
  for count, name in ((37, "txt"), (300, "gz")):  # 300: past the first gzip shard
    from_csv = _corpus({"csv": paths["csv"], "max_documents": count})
    assert from_csv.num_documents == count
    _same_corpus(_corpus({"text": paths[name], "cleaning": "imdb", "max_documents": count}),
                 from_csv)
  # Blank lines are documents too; a line cut into documents counts once.
  path = tmp_path / "t.txt"
  path.write_bytes(b"a b c d e\n\nf g\nh i\n")
  short = _corpus({"text": str(path), "cleaning": "none", "max_documents": 3,
                   "max_document_tokens": 2})
  assert list(corpus_lib.documents(short)) == [["a", "b"], ["c", "d"], ["e"], [], ["f", "g"]]
  assert len(lines) == _REVIEWS


def _small_pieces(monkeypatch, piece_bytes):
  """Makes the corpus reader cut lines into pieces of about `piece_bytes` bytes."""
  monkeypatch.setattr(text_source, "read_pieces",
                      functools.partial(text_source.read_pieces, piece_bytes=piece_bytes))


def _long_lines(tmp_path):
  lines = [" ".join(f"t{i}" for i in range(50)), "s0 s1 s2", " ".join(f"u{i}" for i in range(20))]
  path = tmp_path / "long.txt"
  path.write_bytes(_text(lines))
  return str(path), lines


@pytest.mark.parametrize("piece_bytes", [text_source.PIECE_BYTES, 7])
def test_max_document_tokens_cuts_a_long_line(tmp_path, monkeypatch, piece_bytes):
  path, lines = _long_lines(tmp_path)
  _small_pieces(monkeypatch, piece_bytes)
  corpus = _corpus({"text": path, "cleaning": "none", "max_document_tokens": 8})
  assert np.diff(corpus.document_offsets).tolist() == [8, 8, 8, 8, 8, 8, 2, 3, 8, 8, 4]
  words = [w for line in lines for w in line.split()]
  assert [w for d in corpus_lib.documents(corpus) for w in d] == words
  whole = _corpus({"text": path, "cleaning": "none", "max_document_tokens": 0})
  assert np.diff(whole.document_offsets).tolist() == [50, 3, 20]  # pieces of a line: one document
  assert [w for d in corpus_lib.documents(whole) for w in d] == words


def test_windows_never_cross_a_cut(tmp_path, monkeypatch):
  path, _ = _long_lines(tmp_path)
  _small_pieces(monkeypatch, 16)
  data = DataConfig(train_text=path, cleaning="none", stopwords="none", cache_dir="",
                    max_document_tokens=8, min_count=1, subsample=0.0, heldout_documents=0,
                    window=5, batch_size=32)
  prepared = training_data.prepare_data(data, progress=False)
  words = prepared.vocab.words

  def segment(word_id):  # (line, document of the cut line)
    word = words[word_id]
    return word[0], int(word[1:]) // 8

  pairs = 0
  boundary_contexts = set()
  for epoch in range(3):
    for batch in pipeline.epoch_dataset(prepared.tokens, prepared.keep_probability, data.window,
                                        data.batch_size, data.seed, epoch):
      for center, contexts, mask in zip(batch["center"].numpy(), batch["contexts"].numpy(),
                                        batch["mask"].numpy()):
        for context in contexts[mask]:
          assert segment(context) == segment(center), (words[center], words[context])
          pairs += 1
          if words[center] == "t7":
            boundary_contexts.add(words[context])
  assert pairs > 100
  assert "t6" in boundary_contexts and "t8" not in boundary_contexts


def test_cleaning_none_keeps_tokens_as_they_are(tmp_path):
  path = tmp_path / "t.txt"
  path.write_bytes("Hello, World! <br />Don't STOP.\n\u00c9t\u00e9 NA\u00cfVE x-men 42 a\n"
                   .encode("utf-8"))
  lowered = _corpus({"text": str(path), "cleaning": "none", "lowercase": True})
  assert list(corpus_lib.documents(lowered)) == [
      ["hello,", "world!", "<br", "/>don't", "stop."], ["\u00e9t\u00e9", "na\u00efve", "x-men",
                                                        "42", "a"]]
  kept = _corpus({"text": str(path), "cleaning": "none"})
  assert list(corpus_lib.documents(kept)) == [
      ["Hello,", "World!", "<br", "/>Don't", "STOP."], ["\u00c9t\u00e9", "NA\u00cfVE", "x-men",
                                                        "42", "a"]]
  imdb = _corpus({"text": str(path), "cleaning": "imdb"})
  assert list(corpus_lib.documents(imdb)) == [["hello", "world", "dont", "stop"],
                                              ["\u00e9t\u00e9", "na\u00efve", "xmen"]]
  # Stopwords apply after lowercasing, to the tokens as they are.
  stopped = _corpus({"text": str(path), "cleaning": "none", "lowercase": True,
                     "stopwords": frozenset({"stop.", "a", "world"})})
  assert list(corpus_lib.documents(stopped))[0] == ["hello,", "world!", "<br", "/>don't"]


def test_cleaning_resolution_and_the_lowercase_check():
  stopwords = frozenset()
  assert corpus_lib.spec_of(DataConfig(train_text="x.txt"), stopwords).cleaning == "none"
  assert corpus_lib.spec_of(DataConfig(train_csv="x.csv"), stopwords).cleaning == "imdb"
  spec = corpus_lib.spec_of(DataConfig(train_csv="x.csv", train_text="y.txt", cleaning="imdb",
                                       max_document_tokens=7, max_vocab_size=9), stopwords)
  assert (spec.input_format, spec.source, spec.cleaning) == ("text", "y.txt", "imdb")
  assert (spec.max_document_tokens, spec.max_vocab_size) == (7, 9)
  lowercase = "--lowercase is for --cleaning=none"
  assert lowercase in " ".join(DataConfig(train_text="y", cleaning="imdb",
                                          lowercase=True).problems())
  assert lowercase in " ".join(DataConfig(lowercase=True).problems())  # a CSV: imdb
  assert not DataConfig(train_text="y", lowercase=True).problems()


def test_text_key_changes_with_content_and_options(inputs):
  paths, _ = inputs
  key = corpus_lib.spec_key(_spec({"text": paths["glob"]}))
  assert key == corpus_lib.spec_key(_spec({"text": paths["glob"]}))
  for change in ({"cleaning": "none"}, {"lowercase": True}, {"max_document_tokens": 9},
                 {"max_vocab_size": 99}, {"max_documents": 5}):
    assert corpus_lib.spec_key(_spec({"text": paths["glob"], **change})) != key
  # The same lines in one file: another key (the files' content and order make it).
  assert corpus_lib.spec_key(_spec({"text": paths["txt"]})) != key


def test_the_fingerprint_is_that_of_earlier_versions(tmp_path):
  """`prepare_data`'s fingerprint is the string b9ce296's `build.data_fingerprint` wrote for
  these inputs (key, chunk size, phrase settings): model dirs it wrote still resume."""
  from tests.test_corpus import write_key_inputs  # pylint: disable=import-outside-toplevel
  csv_path = write_key_inputs(tmp_path)
  small = {"stopwords": "none", "min_count": 1, "heldout_documents": 0, "cache_dir": ""}
  plain = training_data.prepare_data(DataConfig(train_csv=csv_path, **small), progress=False)
  assert plain.fingerprint == "28a0d6b5923302efb69ef0fc+chunks:131072"
  phrased = training_data.prepare_data(
      DataConfig(train_text=str(tmp_path / "*.txt*"), phrases=2, phrase_min_count=3,
                 phrase_threshold=7.5, phrase_scoring="word2phrase", **small), progress=False)
  assert phrased.fingerprint == ("ea473b564fc1ceda22a1ebbe+chunks:131072"
                                 "+phrases:2,3,7.5,word2phrase")


@pytest.mark.parametrize("cache", [False, True])
def test_a_run_checks_its_input_once(planted, tmp_path, monkeypatch, cache):
  """The input is checked (and hashed) once per run: the cache, the model dir's fingerprint
  and the cleaning pass share that check."""
  from tests.planted import small_experiment  # pylint: disable=import-outside-toplevel
  from w2v_tf.build import build_trainer  # pylint: disable=import-outside-toplevel
  calls = []

  def counted(spec):
    calls.append(spec.source)
    return check_input(spec)
  check_input = corpus_lib.check_input
  monkeypatch.setattr(corpus_lib, "check_input", counted)
  experiment = small_experiment(planted[0], tmp_path / "m", 1,
                                cache_dir=str(tmp_path / "cache") if cache else "")
  build_trainer(experiment, log=lambda _: None).run()
  assert calls == [planted[0]]
