"""Word-pair similarity (WordSim353, Finkelstein et al. 2002; SimLex-999): Spearman, Pearson.

Usage:
  python -m eval.similarity --vectors=vectors.bin [--pairs=data/wordsim353.tsv]
      [--restrict_vocab=0] [--output_json=out.json]

The model's similarity of a pair is the cosine of its two vectors; the score is the correlation
of these with the human judgements, over the pairs whose two words are in the vocabulary.
Counting follows gensim's `KeyedVectors.evaluate_word_pairs` (case-insensitive: words compared
upper-cased, the first case variant's row standing for the word; `restrict_vocab` limits the
vocabulary to the first N rows), so the correlations and the out-of-vocabulary ratio match it.

File format: one pair per line, `word1 word2 score` separated by tabs (or by any whitespace
when a line has no tab); `#` lines are comments. Extra columns are allowed (SimLex-999's
original file): the score is the column named by `--score_column`, or, by default, the third
one, or the column whose header is "SimLex999" when the file starts with a header row (a first
row whose score is not a number). Malformed lines (fewer columns, a score that is not a number)
are skipped and counted (`malformed_lines`); the binary prints one warning naming the first. A
score of NaN or infinity is refused (naming the file and line), as vectors holding them are: it
would count as a judgement and shift every rank. A correlation that is undefined (all scores, or
all the model's similarities, equal: zero vectors, say) is printed as n/a with one warning, and
written to --output_json as null.
"""

from __future__ import annotations

import dataclasses
import math
import os
from typing import Sequence

from absl import flags
import numpy as np

from . import cli
from w2v_tf.errors import UsageError, UserError, warn
from w2v_tf.fileio import read_lines
from w2v_tf.vector_files import is_float
from w2v_tf.word_vectors import candidate_lookup

WORDSIM_URL = ("https://raw.githubusercontent.com/piskvorky/gensim/develop/gensim/test/"
               "test_data/wordsim353.tsv")


@dataclasses.dataclass
class WordPairs:
  """A parsed word-pair file.

  Attributes:
    path: where it was read from.
    pairs: (word1, word2, human score) in file order.
    malformed_lines: lines skipped as malformed.
    first_malformed: (line number, text) of the first skipped line, or None.
  """
  path: str
  pairs: list[tuple[str, str, float]]
  malformed_lines: int = 0
  first_malformed: tuple[int, str] | None = None


def _split(line: str) -> list[str]:
  fields = line.split("\t") if "\t" in line else line.split()
  return [f.strip() for f in fields]


def read_word_pairs(path: str | os.PathLike, score_column: int | None = None) -> WordPairs:
  """Reads a WordSim353 / SimLex-style word-pair file.

  Args:
    path: the file.
    score_column: 0-based column of the human score; None = auto (a header column named
      "SimLex999", else column 2).

  Returns:
    The pairs; malformed lines are skipped and counted.

  Raises:
    UserError: missing, unreadable or empty file, no valid pair in it, or a score that is NaN
      or infinite (file:line).
  """
  path = os.fspath(path)
  lines = read_lines(
      path, "word-pair file",
      f"pass --pairs with a WordSim353-style 'word1<TAB>word2<TAB>score' file ({WORDSIM_URL})")
  result = WordPairs(path=path, pairs=[])
  column = score_column
  first_row = True
  for line_number, line in enumerate(lines, start=1):
    if not line.strip() or line.startswith("#"):
      continue
    fields = _split(line)
    if first_row:
      first_row = False
      probe = 2 if column is None else column
      if len(fields) > probe and not is_float(fields[probe]):  # a header row
        names = [f.lower() for f in fields]
        if column is None and "simlex999" in names:
          column = names.index("simlex999")
        continue
    col = 2 if column is None else column
    if len(fields) <= col or not fields[0] or not fields[1] or not is_float(fields[col]):
      result.malformed_lines += 1
      if result.first_malformed is None:
        result.first_malformed = (line_number, line.strip()[:60])
      continue
    score = float(fields[col])
    if not math.isfinite(score):  # float() parses "nan" and "inf"; they are no judgement
      raise UserError(f"{path}:{line_number}: the score of {fields[0][:30]!r} and "
                      f"{fields[1][:30]!r} is {fields[col][:30]!r}, not a finite number: fix "
                      "the line or remove it")
    result.pairs.append((fields[0], fields[1], score))
  if not result.pairs:
    what = "is empty" if not any(l.strip() for l in lines) else "holds no valid pair"
    raise UserError(f"word-pair file {path} {what}: expected 'word1<TAB>word2<TAB>score' "
                    f"lines ({result.malformed_lines} malformed lines)")
  return result


def _rank(values: np.ndarray) -> np.ndarray:
  """Ranks starting at 1, ties given their average rank (scipy's rankdata 'average')."""
  order = np.argsort(values, kind="mergesort")
  sorted_values = values[order]
  # Boundaries of runs of equal values.
  boundaries = np.flatnonzero(np.concatenate([[True], sorted_values[1:] != sorted_values[:-1],
                                              [True]]))
  ranks = np.empty(len(values), dtype=np.float64)
  for start, stop in zip(boundaries[:-1], boundaries[1:]):
    ranks[order[start:stop]] = (start + 1 + stop) / 2.0  # mean of ranks start+1 .. stop
  return ranks


def pearson(x: Sequence[float], y: Sequence[float]) -> float:
  """Pearson's r (nan when a side is constant)."""
  x = np.asarray(x, dtype=np.float64) - np.mean(x)
  y = np.asarray(y, dtype=np.float64) - np.mean(y)
  denominator = np.sqrt(np.dot(x, x) * np.dot(y, y))
  return float(np.dot(x, y) / denominator) if denominator > 0 else float("nan")


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
  """Spearman's rho: Pearson's r of the (tie-averaged) ranks."""
  return pearson(_rank(np.asarray(x, dtype=np.float64)), _rank(np.asarray(y, dtype=np.float64)))


def _unit(vector: np.ndarray) -> np.ndarray:
  """gensim's `matutils.unitvec` on a float32 vector (norm and scaling in float64)."""
  v64 = vector.astype(np.float64)
  length = np.sqrt(np.dot(v64, v64))
  return (v64 * (1.0 / length)).astype(np.float32) if length > 0 else vector


def evaluate_word_pairs(vectors: np.ndarray, words: Sequence[str],
                        path: str | os.PathLike | WordPairs, restrict_vocab: int = 0,
                        case_insensitive: bool = True) -> dict:
  """Correlates the vectors' cosine similarities with human judgements.

  Args:
    vectors: [V, d] word vectors, most frequent first.
    words: the V words.
    path: a word-pair file or a `WordPairs` already read.
    restrict_vocab: only the first N words count as known (0 = all).
    case_insensitive: compare words upper-cased.

  Returns:
    {"spearman": float, "pearson": float, "oov_ratio": float (pairs with an unknown word /
     all valid pairs), "pairs": int (valid pairs), "used": int (pairs scored), "oov": int,
     "malformed_lines": int, "pairs_file": str, "restrict_vocab": int}.

  Raises:
    UserError: the file cannot be read, or no pair has both words in the vocabulary.
  """
  vectors, n, fold, ok_vocab = candidate_lookup(vectors, words, restrict_vocab,
                                                case_insensitive)
  data = path if isinstance(path, WordPairs) else read_word_pairs(path)
  gold, model = [], []
  oov = 0
  for word1, word2, score in data.pairs:
    i, j = ok_vocab.get(fold(word1)), ok_vocab.get(fold(word2))
    if i is None or j is None:
      oov += 1
      continue
    gold.append(score)
    model.append(float(np.dot(_unit(vectors[i]), _unit(vectors[j]))))
  if not gold:
    raise UserError(f"no pair of {data.path} has both words among the first {n} words of the "
                    "vocabulary: check the vectors (or raise --restrict_vocab)")
  return {
      "spearman": spearman(gold, model),
      "pearson": pearson(gold, model),
      "oov_ratio": oov / len(data.pairs),
      "pairs": len(data.pairs),
      "used": len(gold),
      "oov": oov,
      "malformed_lines": data.malformed_lines,
      "pairs_file": data.path,
      "restrict_vocab": int(restrict_vocab),
  }


# --- Binary ---------------------------------------------------------------------------------------


def define_flags() -> None:
  """Defines this binary's flags (only where `python -m eval.similarity` runs it)."""
  cli.define_vector_flags()
  flags.adopt_module_key_flags(cli)  # --vectors and --model_dir listed in --help too
  flags.DEFINE_list("pairs", None, "Word-pair files (comma-separated). Default: "
                    "data/wordsim353.tsv, else gensim's copy.")
  flags.DEFINE_integer("score_column", None, "0-based column of the human score (default: "
                       "'SimLex999' header column, else 2).")
  flags.DEFINE_integer("restrict_vocab", 0, "Only the first N words count as known (0 = all).")
  flags.DEFINE_boolean("case_insensitive", True, "Compare words upper-cased.")
  flags.DEFINE_string("output_json", None, "Write the results as JSON here.")


def _correlation(value: float | None) -> str:
  return f"{'n/a':>9}" if value is None else f"{value:>9.4f}"


def _why_constant(data: WordPairs, word_vectors, restrict_vocab: int,
                  case_insensitive: bool) -> str:
  """Why a correlation is undefined: which side is constant over the pairs used."""
  vectors, _, fold, ok_vocab = candidate_lookup(word_vectors.vectors, word_vectors.words,
                                                restrict_vocab, case_insensitive)
  used = [(ok_vocab[fold(a)], ok_vocab[fold(b)], score) for a, b, score in data.pairs
          if fold(a) in ok_vocab and fold(b) in ok_vocab]
  rows = {row for i, j, _ in used for row in (i, j)}
  zero = sorted(word_vectors.words[row] for row in rows if not np.any(vectors[row]))
  if len({score for _, _, score in used}) < 2:
    return "every human score is the same (a correlation needs two different ones)"
  if zero:
    return (f"the model's similarities are all equal; {len(zero)} of the words have all-zero "
            f"vectors (first: {zero[0][:30]!r}), whose cosine with any word is 0")
  return "the model's similarities are all equal (a correlation needs two different ones)"


def main(argv: Sequence[str]) -> None:
  from w2v_tf.fileio import atomic_write_json  # pylint: disable=import-outside-toplevel
  cli.check_no_args(argv)
  f = flags.FLAGS
  if f.restrict_vocab < 0:
    raise UsageError(f"--restrict_vocab={f.restrict_vocab}: must be 0 (all words) or more")
  if f.score_column is not None and f.score_column < 2:
    raise UsageError(f"--score_column={f.score_column}: columns 0 and 1 hold the words; "
                     "give 2 or more")
  paths = f.pairs or [None]
  files = []
  for explicit in paths:
    path = cli.find_data_file("wordsim353.tsv", explicit, "--pairs", WORDSIM_URL)
    data = read_word_pairs(path, f.score_column)
    if data.malformed_lines:
      line_number, text = data.first_malformed
      warn(f"{path}: skipped {data.malformed_lines} malformed lines (first: line "
           f"{line_number}: {text!r}); expected 'word1<TAB>word2<TAB>score'")
    files.append(data)
  word_vectors, source = cli.load_from_flags(f.vectors, f.model_dir, f.drop_nonfinite)
  print(f"vectors: {source} ({len(word_vectors)} x {word_vectors.dim})")
  print(f"{'pairs file':<40} {'spearman':>9} {'pearson':>9} {'used/pairs':>11} {'oov':>7}")
  results = []
  for data in files:
    result = evaluate_word_pairs(word_vectors.vectors, word_vectors.words, data,
                                 restrict_vocab=f.restrict_vocab,
                                 case_insensitive=f.case_insensitive)
    name = os.path.basename(data.path)
    undefined = [key for key in ("spearman", "pearson") if math.isnan(result[key])]
    if undefined:
      warn(f"{data.path}: {' and '.join(undefined)} undefined over the {result['used']} pairs "
           f"used: {_why_constant(data, word_vectors, f.restrict_vocab, f.case_insensitive)}")
    for key in undefined:
      result[key] = None  # JSON has no NaN
    print(f"{name:<40} {_correlation(result['spearman'])} {_correlation(result['pearson'])} "
          f"{result['used']:>5}/{result['pairs']:<5} {100 * result['oov_ratio']:>6.1f}%")
    results.append(result)
  if f.output_json:
    atomic_write_json(f.output_json, {"vectors": source, "results": results})


if __name__ == "__main__":
  cli.run(main, define_flags)
