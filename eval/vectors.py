"""Reading word vectors: Mikolov's word2vec text/binary formats, GloVe text, a trainer model_dir.

Formats are detected from the bytes, not the file name:

* word2vec binary (the C tool's `-binary 1`, gensim `binary=True`): a `V d` header line, then
  per word its UTF-8 bytes, a space and d little-endian float32; the C tool ends each record
  with a newline, gensim does not, both are read.
* word2vec text: the `V d` header, then `word v1 ... vd` per line.
* GloVe text: no header; `word v1 ... vd` per line, d taken from the first line.

A `.gz` name means gzip. Rows are kept in file order, which all these tools write most frequent
first (what `restrict_vocab` relies on). Bad files raise `UserError` with one line that names
the file, the line (or record) and the fix: missing, unreadable, empty, a row whose number of
values disagrees with the header (or, for GloVe, the first row), a truncated binary file.
Repeated words keep their first row (a warning says how many were dropped), like gensim.

The shared command-line flags of the eval binaries (`--vectors`, `--model_dir`) are defined by
`define_vector_flags`, which, like `define_flag`, tolerates being called by several modules in
one process (tests, or the trainer importing `eval.analogy`).
"""

from __future__ import annotations

import gzip
import os
import re
import sys
import warnings
from typing import Callable, Sequence

import numpy as np

from w2v_tf.errors import UsageError, UserError

_HEADER = re.compile(rb"^\s*(\d+)\s+(\d+)\s*$")
_CONTROL = re.compile(rb"[\x00-\x1f]")  # never inside a word; common in float32 bytes

# Files the trainer writes into its model_dir (see w2v_tf/export.py).
MODEL_DIR_BINARY = "vectors.bin"
MODEL_DIR_TEXT = "vectors.txt"
MODEL_DIR_VOCAB = "vocab.tsv"


def warn(message: str) -> None:
  """Prints one `warning: ...` line on stderr (user-facing, independent of absl logging)."""
  print(f"warning: {message}", file=sys.stderr)


def _read_bytes(path: str) -> bytes:
  """Returns the whole (possibly gzipped) file; UserError for missing / unreadable / empty."""
  if not os.path.exists(path):
    raise UserError(f"vectors file {path} not found: pass --vectors with a word2vec .bin/.txt "
                    "or GloVe .txt file, or --model_dir with a trained model")
  if os.path.isdir(path):
    raise UserError(f"{path} is a directory, not a vectors file: pass it as --model_dir, or "
                    "pass --vectors with a file")
  try:
    if path.endswith(".gz"):
      with gzip.open(path, "rb") as f:
        data = f.read()
    else:
      with open(path, "rb") as f:
        data = f.read()
  except (OSError, EOFError) as e:
    reason = getattr(e, "strerror", None) or str(e)
    raise UserError(f"cannot read vectors file {path} ({reason}): check the file and its "
                    "permissions") from e
  if not data.strip():
    raise UserError(f"vectors file {path} is empty: re-export the vectors or pass another file")
  return data


def _parse_floats(text: str, dim: int, where: str) -> np.ndarray:
  """Parses exactly `dim` whitespace-separated numbers, else UserError naming `where`."""
  values = np.array(text.split(), dtype=object)
  if len(values) != dim:
    raise UserError(f"{where}: {len(values)} values, expected {dim}: the rows disagree with "
                    "the vectors' dimension (corrupt or truncated file?); re-export the vectors")
  try:
    return values.astype(np.float32)
  except ValueError as e:
    bad = next(v for v in values if not _is_float(v))
    raise UserError(f"{where}: {bad[:30]!r} is not a number: expected 'word v1 ... vd' rows "
                    "(is this a word2vec/GloVe vectors file?)") from e


def _is_float(text: str) -> bool:
  try:
    float(text)
    return True
  except ValueError:
    return False


def _parse_text(path: str, data: bytes, has_header: bool) -> tuple[list[str], np.ndarray]:
  """Parses the word2vec text format (`has_header`) or GloVe text (no header)."""
  lines = data.decode("utf-8", errors="replace").splitlines()
  if has_header:
    num_words, dim = (int(x) for x in lines[0].split())
    first = 1
  else:
    num_words, dim, first = None, len(lines[0].split()) - 1, 0
    if dim < 1:
      raise UserError(f"{path}:1: expected 'word v1 ... vd' rows (GloVe) or a 'V d' header "
                      "(word2vec): is this a vectors file?")
  words: list[str] = []
  rows: list[np.ndarray] = []
  with warnings.catch_warnings():
    warnings.simplefilter("ignore", DeprecationWarning)  # np.fromstring on a bad row
    for line_number in range(first, len(lines)):
      fields = lines[line_number].strip().replace("\t", " ")
      word, _, rest = fields.partition(" ")
      if not word:
        continue  # blank line
      try:
        row = np.fromstring(rest, dtype=np.float32, sep=" ")  # C-speed parse of one row
      except ValueError:  # numpy versions that refuse text they cannot parse
        row = None
      if row is None or row.shape[0] != dim:
        row = _parse_floats(rest, dim, f"{path}:{line_number + 1}")  # exact error message
      words.append(word)
      rows.append(row)
  if num_words is not None and len(words) != num_words:
    raise UserError(f"{path}: the header says {num_words} words but the file has {len(words)} "
                    "rows (truncated or edited?): re-export the vectors")
  return words, np.stack(rows).astype(np.float32, copy=False)


def _parse_binary(path: str, data: bytes, header_end: int, num_words: int, dim: int
                  ) -> tuple[list[str], np.ndarray]:
  """Parses the word2vec binary format after its header line."""
  row_bytes = 4 * dim
  vectors = np.empty((num_words, dim), dtype=np.float32)  # [V, d]
  words: list[str] = []
  pos = header_end
  size = len(data)
  newline_terminated = None
  for i in range(num_words):
    while pos < size and data[pos] in (0x0A, 0x0D):  # the previous record's newline
      pos += 1
    space = data.find(b" ", pos, pos + 10_000)
    if space < 0 or space + 1 + row_bytes > size:
      raise UserError(f"{path}: record {i + 1} of {num_words} (byte {pos}) runs past the end "
                      "of the file: the file is truncated or its rows disagree with the header "
                      f"({num_words} x {dim}); re-export the vectors")
    if _CONTROL.search(data, pos, space):
      raise UserError(f"{path}: record {i + 1} (byte {pos}) does not start with a word: the "
                      f"rows disagree with the header's dimension ({num_words} x {dim}) or the "
                      "file is corrupt; re-export the vectors")
    word = data[pos:space].decode("utf-8", errors="replace")
    start = space + 1
    vectors[i] = np.frombuffer(data, dtype="<f4", count=dim, offset=start)
    pos = start + row_bytes
    terminated = pos < size and data[pos] == 0x0A
    if newline_terminated is None:
      newline_terminated = terminated or pos >= size
    elif newline_terminated and not terminated and i + 1 < num_words:
      raise UserError(f"{path}: record {i + 1} ({word[:30]!r}) is not followed by a newline "
                      f"after {dim} floats: the rows disagree with the header's dimension; "
                      "re-export the vectors")
    words.append(word)
  if data[pos:].strip():
    raise UserError(f"{path}: {size - pos} bytes left after the {num_words} records the "
                    f"header announces ({num_words} x {dim}): the rows disagree with the header; "
                    "re-export the vectors")
  return words, vectors


def detect_format(data: bytes) -> str:
  """Returns "word2vec_binary", "word2vec_text" or "glove" for the start of a vectors file."""
  header_end = data.find(b"\n")
  first_line = data[:header_end if header_end >= 0 else len(data)]
  match = _HEADER.match(first_line)
  if not match:
    return "glove"
  dim = int(match.group(2))
  end = data.find(b"\n", header_end + 1)
  record = data[header_end + 1:end if end >= 0 else len(data)]
  try:
    tokens = record.decode("utf-8").split()
  except UnicodeDecodeError:
    return "word2vec_binary"
  if len(tokens) == dim + 1 and all(_is_float(t) for t in tokens[1:]):
    return "word2vec_text"
  if len(tokens) > 1 and all(_is_float(t) for t in tokens[1:]):
    return "word2vec_text"  # a text file whose first row has the wrong length: report it
  return "word2vec_binary"


def load_vectors(path: str | os.PathLike) -> tuple[list[str], np.ndarray]:
  """Reads a vectors file in word2vec binary, word2vec text or GloVe text format.

  Args:
    path: the file (`.gz` means gzip); the format is detected from its content.

  Returns:
    (words, vectors): V words in file order and float32 [V, d] vectors (row i is words[i]).
    Repeated words keep their first row only.

  Raises:
    UserError: missing, unreadable or empty file, or rows inconsistent with the header.
  """
  path = os.fspath(path)
  data = _read_bytes(path)
  fmt = detect_format(data)
  if fmt == "word2vec_binary":
    header_end = data.find(b"\n")
    num_words, dim = (int(x) for x in data[:header_end].split())
    if num_words < 1 or dim < 1:
      raise UserError(f"{path}: header says {num_words} x {dim}: no vectors in the file")
    words, vectors = _parse_binary(path, data, header_end + 1, num_words, dim)
  else:
    if fmt == "word2vec_text":
      num_words, dim = (int(x) for x in data[:data.find(b"\n")].split())
      if num_words < 1 or dim < 1:
        raise UserError(f"{path}: header says {num_words} x {dim}: no vectors in the file")
    words, vectors = _parse_text(path, data, has_header=fmt == "word2vec_text")
  return _drop_duplicates(path, words, vectors)


def _drop_duplicates(path: str, words: list[str], vectors: np.ndarray
                     ) -> tuple[list[str], np.ndarray]:
  """Keeps the first row of each word (gensim's rule), warning once if any were dropped."""
  if len(set(words)) == len(words):
    return words, vectors
  seen: set[str] = set()
  keep = []
  for i, word in enumerate(words):
    if word not in seen:
      seen.add(word)
      keep.append(i)
  warn(f"{path}: {len(words) - len(keep)} repeated words; kept the first row of each")
  return [words[i] for i in keep], vectors[keep]


def _read_vocab_words(path: str) -> list[str]:
  """Words of a header-less `word<TAB>count` file, in file order."""
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return [line.rstrip("\n").rpartition("\t")[0] or line.strip() for line in f if line.strip()]
  except OSError as e:
    raise UserError(f"cannot read {path} ({e.strerror}): check the model_dir") from e


def load_model_dir(model_dir: str | os.PathLike) -> tuple[list[str], np.ndarray]:
  """Reads the trainer's exported vectors from a model directory.

  Reads `vectors.bin` when present, else `vectors.txt`; when `vocab.tsv` is there too, checks
  that it lists the same words in the same order.

  Args:
    model_dir: the trainer's `--model_dir`.

  Returns:
    (words, vectors) as `load_vectors`.

  Raises:
    UserError: no exported vectors in the directory, or vectors and vocab.tsv disagree.
  """
  model_dir = os.fspath(model_dir)
  if not os.path.isdir(model_dir):
    raise UserError(f"model_dir {model_dir} not found: pass the trainer's --model_dir, or "
                    "--vectors with a vectors file")
  binary = os.path.join(model_dir, MODEL_DIR_BINARY)
  text = os.path.join(model_dir, MODEL_DIR_TEXT)
  if os.path.exists(binary):
    path = binary
  elif os.path.exists(text):
    path = text
  else:
    raise UserError(f"{model_dir} has no {MODEL_DIR_BINARY} or {MODEL_DIR_TEXT}: train to the "
                    "end (vectors are exported then) or pass --vectors with a vectors file")
  words, vectors = load_vectors(path)
  vocab_path = os.path.join(model_dir, MODEL_DIR_VOCAB)
  if os.path.exists(vocab_path):
    vocab = _read_vocab_words(vocab_path)
    if vocab != words:
      mismatch = next((i for i, (a, b) in enumerate(zip(vocab, words)) if a != b),
                      min(len(vocab), len(words)))
      raise UserError(f"{vocab_path} and {path} disagree at row {mismatch + 1} "
                      f"({len(vocab)} vs {len(words)} words): the model_dir mixes two exports; "
                      "re-export the model")
  return words, vectors


def unit_rows(vectors: np.ndarray) -> np.ndarray:
  """Rows scaled to unit L2 norm (all-zero rows stay zero). float32 [V, d] -> [V, d]."""
  vectors = np.asarray(vectors, dtype=np.float32)
  norms = np.linalg.norm(vectors, axis=1)  # [V]
  norms[norms == 0] = 1.0
  return vectors / norms[:, None]


# --- Shared flags -------------------------------------------------------------------------------


def define_flag(define: Callable, name: str, default, help_text: str, **kwargs) -> None:
  """Defines an absl flag unless a flag of that name already exists.

  Several eval modules (and the trainer, which imports `eval.analogy`) may define the same
  flag in one process; the first definition wins, and ours is marked `allow_override` so a
  later definition by another module (e.g. the trainer's `--model_dir`) replaces it quietly.

  Args:
    define: an absl `flags.DEFINE_*` function.
    name: flag name.
    default: default value.
    help_text: help string.
    **kwargs: passed on (e.g. `enum_values` for DEFINE_enum).
  """
  from absl import flags  # pylint: disable=import-outside-toplevel
  if name in flags.FLAGS:
    return
  define(name, default, help=help_text, allow_override=True, **kwargs)


def define_vector_flags() -> None:
  """Defines `--vectors` and `--model_dir`, shared by every eval binary."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  define_flag(flags.DEFINE_string, "vectors", None,
              "Vectors file: word2vec text or binary, or GloVe text (format detected; .gz ok). "
              "Rows are assumed most frequent first.")
  define_flag(flags.DEFINE_string, "model_dir", None,
              "A trained model directory: reads its vectors.bin (else vectors.txt) and checks "
              "vocab.tsv. Give this or --vectors.")


def load_from_flags(vectors_path: str | None, model_dir: str | None
                    ) -> tuple[list[str], np.ndarray, str]:
  """Loads the vectors named by `--vectors` / `--model_dir` (exactly one must be given).

  Args:
    vectors_path: value of --vectors.
    model_dir: value of --model_dir.

  Returns:
    (words, vectors, source): source names what was read, for reports.

  Raises:
    UsageError: neither or both flags given.
    UserError: the file or directory cannot be read.
  """
  if bool(vectors_path) == bool(model_dir):
    raise UsageError("give exactly one of --vectors=PATH (word2vec .bin/.txt or GloVe .txt) "
                     "and --model_dir=DIR (a trained model)")
  if vectors_path:
    words, vectors = load_vectors(vectors_path)
    return words, vectors, vectors_path
  words, vectors = load_model_dir(model_dir)
  return words, vectors, model_dir


def check_no_args(argv: Sequence[str]) -> None:
  """Raises UsageError for positional arguments left after flag parsing."""
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments {' '.join(argv[1:])!r}: everything is passed as "
                     "--flags (see --help)")


def find_data_file(name: str, explicit: str | None, flag: str, url: str) -> str:
  """Resolves an evaluation file: the flag, else data/NAME, else gensim's bundled copy.

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
  if explicit:
    if not os.path.exists(explicit):
      raise UserError(f"{flag} file {explicit} not found: check the path (default: data/{name})")
    return explicit
  repo_root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  candidates = [os.path.join("data", name), os.path.join(repo_root, "data", name)]
  import importlib.util  # pylint: disable=import-outside-toplevel
  spec = importlib.util.find_spec("gensim")
  if spec is not None and spec.submodule_search_locations:
    for location in spec.submodule_search_locations:
      candidates.append(os.path.join(location, "test", "test_data", name))
  for candidate in candidates:
    if os.path.exists(candidate):
      return candidate
  raise UserError(f"no {name}: put it at data/{name} (download {url}), pass {flag}=PATH, or "
                  "`pip install gensim` (which ships a copy)")


ANALOGY_METHODS = ("3cosadd", "3cosmul")


def check_query_flags(top_k: int, restrict_vocab: int, method: str) -> None:
  """Raises UsageError for --top_k < 1, --restrict_vocab < 0 or an unknown --method."""
  if top_k < 1:
    raise UsageError(f"--top_k={top_k}: must be 1 or more")
  if restrict_vocab < 0:
    raise UsageError(f"--restrict_vocab={restrict_vocab}: must be 0 (all words) or more")
  if method not in ANALOGY_METHODS:
    raise UsageError(f"--method={method}: give one of {', '.join(ANALOGY_METHODS)}")


def read_lines(path: str, what: str, hint: str) -> list[str]:
  """The lines of a UTF-8 text file; one-line UserError if it is missing or unreadable.

  Args:
    path: the file.
    what: what the file is, for messages ("analogy file").
    hint: how to fix a missing file ("pass --analogies with ...").
  """
  if not os.path.isfile(path):
    raise UserError(f"{what} {path} not found: {hint}")
  try:
    with open(path, encoding="utf-8", errors="replace") as f:
      return f.read().splitlines()
  except OSError as e:
    raise UserError(f"cannot read {what} {path} ({e.strerror}): check its permissions") from e
