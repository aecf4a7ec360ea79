"""Command-line helpers of the eval binaries: the shared flags, loading vectors, argument checks.

Importing this module defines no flag: each binary calls `define_vector_flags` (and defines its
own flags) only where `python -m eval.NAME` runs it, under `if __name__ == "__main__":`, so the
library functions of eval/ can be imported anywhere (the trainer, benchmarks, tests).
"""

from __future__ import annotations

import importlib
import importlib.util
import os
from typing import Sequence

from absl import flags
import numpy as np

from w2v_tf import data_home
from w2v_tf.errors import UsageError, UserError, warn
from w2v_tf.fileio import not_a_file
from w2v_tf.model_dir import load_exported_vectors
from w2v_tf.word_vectors import ANALOGY_METHODS, WordVectors

_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def define_vector_flags() -> None:
  """Defines `--vectors`, `--model_dir` and `--drop_nonfinite`, shared by every eval binary."""
  flags.DEFINE_string("vectors", None,
                      "Vectors file: word2vec text or binary, or GloVe text (format detected; "
                      ".gz ok). Rows are assumed most frequent first.")
  flags.DEFINE_string("model_dir", None,
                      "A trained model directory: reads its vectors.bin (else vectors.txt) and "
                      "checks vocab.tsv. Give this or --vectors.")
  flags.DEFINE_boolean("drop_nonfinite", False,
                       "Leave out vector rows holding NaN or infinity (one warning says how "
                       "many) instead of refusing the file.")


def load_from_flags(vectors_path: str | None, model_dir: str | None,
                    drop_nonfinite: bool = False) -> tuple[WordVectors, str]:
  """Loads the vectors named by `--vectors` / `--model_dir` (exactly one must be given).

  Args:
    vectors_path: value of --vectors.
    model_dir: value of --model_dir.
    drop_nonfinite: value of --drop_nonfinite (else a row with NaN / inf is an error).

  Returns:
    (word vectors, source): source names what was read, for reports.

  Raises:
    UsageError: neither or both flags given.
    UserError: the file or directory cannot be read, or a row is not finite.
  """
  if bool(vectors_path) == bool(model_dir):
    raise UsageError("give exactly one of --vectors=PATH (word2vec .bin/.txt or GloVe .txt) "
                     "and --model_dir=DIR (a trained model)")
  if vectors_path:
    loaded, source = WordVectors.load(vectors_path, drop_nonfinite), vectors_path
  else:
    loaded, source = load_exported_vectors(model_dir, drop_nonfinite), model_dir
  warn_zero_rows(loaded, source)
  return loaded, source


def warn_zero_rows(word_vectors: WordVectors, source: str) -> None:
  """One warning when some rows are all zeros: their cosine with any word is 0, a made-up score.

  A zero vector has no direction; the scores it takes part in (a neighbour at cosine 0, a
  word pair at similarity 0) say nothing about the word, so the user is told once.
  """
  zero = ~np.any(word_vectors.vectors, axis=1)  # [V]
  if zero.any():
    first = int(np.argmax(zero))
    warn(f"{source}: {int(zero.sum()):,} of {len(zero):,} rows are all zeros (the first is row "
         f"{first + 1}, {word_vectors.words[first][:30]!r}): a zero vector has no direction, so "
         "its cosine with any word is 0 and says nothing; retrain or drop those words")


def check_no_args(argv: Sequence[str]) -> None:
  """Raises UsageError for positional arguments left after flag parsing."""
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {' '.join(argv[1:])!r}: everything is passed as "
                     "--flags (see --help)")


def check_query_flags(top_k: int, restrict_vocab: int, method: str) -> None:
  """Raises UsageError for --top_k < 1, --restrict_vocab < 0 or an unknown --method."""
  if top_k < 1:
    raise UsageError(f"--top_k={top_k}: must be 1 or more")
  if restrict_vocab < 0:
    raise UsageError(f"--restrict_vocab={restrict_vocab}: must be 0 (all words) or more")
  if method not in ANALOGY_METHODS:
    raise UsageError(f"--method={method}: give one of {', '.join(ANALOGY_METHODS)}")


def find_data_file(name: str, explicit: str | None, flag: str, url: str) -> str:
  """Resolves an evaluation file: the flag, else the data folder's NAME (`w2v_tf.data_home`),
  else gensim's bundled copy.

  Args:
    name: file name, e.g. "questions-words.txt".
    explicit: the flag's value when the user gave one (None: use the defaults).
    flag: the flag's name, for the message.
    url: where to download the file, for the message.

  Returns:
    An existing path.

  Raises:
    UserError: an explicit path is missing, or no default copy exists.
  """
  default = data_home.path(name)
  if explicit:
    if not os.path.isfile(explicit):
      raise UserError(f"{flag} file {explicit} {not_a_file(explicit)}: check the path "
                      f"(default: {default})")
    return explicit
  candidates = [default, os.path.join(_REPO_ROOT, "data", name)]
  spec = importlib.util.find_spec("gensim")  # finds the package without importing it
  if spec is not None and spec.submodule_search_locations:
    for location in spec.submodule_search_locations:
      candidates.append(os.path.join(location, "test", "test_data", name))
  for candidate in candidates:
    if os.path.exists(candidate):
      return candidate
  raise UserError(f"no {name}: fetch it with `python -m w2v_tf.get_data --skip_imdb` (into "
                  f"{default}; or download {url}), pass {flag}=PATH, or `pip install gensim` "
                  "(which ships a copy)")


def run(main, define_flags) -> None:
  """What `python -m eval.NAME` runs: the binary's flags, then `main` with one-line errors."""
  from w2v_tf.errors import run_main  # pylint: disable=import-outside-toplevel
  define_flags()
  run_main(main)


def _command(name: str):
  """The console-script entry point of `python -m eval.NAME` (see pyproject.toml).

  This package is `eval` in a checkout and `w2v_tf.eval` in the wheel (one namespace installed),
  so the binary is found relative to it.
  """
  def command() -> None:
    binary = importlib.import_module(f"{__package__}.{name}")
    run(binary.main, binary.define_flags)
  command.__doc__ = f"The command that runs `python -m eval.{name}`."
  return command


analogy_command = _command("analogy")
similarity_command = _command("similarity")
neighbors_command = _command("neighbors")
sentiment_command = _command("sentiment")
