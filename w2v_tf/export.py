"""Exports vectors: word2vec .txt/.bin (Mikolov's C tool format), vocab.tsv, projector files.

The product of training is the input embedding matrix [V, d] and its vocabulary. This module
writes them in the formats other tools read: the C word2vec text and binary formats (gensim's
`KeyedVectors.load_word2vec_format`, the C `distance` / `compute-accuracy`), a header-less
`word<TAB>count` vocabulary, and the TensorBoard embedding projector files. Every file is written
through `fileio.atomic_open` (temp file + rename); a full disk raises a one-line `UserError`
and leaves the previous file in place.

As a binary, it re-exports a model dir from its newest readable checkpoint:

  python -m w2v_tf.export --model_dir checkpoints/imdb [--output_dir out/vectors]
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
from typing import Sequence

import numpy as np

from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_open, disk_errors

# Rows formatted or packed per write call: bounds memory for large vocabularies.
_CHUNK_ROWS = 4096

PROJECTOR_CONFIG = "projector_config.pbtxt"
PROJECTOR_CHECKPOINT = "embedding.ckpt"
PROJECTOR_METADATA = "metadata.tsv"
PROJECTOR_VECTORS = "vectors.tsv"

_WHITESPACE = re.compile(r"\s")


def _check_words(words: Sequence[str], num_rows: int | None = None) -> None:
  """Raises ValueError for words the line-based formats cannot hold, or a length mismatch."""
  if num_rows is not None and len(words) != num_rows:
    raise ValueError(f"{len(words)} words but {num_rows} vector rows")
  for i, word in enumerate(words):
    if not isinstance(word, str) or not word or _WHITESPACE.search(word):
      raise ValueError(f"word {i} ({word!r}) is empty or contains whitespace: the word2vec "
                       "and TSV formats separate fields with spaces/tabs and lines with newlines")


def _as_matrix(vectors: np.ndarray) -> np.ndarray:
  """Returns `vectors` as a 2-D float32 array [V, d]."""
  vectors = np.asarray(vectors)
  if vectors.ndim != 2:
    raise ValueError(f"vectors must be 2-D [V, d], got shape {vectors.shape}")
  return vectors.astype(np.float32, copy=False)


def write_word2vec_text(path: str | os.PathLike, words: Sequence[str], vectors: np.ndarray,
                        float_format: str = "%.6f") -> None:
  """Writes the word2vec text format: a `V d` header, then `word v1 ... vd` per line.

  Args:
    path: output file (e.g. model_dir/vectors.txt).
    words: V words, row i of `vectors` belongs to words[i]; no whitespace inside a word.
    vectors: [V, d] floats.
    float_format: printf format of one value; "%.6f" is what the C tool writes ("%lf").
      Use "%.9g" for an exact float32 round trip.
  """
  vectors = _as_matrix(vectors)  # [V, d]
  num_words, dim = vectors.shape
  _check_words(words, num_words)
  row_format = " ".join([float_format] * dim)
  with disk_errors(path), atomic_open(path, "w") as f:
    f.write(f"{num_words} {dim}\n")
    for start in range(0, num_words, _CHUNK_ROWS):
      rows = vectors[start:start + _CHUNK_ROWS].tolist()  # Python floats format fastest
      f.write("".join(f"{word} {row_format % tuple(row)}\n"
                      for word, row in zip(words[start:start + _CHUNK_ROWS], rows)))


def write_word2vec_binary(path: str | os.PathLike, words: Sequence[str],
                          vectors: np.ndarray) -> None:
  """Writes the C word2vec binary format.

  Layout: b"V d\\n", then per word: utf-8 bytes, b" ", d little-endian float32, b"\\n".

  Args:
    path: output file (e.g. model_dir/vectors.bin).
    words: V words without whitespace.
    vectors: [V, d] floats.
  """
  vectors = np.ascontiguousarray(_as_matrix(vectors), dtype="<f4")  # [V, d]
  num_words, dim = vectors.shape
  _check_words(words, num_words)
  row_bytes = 4 * dim
  with disk_errors(path), atomic_open(path, "wb") as f:
    f.write(f"{num_words} {dim}\n".encode("ascii"))
    for start in range(0, num_words, _CHUNK_ROWS):
      block = vectors[start:start + _CHUNK_ROWS].tobytes()  # rows packed back to back
      f.write(b"".join(
          word.encode("utf-8") + b" " + block[i * row_bytes:(i + 1) * row_bytes] + b"\n"
          for i, word in enumerate(words[start:start + _CHUNK_ROWS])))


def write_vocab_tsv(path: str | os.PathLike, words: Sequence[str],
                    counts: Sequence[int] | np.ndarray) -> None:
  """Writes a header-less `word<TAB>count` file, one word per line, in the given order.

  Args:
    path: output file (e.g. model_dir/vocab.tsv).
    words: V words without whitespace.
    counts: V non-negative integer counts.
  """
  counts = np.asarray(counts)
  if counts.ndim != 1:
    raise ValueError(f"counts must be 1-D, got shape {counts.shape}")
  _check_words(words, len(counts))
  with disk_errors(path), atomic_open(path, "w") as f:
    for start in range(0, len(words), _CHUNK_ROWS):
      f.write("".join(f"{word}\t{int(count)}\n" for word, count in
                      zip(words[start:start + _CHUNK_ROWS], counts[start:start + _CHUNK_ROWS])))


def read_vocab_tsv(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
  """Reads a file written by `write_vocab_tsv`.

  Args:
    path: a `word<TAB>count` file.

  Returns:
    (words, counts): V words in file order and their counts, int64 [V].

  Raises:
    UserError: the file is missing or a line is not `word<TAB>count`.
  """
  path = os.fspath(path)
  words, counts = [], []
  try:
    with open(path, encoding="utf-8", newline="\n") as f:
      for line_number, line in enumerate(f, start=1):
        line = line.rstrip("\n")
        word, sep, count = line.rpartition("\t")
        if not sep or not word or not count.isdigit():
          raise UserError(f"{path}:{line_number}: expected 'word<TAB>count', got {line[:60]!r}")
        words.append(word)
        counts.append(int(count))
  except FileNotFoundError as e:
    raise UserError(f"vocabulary file {path} not found") from e
  except UnicodeDecodeError as e:
    raise UserError(f"{path} is not utf-8 text ({e})") from e
  return words, np.asarray(counts, dtype=np.int64)


def _projector_config_text(tensor_name: str, metadata_path: str) -> str:
  """The `ProjectorConfig` proto in text format, as `projector.visualize_embeddings` writes it."""
  return ("embeddings {\n"
          f'  tensor_name: "{tensor_name}"\n'
          f'  metadata_path: "{metadata_path}"\n'
          "}\n")


def write_projector(log_dir: str | os.PathLike, words: Sequence[str], vectors: np.ndarray,
                    tensor_name: str = "embeddings", max_rows: int | None = None,
                    float_format: str = "%.6g") -> str:
  """Writes TensorBoard embedding projector files into `log_dir`.

  `tensorboard --logdir log_dir` then shows the vectors under "Projector":
    - embedding.ckpt.{index,data-00000-of-00001}: a tf.train.Checkpoint of one variable,
      [rows, d], saved under the attribute `tensor_name`, plus the `checkpoint` state file that
      `tf.train.latest_checkpoint(log_dir)` (and so the projector plugin) looks for;
    - metadata.tsv: one word per line, no header (single column);
    - projector_config.pbtxt: names the tensor `<tensor_name>/.ATTRIBUTES/VARIABLE_VALUE`
      and metadata.tsv (relative paths, so the directory can be moved);
    - vectors.tsv: tab-separated floats, for the standalone projector.tensorflow.org (load it
      with metadata.tsv).
  `log_dir` should be dedicated to the projector (its `checkpoint` file is overwritten). The
  config is written last, so a reader that sees it also sees the files it names.

  Args:
    log_dir: output directory, created if missing.
    words: V words without whitespace.
    vectors: [V, d] floats.
    tensor_name: checkpoint attribute name of the variable (a Python identifier).
    max_rows: write only the first `max_rows` words (the most frequent ones when the vocabulary
      is frequency-sorted); None writes all.
    float_format: printf format of one value in vectors.tsv.

  Returns:
    The checkpoint key of the tensor, e.g. "embeddings/.ATTRIBUTES/VARIABLE_VALUE".
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  # heavy; only needed here

  if not tensor_name.isidentifier():
    raise ValueError(f"tensor_name must be an identifier, got {tensor_name!r}")
  vectors = _as_matrix(vectors)  # [V, d]
  _check_words(words, vectors.shape[0])
  if max_rows is not None:
    if max_rows < 1:
      raise ValueError(f"max_rows must be positive, got {max_rows}")
    words, vectors = words[:max_rows], vectors[:max_rows]  # [rows, d]
  log_dir = os.fspath(log_dir)
  with disk_errors(log_dir):
    os.makedirs(log_dir, exist_ok=True)
  checkpoint_key = f"{tensor_name}/.ATTRIBUTES/VARIABLE_VALUE"

  # The checkpoint: TF writes its files itself, so write them into a private temp directory
  # beside the target and rename each one into place (data before index: readers open the index).
  tmp_dir = tempfile.mkdtemp(prefix="." + PROJECTOR_CHECKPOINT + ".", dir=log_dir)
  try:
    variable = tf.Variable(vectors, name=tensor_name, trainable=False)  # [rows, d]
    try:
      tf.train.Checkpoint(**{tensor_name: variable}).write(
          os.path.join(tmp_dir, PROJECTOR_CHECKPOINT))
    except tf.errors.OpError as e:
      raise UserError(f"cannot write the projector checkpoint in {log_dir}: {e.message}") from e
    names = sorted(os.listdir(tmp_dir), key=lambda name: name.endswith(".index"))
    for name in names:
      target = os.path.join(log_dir, name)
      with disk_errors(target):
        os.replace(os.path.join(tmp_dir, name), target)
  finally:
    shutil.rmtree(tmp_dir, ignore_errors=True)

  state_path = os.path.join(log_dir, "checkpoint")
  with disk_errors(state_path), atomic_open(state_path, "w") as f:
    f.write(f'model_checkpoint_path: "{PROJECTOR_CHECKPOINT}"\n'
            f'all_model_checkpoint_paths: "{PROJECTOR_CHECKPOINT}"\n')

  metadata_path = os.path.join(log_dir, PROJECTOR_METADATA)
  with disk_errors(metadata_path), atomic_open(metadata_path, "w") as f:
    for start in range(0, len(words), _CHUNK_ROWS):
      f.write("".join(f"{word}\n" for word in words[start:start + _CHUNK_ROWS]))

  vectors_path = os.path.join(log_dir, PROJECTOR_VECTORS)
  row_format = "\t".join([float_format] * vectors.shape[1])
  with disk_errors(vectors_path), atomic_open(vectors_path, "w") as f:
    for start in range(0, len(words), _CHUNK_ROWS):
      f.write("".join(f"{row_format % tuple(row)}\n"
                      for row in vectors[start:start + _CHUNK_ROWS].tolist()))

  config_path = os.path.join(log_dir, PROJECTOR_CONFIG)
  with disk_errors(config_path), atomic_open(config_path, "w") as f:
    f.write(_projector_config_text(checkpoint_key, PROJECTOR_METADATA))
  return checkpoint_key


def export_all(model_dir: str | os.PathLike, words: Sequence[str],
               counts: Sequence[int] | np.ndarray, vectors: np.ndarray,
               projector_max_rows: int | None = None) -> dict[str, str]:
  """Writes every export of a trained model into `model_dir`.

  Args:
    model_dir: the model directory (created if missing).
    words: V words, frequency-sorted as in the vocabulary.
    counts: V corpus counts.
    vectors: [V, d] input embeddings.
    projector_max_rows: rows for the projector (None: all).

  Returns:
    Paths written, keyed "text", "binary", "vocab", "projector".
  """
  model_dir = os.fspath(model_dir)
  vectors = _as_matrix(vectors)  # [V, d]
  if not len(words) == len(counts) == vectors.shape[0]:
    raise ValueError(f"{len(words)} words, {len(counts)} counts, {vectors.shape[0]} vector rows")
  _check_words(words)  # before anything is written
  paths = {
      "text": os.path.join(model_dir, "vectors.txt"),
      "binary": os.path.join(model_dir, "vectors.bin"),
      "vocab": os.path.join(model_dir, "vocab.tsv"),
      "projector": os.path.join(model_dir, "projector"),
  }
  write_vocab_tsv(paths["vocab"], words, counts)
  write_word2vec_text(paths["text"], words, vectors)
  write_word2vec_binary(paths["binary"], words, vectors)
  write_projector(paths["projector"], words, vectors, max_rows=projector_max_rows)
  return paths


# --- `python -m w2v_tf.export`: re-export a model dir's latest checkpoint ------------------------


def load_checkpoint_vectors(model_dir: str, log=None) -> tuple[list[str], np.ndarray, np.ndarray,
                                                                str]:
  """The input embeddings of a model dir's newest readable checkpoint, with its vocabulary.

  Rebuilds the `Word2Vec` variables with the shapes in `model_dir/config.json` and restores only
  the model from the checkpoint (falling back to older checkpoints when the newest is damaged,
  with a warning line).

  Args:
    model_dir: a directory written by `python -m w2v_tf.train`.
    log: prints one line (warnings); default stderr.

  Returns:
    (words, counts, vectors [V, d], checkpoint path).

  Raises:
    UserError: not a model dir, vocabulary and config disagree, or no readable checkpoint.
  """
  import dataclasses  # pylint: disable=import-outside-toplevel
  import json  # pylint: disable=import-outside-toplevel
  import sys  # pylint: disable=import-outside-toplevel

  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from w2v_tf import checkpoints  # pylint: disable=import-outside-toplevel
  from w2v_tf.model import ModelConfig, Word2Vec  # pylint: disable=import-outside-toplevel

  log = log or (lambda message: print(message, file=sys.stderr, flush=True))
  if not os.path.isdir(model_dir):
    raise UserError(f"--model_dir={model_dir}: no such directory: give the --model_dir of a "
                    "training run")
  config_path = os.path.join(model_dir, "config.json")
  try:
    with open(config_path, encoding="utf-8") as f:
      model_fields = json.load(f)["model"]
    names = {field.name for field in dataclasses.fields(ModelConfig)}
    config = ModelConfig(**{k: v for k, v in model_fields.items() if k in names})
  except FileNotFoundError as e:
    raise UserError(f"{model_dir} has no config.json: not a model dir written by "
                    "`python -m w2v_tf.train`") from e
  except (OSError, ValueError, KeyError, TypeError, AttributeError) as e:
    raise UserError(f"{config_path} is unreadable ({type(e).__name__}: {e}); re-run training "
                    "to rewrite it") from e
  words, counts = read_vocab_tsv(os.path.join(model_dir, "vocab.tsv"))
  if len(words) != config.vocab_size:
    raise UserError(f"{model_dir}: vocab.tsv has {len(words)} words but config.json says "
                    f"vocab_size {config.vocab_size}: the files come from different runs")
  paths, warning = checkpoints.candidates(model_dir)
  if warning:
    log(f"warning: {warning}")
  if not paths:
    raise UserError(f"no checkpoint in {model_dir}: train first (`python -m w2v_tf.train "
                    f"--model_dir {model_dir}`)")
  model = Word2Vec(config)
  failures = []
  restored = checkpoints.restore_newest_readable(
      checkpoints.make_restore(tf.train.Checkpoint(model=model), partial=True), paths, log,
      failures)
  if restored is None:
    raise UserError(f"no readable checkpoint in {model_dir} ({len(paths)} tried, all damaged; "
                    f"newest: {failures[0]}): train again with --overwrite")
  return words, counts, model.input_embeddings.numpy(), restored


def main(argv: Sequence[str]) -> None:
  """`python -m w2v_tf.export --model_dir D [--output_dir O]`."""
  import sys  # pylint: disable=import-outside-toplevel

  from absl import flags  # pylint: disable=import-outside-toplevel

  from w2v_tf.errors import UsageError  # pylint: disable=import-outside-toplevel

  flag_values = flags.FLAGS
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  if not flag_values.model_dir:
    raise UsageError("pass --model_dir DIR (a directory written by `python -m w2v_tf.train`)")
  output_dir = flag_values.output_dir or flag_values.model_dir
  if os.path.exists(output_dir) and not os.path.isdir(output_dir):
    raise UsageError(f"--output_dir={output_dir} is a file, not a directory")
  words, counts, vectors, restored = load_checkpoint_vectors(flag_values.model_dir)
  paths = export_all(output_dir, words, counts, vectors)
  print(f"exported {len(words):,} x {vectors.shape[1]} vectors from {restored} to "
        f"{paths['binary']}, {paths['text']}, {paths['vocab']} and {paths['projector']}/",
        file=sys.stderr)


def _define_flags() -> None:
  """The binary's flags (defined only when run as a binary: the trainer imports this module)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("model_dir", None, "Model directory written by `python -m w2v_tf.train`.")
  flags.DEFINE_string("output_dir", None,
                      "Where to write vectors.txt/.bin, vocab.tsv and projector/ (default: "
                      "--model_dir).")


if __name__ == "__main__":
  from w2v_tf.errors import run_main  # pylint: disable=ungrouped-imports

  _define_flags()
  run_main(main)
