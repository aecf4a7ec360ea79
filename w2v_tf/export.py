"""Exports word vectors: word2vec .txt/.bin (Mikolov's C tool format) and projector files.

The product of training is the input embedding matrix [V, d] and its vocabulary, held as a
`WordVectors`. `export_vectors` writes them in the formats other tools read: the C word2vec
text and binary formats (gensim's `KeyedVectors.load_word2vec_format`, the C `distance` /
`compute-accuracy`; written by `WordVectors.save`) and the TensorBoard embedding projector
files. `write_checkpoint_projector` labels the training checkpoints' tables for the projector
of `tensorboard --logdir model_dir` (the trainer writes it at the start of each run). `vocab.tsv` is `Vocab`'s (the trainer writes it once per run). Every file is written
through `fileio.atomic_open` (temp file + rename); a full disk raises a one-line `UserError`
and leaves the previous file in place.

As a binary, it re-exports a model dir from its newest readable checkpoint (read by
`w2v_tf.model_dir`), every format into a directory, or one format to one path (`export_format`,
through the table `EXPORT_FORMATS`; the Keras ones are `w2v_tf.keras_vectors`'):

  python -m w2v_tf.export --model_dir checkpoints/imdb [--output_dir out/vectors]
  python -m w2v_tf.export --model_dir checkpoints/imdb --format keras --output vectors.keras
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import tempfile
from typing import Callable, Sequence

import numpy as np

from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_open, disk_errors, owner_tag, remove_stale
from w2v_tf import vector_files
from w2v_tf.model_dir import (BINARY_FILE, CHECKPOINT_PROJECTOR_CONFIG,
                              CHECKPOINT_PROJECTOR_METADATA, PROJECTOR_DIR, TEXT_FILE, VOCAB_FILE)
from w2v_tf.vector_files import as_matrix, check_words
from w2v_tf.vocab import Vocab
from w2v_tf.word_vectors import WordVectors

PROJECTOR_CONFIG = "projector_config.pbtxt"
PROJECTOR_CHECKPOINT = "embedding.ckpt"
PROJECTOR_METADATA = "metadata.tsv"
PROJECTOR_VECTORS = "vectors.tsv"


def _projector_config_text(embeddings: Sequence[tuple[str, str | None]]) -> str:
  """The `ProjectorConfig` proto in text format, as `projector.visualize_embeddings` writes it:
  one `embeddings` entry per (tensor name, metadata path or None), in the order given."""
  entries = []
  for name, metadata in embeddings:
    lines = [f'  tensor_name: "{name}"'] + (
        [f'  metadata_path: "{metadata}"'] if metadata is not None else [])
    entries.append("embeddings {\n" + "".join(line + "\n" for line in lines) + "}\n")
  return "".join(entries)


def write_projector(log_dir: str | os.PathLike, words: Sequence[str], vectors: np.ndarray,
                    tensor_name: str = "embeddings", max_rows: int | None = None,
                    float_format: str = "%.6g", table=None) -> str:
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
    table: optional `tf.Variable` holding the same [V, d] values as `vectors` (the trainer's
      input table): a plain one is checkpointed as it is, without the copy a new variable would
      make (17 MB of IMDB's export, the end of the run's peak RSS).

  Returns:
    The checkpoint key of the tensor, e.g. "embeddings/.ATTRIBUTES/VARIABLE_VALUE".
  """
  import tensorflow as tf  # pylint: disable=import-outside-toplevel  # heavy; only needed here

  if not tensor_name.isidentifier():
    raise ValueError(f"tensor_name must be an identifier, got {tensor_name!r}")
  vectors = as_matrix(vectors)  # [V, d]
  check_words(words, vectors.shape[0])
  if table is not None and tuple(table.shape) != vectors.shape:
    raise ValueError(f"table has shape {tuple(table.shape)}, the vectors {vectors.shape}")
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
  remove_stale(log_dir, f".{PROJECTOR_CHECKPOINT}.")  # left by a killed export
  tmp_dir = tempfile.mkdtemp(prefix=f".{PROJECTOR_CHECKPOINT}.{owner_tag()}.", dir=log_dir)
  try:
    # Only a plain variable: a distributed table (mirrored, or a parameter server's shards)
    # gets a copy like the vectors do.
    if (isinstance(table, tf.Variable) and max_rows is None
        and not isinstance(table, tf.distribute.DistributedValues)):
      variable = table
    else:
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
    for start in range(0, len(words), vector_files.CHUNK_ROWS):
      f.write("".join(f"{word}\n" for word in words[start:start + vector_files.CHUNK_ROWS]))

  vectors_path = os.path.join(log_dir, PROJECTOR_VECTORS)
  row_format = "\t".join([float_format] * vectors.shape[1])
  with disk_errors(vectors_path), atomic_open(vectors_path, "w") as f:
    for start in range(0, len(words), vector_files.CHUNK_ROWS):
      f.write("".join(f"{row_format % tuple(row)}\n"
                      for row in vectors[start:start + vector_files.CHUNK_ROWS].tolist()))

  config_path = os.path.join(log_dir, PROJECTOR_CONFIG)
  with disk_errors(config_path), atomic_open(config_path, "w") as f:
    f.write(_projector_config_text([(checkpoint_key, PROJECTOR_METADATA)]))
  return checkpoint_key


def write_checkpoint_projector(model_dir: str | os.PathLike, words: Sequence[str],
                               counts: Sequence[int], tables: Sequence[tuple[str, bool]]) -> str:
  """Makes `tensorboard --logdir model_dir` show the checkpoints' tables labelled, in one view
  with the scalars (the event files are there too).

  The projector plugin lists every 2-D tensor of the newest checkpoint of each run directory;
  without a config beside them it showed them unlabelled and in the checkpoint's order. This
  writes `projector_config.pbtxt` (no checkpoint path in it: the plugin follows the newest
  checkpoint as training goes) naming `tables` in their order, and `projector_metadata.tsv`
  (`word<TAB>count` with a header line, as the projector reads a file of several columns).
  Tensors not named (e.g. an optimizer's slots) are still listed by the plugin, after these.

  Args:
    model_dir: the trainer's `--model_dir`.
    words, counts: the vocabulary, in id order (the tables' rows).
    tables: (checkpoint key, labelled) per table, first shown first; `labelled` when row i is
      word i (not so for hierarchical softmax's inner nodes).

  Returns:
    The path of the config.
  """
  model_dir = os.fspath(model_dir)
  check_words(words, len(counts))
  metadata_path = os.path.join(model_dir, CHECKPOINT_PROJECTOR_METADATA)
  with disk_errors(metadata_path), atomic_open(metadata_path, "w") as f:
    f.write("word\tcount\n")
    for start in range(0, len(words), vector_files.CHUNK_ROWS):
      end = start + vector_files.CHUNK_ROWS
      f.write("".join(f"{word}\t{int(count)}\n"
                      for word, count in zip(words[start:end], counts[start:end])))
  config_path = os.path.join(model_dir, CHECKPOINT_PROJECTOR_CONFIG)  # last: it names the rest
  with disk_errors(config_path), atomic_open(config_path, "w") as f:
    f.write(_projector_config_text([(key, CHECKPOINT_PROJECTOR_METADATA if labelled else None)
                                    for key, labelled in tables]))
  return config_path


def export_vectors(out_dir: str | os.PathLike, word_vectors: WordVectors,
                   projector_max_rows: int | None = None, table=None) -> dict[str, str]:
  """Writes vectors.txt, vectors.bin and projector/ into `out_dir` (not vocab.tsv: `Vocab`'s).

  Args:
    out_dir: the directory (created if missing).
    word_vectors: the vectors, frequency-sorted as in the vocabulary.
    projector_max_rows: rows for the projector (None: all).
    table: the vectors' `tf.Variable`, if they live in one (`write_projector`).

  Returns:
    Paths written, keyed "text", "binary", "projector".

  Raises:
    ValueError: a word the formats cannot hold (checked before anything is written).
    UserError: the disk is full or a file cannot be written.
  """
  out_dir = os.fspath(out_dir)
  check_words(word_vectors.words)  # before anything is written
  paths = {
      "text": os.path.join(out_dir, TEXT_FILE),
      "binary": os.path.join(out_dir, BINARY_FILE),
      "projector": os.path.join(out_dir, PROJECTOR_DIR),
  }
  word_vectors.save(paths["text"])
  word_vectors.save(paths["binary"], binary=True)
  write_projector(paths["projector"], word_vectors.words, word_vectors.vectors,
                  max_rows=projector_max_rows, table=table)
  return paths


# --- one format to one path: `--format F --output PATH` ------------------------------------------


def _file_problem(output: str) -> str | None:
  if os.path.isdir(output):
    return "is a directory; give a file name"
  if output.endswith(os.sep):  # a folder to be ("Not a directory" came from the OS)
    return "names a directory (it ends with /); give a file name, e.g. " + os.path.join(
        output, "vectors.txt")
  return None


def _projector_problem(output: str) -> str | None:
  return "is a file; the projector is written as a directory" if os.path.isfile(output) else None


def _keras_problem(output: str) -> str | None:
  from w2v_tf import keras_vectors  # pylint: disable=import-outside-toplevel  (imports Keras)
  return keras_vectors.keras_path_problem(output)


def _saved_model_problem(output: str) -> str | None:
  from w2v_tf import keras_vectors  # pylint: disable=import-outside-toplevel
  return keras_vectors.saved_model_path_problem(output)


def _write_word2vec_bin(word_vectors: WordVectors, output: str) -> str:
  word_vectors.save(output, binary=True)
  return output


def _write_word2vec_txt(word_vectors: WordVectors, output: str) -> str:
  word_vectors.save(output)
  return output


def _write_projector(word_vectors: WordVectors, output: str) -> str:
  write_projector(output, word_vectors.words, word_vectors.vectors)
  return output


def _write_keras(word_vectors: WordVectors, output: str) -> str:
  from w2v_tf import keras_vectors  # pylint: disable=import-outside-toplevel
  return keras_vectors.save_keras_model(keras_vectors.vectors_model(word_vectors), output)


def _write_saved_model(word_vectors: WordVectors, output: str) -> str:
  from w2v_tf import keras_vectors  # pylint: disable=import-outside-toplevel
  return keras_vectors.save_saved_model(keras_vectors.vectors_model(word_vectors), output)


@dataclasses.dataclass(frozen=True)
class ExportFormat:
  """One `--format`: what its output looks like, what is wrong with a target, how it is written.

  Attributes:
    example_output: a good `--output` (its suffix or trailing "/" says file or directory).
    output_problem: what is wrong with a target path (None: nothing); checked before the
      checkpoint is read, so a bad path costs nothing.
    write: writes the vectors to the path and returns the path written.
  """
  example_output: str
  output_problem: Callable[[str], str | None]
  write: Callable[[WordVectors, str], str]


# A new format is a writer and a row here: the flag's choices, the checks and the messages all
# read this table.
EXPORT_FORMATS = {
    "word2vec_bin": ExportFormat("vectors.bin", _file_problem, _write_word2vec_bin),
    "word2vec_txt": ExportFormat("vectors.txt", _file_problem, _write_word2vec_txt),
    "projector": ExportFormat("projector/", _projector_problem, _write_projector),
    "keras": ExportFormat("vectors.keras", _keras_problem, _write_keras),
    "saved_model": ExportFormat("vectors_savedmodel/", _saved_model_problem, _write_saved_model),
}
FORMATS = tuple(EXPORT_FORMATS)  # the names, in the table's order (as before the table)


def output_problem(fmt: str, output: str) -> str | None:
  """What is wrong with `output` as the target of format `fmt` (None: nothing)."""
  return EXPORT_FORMATS[fmt].output_problem(output)


def export_format(word_vectors: WordVectors, fmt: str, output: str | os.PathLike) -> str:
  """Writes `word_vectors` in one format.

  Args:
    word_vectors: the vectors.
    fmt: a key of `EXPORT_FORMATS`: word2vec_bin / word2vec_txt (a file), projector (a directory),
      keras (a `.keras` file of `keras_vectors.vectors_model`), saved_model (a directory).
    output: the file or directory.

  Returns:
    The path written.

  Raises:
    ValueError: an unknown format, or a word the word2vec formats cannot hold.
    UserError: a bad output path, a full disk, an unwritable target.
  """
  output = os.fspath(output)
  if fmt not in EXPORT_FORMATS:
    raise ValueError(f"format must be one of {tuple(EXPORT_FORMATS)}, got {fmt!r}")
  problem = output_problem(fmt, output)
  if problem:
    raise UserError(f"{output}: {problem}")
  return EXPORT_FORMATS[fmt].write(word_vectors, output)


# --- `python -m w2v_tf.export`: re-export a model dir's latest checkpoint ------------------------


def _check_flags(flag_values) -> None:
  """UsageError for a bad combination of --model_dir, --format, --output and --output_dir."""
  from w2v_tf.errors import UsageError  # pylint: disable=import-outside-toplevel
  if not flag_values.model_dir:
    raise UsageError("pass --model_dir DIR (a directory written by `python -m w2v_tf.train`)")
  fmt, output = flag_values.format, flag_values.output
  if fmt is None:
    if output:
      raise UsageError(f"--output={output} needs --format ({'|'.join(EXPORT_FORMATS)}); "
                       "--output_dir DIR writes every format")
    if os.path.exists(flag_values.output_dir or "") and not os.path.isdir(flag_values.output_dir):
      raise UsageError(f"--output_dir={flag_values.output_dir} is a file, not a directory")
    return
  if fmt not in EXPORT_FORMATS:
    raise UsageError(f"--format={fmt}: give one of {'|'.join(EXPORT_FORMATS)}")
  if not output:
    raise UsageError(f"--format={fmt} needs --output PATH (e.g. --output "
                     f"{EXPORT_FORMATS[fmt].example_output})")
  if flag_values.output_dir:
    raise UsageError("give --output_dir DIR (every format) or --format with --output PATH "
                     "(one format), not both")
  problem = output_problem(fmt, output)
  if problem:
    raise UsageError(f"--output={output}: {problem}")


def main(argv: Sequence[str]) -> None:
  """`python -m w2v_tf.export --model_dir D [--output_dir O | --format F --output P]`."""
  import sys  # pylint: disable=import-outside-toplevel

  from absl import flags  # pylint: disable=import-outside-toplevel

  from w2v_tf import model_dir  # pylint: disable=import-outside-toplevel
  from w2v_tf.errors import UsageError  # pylint: disable=import-outside-toplevel

  flag_values = flags.FLAGS
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  _check_flags(flag_values)
  words, counts, vectors, restored = model_dir.load_checkpoint_vectors(flag_values.model_dir)
  word_vectors = WordVectors(words, vectors, counts)
  if flag_values.format:
    written = export_format(word_vectors, flag_values.format, flag_values.output)
    print(f"exported {len(words):,} x {word_vectors.dim} vectors from {restored} to {written} "
          f"({flag_values.format})", file=sys.stderr)
    return
  output_dir = flag_values.output_dir or flag_values.model_dir
  paths = export_vectors(output_dir, word_vectors)
  written = [paths["binary"], paths["text"]]
  if os.path.realpath(output_dir) != os.path.realpath(flag_values.model_dir):
    # The model_dir's own vocab.tsv is already there; another output_dir gets a copy.
    written.append(os.path.join(output_dir, VOCAB_FILE))
    Vocab(word_vectors.words, word_vectors.counts).save_tsv(written[-1])
  print(f"exported {len(words):,} x {word_vectors.dim} vectors from {restored} to "
        f"{', '.join(written)} and {paths['projector']}/", file=sys.stderr)


def _define_flags() -> None:
  """The binary's flags (defined only when run as a binary: the trainer imports this module)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  flags.DEFINE_string("model_dir", None, "Model directory written by `python -m w2v_tf.train`.")
  flags.DEFINE_string("output_dir", None,
                      "Where to write every format: vectors.txt/.bin, vocab.tsv and projector/ "
                      "(default: --model_dir, when --format is not given).")
  flags.DEFINE_string("format", None,
                      "Write one format to --output instead: "
                      f"{'|'.join(EXPORT_FORMATS)} (keras: a .keras file; saved_model, "
                      "projector: a directory).")
  flags.DEFINE_string("output", None, "The file or directory --format writes.")


def run() -> None:
  """The `w2v-export` command (and `python -m w2v_tf.export`)."""
  from w2v_tf.errors import run_main  # pylint: disable=import-outside-toplevel

  _define_flags()
  run_main(main)


if __name__ == "__main__":
  run()
