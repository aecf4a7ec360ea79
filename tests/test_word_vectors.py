"""Tests for w2v_tf/word_vectors.py and the formats of w2v_tf/vector_files.py, against gensim."""

import gzip
import os

import numpy as np
import pytest

from w2v_tf.word_vectors import WordVectors, unit_rows

gensim_models = pytest.importorskip("gensim.models")
KeyedVectors = gensim_models.KeyedVectors


def _clustered(num_words=400, dim=24, clusters=12, seed=0):
  """Vectors with the structure trained ones have: topical clusters, frequency-dependent norms.

  Returns:
    (words [V], float32 vectors [V, d], int64 counts [V] non-increasing).
  """
  rng = np.random.default_rng(seed)
  centers = rng.standard_normal((clusters, dim))
  topic = rng.integers(0, clusters, num_words)
  vectors = centers[topic] + 0.6 * rng.standard_normal((num_words, dim))
  vectors *= np.linspace(2.0, 0.5, num_words)[:, None]  # frequent words have longer vectors
  counts = np.sort(rng.zipf(1.3, num_words).astype(np.int64) + 5)[::-1]
  words = [f"w{i}" for i in range(num_words - 4)] + ["café", "naïve", "日本", "König"]
  return words, vectors.astype(np.float32), counts


@pytest.fixture(name="toy")
def fixture_toy():
  return WordVectors(*_clustered())


def _gensim(word_vectors):
  kv = KeyedVectors(word_vectors.dim)
  kv.add_vectors(list(word_vectors.words), word_vectors.vectors)
  return kv


# --- Files, both directions against gensim ------------------------------------------------------


def test_binary_we_write_gensim_reads_exactly(tmp_path, toy):
  path = tmp_path / "v.bin"
  toy.save(path, binary=True)
  kv = KeyedVectors.load_word2vec_format(os.fspath(path), binary=True)
  assert kv.index_to_key == list(toy.words)
  np.testing.assert_array_equal(kv.vectors, toy.vectors)


def test_binary_gensim_writes_we_read_exactly(tmp_path, toy):
  path = tmp_path / "g.bin"
  _gensim(toy).save_word2vec_format(os.fspath(path), binary=True)
  got = WordVectors.load(path)
  assert got.words == toy.words and got.counts is None
  assert got.vectors.dtype == np.float32
  np.testing.assert_array_equal(got.vectors, toy.vectors)


def test_text_we_write_gensim_reads(tmp_path, toy):
  toy.save(tmp_path / "v.txt")  # the C tool's %.6f
  lines = (tmp_path / "v.txt").read_text(encoding="utf-8").splitlines()
  assert lines[0] == f"{len(toy)} {toy.dim}"
  assert lines[1].split(" ")[1] == "%.6f" % toy.vectors[0, 0]
  kv = KeyedVectors.load_word2vec_format(os.fspath(tmp_path / "v.txt"), binary=False)
  assert kv.index_to_key == list(toy.words)
  np.testing.assert_allclose(kv.vectors, toy.vectors, atol=1.5e-6)  # %.6f, then float32
  assert np.abs(kv.vectors - toy.vectors).max() > 0  # rounded, as the C tool writes
  toy.save(tmp_path / "exact.txt", float_format="%.9g")
  kv = KeyedVectors.load_word2vec_format(os.fspath(tmp_path / "exact.txt"), binary=False)
  np.testing.assert_array_equal(kv.vectors, toy.vectors)


def test_text_gensim_writes_we_read(tmp_path, toy):
  _gensim(toy).save_word2vec_format(os.fspath(tmp_path / "g.txt"), binary=False)
  got = WordVectors.load(tmp_path / "g.txt")
  assert got.words == toy.words
  np.testing.assert_allclose(got.vectors, toy.vectors, rtol=1e-6)


def test_glove_text(tmp_path, toy):
  """GloVe's layout: no header, `word v1 ... vd`; gensim reads it with no_header=True."""
  _gensim(toy).save_word2vec_format(os.fspath(tmp_path / "g.glove"), write_header=False)
  got = WordVectors.load(tmp_path / "g.glove")
  assert got.words == toy.words
  np.testing.assert_allclose(got.vectors, toy.vectors, rtol=1e-6)
  rows = "the 0.418 0.24968 -0.41242\n, 0.013441 0.23682 -0.16899\nmovie -1.5 2 3e-2\n"
  with gzip.open(tmp_path / "glove.6B.3d.txt.gz", "wt", encoding="utf-8") as f:
    f.write(rows)
  got = WordVectors.load(tmp_path / "glove.6B.3d.txt.gz")
  kv = KeyedVectors.load_word2vec_format(os.fspath(tmp_path / "glove.6B.3d.txt.gz"),
                                         binary=False, no_header=True)
  assert got.words == ("the", ",", "movie") == tuple(kv.index_to_key)
  np.testing.assert_array_equal(got.vectors, kv.vectors)
  np.testing.assert_array_equal(got.vectors[2], np.float32([-1.5, 2, 0.03]))


# --- The object -----------------------------------------------------------------------------------


def test_index_counts_and_lookup():
  words, vectors, counts = _clustered(num_words=10, dim=3)
  wv = WordVectors(words, vectors, counts)
  assert len(wv) == 10 and wv.dim == 3 and wv.words == tuple(words)
  assert wv.index["café"] == 6 and wv.row("König") == 9 and "naïve" in wv and "zz" not in wv
  np.testing.assert_array_equal(wv["日本"], vectors[8])
  assert wv.counts.dtype == np.int64 and wv.counts.tolist() == counts.tolist()
  assert WordVectors(words, vectors).counts is None
  with pytest.raises(KeyError):
    wv.row("zz")
  with pytest.raises(ValueError, match="10 words but 9 vector rows"):
    WordVectors(words, vectors[:9])
  with pytest.raises(ValueError, match="10 words, 4 counts, 10 vector rows"):
    WordVectors(words, vectors, counts[:4])
  with pytest.raises(ValueError, match="'w1' appears more than once"):
    WordVectors(["w0", "w1", "w1"], vectors[:3])


def test_unit_vectors_cached_and_zero_rows_stay_zero():
  vectors = np.array([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]], dtype=np.float32)
  wv = WordVectors(["a", "b", "c"], vectors)
  unit = wv.unit_vectors
  np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]], rtol=1e-6)
  assert not np.isnan(unit).any()
  assert wv.unit_vectors is unit  # computed once
  np.testing.assert_array_equal(unit_rows(vectors), unit)
  assert wv.most_similar("a", top_k=2) == [("b", 0.0), ("c", pytest.approx(-0.6))]


def test_restrict_keeps_the_most_frequent_rows(toy):
  small = toy.restrict(50)
  assert small.words == toy.words[:50] and len(small) == 50
  np.testing.assert_array_equal(small.vectors, toy.vectors[:50])
  assert np.shares_memory(small.vectors, toy.vectors)  # a view, not a copy
  assert small.counts.tolist() == toy.counts[:50].tolist()
  assert toy.restrict(0) is toy and toy.restrict(len(toy) + 5) is toy
  unit = toy.unit_vectors
  assert np.shares_memory(toy.restrict(7).unit_vectors, unit)
  assert "w60" not in small and small.row("w49") == 49


# --- Neighbours against gensim -------------------------------------------------------------------


@pytest.mark.parametrize("restrict", [0, 100])
def test_most_similar_matches_gensim(toy, restrict):
  kv = _gensim(toy)
  for word in ("w0", "w3", "w150", "König"):
    ours = toy.most_similar(word, top_k=10, restrict=restrict)
    theirs = kv.most_similar(word, topn=10, restrict_vocab=restrict or None)
    assert [w for w, _ in ours] == [w for w, _ in theirs], word
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
    assert word not in dict(ours)
    if restrict:
      assert all(toy.row(w) < restrict for w, _ in ours)


def test_most_similar_of_a_vector_matches_gensim(toy):
  kv = _gensim(toy)
  query = toy["w5"] - toy["w9"] + 0.5 * toy["w20"]
  ours = toy.most_similar(query, top_k=8)
  theirs = kv.most_similar(positive=[query], topn=8)
  assert [w for w, _ in ours] == [w for w, _ in theirs]
  np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
  with pytest.raises(ValueError, match="3 values, expected 24"):
    toy.most_similar(np.ones(3))


def test_nearest_batch_is_most_similar_per_row(toy):
  ids = np.array([0, 7, 42, 399])
  batch = toy.nearest(ids, top_k=6)
  assert len(batch) == 4
  unit = toy.unit_vectors
  for i, answers in zip(ids, batch):
    single = toy.most_similar(toy.words[i], top_k=6)
    assert [w for w, _ in answers] == [w for w, _ in single]
    np.testing.assert_allclose([s for _, s in answers], [s for _, s in single], atol=1e-6)
    assert toy.words[i] not in dict(answers) and len(answers) == 6
    cosines = unit @ unit[i]
    cosines[i] = -np.inf
    best = np.argsort(-cosines)[:6]
    assert [w for w, _ in answers] == [toy.words[j] for j in best]
    np.testing.assert_allclose([s for _, s in answers], cosines[best], atol=1e-6)
  assert toy.nearest(np.array([3]), top_k=2, restrict=10)[0][0][0] in toy.words[:10]


@pytest.mark.parametrize("method", ["3cosadd", "3cosmul"])
def test_analogy_matches_gensim(toy, method):
  kv = _gensim(toy)
  for a, b, c in (("w1", "w2", "w3"), ("w10", "w200", "w33")):
    ours = toy.analogy(a, b, c, top_k=5, method=method)
    if method == "3cosadd":
      theirs = kv.most_similar(positive=[b, c], negative=[a], topn=5)
    else:
      theirs = kv.most_similar_cosmul(positive=[b, c], negative=[a], topn=5)
    assert [w for w, _ in ours] == [w for w, _ in theirs]
    np.testing.assert_allclose([s for _, s in ours], [s for _, s in theirs], atol=1e-5)
  with pytest.raises(ValueError, match="method"):
    toy.analogy("w1", "w2", "w3", method="3cosavg")


def test_ties_go_to_the_more_frequent_row_even_at_the_cut():
  """Rows tied at the top_k boundary: the lower rows win, as with a stable full sort."""
  rng = np.random.default_rng(3)
  vectors = rng.standard_normal((30, 4)).astype(np.float32)
  axis = np.float32([1, 0, 0, 0])
  for row, scale in ((0, 1), (4, 2), (11, 0.5), (17, 3), (25, 7)):
    vectors[row] = scale * axis  # unit vector exactly e0: cosines of exactly 1 with row 0
  vectors[[2, 8]] = -axis  # cosine exactly -1
  wv = WordVectors([f"w{i}" for i in range(30)], vectors)
  assert wv.most_similar("w0", top_k=2) == [("w4", 1.0), ("w11", 1.0)]
  assert [w for w, _ in wv.most_similar("w0", top_k=3, exclude=["w11"])] == ["w4", "w17", "w25"]
  scores = wv.unit_vectors @ wv.unit_vectors[0]
  expected = [i for i in np.argsort(-scores, kind="stable") if i != 0][:7]
  assert [wv.row(w) for w, _ in wv.most_similar("w0", top_k=7)] == expected
  assert wv.most_similar("w0", top_k=29)[-2:] == [("w2", -1.0), ("w8", -1.0)]
  assert len(wv.most_similar("w0", top_k=100)) == 29
  assert [w for w, _ in wv.nearest(np.array([17]), top_k=3)[0]] == ["w0", "w4", "w11"]
