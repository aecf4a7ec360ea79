"""The on-disk corpus cache (`w2v_tf.corpus_store`): writer and reader, pruning, publishing."""

import collections
import json
import os

import numpy as np
import pytest
import tensorflow as tf

from w2v_tf import corpus_store
from w2v_tf.errors import UserError


def _add_batch(writer, documents):
  """Adds a batch of documents (lists of str) as corpus.tokenize does; returns the writer."""
  counts = collections.Counter(word for document in documents for word in document)
  words = sorted(counts)
  encoded = np.array([w.encode("utf-8") for w in words] or [b""], dtype=object)[:len(words)]
  keys = corpus_store.fingerprints(tf.constant(encoded, tf.string)).numpy()
  ids = writer.add_words(keys, encoded, np.array([counts[w] for w in words], np.int64))
  index = dict(zip(words, ids.tolist()))
  writer.add_tokens(np.array([index[w] for d in documents for w in d], np.int32),
                    np.array([len(d) for d in documents], np.int64))
  return writer


def _keep_all(words):
  return tf.ones_like(words, tf.bool)


def _add_token_batch(writer, documents, keep_words=_keep_all, found=None):
  """Adds a batch token by token (`add_batch`, the corpus pass's way); returns the writer.

  `found`: `lookup_tokens` of the batch, made earlier (default: now)."""
  flat = [w.encode("utf-8") for d in documents for w in d]
  tokens = tf.constant(flat, tf.string, [len(flat)])
  keys = corpus_store.fingerprints(tokens).numpy()
  checks = corpus_store.check_keys(tokens)
  if found is None:
    found = corpus_store.lookup_tokens(writer.table, tf.constant(keys), checks)
  ids, kept = writer.add_batch(tokens, keys, checks.numpy(), found[0].numpy(), int(found[1]),
                               keep_words)
  kept_before = np.concatenate([[0], np.cumsum(kept)])
  ends = np.cumsum([len(d) for d in documents]).astype(int)
  writer.add_tokens(ids, np.diff(np.concatenate([[0], kept_before[ends]])))
  return writer


ADDERS = {"words": _add_batch, "tokens": _add_token_batch}


def _write(path, documents, max_types=0, batch_documents=1, meta=None, adder="words"):
  writer = corpus_store.CorpusWriter(str(path), max_types)
  for start in range(0, len(documents), batch_documents):
    ADDERS[adder](writer, documents[start:start + batch_documents])
  return writer, writer.finish(meta or {})


def _documents(corpus, pruned="<pruned>"):
  types = np.array(corpus.types + (pruned,), dtype=object)
  words = types[corpus.token_ids]
  offsets = corpus.document_offsets
  return [list(words[start:end]) for start, end in zip(offsets[:-1], offsets[1:])]


DOCUMENTS = [["the", "film", "was", "great"], [], ["great", "acting", "the", "the"],
             ["zebra"], ["film", "film", "the", "acting", "great", "great"], [],
             ["été", "naïve", "the"], ["a"] * 7, []]


@pytest.mark.parametrize("adder", ADDERS)
@pytest.mark.parametrize("batch_documents", [1, 2, 100])
def test_round_trip(tmp_path, batch_documents, adder):
  writer, corpus = _write(tmp_path / "corpus-x", DOCUMENTS, batch_documents=batch_documents,
                          adder=adder, meta={"invalid_utf8_reviews": 2, "first_invalid_utf8_review": 5,
                                "first_invalid_utf8_location": "f.txt line 6"})
  counts = collections.Counter(w for d in DOCUMENTS for w in d)
  expected = sorted(counts, key=lambda w: (-counts[w], w))
  assert corpus.types == tuple(expected)
  assert corpus.types[:4] == ("a", "the", "great", "film")  # 7, 6, 5 ... ; ties by word
  assert corpus.type_counts.dtype == np.int64
  assert corpus.type_counts.tolist() == [counts[w] for w in expected]
  lengths = [len(d) for d in DOCUMENTS]
  assert corpus.document_offsets.tolist() == np.concatenate([[0], np.cumsum(lengths)]).tolist()
  assert corpus.num_documents == len(DOCUMENTS) and corpus.num_tokens == sum(lengths)
  assert corpus.token_ids.dtype == np.int32
  assert _documents(corpus) == DOCUMENTS
  assert corpus.pruned_tokens == 0 and corpus.meta["prune_events"] == 0
  assert corpus.invalid_utf8_documents == 2 and corpus.first_invalid_utf8_document == 5
  assert corpus.first_invalid_utf8_location == "f.txt line 6"
  assert writer.num_tokens == corpus.num_tokens and writer.num_documents == len(DOCUMENTS)
  np.testing.assert_array_equal(corpus.read_tokens(3, 9), corpus.token_ids[3:9])
  # A second reader of the same folder sees the same corpus.
  again = corpus_store.StoredCorpus(corpus.path)
  assert again.types == corpus.types and again.meta == corpus.meta
  np.testing.assert_array_equal(again.token_ids, corpus.token_ids)


def test_word_counts_add_up_across_batches(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"))
  _add_batch(writer, [["b", "a"], ["b"]])
  encoded = np.array([b"a", b"c"], dtype=object)
  ids = writer.add_words(corpus_store.fingerprints(tf.constant(encoded)).numpy(), encoded,
                         np.array([4, 1]))
  assert ids.dtype == np.int32 and writer.num_types == 3
  writer.add_tokens(np.array([ids[0]] * 4 + [ids[1]], np.int32), [5])
  corpus = writer.finish({})
  assert corpus.types == ("a", "b", "c") and corpus.type_counts.tolist() == [5, 2, 1]
  assert _documents(corpus) == [["b", "a"], ["b"], ["a"] * 4 + ["c"]]


@pytest.mark.parametrize("block_tokens", [1, 3, 5, 8, 1000])
def test_blocks_cover_whole_documents(tmp_path, block_tokens):
  _, corpus = _write(tmp_path / "corpus-x", DOCUMENTS, batch_documents=3)
  next_document, tokens = 0, []
  for first, token_ids, offsets in corpus.blocks(block_tokens):
    assert first == next_document
    count = len(offsets) - 1
    assert count >= 1 and offsets[0] == 0 and offsets.dtype == np.int64
    absolute = corpus.document_offsets[first:first + count + 1]
    np.testing.assert_array_equal(offsets, absolute - absolute[0])  # whole documents only
    assert len(token_ids) == offsets[-1]
    assert len(token_ids) <= block_tokens or count == 1  # a longer document is a block alone
    tokens.append(token_ids)
    next_document = first + count
  assert next_document == corpus.num_documents
  np.testing.assert_array_equal(np.concatenate(tokens), corpus.token_ids)


def _zipf_documents(count=400, vocabulary=600, seed=0):
  rng = np.random.default_rng(seed)
  words = np.array([f"w{i}" for i in range(vocabulary)])
  probability = 1.0 / np.arange(1, vocabulary + 1)
  probability /= probability.sum()
  return [[str(w) for w in rng.choice(words, size=int(rng.integers(3, 25)), p=probability)]
          for _ in range(count)]


@pytest.mark.parametrize("adder", ADDERS)
@pytest.mark.parametrize("max_types", [40, 100, 250])
def test_pruning_matches_gensim_one_document_per_batch(tmp_path, max_types, adder):
  """gensim's scan_vocab checks the table after each sentence; one batch = one document."""
  word2vec = pytest.importorskip("gensim.models.word2vec")
  documents = _zipf_documents()
  model = word2vec.Word2Vec(min_count=1, max_vocab_size=max_types)
  model.scan_vocab(corpus_iterable=documents)
  expected = dict(model.raw_vocab)
  writer, corpus = _write(tmp_path / "corpus-x", documents, max_types=max_types, adder=adder)
  assert writer.prune_events >= 3  # pruning happened several times
  assert corpus.meta["prune_events"] == writer.prune_events
  assert writer.pruned_words > 0
  assert dict(zip(corpus.types, corpus.type_counts.tolist())) == expected


@pytest.mark.parametrize("max_types", [40, 250])
def test_pruned_tokens_read_back_as_the_id_u(tmp_path, max_types):
  """Each surviving word holds exactly its last `count` occurrences; every other token is U."""
  documents = _zipf_documents(seed=1)
  writer, corpus = _write(tmp_path / "corpus-x", documents, max_types=max_types)
  assert writer.prune_events >= 1
  unknown = len(corpus.types)
  ids = corpus.token_ids
  assert ids.min() >= 0 and ids.max() == unknown
  assert corpus.pruned_tokens == int(np.count_nonzero(ids == unknown)) > 0
  assert corpus.pruned_tokens + int(corpus.type_counts.sum()) == corpus.num_tokens
  flat = [w for d in documents for w in d]
  expected = np.full(len(flat), unknown, np.int32)
  for rank, (word, count) in enumerate(zip(corpus.types, corpus.type_counts)):
    positions = [i for i, w in enumerate(flat) if w == word]
    expected[positions[-count:]] = rank
  np.testing.assert_array_equal(ids, expected)
  # The documents keep their lengths: a pruned token is still a position.
  assert np.diff(corpus.document_offsets).tolist() == [len(d) for d in documents]


def test_the_pruned_id_given_to_add_tokens_becomes_u(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"))
  encoded = np.array([b"kept", b"other"], dtype=object)
  ids = writer.add_words(corpus_store.fingerprints(tf.constant(encoded)).numpy(), encoded,
                         np.array([2, 1]))
  writer.add_tokens(np.array([ids[0], corpus_store.PRUNED_ID, ids[1], ids[0],
                              corpus_store.PRUNED_ID], np.int32), [3, 2])
  corpus = writer.finish({})
  assert corpus.types == ("kept", "other")
  assert corpus.token_ids.tolist() == [0, 2, 1, 0, 2] and corpus.pruned_tokens == 2


def test_a_fingerprint_clash_is_refused(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"))
  writer.add_words(np.array([12345], np.int64), np.array([b"alpha"], dtype=object), [1])
  # The same word under its key again is fine; another word under that key is a clash.
  writer.add_words(np.array([12345, 7], np.int64), np.array([b"alpha", b"gamma"], dtype=object),
                   [1, 1])
  with pytest.raises(UserError, match=r"the words b'beta' and b'alpha' share a 64-bit "
                                      r"fingerprint") as error:
    writer.add_words(np.array([99, 12345], np.int64), np.array([b"delta", b"beta"], dtype=object),
                     [1, 1])
  assert "\n" not in str(error.value)
  writer.abandon()
  assert not os.listdir(tmp_path)


def test_the_word_filter_runs_once_per_new_word_and_its_words_never_count(tmp_path):
  asked = []

  def no_stopwords(words):
    asked.extend(words.numpy().tolist())
    return tf.not_equal(words, "the")
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"))
  _add_token_batch(writer, [["the", "film", "the"], ["film", "the"]], no_stopwords)
  _add_token_batch(writer, [["the", "plot"], []], no_stopwords)
  assert sorted(asked) == [b"film", b"plot", b"the"]  # each word once, when first seen
  assert writer.num_types == 2 and writer.num_tokens == 3
  corpus = writer.finish({})
  assert corpus.types == ("film", "plot") and corpus.type_counts.tolist() == [2, 1]
  assert _documents(corpus) == [["film"], ["film"], ["plot"], []]


def test_a_lookup_made_before_earlier_batches_added_their_words_is_resolved(tmp_path):
  """tf.data looks a batch up ahead of the writer: a word an earlier batch then added (or a
  prune then removed) is looked up again, never given a second id."""
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"), max_types=2)
  early = tf.constant([b"rare", b"film", b"plot"])

  def look_up():
    return corpus_store.lookup_tokens(writer.table, corpus_store.fingerprints(early),
                                      corpus_store.check_keys(early))
  found = look_up()
  assert (found[0].numpy() == -1).all() and int(found[1]) == -1  # all unknown now
  _add_token_batch(writer, [["film", "film", "plot", "plot"]])
  _add_token_batch(writer, [["rare"]])  # 3 words > 2: a prune below count 1 drops nothing
  stale = look_up()  # all three known
  _add_token_batch(writer, [["odd"]])  # the second prune drops "rare" and "odd" (count 1 < 2)
  assert writer.prune_events == 2 and writer.num_types == 2
  writer.max_types = 0  # no more pruning
  _add_token_batch(writer, [["rare", "film", "plot"]], found=found)
  _add_token_batch(writer, [["rare", "film", "plot"]], found=stale)
  corpus = writer.finish({})
  assert corpus.types == ("film", "plot", "rare")
  assert corpus.type_counts.tolist() == [4, 4, 2]


def test_a_fingerprint_clash_among_tokens_is_refused(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "corpus-x"))

  def add(words, keys):
    tokens = tf.constant(words)
    keys = np.array(keys, np.int64)
    checks = corpus_store.check_keys(tokens)
    ids, clash = corpus_store.lookup_tokens(writer.table, tf.constant(keys), checks)
    return writer.add_batch(tokens, keys, checks.numpy(), ids.numpy(), int(clash), _keep_all)
  add([b"alpha", b"alpha", b"gamma"], [5, 5, 7])
  with pytest.raises(UserError, match=r"the words b'beta' and b'alpha' share a 64-bit "):
    add([b"delta", b"beta"], [9, 5])  # beta under alpha's key, seen in an earlier batch
  with pytest.raises(UserError, match=r"the words b'zeta' and b'eta' share a 64-bit "):
    add([b"eta", b"zeta"], [11, 11])  # two new words under one key in one batch
  writer.abandon()


@pytest.mark.parametrize("with_nul", [False, True])
def test_types_are_ranked_by_count_then_by_their_code_points(with_nul):
  rng = np.random.default_rng(3)
  letters = ["a", "b", "é", "z", "ß", "日"] + (["\0"] if with_nul else [])
  words = sorted({"".join(rng.choice(letters, size=int(rng.integers(1, 6))))
                  for _ in range(3000)})
  if with_nul:  # equal as numpy's fixed-width bytes: they must sort as objects
    words = [w for w in words if w not in ("ab", "ab\0")] + ["ab\0", "ab"]
  counts = rng.integers(1, 4, size=len(words)).astype(np.int64)
  counts[-2:] = 2
  order = corpus_store._rank_order(np.array([w.encode() for w in words], dtype=object), counts)
  expected = sorted(range(len(words)), key=lambda i: (-counts[i], words[i]))
  assert order.tolist() == expected


def test_fingerprints_are_nonnegative_int64():
  keys = corpus_store.fingerprints(tf.constant(["a", "b", "été", ""])).numpy()
  assert keys.dtype == np.int64 and (keys >= 0).all() and len(set(keys.tolist())) == 4
  again = corpus_store.fingerprints(tf.constant(["été"])).numpy()
  assert again[0] == keys[2]  # a word's key does not depend on its batch


def test_abandon_removes_the_work_folder(tmp_path):
  writer = corpus_store.CorpusWriter(str(tmp_path / "cache" / "corpus-x"))
  _add_batch(writer, DOCUMENTS[:3])
  assert os.path.basename(writer.work_path).startswith("corpus-x.tmp-")
  assert os.path.isdir(writer.work_path)
  writer.abandon()
  assert os.listdir(tmp_path / "cache") == []
  writer.abandon()  # twice is harmless


def test_finish_publishes_the_folder_at_once(tmp_path):
  cache = tmp_path / "cache"
  final = cache / "corpus-x"
  writer = corpus_store.CorpusWriter(str(final))
  _add_batch(writer, DOCUMENTS)
  assert not final.exists()  # nothing at the final path while writing
  assert [name.startswith("corpus-x.tmp-") for name in os.listdir(cache)] == [True]
  corpus = writer.finish({"seconds": 1.5})
  assert os.listdir(cache) == ["corpus-x"]  # no .tmp- folder left
  assert sorted(os.listdir(final)) == ["counts.i64", "manifest.json", "meta.json", "offsets.i64",
                                       "tokens.i32", "types.txt"]
  assert corpus.path == str(final)
  meta = json.loads((final / "meta.json").read_text(encoding="utf-8"))
  assert meta["seconds"] == 1.5 and meta["num_tokens"] == corpus.num_tokens
  assert meta["num_documents"] == len(DOCUMENTS)
  corpus_store.StoredCorpus(str(final))  # passes its checks
  # A valid folder already there (another builder's, perhaps open in a reader) is kept.
  inode = os.stat(final).st_ino
  writer = corpus_store.CorpusWriter(str(final))
  _add_batch(writer, [["only", "this"]])
  kept = writer.finish({})
  assert os.listdir(cache) == ["corpus-x"] and os.stat(final).st_ino == inode
  assert _documents(kept) == _documents(corpus)
  # A damaged one is replaced.
  os.truncate(final / "tokens.i32", 4)
  writer = corpus_store.CorpusWriter(str(final))
  _add_batch(writer, [["only", "this"]])
  replaced = writer.finish({})
  assert os.listdir(cache) == ["corpus-x"]
  assert _documents(replaced) == [["only", "this"]]


def test_a_damaged_cache_is_refused(tmp_path):
  _, corpus = _write(tmp_path / "corpus-x", DOCUMENTS)
  tokens = os.path.join(corpus.path, "tokens.i32")
  os.truncate(tokens, os.path.getsize(tokens) - 4)
  with pytest.raises(corpus_store.CacheError, match="disagree on the token count"):
    corpus_store.StoredCorpus(corpus.path)
  meta = os.path.join(corpus.path, "meta.json")
  with open(meta, "w", encoding="utf-8") as f:
    json.dump({"version": corpus_store.FORMAT_VERSION + 1, "num_tokens": 1,
               "num_documents": 1}, f)
  with pytest.raises(corpus_store.CacheError, match="cache format"):
    corpus_store.StoredCorpus(corpus.path)


def test_publishing_the_same_key_never_pulls_the_cache_from_under_a_reader(tmp_path):
  """Builders publishing a key that a reader has open (threads here; the trainer and a second
  run alike): the reader keeps reading the same folder, every builder gets a valid corpus.
  Removing the folder before the rename, as finish did, made the reader's next read fail."""
  import threading  # pylint: disable=import-outside-toplevel
  final = tmp_path / "cache" / "corpus-x"
  _, first = _write(final, DOCUMENTS)
  inode = os.stat(final).st_ino
  expected = _documents(first)
  reader = corpus_store.StoredCorpus(str(final))
  errors, stop = [], threading.Event()

  def read():
    try:
      while not stop.is_set():
        assert _documents(reader) == expected
        for _ in reader.blocks(block_tokens=3):
          pass
    except Exception as e:  # pylint: disable=broad-except
      errors.append(e)
  thread = threading.Thread(target=read)
  thread.start()
  try:
    for _ in range(5):
      _, published = _write(final, DOCUMENTS)
      assert _documents(published) == expected
  finally:
    stop.set()
    thread.join()
  assert not errors, errors
  assert os.stat(final).st_ino == inode
  assert os.listdir(tmp_path / "cache") == ["corpus-x"]


def test_temp_folders_of_dead_builders_are_removed_by_the_next_builder(tmp_path):
  import subprocess  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel
  from w2v_tf import fileio  # pylint: disable=import-outside-toplevel
  cache = tmp_path / "cache"
  cache.mkdir()
  dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                        capture_output=True, text=True, check=True).stdout.strip()
  host = fileio.owner_tag().split("@", 1)[1]
  stale = cache / f"corpus-y.tmp-{dead}@{host}.abc123"  # a builder killed by SIGKILL
  alive = cache / f"corpus-z.tmp-{fileio.owner_tag()}.def456"  # a live one (this process)
  other_host = cache / f"corpus-w.tmp-{dead}@elsewhere.ghi789"  # cannot be checked from here
  old_style = cache / "corpus-v.tmp-jkl012"  # an earlier version's: no owner recorded
  for folder in (stale, alive, other_host, old_style):
    folder.mkdir()
    (folder / "tokens.i32").write_bytes(b"\0" * 64)
  _write(cache / "corpus-x", DOCUMENTS)
  assert sorted(os.listdir(cache)) == sorted(["corpus-x", alive.name, other_host.name,
                                              old_style.name])
