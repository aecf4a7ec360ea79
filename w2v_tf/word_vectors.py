"""Trained word vectors apart from the model, as gensim's `KeyedVectors` is to its `Word2Vec`.

`WordVectors` holds the words (most frequent first), their float32 vectors and, when known,
their corpus counts. It reads and writes the word2vec text and binary formats (and reads GloVe
text; see `w2v_tf.vector_files`), reads a trainer's model_dir, and answers cosine queries:
`most_similar` for one word or vector, `nearest` for a batch of rows (the trainer's
per-epoch neighbours), `analogy` for "a : b :: c : ?". Every nearest-neighbour query of the
project goes through `WordVectors._top`, so ties and exclusions are decided in one place:
best score first, ties by row (most frequent word first).

Loading (`load`, `from_model_dir`) refuses rows holding NaN or infinity, naming the first one
(a NaN row makes every cosine with it NaN, which silently scored 0.07% on analogies), unless
asked to drop those rows (`drop_nonfinite`, the eval binaries' `--drop_nonfinite`).
"""

from __future__ import annotations

import functools
import os
from typing import Iterable, Sequence

import numpy as np

from w2v_tf import vector_files
from w2v_tf.errors import UserError, warn

ANALOGY_METHODS = ("3cosadd", "3cosmul")
_COSMUL_EPSILON = 1e-6  # gensim's most_similar_cosmul


def unit_rows(vectors: np.ndarray) -> np.ndarray:
  """Rows scaled to unit L2 norm (all-zero rows stay zero). float32 [V, d] -> [V, d]."""
  vectors = np.asarray(vectors, dtype=np.float32)
  # No [V, d] temporary of squares (np.linalg.norm makes one: 16 MiB of peak RSS for IMDB's
  # table at every epoch end).
  norms = np.sqrt(np.einsum("ij,ij->i", vectors, vectors))  # [V]
  norms[norms == 0] = 1.0
  return vectors / norms[:, None]


def candidate_lookup(vectors: np.ndarray, words: Sequence[str], restrict_vocab: int = 0,
                     case_insensitive: bool = True):
  """What the evaluators (and gensim's) look words up in.

  Args:
    vectors: [V, d] rows of `words`.
    words: V words, most frequent first.
    restrict_vocab: only the first N words are candidates (0: all).
    case_insensitive: fold words to upper case (gensim and compute-accuracy do).

  Returns:
    (vectors as contiguous float32 [V, d], N, fold: str -> str, {folded word: row}), where a
    folded word maps to its first (most frequent) case variant among the first N rows.
  """
  vectors = np.ascontiguousarray(vectors, dtype=np.float32)
  if vectors.ndim != 2 or vectors.shape[0] != len(words):
    raise ValueError(f"vectors {vectors.shape} do not match {len(words)} words")
  n = len(words) if restrict_vocab <= 0 else min(restrict_vocab, len(words))
  fold = str.upper if case_insensitive else (lambda w: w)
  ok_vocab: dict[str, int] = {}
  for i in range(n):
    ok_vocab.setdefault(fold(words[i]), i)  # first (most frequent) case variant wins
  return vectors, n, fold, ok_vocab


def finite_rows(source: str, words: Sequence[str], vectors: np.ndarray,
                counts: np.ndarray | None, drop: bool
                ) -> tuple[Sequence[str], np.ndarray, np.ndarray | None]:
  """Refuses (or, with `drop`, removes with one warning) rows holding NaN or infinity.

  Args:
    source: the file read, named in the messages.
    words: V words; vectors: [V, d]; counts: [V] or None.
    drop: drop the non-finite rows instead of refusing the file.

  Returns:
    (words, vectors, counts) without the non-finite rows (the inputs when all are finite).

  Raises:
    UserError: some row is not finite and `drop` is off (names the first: row and word), or
      every row is.
  """
  bad = ~np.isfinite(vectors).all(axis=1)  # [V]
  if not bad.any():
    return words, vectors, counts
  first = int(np.argmax(bad))
  value = vectors[first][~np.isfinite(vectors[first])][0]
  count, first_row = f"{int(bad.sum()):,} of {len(words):,} rows", (
      f"row {first + 1} ({words[first][:30]!r}, value {value})")
  if bad.all():
    raise UserError(f"{source}: all {len(words):,} rows hold NaN or infinity (the first is "
                    f"{first_row}): the vectors are unusable (did training diverge?); train "
                    "again, e.g. with a lower --learning_rate")
  if not drop:
    raise UserError(f"{source}: {count} hold NaN or infinity, the first is {first_row}: "
                    "re-export or retrain the vectors (did training diverge?), or pass "
                    "--drop_nonfinite to leave those rows out")
  warn(f"{source}: left out {count} that hold NaN or infinity (the first is {first_row}), "
       "as --drop_nonfinite asks")
  keep = np.flatnonzero(~bad)
  return ([words[i] for i in keep], vectors[keep],
          None if counts is None else np.asarray(counts)[keep])


class WordVectors:
  """Words, their vectors and counts; cosine queries and the word2vec file formats.

  Attributes:
    words: [V] words, most frequent first (what `restrict` and `restrict=N` rely on).
    vectors: float32 [V, d]; row i belongs to words[i].
    counts: int64 [V] corpus counts, or None when unknown (a vectors file has none).
    index: word -> row.
    unit_vectors: float32 [V, d] rows scaled to unit norm (zero rows stay zero); computed on
      first use and kept.
  """

  def __init__(self, words: Sequence[str], vectors: np.ndarray,
               counts: Sequence[int] | np.ndarray | None = None):
    """Checks and holds the parts.

    Args:
      words: V distinct words.
      vectors: [V, d] numbers (converted to float32).
      counts: V non-negative counts, or None.

    Raises:
      ValueError: shapes disagree, or a word appears twice.
    """
    self.words = tuple(words)
    self.vectors = vector_files.as_matrix(vectors)  # [V, d]
    num_words = len(self.words)
    if num_words != self.vectors.shape[0]:
      raise ValueError(f"{num_words} words but {self.vectors.shape[0]} vector rows")
    if counts is not None:
      counts = np.asarray(counts, dtype=np.int64)
      if counts.shape != (num_words,):
        raise ValueError(f"{num_words} words, {len(counts) if counts.ndim == 1 else counts.shape}"
                         f" counts, {self.vectors.shape[0]} vector rows")
    self.counts = counts
    self.index = {word: i for i, word in enumerate(self.words)}
    if len(self.index) != num_words:  # the index holds a repeated word's last row, not its first
      repeated = next(w for i, w in enumerate(self.words) if self.index[w] != i)
      raise ValueError(f"word {repeated!r} appears more than once: rows must be distinct words "
                       "(files keep the first row of a repeated word)")

  def __len__(self) -> int:
    return len(self.words)

  def __contains__(self, word: str) -> bool:
    return word in self.index

  def __getitem__(self, word: str) -> np.ndarray:
    """The vector [d] of `word` (KeyError when absent)."""
    return self.vectors[self.index[word]]

  def __repr__(self) -> str:
    counts = "with counts" if self.counts is not None else "no counts"
    return f"WordVectors({len(self)} x {self.dim}, {counts})"

  @property
  def dim(self) -> int:
    """d, the vectors' dimension."""
    return int(self.vectors.shape[1])

  @functools.cached_property
  def unit_vectors(self) -> np.ndarray:
    """float32 [V, d]: `vectors` scaled to unit norm, zero rows left zero (kept once computed)."""
    return unit_rows(self.vectors)

  def row(self, word: str) -> int:
    """The row of `word`.

    Raises:
      KeyError: the word is not in the vocabulary.
    """
    return self.index[word]

  def restrict(self, n: int) -> "WordVectors":
    """The first `n` words (the most frequent ones); n <= 0 or n >= V keeps all.

    The arrays are views of this object's, not copies.
    """
    if n <= 0 or n >= len(self):
      return self
    counts = None if self.counts is None else self.counts[:n]
    result = WordVectors(self.words[:n], self.vectors[:n], counts)
    if "unit_vectors" in self.__dict__:  # already computed: share it
      result.__dict__["unit_vectors"] = self.unit_vectors[:n]
    return result

  # --- Files -------------------------------------------------------------------------------------

  @classmethod
  def load(cls, path: str | os.PathLike, drop_nonfinite: bool = False) -> "WordVectors":
    """Reads a word2vec binary, word2vec text or GloVe text file (format from its bytes).

    Args:
      path: the file (`.gz` means gzip).
      drop_nonfinite: leave out rows holding NaN or infinity (one warning) instead of refusing.

    Returns:
      The vectors in file order, without counts. A repeated word keeps its first row (with a
      warning line on stderr).

    Raises:
      UserError: one line naming the file and the problem (missing, unreadable, empty, rows
        inconsistent with the header, truncated, not UTF-8, a row that is not finite).
    """
    words, vectors = vector_files.read_vectors(path)
    words, vectors, _ = finite_rows(os.fspath(path), words, vectors, None, drop_nonfinite)
    return cls(words, vectors)

  def save(self, path: str | os.PathLike, binary: bool = False,
           float_format: str = "%.6f") -> None:
    """Writes the word2vec format (atomically: a failed write leaves the old file).

    Args:
      path: output file.
      binary: the C tool's binary layout (else text).
      float_format: printf format of a value in the text format; "%.6f" is the C tool's,
        "%.9g" round-trips float32 exactly.

    Raises:
      ValueError: a word is empty or holds whitespace.
      UserError: the disk is full or the file cannot be written.
    """
    if binary:
      vector_files.write_word2vec_binary(path, self.words, self.vectors)
    else:
      vector_files.write_word2vec_text(path, self.words, self.vectors, float_format)

  @classmethod
  def from_model_dir(cls, model_dir: str | os.PathLike,
                     drop_nonfinite: bool = False) -> "WordVectors":
    """The vectors a trainer exported into its model dir: `w2v_tf.model_dir.load_exported_vectors`.

    Raises:
      UserError: no exported vectors in the directory, vectors and vocab.tsv disagree, or a row
        is not finite (unless `drop_nonfinite`).
    """
    # Imported here: w2v_tf.model_dir builds on this module.
    from w2v_tf.model_dir import load_exported_vectors  # pylint: disable=import-outside-toplevel
    return load_exported_vectors(model_dir, drop_nonfinite)

  # --- Cosine queries ----------------------------------------------------------------------------

  def _candidates(self, restrict: int) -> int:
    """How many leading rows may be answers: `restrict`, or all when it is 0 (or too big)."""
    return len(self) if restrict <= 0 else min(restrict, len(self))

  def _rows(self, words: Iterable[str]) -> set[int]:
    """The rows of those of `words` that are in the vocabulary."""
    return {self.index[w] for w in words if w in self.index}

  def _top(self, scores: np.ndarray, top_k: int, exclude: set[int]) -> list[tuple[str, float]]:
    """The `top_k` best rows by score, best first, skipping `exclude`; ties go to the lower row.

    The same order as a stable full sort, at the cost of a partition: every row scoring at
    least the (top_k + excluded)-th best is sorted, so rows tied at the cut are all seen.

    Args:
      scores: [n] scores of the first n rows.
      top_k: answers wanted.
      exclude: rows never returned.
    """
    n = scores.shape[0]
    width = min(n, top_k + len(exclude))
    if width <= 0:
      return []
    if width < n:
      threshold = np.partition(scores, n - width)[n - width]  # the width-th best score
      candidates = np.flatnonzero(scores >= threshold)
    else:
      candidates = np.arange(n)
    order = candidates[np.argsort(-scores[candidates], kind="stable")]
    result = []
    for i in order:
      if int(i) in exclude:
        continue
      result.append((self.words[i], float(scores[i])))
      if len(result) == top_k:
        break
    return result

  def most_similar(self, query: str | np.ndarray, top_k: int = 10, restrict: int = 0,
                   exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
    """The words nearest to a word or a vector by cosine (gensim's `most_similar(query)`).

    Args:
      query: a word (never its own answer) or a vector [d].
      top_k: answers wanted.
      restrict: answers come from the first N rows only (0 = all); the query word may be any.
      exclude: further words never returned (e.g. case variants of the query).

    Returns:
      [(word, cosine)], best first, at most `top_k`.

    Raises:
      KeyError: `query` is a word that is not in the vocabulary.
      ValueError: `query` is a vector of another dimension.
    """
    excluded = self._rows(exclude)
    if isinstance(query, str):
      row = self.row(query)
      excluded.add(row)
      direction = self.unit_vectors[row]  # [d]
    else:
      direction = np.asarray(query, dtype=np.float32).reshape(-1)
      if direction.shape[0] != self.dim:
        raise ValueError(f"query vector has {direction.shape[0]} values, expected {self.dim}")
      direction = unit_rows(direction[None])[0]
    scores = self.unit_vectors[:self._candidates(restrict)] @ direction  # [n]
    return self._top(scores, top_k, excluded)

  def nearest(self, ids: np.ndarray, top_k: int, restrict: int = 0
              ) -> list[list[tuple[str, float]]]:
    """The nearest words of several rows at once, each row excluded from its own answers.

    Args:
      ids: [m] int rows.
      top_k: answers per row.
      restrict: answers come from the first N rows only (0 = all).

    Returns:
      m lists of (word, cosine), best first; list i answers ids[i].
    """
    ids = np.asarray(ids, dtype=np.int64).reshape(-1)
    unit = self.unit_vectors
    scores = unit[ids] @ unit[:self._candidates(restrict)].T  # [m, n]
    return [self._top(row_scores, top_k, {int(i)}) for row_scores, i in zip(scores, ids)]

  def analogy(self, a: str, b: str, c: str, top_k: int = 10, method: str = "3cosadd",
              restrict: int = 0, exclude: Iterable[str] = ()) -> list[tuple[str, float]]:
    """Answers "a is to b as c is to ?" (man king woman -> queen); a, b, c are never answers.

    Args:
      a, b, c: the three query words.
      top_k: answers wanted.
      method: "3cosadd" (cosine with b - a + c, Mikolov et al. 2013) or "3cosmul"
        (cos'(x, b) cos'(x, c) / (cos'(x, a) + 1e-6) with cos' = (1 + cos) / 2, Levy &
        Goldberg 2014).
      restrict: answers come from the first N rows only (0 = all).
      exclude: further words never returned.

    Returns:
      [(word, score)], best first.

    Raises:
      KeyError: a query word is not in the vocabulary.
      ValueError: an unknown method.
    """
    if method not in ANALOGY_METHODS:
      raise ValueError(f"method must be one of {ANALOGY_METHODS}, got {method!r}")
    rows = [self.row(w) for w in (a, b, c)]
    unit = self.unit_vectors[:self._candidates(restrict)]  # [n, d]
    ua, ub, uc = (self.unit_vectors[r] for r in rows)
    if method == "3cosadd":
      query = ub - ua + uc
      query /= max(float(np.linalg.norm(query)), 1e-12)
      scores = unit @ query  # [n]
    else:
      cos_a, cos_b, cos_c = ((1 + unit @ u) / 2 for u in (ua, ub, uc))  # [n] each
      scores = cos_b * cos_c / (cos_a + _COSMUL_EPSILON)
    return self._top(scores, top_k, self._rows(exclude) | set(rows))
