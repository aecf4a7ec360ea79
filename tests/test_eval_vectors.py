"""Reading word vectors as the eval binaries do: format detection, model_dir, eval/cli.py.

(`w2v_tf.vector_files` through `WordVectors.load`; `eval.cli` for the flags. Reading a model dir
is `tests/test_model_dir.py`'s.)
"""

import gzip
import os
import subprocess
import sys

import numpy as np
import pytest

from eval import cli
from tests.binaries import module_runner
from w2v_tf import vector_files
from w2v_tf.errors import UsageError, UserError
from w2v_tf.word_vectors import WordVectors, unit_rows

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EVAL_BINARIES = ("eval.analogy", "eval.similarity", "eval.neighbors", "eval.sentiment")


def _load(path):
  """(words, vectors) of a vectors file."""
  word_vectors = WordVectors.load(path)
  return list(word_vectors.words), word_vectors.vectors


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
  got_words, got_vectors = _load(path)
  assert got_words == words
  assert got_vectors.dtype == np.float32
  np.testing.assert_array_equal(got_vectors, vectors)


def test_detect_format(tmp_path, toy):
  words, vectors = toy
  _write_c_binary(tmp_path / "b", words, vectors)
  _write_text(tmp_path / "t", words, vectors)
  _write_text(tmp_path / "g", words, vectors, header=False)
  assert vector_files.detect_format((tmp_path / "b").read_bytes()) == "word2vec_binary"
  assert vector_files.detect_format((tmp_path / "t").read_bytes()) == "word2vec_text"
  assert vector_files.detect_format((tmp_path / "g").read_bytes()) == "glove"


def test_reads_what_gensim_and_the_trainer_write(tmp_path, toy):
  words, vectors = toy
  gensim = pytest.importorskip("gensim")
  kv = gensim.models.KeyedVectors(vectors.shape[1])
  kv.add_vectors(words, vectors)
  kv.save_word2vec_format(str(tmp_path / "g.bin"), binary=True)
  kv.save_word2vec_format(str(tmp_path / "g.txt"))
  kv.save_word2vec_format(str(tmp_path / "g.glove"), write_header=False)
  for name in ("g.bin", "g.txt", "g.glove"):
    got_words, got_vectors = _load(tmp_path / name)
    assert got_words == words
    np.testing.assert_allclose(got_vectors, vectors, rtol=1e-6)
  WordVectors(words, vectors).save(tmp_path / "t.bin", binary=True)
  WordVectors(words, vectors).save(tmp_path / "t.txt")
  for name in ("t.bin", "t.txt"):
    got_words, got_vectors = _load(tmp_path / name)
    assert got_words == words
    np.testing.assert_allclose(got_vectors, vectors, atol=1e-6)


def test_duplicates_keep_first_row(tmp_path, capsys):
  vectors = np.arange(6, dtype=np.float32).reshape(3, 2)
  _write_text(tmp_path / "v.txt", ["a", "b", "a"], vectors)
  words, got = _load(tmp_path / "v.txt")
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
    _load(path)
  assert message in str(error.value)
  assert "\n" not in str(error.value)


def test_missing_file_and_directory(tmp_path):
  with pytest.raises(UserError, match="not found"):
    _load(tmp_path / "nope.bin")
  with pytest.raises(UserError, match="is a directory"):
    _load(tmp_path)


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


def test_load_from_flags_needs_exactly_one(tmp_path, toy):
  words, vectors = toy
  _write_text(tmp_path / "v.txt", words, vectors)
  with pytest.raises(UsageError):
    cli.load_from_flags(None, None)
  with pytest.raises(UsageError):
    cli.load_from_flags(str(tmp_path / "v.txt"), str(tmp_path))
  got, source = cli.load_from_flags(str(tmp_path / "v.txt"), None)
  assert list(got.words) == words and source.endswith("v.txt")
  np.testing.assert_array_equal(got.vectors, vectors)
  got, source = cli.load_from_flags(None, str(_model_dir(tmp_path, words, vectors)))
  assert list(got.words) == words and source.endswith("model")
  assert got.counts.tolist() == [100 - i for i in range(len(words))]  # from vocab.tsv


def test_unit_rows_keeps_zero_rows():
  unit = unit_rows(np.array([[3.0, 4.0], [0.0, 0.0]]))
  np.testing.assert_allclose(unit, [[0.6, 0.8], [0.0, 0.0]], rtol=1e-6)


def test_find_data_file(tmp_path):
  existing = tmp_path / "q.txt"
  existing.write_text(": s\na b c d\n")
  assert cli.find_data_file("q.txt", str(existing), "--x", "url") == str(existing)
  with pytest.raises(UserError, match="not found"):
    cli.find_data_file("q.txt", str(tmp_path / "nope"), "--x", "url")
  with pytest.raises(UserError, match=r"fetch it with .* \(into data/no-such-file.txt"):
    cli.find_data_file("no-such-file.txt", None, "--x", "url")


def test_importing_the_eval_modules_defines_no_flag():
  """Flags belong to the binaries: an import (the trainer's, a test's) leaves absl's FLAGS alone."""
  code = ("from absl import app, flags, logging\n"
          "import tensorflow\n"  # TF's and absl's own flags are not ours
          "before = set(flags.FLAGS)\n"
          "import eval.analogy, eval.similarity, eval.neighbors, eval.sentiment, eval.cli\n"
          "import w2v_tf.word_vectors, w2v_tf.export, benchmarks.analogy_speed\n"
          "import benchmarks.compare, benchmarks.profile_step, benchmarks.pipeline\n"
          "import benchmarks.crash_resume, w2v_tf.train, w2v_tf.data, w2v_tf.get_data\n"
          "print(sorted(set(flags.FLAGS) - before))\n")
  out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True,
                       timeout=120, check=False)
  assert out.returncode == 0, out.stderr
  assert out.stdout.strip() == "[]"


fixture_runner = module_runner(REPO, dict(os.environ), workers=2, preload=("numpy", "absl.flags", "eval.cli"))


@pytest.mark.parametrize("module", EVAL_BINARIES)
def test_each_binary_defines_its_flags_when_run(runner, module):
  run = runner.run(module, ["--help"], timeout=120)
  assert run.returncode == 0, run.stderr  # our --help: what it does and its own flags
  assert run.stderr == ""
  for flag in ("--vectors", "--model_dir"):
    assert flag in run.stdout, run.stdout
  own = {"eval.analogy": "--analogies", "eval.similarity": "--pairs",
         "eval.neighbors": "--word", "eval.sentiment": "--csv"}[module]
  assert own in run.stdout, run.stdout
