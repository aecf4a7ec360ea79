"""Tests for w2v_tf/export.py: the word2vec formats it writes (read back by gensim), projector.

The writers themselves are `w2v_tf.vector_files`' (what `WordVectors.save` calls).
"""

import contextlib
import errno
import os
import re
import struct
import subprocess
import sys

import numpy as np
import pytest

from w2v_tf import export
from w2v_tf import fileio
from w2v_tf import vector_files
from w2v_tf import vocab as vocab_lib
from w2v_tf.errors import UserError
from w2v_tf.vocab import Vocab
from w2v_tf.word_vectors import WordVectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

WORDS = ["the", "café", "naïve", "日本", "movie", "<unk>"]


@pytest.fixture(name="vectors")
def fixture_vectors():
  rng = np.random.default_rng(0)
  return rng.normal(scale=0.5, size=(len(WORDS), 7)).astype(np.float32)  # [V, d]


def _load_gensim(path, binary):
  keyed_vectors = pytest.importorskip("gensim.models.keyedvectors")
  return keyed_vectors.KeyedVectors.load_word2vec_format(os.fspath(path), binary=binary)


def _leftovers(directory):
  """Temp files atomic_open may leave behind (there must be none)."""
  return [name for name in os.listdir(directory) if name.endswith(".tmp")]


def test_text_round_trip_through_gensim(tmp_path, vectors):
  path = tmp_path / "vectors.txt"
  vector_files.write_word2vec_text(path, WORDS, vectors)
  lines = path.read_text(encoding="utf-8").splitlines()
  assert lines[0] == f"{len(WORDS)} 7"
  assert lines[2].split(" ")[0] == "café" and len(lines[2].split(" ")) == 8
  kv = _load_gensim(path, binary=False)
  assert list(kv.index_to_key) == WORDS
  np.testing.assert_allclose(kv.vectors, vectors, atol=1e-5)


def test_text_exact_format_option(tmp_path, vectors):
  path = tmp_path / "vectors.txt"
  vector_files.write_word2vec_text(path, WORDS, vectors, float_format="%.9g")
  kv = _load_gensim(path, binary=False)
  np.testing.assert_array_equal(kv.vectors, vectors)


def test_binary_round_trip_through_gensim(tmp_path, vectors):
  path = tmp_path / "vectors.bin"
  vector_files.write_word2vec_binary(path, WORDS, vectors)
  kv = _load_gensim(path, binary=True)
  assert list(kv.index_to_key) == WORDS
  np.testing.assert_allclose(kv.vectors, vectors, atol=1e-6)


def test_binary_layout_is_byte_exact(tmp_path):
  path = tmp_path / "vectors.bin"
  vector_files.write_word2vec_binary(path, ["a", "é"], np.array([[1.0, -2.5], [0.5, 3.0]]))
  expected = (b"2 2\n"
              + b"a " + struct.pack("<2f", 1.0, -2.5) + b"\n"
              + "é".encode("utf-8") + b" " + struct.pack("<2f", 0.5, 3.0) + b"\n")
  assert path.read_bytes() == expected


def test_large_vocab_crosses_chunk_boundary(tmp_path, monkeypatch):
  monkeypatch.setattr(vector_files, "CHUNK_ROWS", 3)
  words = [f"w{i}" for i in range(10)]
  vectors = np.arange(40, dtype=np.float32).reshape(10, 4) / 8  # [10, 4]
  vector_files.write_word2vec_binary(tmp_path / "v.bin", words, vectors)
  vector_files.write_word2vec_text(tmp_path / "v.txt", words, vectors)
  for name, binary in (("v.bin", True), ("v.txt", False)):
    kv = _load_gensim(tmp_path / name, binary=binary)
    assert list(kv.index_to_key) == words
    np.testing.assert_allclose(kv.vectors, vectors, atol=1e-6)


@pytest.mark.parametrize("bad", ["two words", "", "tab\there", "new\nline"])
def test_words_with_whitespace_are_refused(tmp_path, bad):
  with pytest.raises(ValueError, match="whitespace"):
    vector_files.write_word2vec_text(tmp_path / "v.txt", ["ok", bad], np.zeros((2, 3)))
  assert not os.listdir(tmp_path)


def test_shape_mismatch_is_refused(tmp_path):
  with pytest.raises(ValueError, match="3 words but 2 vector rows"):
    vector_files.write_word2vec_binary(tmp_path / "v.bin", ["a", "b", "c"], np.zeros((2, 3)))
  with pytest.raises(ValueError, match="2-D"):
    vector_files.write_word2vec_binary(tmp_path / "v.bin", ["a"], np.zeros(3))


def test_projector_files(tmp_path, vectors):
  tf = pytest.importorskip("tensorflow")
  log_dir = tmp_path / "projector"
  key = export.write_projector(log_dir, WORDS, vectors)
  assert key == "embeddings/.ATTRIBUTES/VARIABLE_VALUE"
  for name in ("projector_config.pbtxt", "metadata.tsv", "vectors.tsv", "checkpoint",
               "embedding.ckpt.index", "embedding.ckpt.data-00000-of-00001"):
    assert (log_dir / name).is_file(), name
  assert not [name for name in os.listdir(log_dir) if name.startswith(".")]

  config = (log_dir / "projector_config.pbtxt").read_text(encoding="utf-8")
  tensor_name = re.search(r'tensor_name: "([^"]+)"', config).group(1)
  metadata = re.search(r'metadata_path: "([^"]+)"', config).group(1)
  # The projector plugin finds the checkpoint through tf.train.latest_checkpoint(log_dir).
  checkpoint = tf.train.latest_checkpoint(os.fspath(log_dir))
  assert checkpoint == os.path.join(os.fspath(log_dir), "embedding.ckpt")
  assert dict(tf.train.list_variables(checkpoint))[tensor_name] == [len(WORDS), 7]
  np.testing.assert_array_equal(tf.train.load_checkpoint(checkpoint).get_tensor(tensor_name),
                                vectors)

  assert (log_dir / metadata).read_text(encoding="utf-8").splitlines() == WORDS
  rows = [line.split("\t") for line in
          (log_dir / "vectors.tsv").read_text(encoding="utf-8").splitlines()]
  np.testing.assert_allclose(np.array(rows, dtype=np.float32), vectors, rtol=1e-5, atol=1e-6)


def test_projector_checkpoints_the_given_table_without_a_copy(tmp_path, vectors):
  tf = pytest.importorskip("tensorflow")
  # Other values than `vectors`, so the checkpoint shows which one was written.
  table = tf.Variable(vectors + 1.0)
  key = export.write_projector(tmp_path / "whole", WORDS, vectors, table=table)
  checkpoint = tf.train.load_checkpoint(os.fspath(tmp_path / "whole" / "embedding.ckpt"))
  np.testing.assert_array_equal(checkpoint.get_tensor(key), vectors + 1.0)
  # With max_rows the first rows are copied (the table is whole).
  export.write_projector(tmp_path / "part", WORDS, vectors, table=table, max_rows=2)
  part = tf.train.load_checkpoint(os.fspath(tmp_path / "part" / "embedding.ckpt"))
  np.testing.assert_array_equal(part.get_tensor(key), vectors[:2])
  with pytest.raises(ValueError, match="table has shape"):
    export.write_projector(tmp_path / "bad", WORDS, vectors, table=tf.Variable(vectors[:, :3]))


def test_formats_round_trip_across_write_chunks(tmp_path):
  # More rows than a write chunk holds, and not a multiple of it: rows at the seams survive.
  rows = 2 * vector_files.CHUNK_ROWS + 3
  words = [f"w{i}" for i in range(rows)]
  values = np.random.default_rng(1).normal(size=(rows, 4)).astype(np.float32)
  paths = export.export_vectors(tmp_path, WordVectors(words, values, np.ones(rows, np.int64)))
  for binary in (True, False):
    kv = _load_gensim(paths["binary" if binary else "text"], binary=binary)
    assert list(kv.index_to_key) == words
    np.testing.assert_allclose(kv.vectors, values, atol=0 if binary else 1e-5)
  tsv = np.loadtxt(os.path.join(paths["projector"], "vectors.tsv"), dtype=np.float32)
  np.testing.assert_allclose(tsv, values, rtol=1e-5, atol=1e-6)


def test_projector_config_parses_as_projector_proto(tmp_path, vectors):
  projector = pytest.importorskip("tensorboard.plugins.projector")
  text_format = pytest.importorskip("google.protobuf.text_format")
  export.write_projector(tmp_path, WORDS, vectors, tensor_name="emb")
  config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(encoding="utf-8"),
                             projector.ProjectorConfig())
  assert config.embeddings[0].tensor_name == "emb/.ATTRIBUTES/VARIABLE_VALUE"
  assert config.embeddings[0].metadata_path == "metadata.tsv"


def test_checkpoint_projector_labels_the_tables_in_order(tmp_path):
  """The model dir's config: the tables the trainer names, first first, labelled or not, and
  no checkpoint path (the plugin follows the newest checkpoint); the metadata has a header, as
  the projector reads a file of two columns."""
  projector = pytest.importorskip("tensorboard.plugins.projector")
  text_format = pytest.importorskip("google.protobuf.text_format")
  path = export.write_checkpoint_projector(tmp_path, WORDS[:3], np.array([9, 4, 1]), [
      ("model/input_embeddings/.ATTRIBUTES/VARIABLE_VALUE", True),
      ("model/output_weights/.ATTRIBUTES/VARIABLE_VALUE", False)])
  assert path == os.path.join(tmp_path, "projector_config.pbtxt")
  config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(encoding="utf-8"),
                             projector.ProjectorConfig())
  assert [(e.tensor_name, e.metadata_path) for e in config.embeddings] == [
      ("model/input_embeddings/.ATTRIBUTES/VARIABLE_VALUE", "projector_metadata.tsv"),
      ("model/output_weights/.ATTRIBUTES/VARIABLE_VALUE", "")]
  assert config.model_checkpoint_path == ""
  assert (tmp_path / "projector_metadata.tsv").read_text(encoding="utf-8") == (
      "word\tcount\nthe\t9\ncafé\t4\nnaïve\t1\n")
  assert _leftovers(tmp_path) == []
  with pytest.raises(ValueError, match="3 words but 2 vector rows"):
    export.write_checkpoint_projector(tmp_path / "bad", WORDS[:3], [1, 2], [])


def test_projector_max_rows_and_rewrite(tmp_path, vectors):
  tf = pytest.importorskip("tensorflow")
  export.write_projector(tmp_path, WORDS, vectors, max_rows=4)
  export.write_projector(tmp_path, WORDS, vectors, max_rows=3)  # rewriting replaces in place
  assert (tmp_path / "metadata.tsv").read_text(encoding="utf-8").splitlines() == WORDS[:3]
  assert len((tmp_path / "vectors.tsv").read_text(encoding="utf-8").splitlines()) == 3
  variables = dict(tf.train.list_variables(os.fspath(tmp_path / "embedding.ckpt")))
  assert variables["embeddings/.ATTRIBUTES/VARIABLE_VALUE"] == [3, 7]


def test_export_vectors_writes_vectors_and_projector_only(tmp_path, vectors):
  paths = export.export_vectors(tmp_path / "out", WordVectors(WORDS, vectors, [6, 5, 4, 3, 2, 1]),
                                projector_max_rows=4)
  assert sorted(os.listdir(tmp_path / "out")) == ["projector", "vectors.bin", "vectors.txt"]
  assert sorted(paths) == ["binary", "projector", "text"]
  kv = _load_gensim(paths["binary"], binary=True)
  assert list(kv.index_to_key) == WORDS
  np.testing.assert_array_equal(kv.vectors, vectors)
  np.testing.assert_allclose(_load_gensim(paths["text"], binary=False).vectors, vectors,
                             atol=1e-5)
  metadata = os.path.join(paths["projector"], "metadata.tsv")
  assert open(metadata, encoding="utf-8").read().splitlines() == WORDS[:4]


def test_export_vectors_checks_words_before_writing(tmp_path):
  with pytest.raises(ValueError, match="whitespace"):
    export.export_vectors(tmp_path / "out", WordVectors(["ok", "two words"], np.zeros((2, 3))))
  assert not (tmp_path / "out").exists()


def _raise_enospc(*args, **kwargs):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("binary", [False, True])
def test_disk_full_on_rename_keeps_old_file(tmp_path, monkeypatch, vectors, binary):
  path = tmp_path / ("vectors.bin" if binary else "vectors.txt")
  path.write_bytes(b"old contents")
  monkeypatch.setattr(fileio.os, "replace", _raise_enospc)
  write = vector_files.write_word2vec_binary if binary else vector_files.write_word2vec_text
  with pytest.raises(UserError, match=r"disk full.*vectors\.(bin|txt)") as info:
    write(path, WORDS, vectors)
  assert str(path) in str(info.value)
  assert path.read_bytes() == b"old contents"
  assert not _leftovers(tmp_path)


@pytest.mark.parametrize("name", ["vectors.txt", "vocab.tsv"])
def test_disk_full_mid_write_keeps_old_file(tmp_path, monkeypatch, vectors, name):
  """The write itself fails part way (what a full disk does): old file kept, no temp left."""
  path = tmp_path / name
  path.write_text("old\t1\n", encoding="utf-8")
  monkeypatch.setattr(vector_files, "CHUNK_ROWS", 2)
  real_atomic_open = fileio.atomic_open

  class FullDisk:
    """Wraps a file; the second write fails with ENOSPC."""

    def __init__(self, f):
      self._f, self._writes = f, 0

    def write(self, data):
      self._writes += 1
      if self._writes == 2:
        _raise_enospc()
      return self._f.write(data)

  def failing_atomic_open(*args, **kwargs):
    with real_atomic_open(*args, **kwargs) as f:
      yield FullDisk(f)

  # vocab.tsv is written by Vocab.save_tsv, the vectors by vector_files.
  writer_module = vocab_lib if name == "vocab.tsv" else vector_files
  monkeypatch.setattr(writer_module, "atomic_open", contextlib.contextmanager(failing_atomic_open))
  with pytest.raises(UserError, match=f"disk full while writing .*{name}"):
    if name == "vocab.tsv":
      Vocab(tuple(WORDS), np.arange(len(WORDS))[::-1]).save_tsv(path)
    else:
      vector_files.write_word2vec_text(path, WORDS, vectors)
  assert path.read_text(encoding="utf-8") == "old\t1\n"
  assert not _leftovers(tmp_path)


class _ExplodingWords(list):
  """A word list whose second chunk raises: an error after part of the file is written."""

  def __getitem__(self, index):
    if isinstance(index, slice) and index.start:
      raise RuntimeError("boom")
    return super().__getitem__(index)


@pytest.mark.parametrize("write", [vector_files.write_word2vec_text,
                                   vector_files.write_word2vec_binary])
def test_exception_mid_write_leaves_nothing(tmp_path, monkeypatch, write):
  """Neither a file under the final name nor a temp file survives an error mid-write."""
  monkeypatch.setattr(vector_files, "CHUNK_ROWS", 1)
  with pytest.raises(RuntimeError, match="boom"):
    write(tmp_path / "vectors.out", _ExplodingWords(["a", "b"]), np.zeros((2, 3)))
  assert os.listdir(tmp_path) == []


def test_other_os_errors_pass_through(tmp_path, monkeypatch):
  monkeypatch.setattr(fileio.os, "replace",
                      lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
  with pytest.raises(OSError, match="I/O error"):
    vector_files.write_word2vec_binary(tmp_path / "vectors.bin", ["a"], np.ones((1, 2)))
  assert not _leftovers(tmp_path)


_FAKE_EXPORT = """
import sys
import numpy as np
from w2v_tf import export, model_dir
from w2v_tf.errors import run_main
words, counts = ["the", "movie", "film"], np.array([9, 5, 2])
vectors = np.arange(6, dtype=np.float32).reshape(3, 2) / 4
model_dir.load_checkpoint_vectors = lambda path: (words, counts, vectors, "ckpt-7")
export._define_flags()
sys.argv = ["w2v_tf.export", *sys.argv[1:]]
run_main(export.main)
"""


def _run_export(*args):
  run = subprocess.run([sys.executable, "-c", _FAKE_EXPORT, *args], cwd=REPO,
                       capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr
  assert re.search(r"^exported 3 x 2 vectors from ckpt-7 to ", run.stderr, re.MULTILINE)
  return run.stderr


def test_binary_writes_vocab_into_another_output_dir(tmp_path):
  """--output_dir gets vectors and vocab.tsv; the model_dir's own vocab.tsv is left as it is."""
  model_dir, out = tmp_path / "model", tmp_path / "out"
  model_dir.mkdir()
  (model_dir / "vocab.tsv").write_text("the\t9\nmovie\t5\nfilm\t2\n", encoding="utf-8")
  before = os.stat(model_dir / "vocab.tsv").st_mtime_ns

  stderr = _run_export(f"--model_dir={model_dir}", f"--output_dir={out}")
  assert str(out / "vocab.tsv") in stderr
  assert sorted(os.listdir(out)) == ["projector", "vectors.bin", "vectors.txt", "vocab.tsv"]
  vocab = Vocab.load_tsv(out / "vocab.tsv")
  assert vocab.words == ("the", "movie", "film") and vocab.counts.tolist() == [9, 5, 2]
  assert sorted(os.listdir(model_dir)) == ["vocab.tsv"]

  stderr = _run_export(f"--model_dir={model_dir}")  # into the model_dir itself
  assert "vocab.tsv" not in stderr
  assert os.stat(model_dir / "vocab.tsv").st_mtime_ns == before
  assert sorted(os.listdir(model_dir)) == ["projector", "vectors.bin", "vectors.txt",
                                           "vocab.tsv"]
  got = WordVectors.from_model_dir(model_dir)
  np.testing.assert_array_equal(got.vectors, np.arange(6, dtype=np.float32).reshape(3, 2) / 4)
  assert got.counts.tolist() == [9, 5, 2]


def test_the_format_table_holds_every_format_in_order():
  """`--format`'s names (in its messages' order) and example outputs, as before the table."""
  assert export.FORMATS == tuple(export.EXPORT_FORMATS) == (
      "word2vec_bin", "word2vec_txt", "projector", "keras", "saved_model")
  assert {name: row.example_output for name, row in export.EXPORT_FORMATS.items()} == {
      "word2vec_bin": "vectors.bin", "word2vec_txt": "vectors.txt", "projector": "projector/",
      "keras": "vectors.keras", "saved_model": "vectors_savedmodel/"}


# The binary with one more row in the table (and the checkpoint faked, as in _FAKE_EXPORT).
_EXPORT_WITH_NPY = _FAKE_EXPORT.replace("export._define_flags()", """
def npy_problem(output):
  return None if output.endswith(".npy") else "must end in .npy"
def write_npy(word_vectors, output):
  np.save(output, word_vectors.vectors)
  return output
export.EXPORT_FORMATS["npy"] = export.ExportFormat("vectors.npy", npy_problem, write_npy)
export._define_flags()""")


@pytest.mark.parametrize("args,code,message", [
    (["--format=npy", "--output={tmp}/v.npy"], 0,
     "exported 3 x 2 vectors from ckpt-7 to {tmp}/v.npy (npy)"),
    (["--format=npy"], 2, "error: --format=npy needs --output PATH (e.g. --output vectors.npy)"),
    (["--format=npy", "--output={tmp}/v.txt"], 2, "error: --output={tmp}/v.txt: must end in .npy"),
    (["--format=onnx", "--output={tmp}/v.onnx"], 2, "error: --format=onnx: give one of "
     "word2vec_bin|word2vec_txt|projector|keras|saved_model|npy"),
    (["--output={tmp}/v.npy"], 2, "error: --output={tmp}/v.npy needs --format (word2vec_bin|"
     "word2vec_txt|projector|keras|saved_model|npy); --output_dir DIR writes every format"),
])
def test_a_row_added_to_the_format_table_is_a_format_of_the_binary(tmp_path, args, code, message):
  """The table alone drives --format: its choices, example output, path check and writer."""
  argv = [f"--model_dir={tmp_path}", *(a.format(tmp=tmp_path) for a in args)]
  run = subprocess.run([sys.executable, "-c", _EXPORT_WITH_NPY, *argv], cwd=REPO,
                       capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == code, run.stderr
  assert run.stderr.strip().splitlines() == [message.format(tmp=tmp_path)]
  if code == 0:
    np.testing.assert_array_equal(np.load(tmp_path / "v.npy"),
                                  np.arange(6, dtype=np.float32).reshape(3, 2) / 4)


def test_the_format_flag_help_lists_the_table():
  run = subprocess.run([sys.executable, "-c", _EXPORT_WITH_NPY, "--helpshort"], cwd=REPO,
                       capture_output=True, text=True, timeout=300, check=False)
  help_text = " ".join((run.stdout + run.stderr).split())
  assert "instead: word2vec_bin|word2vec_txt|projector|keras|saved_model|npy (keras:" in help_text


@pytest.mark.parametrize("fmt", ["word2vec_bin", "word2vec_txt", "projector"])
def test_export_format_writes_one_format(tmp_path, vectors, fmt):
  word_vectors = WordVectors(WORDS, vectors)
  output = tmp_path / "out" / {"projector": "projector"}.get(fmt, "v.out")
  assert export.export_format(word_vectors, fmt, output) == os.fspath(output)
  if fmt == "projector":
    assert (output / "metadata.tsv").read_text(encoding="utf-8").splitlines() == WORDS
    return
  got = WordVectors.load(output)  # the format is detected from the bytes
  assert list(got.words) == WORDS
  np.testing.assert_allclose(got.vectors, vectors, atol=0 if fmt == "word2vec_bin" else 1e-6)
  assert output.read_bytes().startswith(b"6 7\n")
  with pytest.raises(UserError, match="is a directory"):
    export.export_format(word_vectors, fmt, tmp_path)


@pytest.mark.parametrize("args,message", [
    (["--format=keras"], "--format=keras needs --output PATH (e.g. --output vectors.keras)"),
    (["--output={tmp}/v.keras"], "needs --format (word2vec_bin|word2vec_txt|projector|keras|"),
    (["--format=keras", "--output={tmp}/v.h5"], "--output={tmp}/v.h5: a Keras model file must "
     "end in .keras"),
    (["--format=keras", "--output={tmp}/v.keras", "--output_dir={tmp}"], "not both"),
    (["--format=onnx", "--output={tmp}/v.onnx"], "--format=onnx: give one of word2vec_bin|"),
    (["--format=saved_model", "--output={tmp}/file.txt"], "is a file; a SavedModel is written "
     "as a directory"),
    (["--format=saved_model", "--output={tmp}/m.keras"], "a .keras file is --format=keras"),
    (["--format=word2vec_bin", "--output={tmp}"], "is a directory; give a file name"),
])
def test_binary_format_errors_are_one_line(tmp_path, args, message):
  (tmp_path / "file.txt").write_text("x")
  argv = [a.format(tmp=tmp_path) for a in args]
  run = subprocess.run([sys.executable, "-m", "w2v_tf.export", f"--model_dir={tmp_path}", *argv],
                       cwd=REPO, capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 2, run.stderr
  assert "Traceback" not in run.stderr
  lines = run.stderr.strip().splitlines()
  assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
  assert message.format(tmp=tmp_path) in lines[0]
