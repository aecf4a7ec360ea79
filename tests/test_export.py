"""Tests for w2v_tf/export.py: word2vec formats (read back by gensim), vocab.tsv, projector."""

import contextlib
import errno
import os
import re
import struct

import numpy as np
import pytest

from w2v_tf import export
from w2v_tf import fileio
from w2v_tf.errors import UserError

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
  export.write_word2vec_text(path, WORDS, vectors)
  lines = path.read_text(encoding="utf-8").splitlines()
  assert lines[0] == f"{len(WORDS)} 7"
  assert lines[2].split(" ")[0] == "café" and len(lines[2].split(" ")) == 8
  kv = _load_gensim(path, binary=False)
  assert list(kv.index_to_key) == WORDS
  np.testing.assert_allclose(kv.vectors, vectors, atol=1e-5)


def test_text_exact_format_option(tmp_path, vectors):
  path = tmp_path / "vectors.txt"
  export.write_word2vec_text(path, WORDS, vectors, float_format="%.9g")
  kv = _load_gensim(path, binary=False)
  np.testing.assert_array_equal(kv.vectors, vectors)


def test_binary_round_trip_through_gensim(tmp_path, vectors):
  path = tmp_path / "vectors.bin"
  export.write_word2vec_binary(path, WORDS, vectors)
  kv = _load_gensim(path, binary=True)
  assert list(kv.index_to_key) == WORDS
  np.testing.assert_allclose(kv.vectors, vectors, atol=1e-6)


def test_binary_layout_is_byte_exact(tmp_path):
  path = tmp_path / "vectors.bin"
  export.write_word2vec_binary(path, ["a", "é"], np.array([[1.0, -2.5], [0.5, 3.0]]))
  expected = (b"2 2\n"
              + b"a " + struct.pack("<2f", 1.0, -2.5) + b"\n"
              + "é".encode("utf-8") + b" " + struct.pack("<2f", 0.5, 3.0) + b"\n")
  assert path.read_bytes() == expected


def test_large_vocab_crosses_chunk_boundary(tmp_path, monkeypatch):
  monkeypatch.setattr(export, "_CHUNK_ROWS", 3)
  words = [f"w{i}" for i in range(10)]
  vectors = np.arange(40, dtype=np.float32).reshape(10, 4) / 8  # [10, 4]
  export.write_word2vec_binary(tmp_path / "v.bin", words, vectors)
  export.write_word2vec_text(tmp_path / "v.txt", words, vectors)
  for name, binary in (("v.bin", True), ("v.txt", False)):
    kv = _load_gensim(tmp_path / name, binary=binary)
    assert list(kv.index_to_key) == words
    np.testing.assert_allclose(kv.vectors, vectors, atol=1e-6)


def test_vocab_round_trip(tmp_path):
  path = tmp_path / "vocab.tsv"
  counts = [1000, 42, 7, 7, 5, 0]
  export.write_vocab_tsv(path, WORDS, counts)
  assert path.read_text(encoding="utf-8").splitlines()[1] == "café\t42"
  words, read_counts = export.read_vocab_tsv(path)
  assert words == WORDS
  assert read_counts.dtype == np.int64
  np.testing.assert_array_equal(read_counts, counts)


def test_read_vocab_errors_name_the_line(tmp_path):
  path = tmp_path / "vocab.tsv"
  path.write_text("the\t10\nbroken line\n", encoding="utf-8")
  with pytest.raises(UserError, match=r"vocab\.tsv:2: expected 'word<TAB>count'"):
    export.read_vocab_tsv(path)
  with pytest.raises(UserError, match="not found"):
    export.read_vocab_tsv(tmp_path / "missing.tsv")


@pytest.mark.parametrize("bad", ["two words", "", "tab\there", "new\nline"])
def test_words_with_whitespace_are_refused(tmp_path, bad):
  with pytest.raises(ValueError, match="whitespace"):
    export.write_word2vec_text(tmp_path / "v.txt", ["ok", bad], np.zeros((2, 3)))
  assert not os.listdir(tmp_path)


def test_shape_mismatch_is_refused(tmp_path):
  with pytest.raises(ValueError, match="3 words but 2 vector rows"):
    export.write_word2vec_binary(tmp_path / "v.bin", ["a", "b", "c"], np.zeros((2, 3)))
  with pytest.raises(ValueError, match="2-D"):
    export.write_word2vec_binary(tmp_path / "v.bin", ["a"], np.zeros(3))


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


def test_projector_config_parses_as_projector_proto(tmp_path, vectors):
  projector = pytest.importorskip("tensorboard.plugins.projector")
  text_format = pytest.importorskip("google.protobuf.text_format")
  export.write_projector(tmp_path, WORDS, vectors, tensor_name="emb")
  config = text_format.Parse((tmp_path / "projector_config.pbtxt").read_text(encoding="utf-8"),
                             projector.ProjectorConfig())
  assert config.embeddings[0].tensor_name == "emb/.ATTRIBUTES/VARIABLE_VALUE"
  assert config.embeddings[0].metadata_path == "metadata.tsv"


def test_projector_max_rows_and_rewrite(tmp_path, vectors):
  tf = pytest.importorskip("tensorflow")
  export.write_projector(tmp_path, WORDS, vectors, max_rows=4)
  export.write_projector(tmp_path, WORDS, vectors, max_rows=3)  # rewriting replaces in place
  assert (tmp_path / "metadata.tsv").read_text(encoding="utf-8").splitlines() == WORDS[:3]
  assert len((tmp_path / "vectors.tsv").read_text(encoding="utf-8").splitlines()) == 3
  variables = dict(tf.train.list_variables(os.fspath(tmp_path / "embedding.ckpt")))
  assert variables["embeddings/.ATTRIBUTES/VARIABLE_VALUE"] == [3, 7]


def test_export_all(tmp_path, vectors):
  counts = [60, 50, 40, 30, 20, 10]
  paths = export.export_all(tmp_path / "model", WORDS, counts, vectors)
  assert sorted(os.listdir(tmp_path / "model")) == ["projector", "vectors.bin", "vectors.txt",
                                                    "vocab.tsv"]
  assert export.read_vocab_tsv(paths["vocab"])[0] == WORDS
  np.testing.assert_allclose(_load_gensim(paths["binary"], binary=True).vectors, vectors)
  np.testing.assert_allclose(_load_gensim(paths["text"], binary=False).vectors, vectors,
                             atol=1e-5)
  assert os.path.isfile(os.path.join(paths["projector"], "projector_config.pbtxt"))


def test_export_all_checks_before_writing(tmp_path, vectors):
  with pytest.raises(ValueError, match="6 words, 5 counts"):
    export.export_all(tmp_path / "model", WORDS, [1] * 5, vectors)
  assert not (tmp_path / "model").exists()


def _raise_enospc(*args, **kwargs):
  raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))


@pytest.mark.parametrize("binary", [False, True])
def test_disk_full_on_rename_keeps_old_file(tmp_path, monkeypatch, vectors, binary):
  path = tmp_path / ("vectors.bin" if binary else "vectors.txt")
  path.write_bytes(b"old contents")
  monkeypatch.setattr(fileio.os, "replace", _raise_enospc)
  write = export.write_word2vec_binary if binary else export.write_word2vec_text
  with pytest.raises(UserError, match=r"disk full.*vectors\.(bin|txt)") as info:
    write(path, WORDS, vectors)
  assert str(path) in str(info.value)
  assert path.read_bytes() == b"old contents"
  assert not _leftovers(tmp_path)


def test_disk_full_mid_write_keeps_old_file(tmp_path, monkeypatch):
  """The write itself fails part way (what a full disk does): old file kept, no temp left."""
  path = tmp_path / "vocab.tsv"
  path.write_text("old\t1\n", encoding="utf-8")
  monkeypatch.setattr(export, "_CHUNK_ROWS", 2)
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

  monkeypatch.setattr(export, "atomic_open",
                      contextlib.contextmanager(failing_atomic_open))
  with pytest.raises(UserError, match="disk full while writing .*vocab.tsv"):
    export.write_vocab_tsv(path, WORDS, [1] * len(WORDS))
  assert path.read_text(encoding="utf-8") == "old\t1\n"
  assert not _leftovers(tmp_path)


class _ExplodingWords(list):
  """A word list whose second chunk raises: an error after part of the file is written."""

  def __getitem__(self, index):
    if isinstance(index, slice) and index.start:
      raise RuntimeError("boom")
    return super().__getitem__(index)


@pytest.mark.parametrize("write", [export.write_word2vec_text, export.write_word2vec_binary])
def test_exception_mid_write_leaves_nothing(tmp_path, monkeypatch, write):
  """Neither a file under the final name nor a temp file survives an error mid-write."""
  monkeypatch.setattr(export, "_CHUNK_ROWS", 1)
  with pytest.raises(RuntimeError, match="boom"):
    write(tmp_path / "vectors.out", _ExplodingWords(["a", "b"]), np.zeros((2, 3)))
  assert os.listdir(tmp_path) == []


def test_other_os_errors_pass_through(tmp_path, monkeypatch):
  monkeypatch.setattr(fileio.os, "replace",
                      lambda *a: (_ for _ in ()).throw(OSError(errno.EIO, "I/O error")))
  with pytest.raises(OSError, match="I/O error"):
    export.write_vocab_tsv(tmp_path / "vocab.tsv", ["a"], [1])
  assert not _leftovers(tmp_path)
