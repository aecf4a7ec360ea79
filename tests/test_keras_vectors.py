"""Tests for w2v_tf/keras_vectors.py: the Keras layers, the string -> vector model, both formats.

The round trips load the exported models in a fresh process that can import TensorFlow and
Keras but not this project, and compare every word's vector with vectors.bin's.
"""

import csv
import gzip
import itertools
import os
import subprocess
import sys

import numpy as np
import pytest

from w2v_tf import keras_vectors
from w2v_tf.errors import UserError
from w2v_tf.vocab import Vocab
from w2v_tf.word_vectors import WordVectors

keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# "[UNK]" is Keras' default OOV token: a vocabulary holding it must still map it to its own row.
WORDS = ["the", "movie", "café", "naïve", "日本", "[UNK]"] + [f"w{i}" for i in range(44)]


@pytest.fixture(name="word_vectors")
def fixture_word_vectors():
  rng = np.random.default_rng(0)
  vectors = rng.normal(scale=0.5, size=(len(WORDS), 7)).astype(np.float32)  # [V, d]
  return WordVectors(WORDS, vectors, np.arange(len(WORDS), 0, -1))


def _lookup_and_embed(lookup, embedding, tokens):
  ids = lookup(tf.constant(tokens))
  return ids.numpy(), embedding(ids).numpy(), embedding.compute_mask(ids)


def _check_layers(lookup, embedding, word_vectors, mask_zero, trainable):
  """Every word maps to its vector, an unknown word to the zero OOV row, "" to padding."""
  tokens = [list(word_vectors.words), ["nope"] * len(word_vectors)]
  ids, vectors, mask = _lookup_and_embed(lookup, embedding, tokens)
  first = 2 if mask_zero else 1
  assert ids[0].tolist() == list(range(first, first + len(word_vectors)))
  assert set(ids[1].tolist()) == {keras_vectors.oov_index(mask_zero)}
  np.testing.assert_array_equal(vectors[0], word_vectors.vectors)
  np.testing.assert_array_equal(vectors[1], 0.0)
  assert embedding.trainable is trainable
  assert len(embedding.trainable_weights) == int(trainable)
  if mask_zero:
    ids, vectors, mask = _lookup_and_embed(lookup, embedding, [["the", "nope", ""]])
    assert ids.tolist() == [[2, 1, 0]]
    assert mask.numpy().tolist() == [[True, True, False]]
    np.testing.assert_array_equal(vectors[0, 2], 0.0)
  else:
    assert mask is None
    assert lookup(tf.constant([""])).numpy().tolist() == [0]  # "" is just an unknown word


def _one_sgd_step(lookup, embedding):
  """The embedding table after one SGD step of a tiny model on two reviews."""
  ids = lookup(tf.constant([["the", "movie", ""], ["café", "", ""]])).numpy()
  inputs = keras.Input(shape=(None,), dtype="int64")
  outputs = keras.layers.Dense(1)(keras.layers.GlobalAveragePooling1D()(embedding(inputs)))
  model = keras.Model(inputs, outputs)
  model.compile(optimizer=keras.optimizers.SGD(1.0), loss="mse")
  model.train_on_batch(ids, np.array([[5.0], [-5.0]], np.float32))
  return embedding.get_weights()[0]


def test_layers_from_a_gensim_file(tmp_path, word_vectors):
  keyed_vectors = pytest.importorskip("gensim.models.keyedvectors")
  kv = keyed_vectors.KeyedVectors(vector_size=word_vectors.dim)
  kv.add_vectors(list(word_vectors.words), word_vectors.vectors)
  path = tmp_path / "gensim.bin"
  kv.save_word2vec_format(os.fspath(path), binary=True)
  for mask_zero in (False, True):
    for trainable in (False, True):
      lookup, embedding = keras_vectors.embedding_layers(path, trainable=trainable,
                                                         mask_zero=mask_zero)
      _check_layers(lookup, embedding, word_vectors, mask_zero, trainable)
      assert embedding.mask_zero is mask_zero


@pytest.mark.parametrize("trainable", [False, True])
def test_layers_from_a_model_dir_train_only_when_trainable(tmp_path, word_vectors, trainable):
  word_vectors.save(tmp_path / "vectors.bin", binary=True)
  Vocab(word_vectors.words, word_vectors.counts).save_tsv(tmp_path / "vocab.tsv")
  lookup, embedding = keras_vectors.embedding_layers(tmp_path, trainable=trainable,
                                                     mask_zero=True, name="pretrained")
  assert (lookup.name, embedding.name) == ("pretrained_lookup", "pretrained_embedding")
  _check_layers(lookup, embedding, word_vectors, mask_zero=True, trainable=trainable)
  before = embedding.get_weights()[0]
  after = _one_sgd_step(lookup, embedding)
  changed = np.flatnonzero(np.any(after != before, axis=1)).tolist()
  # Rows of "the", "movie" and "café" (2, 3, 4) get gradients; padding and the rest do not.
  assert changed == ([2, 3, 4] if trainable else [])


def test_layers_from_glove_and_c_tool_text(tmp_path, word_vectors):
  glove = tmp_path / "glove.txt"
  glove.write_text("".join(f"{w} {' '.join('%.9g' % x for x in row)}\n"
                           for w, row in zip(word_vectors.words, word_vectors.vectors)),
                   encoding="utf-8")
  text = tmp_path / "vectors.txt"
  word_vectors.save(text, float_format="%.9g")
  for path in (glove, text):
    lookup, embedding = keras_vectors.embedding_layers(path)
    _check_layers(lookup, embedding, word_vectors, mask_zero=False, trainable=False)


def test_embedding_matrix_layout_and_mean_oov(word_vectors):
  matrix = keras_vectors.embedding_matrix(word_vectors, mask_zero=True, oov="mean")
  assert matrix.shape == (len(WORDS) + 2, 7) and matrix.dtype == np.float32
  np.testing.assert_array_equal(matrix[0], 0.0)
  np.testing.assert_allclose(matrix[1], word_vectors.vectors.mean(axis=0), rtol=1e-6)
  np.testing.assert_array_equal(matrix[2:], word_vectors.vectors)
  with pytest.raises(ValueError, match="oov must be one of"):
    keras_vectors.embedding_matrix(word_vectors, oov="random")


def test_text_vectorization_and_the_embedding_give_each_word_its_vector(word_vectors):
  """TextVectorization over text_vectorization_vocabulary, then the mask_zero embedding."""
  words = word_vectors.restrict(5)  # without "[UNK]", which TextVectorization reserves
  vocabulary = keras_vectors.text_vectorization_vocabulary(words)
  assert vocabulary == ["", "[UNK]", *words.words]
  _, embedding = keras_vectors.embedding_layers(words, mask_zero=True)
  for given in (vocabulary, vocabulary[2:]):  # whole, or without the two reserved tokens
    vectorize = keras.layers.TextVectorization(vocabulary=given, standardize=None)
    assert vectorize.get_vocabulary() == vocabulary
    ids = vectorize(tf.constant([" ".join(words.words), "movie nope"]))  # [2, 5], 0-padded
    assert ids.numpy().tolist() == [[2, 3, 4, 5, 6], [3, 1, 0, 0, 0]]
    got = embedding(ids).numpy()
    np.testing.assert_array_equal(got[0], words.vectors)
    np.testing.assert_array_equal(got[1, 1:], 0.0)
  with pytest.raises(UserError, match=r"holds the word \[UNK\], which TextVectorization"):
    keras_vectors.text_vectorization_vocabulary(word_vectors)


def test_vectors_model_takes_words_of_any_rank(word_vectors):
  model = keras_vectors.vectors_model(word_vectors)
  got = model(tf.constant([["movie", "café"], ["the", ""]])).numpy()
  assert got.shape == (2, 2, 7)
  np.testing.assert_array_equal(got[0], word_vectors.vectors[[1, 2]])
  np.testing.assert_array_equal(got[1, 0], word_vectors["the"])
  np.testing.assert_array_equal(got[1, 1], 0.0)
  np.testing.assert_array_equal(model(tf.constant(["日本"])).numpy(), [word_vectors["日本"]])


def test_output_path_problems(tmp_path):
  assert keras_vectors.keras_path_problem(tmp_path / "v.keras") is None
  assert "must end in .keras" in keras_vectors.keras_path_problem(tmp_path / "v.h5")
  (tmp_path / "d.keras").mkdir()
  assert "is a directory" in keras_vectors.keras_path_problem(tmp_path / "d.keras")
  assert keras_vectors.saved_model_path_problem(tmp_path / "new") is None
  (tmp_path / "file").write_text("x")
  assert "is a file" in keras_vectors.saved_model_path_problem(tmp_path / "file")
  (tmp_path / "other").mkdir()
  (tmp_path / "other" / "notes.txt").write_text("keep me")
  assert "not a SavedModel" in keras_vectors.saved_model_path_problem(tmp_path / "other")
  (tmp_path / "old").mkdir()
  (tmp_path / "old" / "saved_model.pb").write_bytes(b"")
  assert keras_vectors.saved_model_path_problem(tmp_path / "old") is None  # replaced
  model = keras_vectors.vectors_model(WordVectors(["a"], np.ones((1, 2))))
  with pytest.raises(UserError, match="not a SavedModel"):
    keras_vectors.save_saved_model(model, tmp_path / "other")
  assert os.listdir(tmp_path / "other") == ["notes.txt"]
  with pytest.raises(UserError, match="must end in .keras"):
    keras_vectors.save_keras_model(model, tmp_path / "v.h5")


# What a user's program does: TensorFlow and Keras only (checked: this project is not importable).
_FRESH_LOAD = r"""
import importlib.util, sys
import numpy as np
import keras
import tensorflow as tf
assert importlib.util.find_spec("w2v_tf") is None, "the project must not be importable here"
kind, path, words_path, out = sys.argv[1:]
with open(words_path, encoding="utf-8") as f:
  queries = tf.constant(f.read().split("\n"))
grid = tf.stack([queries, tf.fill(tf.shape(queries), "")])  # [2, L]: the queries, then padding
if kind == "keras":
  model = keras.models.load_model(path)
  vectors, grid_vectors = model(queries), model(grid)
  # TextVectorization's layout: ids 0 = "", 1 = unknown, i + 2 = word i (the embedding's rows).
  vocabulary = model.get_layer("word_vectors_lookup").get_vocabulary()
  rows = model.get_layer("word_vectors_embedding").get_weights()[0]
  np.testing.assert_array_equal(rows[[vocabulary.index(w) for w in vocabulary[2:]]],
                                np.asarray(model(tf.constant(vocabulary[2:]))))
  np.save(out + ".vocabulary.npy", np.array(vocabulary))
else:
  loaded = tf.saved_model.load(path)
  signature = loaded.signatures["serving_default"]
  assert list(signature.structured_input_signature[1]) == ["words"], signature
  assert list(signature.structured_outputs) == ["vectors"], signature.structured_outputs
  vectors, grid_vectors = (signature(words=words)["vectors"] for words in (queries, grid))
  np.testing.assert_array_equal(loaded.serve(queries)["vectors"], vectors)
np.save(out, np.asarray(vectors))
np.save(out + ".grid.npy", np.asarray(grid_vectors))
assert not [m for m in sys.modules if m.split(".")[0] in ("w2v_tf", "eval", "tests")]
"""

# `python -m w2v_tf.export` with the checkpoint reader replaced (restoring is tested elsewhere).
_FAKE_EXPORT = r"""
import sys
import numpy as np
from w2v_tf import export, model_dir
from w2v_tf.errors import run_main
from w2v_tf.word_vectors import WordVectors
source = WordVectors.load(sys.argv.pop(1))
model_dir.load_checkpoint_vectors = lambda path: (list(source.words), np.arange(
    len(source), 0, -1), source.vectors, "ckpt-7")
export._define_flags()
sys.argv = ["w2v_tf.export", *sys.argv[1:]]
run_main(export.main)
"""


@pytest.mark.parametrize("fmt,name", [("keras", "vectors.keras"),
                                      ("saved_model", "vectors_savedmodel")])
def test_exported_model_in_a_fresh_process_equals_vectors_bin(tmp_path, word_vectors, fmt, name):
  word_vectors.save(tmp_path / "source.bin", binary=True)
  model_dir, output = tmp_path / "model", tmp_path / "out" / name
  model_dir.mkdir()
  for args in ([f"--output_dir={model_dir}"], [f"--format={fmt}", f"--output={output}"]):
    run = subprocess.run([sys.executable, "-c", _FAKE_EXPORT, str(tmp_path / "source.bin"),
                          f"--model_dir={model_dir}", *args], cwd=REPO, capture_output=True,
                         text=True, timeout=300, check=False)
    assert run.returncode == 0, run.stderr
  assert f"to {output} ({fmt})" in run.stderr
  if fmt == "saved_model":
    assert (output / "saved_model.pb").is_file()
  umask = os.umask(0)
  os.umask(umask)
  assert os.stat(output).st_mode & 0o777 == (0o777 if fmt == "saved_model" else 0o666) & ~umask
  expected = WordVectors.load(model_dir / "vectors.bin")  # what the all-formats export wrote
  assert list(expected.words) == WORDS

  fresh = tmp_path / "fresh"
  fresh.mkdir()
  queries = list(expected.words) + ["no-such-word", "UNK", ""]
  (fresh / "words.txt").write_text("\n".join(queries), encoding="utf-8")
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
  run = subprocess.run([sys.executable, "-c", _FRESH_LOAD, fmt, str(output),
                        str(fresh / "words.txt"), str(fresh / "got.npy")], cwd=fresh, env=env,
                       capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr
  got = np.load(fresh / "got.npy")
  assert got.shape == (len(queries), 7) and got.dtype == np.float32
  np.testing.assert_array_equal(got[:len(expected)], expected.vectors)  # every word, exactly
  np.testing.assert_array_equal(got[len(expected):], 0.0)  # unknown words: the OOV row
  grid = np.load(fresh / "got.npy.grid.npy")  # [N, L] words -> [N, L, d]; "" is padding: zeros
  assert grid.shape == (2, len(queries), 7)
  np.testing.assert_array_equal(grid[0], got)
  np.testing.assert_array_equal(grid[1], 0.0)
  if fmt == "keras":  # the lookup's vocabulary is TextVectorization's: "", OOV, the words
    vocabulary = np.load(fresh / "got.npy.vocabulary.npy").tolist()
    assert vocabulary == ["", "[[UNK]]", *WORDS]  # the file holds "[UNK]": OOV is renamed


def test_saved_model_is_replaced_in_place(tmp_path, word_vectors):
  path = tmp_path / "sm"
  keras_vectors.save_saved_model(keras_vectors.vectors_model(word_vectors.restrict(3)), path)
  keras_vectors.save_saved_model(keras_vectors.vectors_model(word_vectors, oov="mean"), path)
  assert sorted(os.listdir(tmp_path)) == ["sm"]  # no temp or old directory left
  serve = tf.saved_model.load(os.fspath(path)).signatures["serving_default"]
  got = serve(words=tf.constant(["日本", "nope"]))["vectors"].numpy()
  np.testing.assert_array_equal(got[0], word_vectors["日本"])
  np.testing.assert_allclose(got[1], word_vectors.vectors.mean(axis=0), rtol=1e-6)


def _docs_classifier_example():
  """The Python block of docs/training.md's TextVectorization classifier section."""
  with open(os.path.join(REPO, "docs", "training.md"), encoding="utf-8") as f:
    section = f.read().split("### A classifier on `TextVectorization`", 1)[1]
  return section.split("```python\n", 1)[1].split("```", 1)[0]


# Run after the example, in its namespace: each vocabulary word's row through TextVectorization.
_EXAMPLE_CHECK = r"""
import sys
expected = np.load(sys.argv[1])
by_word = dict(zip(expected["words"].tolist(), expected["vectors"]))
verbatim = keras.layers.TextVectorization(vocabulary=vocabulary[2:], standardize=None)
ids = verbatim(tf.constant([" ".join(vocabulary[2:])]))[0]  # [V]
assert ids.numpy().tolist() == list(range(2, len(vocabulary))), "each word its own id"
rows = embedding(ids).numpy()
assert len(by_word) == len(rows)
for word, row in zip(vocabulary[2:], rows):
  np.testing.assert_array_equal(row, by_word[word], err_msg=word)
assert vectorize.get_vocabulary() == vocabulary
np.testing.assert_array_equal(embedding(tf.constant([0, 1])).numpy(), 0.0)
assert model.predict(texts[:4], verbose=0).shape == (4, 1)
print("checked", len(rows), "words")
"""


@pytest.mark.slow
def test_docs_classifier_example_on_imdb_reviews(tmp_path, imdb_csv):
  """The docs' example: vectors of a short run on 300 reviews, exported as .keras, then
  TextVectorization + the exported embedding; every word's row equals vectors.bin's."""
  with gzip.open(imdb_csv, "rt", encoding="utf-8") as f:
    rows = list(itertools.islice(csv.reader(f), 301))  # the header and 300 reviews
  train_csv = tmp_path / "reviews.csv"
  with open(train_csv, "w", encoding="utf-8", newline="") as f:
    csv.writer(f).writerows(rows)
  model_dir = tmp_path / "model"
  run = subprocess.run(
      [sys.executable, "-m", "w2v_tf.train", f"--train_csv={train_csv}", f"--model_dir={model_dir}",
       "--stopwords=none", "--min_count=3", "--embedding_dim=8", "--epochs=1", "--cache_dir=",
       "--analogies=none", "--noprogress", "--nojit_compile"],
      cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
  assert run.returncode == 0, run.stderr
  expected = WordVectors.load(model_dir / "vectors.bin")
  assert len(expected) > 500  # a real vocabulary, not a handful of words

  fresh = tmp_path / "fresh"
  fresh.mkdir()
  keras_vectors.save_keras_model(keras_vectors.vectors_model(model_dir), fresh / "vectors.keras")
  os.symlink(imdb_csv, fresh / "IMDB_Dataset.csv.gz")
  np.savez(fresh / "expected.npz", words=np.array(expected.words), vectors=expected.vectors)
  env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}  # without this project
  run = subprocess.run([sys.executable, "-c", _docs_classifier_example() + _EXAMPLE_CHECK,
                        str(fresh / "expected.npz")], cwd=fresh, env=env, capture_output=True,
                       text=True, timeout=600, check=False)
  assert run.returncode == 0, run.stderr
  assert f"checked {len(expected)} words" in run.stdout
