"""Tests for eval/vectors.py: format detection, model_dir reading, shared flags."""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from eval import vectors as vectors_lib
from w2v_tf.errors import UsageError, UserError

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(name="toy")
def fixture_toy():
  rng = np.random.default_rng(0)
  words = ["the", "movie", "film", "naïve", "König", "</s>"] + [f"w{i}" for i in range(50)]
  vectors = rng.standard_normal((len(words), 7)).astype(np.float32)  # [V, d]
  return words, vectors


def _write_c_binary(path, words, vectors, newline=True):
  """The C tool's layout (gensim's when newline=False)."""
  with open(path, "wb") as f:
    f.write(f"{len(words)} {vectors.shape[1]}\n".encode())
    for word, row in zip(words, vectors):
      f.write(word.encode() + b" " + row.astype("<f4").tobytes() + (b"\n" if newline else b""))


def _write_text(path, words, vectors, header=True):
  with open(path, "w", encoding="utf-8") as f:
    if header:
      f.write(f"{len(words)} {vectors.shape[1]}\n")
    for word, row in zip(words, vectors):
      f.write(word + " " + " ".join(repr(float(v)) for v in row) + "\n")


@pytest.mark.parametrize("fmt", ["c_binary", "gensim_binary", "text", "glove", "text_gz"])
def test_formats_round_trip(tmp_path, toy, fmt):
  words, vectors = toy
  path = str(tmp_path / "v")
  if fmt == "c_binary":
    _write_c_binary(path, words, vectors)
  elif fmt == "gensim_binary":
    _write_c_binary(path, words, vectors, newline=False)
  elif fmt == "text":
    _write_text(path, words, vectors)
  elif fmt == "glove":
    _write_text(path, words, vectors, header=False)
  else:
    path += ".gz"
    _write_text(tmp_path / "plain", words, vectors)
    with open(tmp_path / "plain", "rb") as src, gzip.open(path, "wb") as dst:
      dst.write(src.read())
  got_words, got_vectors = vectors_lib.load_vectors(path)
  assert got_words == words
  assert got_vectors.dtype == np.float32
  np.testing.assert_array_equal(got_vectors, vectors)


def test_detect_format(tmp_path, toy):
  words, vectors = toy
  _write_c_binary(tmp_path / "b", words, vectors)
  _write_text(tmp_path / "t", words, vectors)
  _write_text(tmp_path / "g", words, vectors, header=False)
  assert vectors_lib.detect_format((tmp_path / "b").read_bytes()) == "word2vec_binary"
  assert vectors_lib.detect_format((tmp_path / "t").read_bytes()) == "word2vec_text"
  assert vectors_lib.detect_format((tmp_path / "g").read_bytes()) == "glove"


def test_reads_what_gensim_and_the_trainer_write(tmp_path, toy):
  words, vectors = toy
  gensim = pytest.importorskip("gensim")
  kv = gensim.models.KeyedVectors(vectors.shape[1])
  kv.add_vectors(words, vectors)
  kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)
  kv.save_word2vec_format(str(tmp_path / "g.txt"))
  kv.save_word2vec_format(str(tmp_path / "g.glove"), write_header=False)
  for name in ("g.bin", "g.txt", "g.glove"):
    got_words, got_vectors = vectors_lib.load_vectors(tmp_path / name)
    assert got_words == words
    np.testing.assert_allclose(got_vectors, vectors, rtol=1e-6)
  export = pytest.importorskip("w2v_tf.export")
  export.write_word2vec_binary(tmp_path / "t.bin", words, vectors)
  export.write_word2vec_text(tmp_path / "t.txt", words, vectors)
  for name in ("t.bin", "t.txt"):
    got_words, got_vectors = vectors_lib.load_vectors(tmp_path / name)
    assert got_words == words
    np.testing.assert_allclose(got_vectors, vectors, atol=1e-6)


def test_duplicates_keep_first_row(tmp_path, capsys):
  vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
  _write_text(tmp_path / "v.txt", ["a", "b", "a"], vectors)
  words, got = vectors_lib.load_vectors(tmp_path / "v.txt")
  assert words == ["a", "b"]
  np.testing.assert_array_equal(got, vectors[:2])
  assert "1 repeated words" in capsys.readouterr().err


@pytest.mark.parametrize("content,message", [
    (b"", "is empty"),
    (b"  \n\n", "is empty"),
    (b"2 3\na 1 2 3\nb 1 2\n", ":3: 2 values, expected 3"),
    (b"2 3\na 1 2 3\nb 1 2 3 4\n", ":3: 4 values, expected 3"),
    (b"3 3\na 1 2 3\nb 1 2 3\n", "header says 3 words but the file has 2"),
    (b"a 1 2 3\nb 1 2\n", ":2: 2 values, expected 3"),
    (b"a 1 2 3\nb 1 x 3\n", ":2: 'x' is not a number"),
    (b"2 3\na " + np.ones(3, "<f4").tobytes() + b"\nb " + np.ones(2, "<f4").tobytes(),
     "record 2 of 2"),
    (b"2 2\na " + np.ones(3, "<f4").tobytes() + b"\nb " + np.ones(3, "<f4").tobytes() + b"\n",
     "record 2 (byte"),
])
def test_bad_files_raise_one_line(tmp_path, content, message):
  path = tmp_path / "bad.vec"
  path.write_bytes(content)
  with pytest.raises(UserError) as error:
    vectors_lib.load_vectors(path)
  assert message in str(error.value)
  assert "\n" not in str(error.value)


def test_missing_file_and_directory(tmp_path):
  with pytest.raises(UserError, match="not found"):
    vectors_lib.load_vectors(tmp_path / "nope.bin")
  with pytest.raises(UserError, match="is a directory"):
    vectors_lib.load_vectors(tmp_path)


def _model_dir(tmp_path, words, vectors, binary=True, text=True, vocab=None):
  model_dir = tmp_path / "model"
  model_dir.mkdir()
  if binary:
    _write_c_binary(model_dir / "vectors.bin", words, vectors)
  if text:
    _write_text(model_dir / "vectors.txt", words, vectors + 1)  # tells which was read
  vocab = words if vocab is None else vocab
  (model_dir / "vocab.tsv").write_text("".join(f"{w}\t{100 - i}\n" for i, w in enumerate(vocab)),
                                       encoding="utf-8")
  return model_dir


def test_model_dir_prefers_binary(tmp_path, toy):
  words, vectors = toy
  got_words, got = vectors_lib.load_model_dir(_model_dir(tmp_path, words, vectors))
  assert got_words == words
  np.testing.assert_array_equal(got, vectors)


def test_model_dir_falls_back_to_text(tmp_path, toy):
  words, vectors = toy
  _, got = vectors_lib.load_model_dir(_model_dir(tmp_path, words, vectors, binary=False))
  np.testing.assert_allclose(got, vectors + 1, rtol=1e-6)


def test_model_dir_errors(tmp_path, toy):
  words, vectors = toy
  with pytest.raises(UserError, match="not found"):
    vectors_lib.load_model_dir(tmp_path / "missing")
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(UserError, match="has no vectors.bin or vectors.txt"):
    vectors_lib.load_model_dir(empty)
  swapped = [words[1], words[0]] + words[2:]
  with pytest.raises(UserError, match="disagree at row 1"):
    vectors_lib.load_model_dir(_model_dir(tmp_path, words, vectors, vocab=swapped))


def test_load_from_flags_needs_exactly_one(tmp_path, toy):
  words, vectors = toy
  _write_text(tmp_path / "v.txt", words, vectors)
  with pytest.raises(UsageError):
    vectors_lib.load_from_flags(None, None)
  with pytest.raises(UsageError):
    vectors_lib.load_from_flags(str(tmp_path / "v.txt"), str(tmp_path))
  got_words, _, source = vectors_lib.load_from_flags(str(tmp_path / "v.txt"), None)
  assert got_words == words and source.endswith("v.txt")


def test_unit_rows_keeps_zero_rows():
  unit = vectors_lib.unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
  np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_find_data_file(tmp_path):
  existing = tmp_path / "q.txt"
  existing.write_text(": s\na b c d\n")
  assert vectors_lib.find_data_file("q.txt", str(existing), "--x", "url") == str(existing)
  with pytest.raises(UserError, match="not found"):
    vectors_lib.find_data_file("q.txt", str(tmp_path / "nope"), "--x", "url")
  with pytest.raises(UserError, match="put it at data/no-such-file.txt"):
    vectors_lib.find_data_file("no-such-file.txt", None, "--x", "url")


def test_flags_tolerate_every_import_order():
  """All eval binaries in one process, and a later module (the trainer) redefining a flag."""
  code = (
      "from absl import flags\n"
      "import eval.analogy, eval.similarity, eval.neighbors, eval.sentiment\n"
      "import eval.analogy\n"
      "eval.analogy.define_flags(); eval.neighbors.define_flags()\n"
      "flags.DEFINE_string('model_dir', 'checkpoints/run', 'trainer')\n"
      "flags.FLAGS(['prog'])\n"
      "print(flags.FLAGS.model_dir)\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, check=False)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "checkpoints/run"
  code = ("from absl import flags\n"
          "flags.DEFINE_string('model_dir', 'checkpoints/run', 'trainer')\n"
          "import eval.analogy\n"
          "flags.FLAGS(['prog'])\n"
          "print(flags.FLAGS.model_dir, flags.FLAGS.restrict_vocab)\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, check=False)
  assert out.returncode == 0, out.stderr
  assert out.stdout.split() == ["checkpoints/run", "30000"]
