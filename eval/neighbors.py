"""Nearest neighbours and analogy queries, like Mikolov's C `distance` and `word-analogy`.

Usage:
  python -m eval.neighbors --vectors=vectors.bin --word=king [--top_k=10]
  python -m eval.neighbors --vectors=vectors.bin --analogy="man king woman"   # man:king :: woman:?
  python -m eval.neighbors --model_dir=checkpoints/run1                      # interactive prompt

At the prompt, one word asks for its neighbours and three words for an analogy; an empty line,
EXIT or end of input stops. A word is looked up as written, else case-insensitively (the most
frequent case variant). Query words (and their case variants) are never answers.
"""

from __future__ import annotations

import sys
from typing import Sequence

import numpy as np

from eval import vectors as vectors_lib
from w2v_tf.errors import UsageError, UserError

METHODS = vectors_lib.ANALOGY_METHODS
_COSMUL_EPSILON = 1e-6


class Neighbors:
  """Cosine queries over unit-normalised vectors.

  Attributes:
    words: the vocabulary, row order.
    num_candidates: answers come from the first this many rows.
  """

  def __init__(self, words: Sequence[str], vectors: np.ndarray, restrict_vocab: int = 0):
    """Builds the index.

    Args:
      words: V words, most frequent first.
      vectors: [V, d] vectors.
      restrict_vocab: answers come from the first N rows only (0 = all); queries may use any.
    """
    self.words = list(words)
    self._unit = vectors_lib.unit_rows(vectors)  # [V, d]
    self.num_candidates = len(words) if restrict_vocab <= 0 else min(restrict_vocab, len(words))
    self._exact = {}
    self._folded = {}
    for i, word in enumerate(self.words):
      self._exact.setdefault(word, i)
      self._folded.setdefault(word.upper(), i)

  def row(self, word: str) -> int:
    """The row of `word` (as written, else case-insensitively).

    Raises:
      KeyError: the word is not in the vocabulary.
    """
    if word in self._exact:
      return self._exact[word]
    if word.upper() in self._folded:
      return self._folded[word.upper()]
    raise KeyError(word)

  def _top(self, scores: np.ndarray, query_rows: Sequence[int], top_k: int
           ) -> list[tuple[str, float]]:
    """Best `top_k` candidates, skipping the query words and their case variants."""
    forms = {self.words[r].upper() for r in query_rows}
    order = np.argsort(-scores, kind="stable")
    result = []
    for i in order:
      if self.words[i].upper() in forms:
        continue
      result.append((self.words[i], float(scores[i])))
      if len(result) == top_k:
        break
    return result

  def nearest(self, word: str, top_k: int = 10) -> list[tuple[str, float]]:
    """The `top_k` nearest words to `word` by cosine, with their cosines.

    Raises:
      KeyError: the word is not in the vocabulary.
    """
    row = self.row(word)
    scores = self._unit[:self.num_candidates] @ self._unit[row]  # [n]
    return self._top(scores, [row], top_k)

  def analogy(self, a: str, b: str, c: str, top_k: int = 10, method: str = "3cosadd"
              ) -> list[tuple[str, float]]:
    """Answers "a is to b as c is to ?" (e.g. man king woman -> queen).

    Args:
      a, b, c: the three query words.
      top_k: answers to return.
      method: "3cosadd" (score: cosine with b - a + c) or "3cosmul" (Levy & Goldberg).

    Returns:
      [(word, score)], best first.

    Raises:
      KeyError: a word is not in the vocabulary.
    """
    if method not in METHODS:
      raise ValueError(f"method must be one of {METHODS}, got {method!r}")
    rows = [self.row(w) for w in (a, b, c)]
    unit = self._unit[:self.num_candidates]  # [n, d]
    ua, ub, uc = (self._unit[r] for r in rows)
    if method == "3cosadd":
      query = ub - ua + uc
      query /= max(float(np.linalg.norm(query)), 1e-12)
      scores = unit @ query  # [n]
    else:
      cos_a, cos_b, cos_c = ((1 + unit @ u) / 2 for u in (ua, ub, uc))  # [n] each
      scores = cos_b * cos_c / (cos_a + _COSMUL_EPSILON)
    return self._top(scores, rows, top_k)


def format_results(title: str, results: list[tuple[str, float]]) -> str:
  """A numbered two-column listing under a title line."""
  width = max([len(w) for w, _ in results] + [4])
  lines = [title]
  lines += [f"{i:>4}. {w:<{width}}  {score:8.4f}" for i, (w, score) in enumerate(results, 1)]
  return "\n".join(lines)


def answer(index: Neighbors, query: Sequence[str], top_k: int, method: str) -> str:
  """Runs one query (one word: neighbours; three words: analogy) and formats it.

  Raises:
    KeyError: a word is not in the vocabulary.
    UsageError: not one or three words.
  """
  if len(query) == 1:
    results = index.nearest(query[0], top_k)
    row = index.row(query[0])
    return format_results(f"nearest to {index.words[row]!r} (row {row + 1}), cosine:", results)
  if len(query) == 3:
    a, b, c = query
    results = index.analogy(a, b, c, top_k, method)
    score = "cosine with b - a + c" if method == "3cosadd" else "3CosMul score"
    return format_results(f"{a} : {b} :: {c} : ?  ({score}):", results)
  raise UsageError(f"got {len(query)} words ({' '.join(query)!r}): give one word for its "
                   "neighbours or three (a b c) for 'a is to b as c is to ?'")


def interactive(index: Neighbors, top_k: int, method: str, stdin=None, stdout=None) -> None:
  """The prompt loop: reads queries until an empty line, EXIT or end of input.

  Args:
    index: the vectors.
    top_k: answers per query.
    method: analogy method.
    stdin: where queries come from (default sys.stdin); a prompt is shown when it is a
      terminal, else each query is echoed as "> query".
    stdout: where answers go (default sys.stdout).
  """
  stdin = stdin or sys.stdin
  stdout = stdout or sys.stdout
  prompt = stdin.isatty() if hasattr(stdin, "isatty") else False
  while True:
    if prompt:
      stdout.write("Enter a word, or three words 'a b c' for a : b :: c : ? (EXIT to quit): ")
      stdout.flush()
    line = stdin.readline()
    if not line or not line.strip() or line.strip() == "EXIT":
      if prompt:
        stdout.write("\n")
      return
    if not prompt:
      stdout.write(f"> {line.strip()}\n")  # echo piped queries so the output reads alone
    try:
      stdout.write(answer(index, line.split(), top_k, method) + "\n")
    except KeyError as e:
      stdout.write(f"out of vocabulary: {e.args[0]!r}\n")
    except UsageError as e:
      stdout.write(f"{e}\n")


# --- Binary ---------------------------------------------------------------------------------------


def define_flags() -> None:
  """Defines this binary's flags (safe to call more than once in a process)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  define = vectors_lib.define_flag
  vectors_lib.define_vector_flags()
  define(flags.DEFINE_string, "word", None, "Print this word's nearest neighbours.")
  define(flags.DEFINE_string, "analogy", None,
         "Three words 'a b c': answer 'a is to b as c is to ?' (e.g. 'man king woman').")
  define(flags.DEFINE_integer, "top_k", 10, "How many answers to print.")
  define(flags.DEFINE_integer, "restrict_vocab", 0,
         "Answers come from the first N words only (0 = all).")
  define(flags.DEFINE_string, "method", "3cosadd", "Analogy method: 3cosadd or 3cosmul.")


define_flags()


def main(argv: Sequence[str]) -> None:
  from absl import flags  # pylint: disable=import-outside-toplevel
  vectors_lib.check_no_args(argv)
  f = flags.FLAGS
  vectors_lib.check_query_flags(f.top_k, f.restrict_vocab, f.method)
  queries = []
  if f.word is not None:
    if len(f.word.split()) != 1:
      raise UsageError(f"--word={f.word!r}: give one word (use --analogy for three)")
    queries.append(f.word.split())
  if f.analogy is not None:
    if len(f.analogy.split()) != 3:
      raise UsageError(f"--analogy={f.analogy!r}: give three words 'a b c' meaning "
                       "'a is to b as c is to ?', e.g. --analogy='man king woman'")
    queries.append(f.analogy.split())
  words, vectors, source = vectors_lib.load_from_flags(f.vectors, f.model_dir)
  index = Neighbors(words, vectors, restrict_vocab=f.restrict_vocab)
  if not queries:
    print(f"vectors: {source} ({len(words)} x {vectors.shape[1]})")
    interactive(index, f.top_k, f.method)
    return
  for query in queries:
    try:
      print(answer(index, query, f.top_k, f.method))
    except KeyError as e:
      raise UserError(f"{e.args[0]!r} is not in the vocabulary of {source} ({len(words)} "
                      "words): try another word (lookup is case-insensitive)") from None


if __name__ == "__main__":
  from w2v_tf.errors import run_main
  run_main(main)
