"""Word vectors as Keras layers, and as a saved model that maps strings to vectors.

`embedding_layers` turns vectors (a `WordVectors`, a model dir, or any vectors file that
`WordVectors.load` reads: ours, gensim's, the C tool's, GloVe's) into the pair a Keras user
puts at the bottom of a model: a `keras.layers.StringLookup` holding the vocabulary and a
`keras.layers.Embedding` holding the vectors, with one extra row for out-of-vocabulary words.
Only built-in Keras layers are used, so a saved model loads without this project.

Index layout (what the lookup's integers mean, i.e. the embedding's rows):
  mask_zero=False: 0 = out-of-vocabulary (OOV), 1..V = the words in file order;
  mask_zero=True:  0 = padding (the empty string maps to it; Keras masks it), 1 = OOV,
                   2..V+1 = the words.
The OOV row is zeros by default (`oov="mean"`: the mean of all vectors); a padding row is zeros.
The mask_zero=True layout is `keras.layers.TextVectorization`'s (0 = "", 1 = "[UNK]"), so
`TextVectorization(vocabulary=text_vectorization_vocabulary(source))` and that embedding give
each word its own vector.

`vectors_model` is the string -> vector model ([N] or [N, L] words -> [N, d] or [N, L, d], in
the mask_zero=True layout: "" is padding, a zero vector); `save_keras_model` writes it as a
`.keras` file (`keras.models.load_model`), `save_saved_model` as a TensorFlow SavedModel
directory (`tf.saved_model.load`) whose serving signature `serving_default` takes `words`
(tf.string of any shape [...]) and returns `{"vectors": [..., d] float32}`. Both are written
beside the target and renamed into place, so a failed write leaves the previous model.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile

import keras
import numpy as np
import tensorflow as tf

from w2v_tf.errors import UserError
from w2v_tf.fileio import disk_errors, owner_tag, remove_stale
from w2v_tf.model_dir import load_exported_vectors
from w2v_tf.word_vectors import WordVectors

OOV_CHOICES = ("zeros", "mean")
KERAS_SUFFIX = ".keras"
SAVED_MODEL_FILE = "saved_model.pb"  # what makes a directory a SavedModel
SIGNATURE_INPUT = "words"
SIGNATURE_OUTPUT = "vectors"
# TextVectorization's reserved tokens (indices 0 and 1), the mask_zero=True layout's.
PADDING_TOKEN = ""
UNKNOWN_TOKEN = "[UNK]"
# The layers of `vectors_model`, by name (`model.get_layer(...)` in a program without us).
MODEL_NAME = "word_vectors"
LOOKUP_LAYER = f"{MODEL_NAME}_lookup"
EMBEDDING_LAYER = f"{MODEL_NAME}_embedding"


def as_word_vectors(source: WordVectors | str | os.PathLike) -> WordVectors:
  """`source` itself, a model dir's exported vectors, or a vectors file (format detected).

  Raises:
    UserError: the directory or file cannot be read (see `WordVectors`).
  """
  if isinstance(source, WordVectors):
    return source
  if os.path.isdir(source):
    return load_exported_vectors(source)
  return WordVectors.load(source)


def oov_index(mask_zero: bool) -> int:
  """The lookup's index (the embedding's row) for out-of-vocabulary words."""
  return 1 if mask_zero else 0


def embedding_matrix(word_vectors: WordVectors, mask_zero: bool = False,
                     oov: str = "zeros") -> np.ndarray:
  """The embedding's rows in the lookup's index layout (see the module docstring).

  Args:
    word_vectors: V words and their [V, d] vectors.
    mask_zero: reserve row 0 for padding.
    oov: the OOV row: "zeros" or "mean" (of all V vectors).

  Returns:
    float32 [V + 1 (+ 1 with mask_zero), d].
  """
  if oov not in OOV_CHOICES:
    raise ValueError(f"oov must be one of {OOV_CHOICES}, got {oov!r}")
  vectors = word_vectors.vectors  # [V, d]
  oov_row = vectors.mean(axis=0) if oov == "mean" else np.zeros(vectors.shape[1], np.float32)
  rows = [np.zeros((1, vectors.shape[1]), np.float32)] if mask_zero else []
  return np.concatenate(rows + [oov_row[None].astype(np.float32), vectors])


def _oov_token(words) -> str:
  """A name for the OOV index that is not a word (Keras' "[UNK]" unless the file has it)."""
  vocabulary = set(words)
  token = UNKNOWN_TOKEN
  while token in vocabulary:
    token = f"[{token}]"
  return token


def embedding_layers(source: WordVectors | str | os.PathLike, trainable: bool = False,
                     mask_zero: bool = False, oov: str = "zeros", name: str | None = None
                     ) -> tuple[keras.layers.StringLookup, keras.layers.Embedding]:
  """A `StringLookup` (the vocabulary) and an `Embedding` (the vectors) for a Keras model.

  `embedding(lookup(tokens))` maps a tf.string tensor of any shape [...] to [..., d]: each word
  to its vector, an unknown word to the OOV row, and with `mask_zero` the empty string to a
  zero padding row that the embedding masks (so `GlobalAveragePooling1D` and RNNs skip it).

  Args:
    source: a `WordVectors`, a model dir (its vectors.bin, checked against vocab.tsv) or a
      vectors file (word2vec binary or text, GloVe text; `.gz` too).
    trainable: whether training updates the embedding (frozen by default).
    mask_zero: index 0 is padding, masked (Keras' `Embedding(mask_zero=True)` convention).
    oov: the OOV row, "zeros" or "mean".
    name: prefix of the layers' names (`NAME_lookup`, `NAME_embedding`); None lets Keras
      name them.

  Returns:
    (lookup, embedding); the embedding is built, `embedding.embeddings` is
    `embedding_matrix(...)`.

  Raises:
    UserError: the source cannot be read.
  """
  word_vectors = as_word_vectors(source)
  matrix = embedding_matrix(word_vectors, mask_zero, oov)  # [rows, d]
  lookup = keras.layers.StringLookup(
      vocabulary=list(word_vectors.words), num_oov_indices=1,
      mask_token=PADDING_TOKEN if mask_zero else None, oov_token=_oov_token(word_vectors.words),
      name=f"{name}_lookup" if name else None)
  embedding = keras.layers.Embedding(
      matrix.shape[0], matrix.shape[1], weights=[matrix], trainable=trainable,
      mask_zero=mask_zero, name=f"{name}_embedding" if name else None)
  return lookup, embedding


def text_vectorization_vocabulary(source: WordVectors | str | os.PathLike) -> list[str]:
  """The vocabulary in `TextVectorization`'s order: ["", "[UNK]", word 0, word 1, ...].

  Index i is row i of `embedding_layers(source, mask_zero=True)`'s embedding (and of the
  exported model's); `TextVectorization(vocabulary=...)` takes the list whole or without its
  two reserved tokens.

  Raises:
    UserError: the source cannot be read, or its vocabulary holds "[UNK]" (TextVectorization
      reserves it for unknown words, so that word could not have its own row).
  """
  words = list(as_word_vectors(source).words)
  if UNKNOWN_TOKEN in words:
    raise UserError(f"the vocabulary holds the word {UNKNOWN_TOKEN}, which TextVectorization "
                    "reserves for unknown words: use embedding_layers' StringLookup instead")
  return [PADDING_TOKEN, UNKNOWN_TOKEN, *words]


def vectors_model(source: WordVectors | str | os.PathLike, oov: str = "zeros") -> keras.Model:
  """The string -> vector model: tf.string words [...] -> float32 vectors [..., d] (frozen).

  [N] words give [N, d], [N, L] give [N, L, d] (masked where the word is "", whose vector is
  zeros). Its layers, `LOOKUP_LAYER` and `EMBEDDING_LAYER`, are `embedding_layers(source,
  mask_zero=True)`: TextVectorization's layout.

  Args:
    source: as for `embedding_layers`.
    oov: the vector unknown words get, "zeros" or "mean".
  """
  lookup, embedding = embedding_layers(source, mask_zero=True, oov=oov, name=MODEL_NAME)
  model = keras.Sequential([lookup, embedding], name=MODEL_NAME)
  # Built without an input shape: a functional model (or a Sequential built on a shape) fixes
  # the input's rank and refuses [N, L] when built for [N]; this one applies its two layers to
  # any rank, also after `keras.models.load_model`.
  model.build(None)
  return model


def keras_path_problem(path: str | os.PathLike) -> str | None:
  """What is wrong with `path` as a `.keras` output (None: nothing)."""
  path = os.fspath(path)
  if not path.endswith(KERAS_SUFFIX):
    return f"a Keras model file must end in {KERAS_SUFFIX} (e.g. vectors{KERAS_SUFFIX})"
  if os.path.isdir(path):
    return "is a directory; give a file name ending in .keras"
  return None


def saved_model_path_problem(path: str | os.PathLike) -> str | None:
  """What is wrong with `path` as a SavedModel output directory (None: nothing).

  An existing SavedModel is replaced; any other existing file or non-empty directory is
  refused rather than deleted.
  """
  path = os.fspath(path)
  if path.endswith(KERAS_SUFFIX):
    return "a SavedModel is a directory; a .keras file is --format=keras"
  if os.path.isfile(path):
    return "is a file; a SavedModel is written as a directory"
  if (os.path.isdir(path) and os.listdir(path)
      and not os.path.isfile(os.path.join(path, SAVED_MODEL_FILE))):
    return (f"is a non-empty directory without {SAVED_MODEL_FILE} (not a SavedModel): choose a "
            "new directory")
  return None


def _normal_permissions(path: str, directory: bool) -> None:
  """mkstemp / mkdtemp make 0600 / 0700: give what a plain create would (0666 / 0777 & ~umask)."""
  umask = os.umask(0)
  os.umask(umask)
  os.chmod(path, (0o777 if directory else 0o666) & ~umask)


@contextlib.contextmanager
def _write_errors(path: str):
  """A full disk, a forbidden target or a TF write error as one-line `UserError`s."""
  with disk_errors(path):
    try:
      yield
    except tf.errors.OpError as e:
      raise UserError(f"cannot write {path}: {e.message}") from e


def save_keras_model(model: keras.Model, path: str | os.PathLike) -> str:
  """Writes `model` as a `.keras` file (temp file beside it, then renamed into place).

  Returns:
    The path written.

  Raises:
    UserError: a bad path (see `keras_path_problem`), a full disk, an unwritable directory.
  """
  path = os.fspath(path)
  problem = keras_path_problem(path)
  if problem:
    raise UserError(f"{path}: {problem}")
  directory = os.path.dirname(os.path.abspath(path))
  with _write_errors(path):
    os.makedirs(directory, exist_ok=True)
    remove_stale(directory, f".{os.path.basename(path)}.", ".tmp" + KERAS_SUFFIX)  # killed ones
    fd, tmp_path = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.{owner_tag()}.",
                                    suffix=".tmp" + KERAS_SUFFIX, dir=directory)
    os.close(fd)
    try:
      model.save(tmp_path)
      _normal_permissions(tmp_path, directory=False)
      os.replace(tmp_path, path)
    finally:
      with contextlib.suppress(OSError):
        os.remove(tmp_path)
  return path


def _serve_function(model: keras.Model):
  """The signature's function: words [...] -> {"vectors": [..., d]}, for a rank known only
  when it is called (Keras layers need a known rank when traced, so the words go through flat)."""
  def serve(words):
    vectors = model(tf.reshape(words, [-1]))  # [n, d]
    shape = tf.concat([tf.shape(words), tf.shape(vectors)[-1:]], axis=0)
    return {SIGNATURE_OUTPUT: tf.reshape(vectors, shape)}
  return serve


def save_saved_model(model: keras.Model, path: str | os.PathLike) -> str:
  """Writes `model` as a SavedModel directory with a `serving_default` signature.

  The signature takes `words` (tf.string, any shape [...]) and returns
  `{"vectors": [..., d]}`; the same
  function is the `serve` attribute of `tf.saved_model.load(path)`. The directory is written
  beside `path` and renamed into place; an existing SavedModel there is replaced.

  Returns:
    The directory written.

  Raises:
    UserError: a bad path (see `saved_model_path_problem`), a full disk, an unwritable
      directory.
  """
  path = os.path.normpath(os.fspath(path))  # "out/" -> "out": the rename target
  problem = saved_model_path_problem(path)
  if problem:
    raise UserError(f"{path}: {problem}")
  archive = keras.export.ExportArchive()
  archive.track(model)
  # Keras 3.12 (the last for Python 3.10) does not find the StringLookup's table through the
  # model ("references an 'untracked' resource"); 3.13+ does. Tracked here for both.
  for layer in model.layers:
    if getattr(layer, "lookup_table", None) is not None:
      archive.track(layer.lookup_table)
  archive.add_endpoint("serve", _serve_function(model),
                       input_signature=[tf.TensorSpec(None, tf.string, name=SIGNATURE_INPUT)])
  parent = os.path.dirname(os.path.abspath(path))
  with _write_errors(path):
    os.makedirs(parent, exist_ok=True)
    remove_stale(parent, f".{os.path.basename(path)}.", ".tmp")  # of killed writers (+ .old)
    tmp_dir = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.{owner_tag()}.", suffix=".tmp",
                               dir=parent)
    old_dir = None
    try:
      archive.write_out(tmp_dir, verbose=False)  # "serving_default" = the first endpoint
      _normal_permissions(tmp_dir, directory=True)
      if os.path.isdir(path):
        old_dir = tmp_dir + ".old"
        os.replace(path, old_dir)
      try:
        os.replace(tmp_dir, path)
      except OSError:
        if old_dir:  # put the previous model back
          os.replace(old_dir, path)
          old_dir = None
        raise
    finally:
      shutil.rmtree(tmp_dir, ignore_errors=True)
      if old_dir:
        shutil.rmtree(old_dir, ignore_errors=True)
  return path
