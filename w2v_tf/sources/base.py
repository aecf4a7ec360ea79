"""What an input format gives the corpus pass (`InputFormat`), and what the formats share.

A format checks its input (the one-line errors) and resolves its files, gives the parts of the
corpus cache key that are its own, and streams batches of raw documents for cleaning:

  (documents [b] tf.string, continues [b] bool, file [b] int32, line [b] int64)

a document being one CSV row or one line of text, or a piece of a long line whose next piece
follows (`continues`); `file` indexes the checked paths and `line` is the 1-based line of the
piece for messages (-1: found on demand, `InputFormat.where`).
"""

from __future__ import annotations

import abc
import dataclasses
import fnmatch
import glob
import os

import tensorflow as tf

from w2v_tf.errors import UserError
from w2v_tf.fileio import not_a_file

# Documents (rows, pieces of lines) cleaned together, and for text at most about this many bytes
# (so a batch of text8's 1 MiB pieces stays small). 2048 against 512: IMDB's pass 3.9 s against
# 4.4 s as text, 4.3 against 4.4 as CSV (medians of 3, AMD EPYC, 2 cores).
READ_BATCH = 2048
READ_BATCH_BYTES = 1 << 22
BATCH_SIGNATURE = (tf.TensorSpec([None], tf.string), tf.TensorSpec([None], tf.bool),
                   tf.TensorSpec([None], tf.int32), tf.TensorSpec([None], tf.int64))


@dataclasses.dataclass(frozen=True)
class CorpusSpec:
  """What the corpus is and how it is cleaned: everything that changes its tokens.

  Attributes:
    source: what the input flag names (a CSV file; a text file, folder or glob).
    input_format: the name of its format in `w2v_tf.sources.FORMATS` ('csv', 'text').
    text_column: the column holding the text (formats with columns: the CSV).
    max_documents: only the first N documents (rows / lines; 0 = all).
    stopwords: the stopword set.
    cleaning: 'imdb' (`text.clean_reviews`) or 'none' (split on whitespace).
    lowercase: with cleaning 'none', lowercase the tokens ('imdb' always does).
    max_document_tokens: cut longer documents into documents of this many tokens (0: never).
    max_vocab_size: prune the type table while counting when it holds more words (0: never).
  """
  source: str = ""
  input_format: str = "csv"
  text_column: str = "review"
  max_documents: int = 0
  stopwords: frozenset[str] = frozenset()
  cleaning: str = "imdb"
  lowercase: bool = False
  max_document_tokens: int = 10_000
  max_vocab_size: int = 10_000_000

  @property
  def name(self) -> str:
    return self.source


class InputFormat(abc.ABC):
  """One input format: how its files are found, keyed and read (see module doc).

  Attributes:
    name: its key in `w2v_tf.sources.FORMATS`.
    config_fields: the `config.DataConfig` fields that name and shape its input (a model dir
      trained on other values is refused).
    records: what its documents are called in counts ("rows", "lines").
    noun: what its documents are called in the UTF-8 report ("review(s)", "line(s)").
  """
  name = ""
  config_fields: tuple[str, ...] = ()
  records = "documents"
  noun = "document(s)"

  @abc.abstractmethod
  def check(self, spec: CorpusSpec) -> list[str]:
    """The input's files in reading order, after the one-line checks (UserError)."""

  @abc.abstractmethod
  def key_parts(self, spec: CorpusSpec, digests: list[str]) -> list[str]:
    """The strings the cache key hashes: a tag, the files' `digests` and the token options.

    An existing cache (and a model dir's data fingerprint) is found again only with the same
    parts: change them only with `corpus.CACHE_VERSION`.
    """

  @abc.abstractmethod
  def batches(self, spec: CorpusSpec, paths: list[str], errors: list) -> tf.data.Dataset:
    """Batches of raw documents (module doc) from the checked `paths`.

    A UserError of a reader written in Python ends the stream and is appended to `errors`
    (tf.data would wrap it in its own error).
    """

  def read_error(self, spec: CorpusSpec, reason: str) -> UserError:
    """The error for a record tf.data could not parse (`reason`: TensorFlow's first line)."""
    return UserError(f"{spec.name}: cannot read it ({reason})")

  def where(self, spec: CorpusSpec, document: int) -> str:
    """Where input document `document` (0-based) is, for messages that have no line yet."""
    return f"document {document + 1}"


def resolve_paths(spec: str, flag: str, wanted: str) -> list[str]:
  """The files `spec` names, in reading order.

  Args:
    spec: a file; a folder (every non-hidden regular file below it, in sorted path order); or a
      glob (`shards/*.txt.gz`, sorted).
    flag: the flag that names it, for messages ("--train_text").
    wanted: what the flag wants, for messages ("a text file, a folder of text files or a glob").

  Raises:
    UserError: nothing matches, the folder holds no file, or a match is a pipe or device.
  """
  if os.path.isdir(spec):
    paths = []
    for root, dirs, files in os.walk(spec):
      dirs[:] = sorted(d for d in dirs if not d.startswith("."))
      paths.extend(os.path.join(root, f) for f in sorted(files) if not f.startswith("."))
    paths = [p for p in paths if os.path.isfile(p)]
    # Sorted as paths ("a/1.txt" before "z.txt"), not in os.walk's files-first order.
    paths.sort(key=lambda path: os.path.relpath(path, spec).split(os.sep))
    if not paths:
      raise UserError(f"{spec}: the folder holds no file: {flag} wants {wanted}")
    return paths
  if os.path.exists(spec):
    paths = [spec]
  else:
    paths = sorted(glob_paths(spec))
    if not paths:
      what = "no files match the glob" if glob.has_magic(spec) else "no such file"
      raise UserError(f"{spec}: {what}: {flag} wants {wanted}")
    paths = [p for p in paths if not os.path.isdir(p)]
    if not paths:
      raise UserError(f"{spec}: the glob matches only folders; name the files (e.g. 'dir/*.txt')")
  for path in paths:
    if os.path.islink(path) and not os.path.exists(path):
      raise UserError(f"{path}: {not_a_file(path)}: {flag} wants {wanted}; fix or remove the "
                      "link")
    if not os.path.isfile(path):
      raise UserError(f"{path}: is a pipe or a device, not a file: the corpus is read more "
                      "than once; write it to a file first")
  return paths


def glob_paths(spec: str) -> list[str]:
  """What `glob.glob(spec, recursive=True)` matches, each real directory visited once.

  `glob`'s `**` follows directory symlinks without remembering where it has been: `d/loop -> .`
  and `d/up -> ../d` made `d/**` run for over 10 minutes to 4.3 GB (every path through the loops,
  until the OS refused the names). Here `**` walks the tree entering each directory, known by
  its (st_dev, st_ino), once: under its real name where the tree holds it, else through the
  first symlink (in sorted order) that leads to it. So the walk ends on any tree, costs one
  visit per directory, and no file is read twice through two names. Matching is glob's: `*`
  `?` `[..]` within a name, `**` any number of names, hidden names only where the pattern's
  name starts with a dot.
  """
  if "**" not in spec:
    return glob.glob(spec)  # without `**` a pattern matches a bounded depth: no loop
  parts = spec.split(os.sep)
  magic = next(i for i, part in enumerate(parts) if glob.has_magic(part))
  root = os.sep.join(parts[:magic]) or ("" if not spec.startswith(os.sep) else os.sep)
  pattern = parts[magic:]
  top = root or os.curdir
  if not os.path.isdir(top):
    return []
  hidden_wanted = any(part.startswith(".") for part in pattern)

  def visible(dirs):
    return sorted(d for d in dirs if hidden_wanted or not d.startswith("."))

  def key(path):
    stat = os.stat(path)
    return stat.st_dev, stat.st_ino

  real = set()  # the directories the tree holds under their own names (no symlink followed)
  for folder, dirs, _ in os.walk(top):
    real.add(key(folder))
    dirs[:] = visible(dirs)
  seen = {key(top)}
  matches = []
  for folder, dirs, files in os.walk(top, followlinks=True):
    relative = os.path.relpath(folder, top)
    prefix = [] if relative == os.curdir else relative.split(os.sep)
    for name in visible(dirs) + sorted(files):
      if _match(prefix + [name], pattern):
        matches.append(os.path.join(root, *prefix, name) if root else os.path.join(*prefix, name))
    entered = []
    for name in visible(dirs):
      path = os.path.join(folder, name)
      try:
        target = key(path)
      except OSError:  # a dangling or unreadable link: nothing to walk
        continue
      if target in seen or (os.path.islink(path) and target in real):
        continue  # walked already, or walked under its real name
      seen.add(target)
      entered.append(name)
    dirs[:] = entered
  if pattern == ["**"] and root:  # glob's `d/**` also names `d/` itself (a folder: left out)
    matches.append(os.path.join(root, ""))
  return matches


def _match(names: list[str], pattern: list[str]) -> bool:
  """Whether a relative path's names match a glob pattern's names (`**`: zero or more names)."""
  if not pattern:
    return not names
  head, rest = pattern[0], pattern[1:]
  if head == "**":
    # Zero names, or one non-hidden name and `**` again.
    return _match(names, rest) or (
        bool(names) and not names[0].startswith(".") and _match(names[1:], pattern))
  if not names:
    return False
  if names[0].startswith(".") and not head.startswith("."):
    return False  # glob's `*` never matches a hidden name
  return fnmatch.fnmatchcase(names[0], head) and _match(names[1:], rest)
