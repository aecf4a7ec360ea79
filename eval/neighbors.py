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

from absl import flags
import numpy as np

from . import cli
from w2v_tf.errors import UsageError, UserError
from w2v_tf.word_vectors import ANALOGY_METHODS, WordVectors

METHODS = ANALOGY_METHODS


class Neighbors:
  """Cosine queries with case-insensitive lookup, over `WordVectors`.

  Attributes:
    word_vectors: the vectors queried.
    words: the vocabulary, row order.
    num_candidates: answers come from the first this many rows.
  """

  def __init__(self, words: Sequence[str] | WordVectors, vectors: np.ndarray | None = None,
               restrict_vocab: int = 0):
    """Builds the index.

    Args:
      words: V words, most frequent first, or a `WordVectors` (then `vectors` is None).
      vectors: [V, d] vectors of `words`.
      restrict_vocab: answers come from the first N rows only (0 = all); queries may use any.
    """
    self.word_vectors = words if isinstance(words, WordVectors) else WordVectors(words, vectors)
    self.words = list(self.word_vectors.words)
    self.num_candidates = (len(self.words) if restrict_vocab <= 0
                           else min(restrict_vocab, len(self.words)))
    self._folded: dict[str, list[str]] = {}  # upper-cased form -> its case variants, row order
    for word in self.words:
      self._folded.setdefault(word.upper(), []).append(word)

  def row(self, word: str) -> int:
    """The row of `word` (as written, else case-insensitively: the most frequent variant).

    Raises:
      KeyError: the word is not in the vocabulary.
    """
    if word in self.word_vectors:
      return self.word_vectors.row(word)
    if word.upper() in self._folded:
      return self.word_vectors.row(self._folded[word.upper()][0])
    raise KeyError(word)

  def _resolve(self, query: Sequence[str]) -> tuple[list[str], list[str]]:
    """(the query's words as in the vocabulary, all their case variants: never answers)."""
    resolved = [self.words[self.row(w)] for w in query]
    return resolved, [v for w in resolved for v in self._folded[w.upper()]]

  def nearest(self, word: str, top_k: int = 10) -> list[tuple[str, float]]:
    """The `top_k` nearest words to `word` by cosine, with their cosines.

    Raises:
      KeyError: the word is not in the vocabulary.
    """
    (resolved,), variants = self._resolve([word])
    return self.word_vectors.most_similar(resolved, top_k, restrict=self.num_candidates,
                                          exclude=variants)

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
    resolved, variants = self._resolve([a, b, c])
    return self.word_vectors.analogy(*resolved, top_k=top_k, method=method,
                                     restrict=self.num_candidates, exclude=variants)


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
    row = index.row(query[0])
    title = f"nearest to {index.words[row]!r} (row {row + 1}), cosine:"
    if not np.any(index.word_vectors.vectors[row]):  # every cosine would be 0: no ranking
      return f"{title} n/a (its vector is all zeros, so it has no direction and no neighbours)"
    return format_results(title, index.nearest(query[0], top_k))
  if len(query) == 3:
    a, b, c = query
    zero = [w for w in query if not np.any(index.word_vectors.vectors[index.row(w)])]
    if zero:  # the answer would come from the other words alone
      return (f"{a} : {b} :: {c} : ?  n/a ({', '.join(map(repr, zero))} has an all-zero "
              "vector: no direction to reason with)")
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
  """Defines this binary's flags (only where `python -m eval.neighbors` runs it)."""
  cli.define_vector_flags()
  flags.adopt_module_key_flags(cli)  # --vectors and --model_dir listed in --help too
  flags.DEFINE_string("word", None, "Print this word's nearest neighbours.")
  flags.DEFINE_string("analogy", None,
                      "Three words 'a b c': answer 'a is to b as c is to ?' (e.g. 'man king "
                      "woman').")
  flags.DEFINE_integer("top_k", 10, "How many answers to print.")
  flags.DEFINE_integer("restrict_vocab", 0, "Answers come from the first N words only (0 = all).")
  flags.DEFINE_string("method", "3cosadd", "Analogy method: 3cosadd or 3cosmul.")


def main(argv: Sequence[str]) -> None:
  cli.check_no_args(argv)
  f = flags.FLAGS
  cli.check_query_flags(f.top_k, f.restrict_vocab, f.method)
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
  word_vectors, source = cli.load_from_flags(f.vectors, f.model_dir, f.drop_nonfinite)
  index = Neighbors(word_vectors, restrict_vocab=f.restrict_vocab)
  if not queries:
    print(f"vectors: {source} ({len(word_vectors)} x {word_vectors.dim})")
    interactive(index, f.top_k, f.method)
    return
  for query in queries:
    try:
      print(answer(index, query, f.top_k, f.method))
    except KeyError as e:
      raise UserError(f"{e.args[0]!r} is not in the vocabulary of {source} "
                      f"({len(word_vectors)} words): try another word (lookup is "
                      "case-insensitive)") from None


if __name__ == "__main__":
  cli.run(main, define_flags)
