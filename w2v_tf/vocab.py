"""Vocabulary: min_count, frequency-sorted ids, vocab.tsv, and Mikolov's subsampling keep-probabilities.

`Vocab.save_tsv` / `Vocab.load_tsv` are the only writer and reader of `vocab.tsv`.

Ids are by descending count, ties alphabetical (id 0 = most frequent word), as word2vec and
gensim order their vocabularies. Subsampling follows the original C tool and gensim
(Mikolov et al. 2013, "Distributed Representations of Words and Phrases"):

  keep(w) = min(1, (sqrt(c_w / (t * N)) + 1) * (t * N) / c_w)

with `c_w` the word's count, `N` the total count of in-vocabulary tokens and `t` the
`subsample` threshold (0 turns subsampling off).
"""

from __future__ import annotations

import dataclasses
import os
from typing import Sequence

import numpy as np

from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_open, disk_errors


@dataclasses.dataclass(frozen=True)
class Vocab:
  """Frequency-sorted vocabulary.

  Attributes:
    words: [V] words, most frequent first.
    counts: [V] int64 corpus counts, non-increasing.
  """
  words: tuple[str, ...]
  counts: np.ndarray

  def __len__(self) -> int:
    return len(self.words)

  @property
  def total_count(self) -> int:
    """N: the number of in-vocabulary tokens in the corpus."""
    return int(self.counts.sum())

  def keep_probabilities(self, subsample: float) -> np.ndarray:
    """[V] float32 probability of keeping each word's occurrences (1 when `subsample` is 0)."""
    if subsample <= 0:
      return np.ones(len(self), np.float32)
    threshold_count = subsample * self.total_count  # t * N
    counts = self.counts.astype(np.float64)
    keep = (np.sqrt(counts / threshold_count) + 1.0) * threshold_count / counts
    return np.minimum(keep, 1.0).astype(np.float32)

  def save_tsv(self, path: str | os.PathLike) -> None:
    """Writes `word<TAB>count` lines, header-less, in id order (atomically)."""
    with disk_errors(path), atomic_open(path, "w") as f:
      for word, count in zip(self.words, self.counts):
        f.write(f"{word}\t{int(count)}\n")

  @classmethod
  def load_tsv(cls, path: str | os.PathLike) -> "Vocab":
    """Reads a file written by `save_tsv` (blank lines are skipped).

    Args:
      path: a header-less `word<TAB>count` file.

    Returns:
      The vocabulary, in file order.

    Raises:
      UserError: one line naming the file (and line): missing or unreadable file, bytes that
        are not UTF-8, a line that is not `word<TAB>count`.
    """
    path = os.fspath(path)
    words, counts = [], []
    try:
      with open(path, "rb") as f:
        # Lines are decoded one by one so that an encoding error names its line.
        for line_number, raw in enumerate(f, 1):
          try:
            line = raw.decode("utf-8").rstrip("\r\n")
          except UnicodeDecodeError as e:
            raise UserError(f"{path}:{line_number}: not UTF-8 text (byte {e.start} of the line): "
                            "vocab.tsv is written as UTF-8; re-export or re-train") from e
          if not line:
            continue
          word, sep, count = line.rpartition("\t")
          if not sep or not word or not count.isdigit():
            raise UserError(f"{path}:{line_number}: expected 'word<TAB>count', got {line[:60]!r}")
          words.append(word)
          counts.append(int(count))
    except FileNotFoundError as e:
      raise UserError(f"vocabulary file {path} not found") from e
    except OSError as e:
      raise UserError(f"cannot read vocabulary {path}: {e.strerror}") from e
    return cls(tuple(words), np.asarray(counts, np.int64))


def build_vocab(types: Sequence[str], counts: np.ndarray, min_count: int = 5,
                max_vocab: int = 0) -> Vocab:
  """Keeps words with count >= `min_count`, sorted by (-count, word), at most `max_vocab` (0: all).

  Args:
    types: [U] distinct words.
    counts: [U] their counts.
    min_count: smallest count kept.
    max_vocab: keep only the most frequent `max_vocab` words (0 = no limit).
  """
  counts = np.asarray(counts, np.int64)
  order = sorted(range(len(types)), key=lambda i: (-counts[i], types[i]))
  order = [i for i in order if counts[i] >= min_count]
  if max_vocab > 0:
    order = order[:max_vocab]
  return Vocab(tuple(types[i] for i in order), counts[order] if order else counts[:0])
