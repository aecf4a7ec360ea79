"""Mikolov et al. (2013) analogies "a : b :: c : ?" by 3CosAdd or Levy & Goldberg's 3CosMul.

Usage:
  python -m eval.analogy --vectors=vectors.bin [--analogies=data/questions-words.txt]
      [--restrict_vocab=30000] [--method=3cosadd|3cosmul] [--top_k=1] [--output_json=out.json]
  python -m eval.analogy --model_dir=checkpoints/run1

Counting follows gensim's `KeyedVectors.evaluate_word_analogies` (and so the C tool's
compute-accuracy) exactly, so the correct / seen counts agree per section:

* Sections start at `: name` lines. Semantic = sections whose name does not start with "gram"
  (the first five of questions-words.txt), syntactic = the `gram*` ones.
* Only the first `restrict_vocab` words (0 = all) are candidates; a question with a word outside
  them is skipped: it counts in `questions` but not in `seen` (coverage = seen / questions).
* Case-insensitive by default: words are compared upper-cased and, of several case variants, the
  first (most frequent) row stands for the word.
* The answer is the best candidate that is not a question word: a, b and c are excluded by row,
  and any of gensim's top 5 whose (case-folded) form is a question word is passed over.
* 3CosAdd ranks by cos(x, b - a + c) on unit vectors; 3CosMul by
  cos'(x, b) cos'(x, c) / (cos'(x, a) + 1e-6) with cos' = (1 + cos) / 2 (gensim's
  `most_similar_cosmul`, whose epsilon is 1e-6). Its candidates are the first
  `restrict_vocab` rows too (gensim's `most_similar_cosmul` ignores `restrict_vocab`: the
  counts equal it run on a KeyedVectors holding only those rows).
* Malformed lines (not `: name` and not four words) are skipped and counted
  (`malformed_lines`); the binary prints one warning naming the first one. Questions before the
  first `: name` line form a section named "default".

Speed: the cosines of every distinct question word with every candidate are one matrix product
[U, d] x [d, n]; each question's scores are then rows combined from it, processed in chunks. A
question whose best two scores are within float32 noise (or whose best candidate is a case
variant of a question word) is re-scored exactly the way gensim computes it
(`eval.analogy_exact`), so near-ties break the same way.
"""

from __future__ import annotations

import dataclasses
import os
import time
from typing import Sequence

from absl import flags
import numpy as np

from . import cli
from .analogy_exact import ExactScorer, gensim_prediction
from w2v_tf.errors import UserError, warn
from w2v_tf.fileio import read_lines
from w2v_tf.word_vectors import ANALOGY_METHODS, candidate_lookup

METHODS = ANALOGY_METHODS
QUESTIONS_URL = "https://raw.githubusercontent.com/tmikolov/word2vec/master/questions-words.txt"

_COSMUL_EPSILON = 1e-6  # gensim most_similar_cosmul
_CHUNK_ELEMENTS = 1 << 21  # scores held per chunk: [questions, candidates] float32, 8 MiB
_CACHE_ELEMENTS = 1 << 27  # cosine rows [U, n] kept for the whole run when this small (512 MiB)
_NEAR_TIE = 1e-5  # score gap (in gensim's units) below which a question is re-scored exactly


@dataclasses.dataclass
class AnalogySection:
  """One `: name` section of an analogy file.

  Attributes:
    name: the section name (text after the colon).
    questions: (a, b, c, expected) word tuples as written in the file.
  """
  name: str
  questions: list[tuple[str, str, str, str]]


@dataclasses.dataclass
class AnalogySet:
  """A parsed analogy file.

  Attributes:
    path: where it was read from.
    sections: sections in file order.
    malformed_lines: lines skipped because they were neither `: name` nor four words.
    first_malformed: (line number, text) of the first skipped line, or None.
  """
  path: str
  sections: list[AnalogySection]
  malformed_lines: int = 0
  first_malformed: tuple[int, str] | None = None


def is_syntactic(section_name: str) -> bool:
  """True for Mikolov's syntactic sections (`gram1-adjective-to-adverb`, ...)."""
  return section_name.startswith("gram")


def read_analogies(path: str | os.PathLike) -> AnalogySet:
  """Reads a questions-words.txt style file.

  Args:
    path: the file: `: section` lines, then `a b c expected` lines.

  Returns:
    The parsed sections; malformed lines are skipped and counted.

  Raises:
    UserError: the file is missing, unreadable, empty or holds no question.
  """
  result = AnalogySet(path=os.fspath(path), sections=[])
  lines = read_lines(result.path, "analogy file", "pass --analogies with a questions-words.txt "
                     f"style file ({QUESTIONS_URL})")
  section = None
  for line_number, line in enumerate(lines, start=1):
    if not line.strip():
      continue
    if line.startswith(":"):
      section = AnalogySection(name=line.lstrip(": ").strip(), questions=[])
      result.sections.append(section)
      continue
    words = line.split()
    if len(words) != 4:
      result.malformed_lines += 1
      if result.first_malformed is None:
        result.first_malformed = (line_number, line.strip()[:60])
      continue
    if section is None:
      section = AnalogySection(name="default", questions=[])
      result.sections.append(section)
    section.questions.append(tuple(words))
  if not any(s.questions for s in result.sections):
    what = "is empty" if not any(l.strip() for l in lines) else "holds no question"
    raise UserError(f"analogy file {path} {what}: expected ': section' lines and "
                    f"'a b c expected' lines ({result.malformed_lines} malformed lines)")
  return result


def _summary(sections: list[dict], top_k: int) -> dict:
  """Adds up per-section counts into one summary dict."""
  out = {key: sum(s[key] for s in sections) for key in ("correct", "seen", "questions")}
  out["accuracy"] = out["correct"] / out["seen"] if out["seen"] else None
  out["coverage"] = out["seen"] / out["questions"] if out["questions"] else 0.0
  if top_k > 1:
    out["correct_at_k"] = sum(s["correct_at_k"] for s in sections)
    out["accuracy_at_k"] = out["correct_at_k"] / out["seen"] if out["seen"] else None
  return out


def evaluate_analogies(vectors: np.ndarray, words: Sequence[str],
                       path: str | os.PathLike | AnalogySet,
                       restrict_vocab: int = 30000, method: str = "3cosadd", top_k: int = 1,
                       case_insensitive: bool = True) -> dict:
  """Evaluates word vectors on an analogy set, per section.

  Args:
    vectors: [V, d] word vectors, rows most frequent first.
    words: the V words of the rows.
    path: an analogy file (questions-words.txt format) or an `AnalogySet` already read.
    restrict_vocab: only the first N rows are candidates (0 = all); questions with a word
      outside them are skipped.
    method: "3cosadd" or "3cosmul".
    top_k: also count a question correct@k when the expected word is among the k best
      answers (question words excluded); 1 = only @1.
    case_insensitive: compare words upper-cased (gensim's and the C tool's behaviour).

  Returns:
    {"total": {...}, "semantic": {...}, "syntactic": {...}, "sections": [{"name": ..., ...}],
     "method", "restrict_vocab", "top_k", "candidates", "malformed_lines", "seconds"}, where
    every summary and section has "correct", "seen", "questions", "accuracy" (correct / seen,
    None when nothing was seen), "coverage" (seen / questions) and, when top_k > 1,
    "correct_at_k" and "accuracy_at_k".

  Raises:
    ValueError: bad method / top_k / shapes.
    UserError: the analogy file cannot be read.
  """
  start_time = time.perf_counter()
  if method not in METHODS:
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")
  if top_k < 1:
    raise ValueError(f"top_k must be >= 1, got {top_k}")
  vectors, n, fold, ok_vocab = candidate_lookup(vectors, words, restrict_vocab,
                                                case_insensitive)
  analogies = path if isinstance(path, AnalogySet) else read_analogies(path)
  canon = np.fromiter((ok_vocab[fold(words[i])] for i in range(n)), dtype=np.int64, count=n)

  # Questions whose four words are all candidates, as canonical rows.
  ids, owner = [], []  # [Q, 4], [Q]
  for s_index, section in enumerate(analogies.sections):
    for question in section.questions:
      rows = [ok_vocab.get(fold(w), -1) for w in question]
      if min(rows) >= 0:
        ids.append(rows)
        owner.append(s_index)
  ids = np.asarray(ids, dtype=np.int64).reshape(-1, 4)
  owner = np.asarray(owner, dtype=np.int64)
  correct, correct_k = _solve(vectors[:n], canon, ids, method, top_k)

  sections = []
  for s_index, section in enumerate(analogies.sections):
    mine = owner == s_index
    entry = {"name": section.name, "correct": int(correct[mine].sum()),
             "seen": int(mine.sum()), "questions": len(section.questions)}
    # None, not 0, when no question was seen: an accuracy over nothing is undefined (null in
    # the JSON, n/a in the table), and 0% would read as a bad model.
    entry["accuracy"] = entry["correct"] / entry["seen"] if entry["seen"] else None
    entry["coverage"] = entry["seen"] / entry["questions"] if entry["questions"] else 0.0
    if top_k > 1:
      entry["correct_at_k"] = int(correct_k[mine].sum())
      entry["accuracy_at_k"] = (entry["correct_at_k"] / entry["seen"] if entry["seen"]
                                else None)
    sections.append(entry)
  return {
      "total": _summary(sections, top_k),
      "semantic": _summary([s for s in sections if not is_syntactic(s["name"])], top_k),
      "syntactic": _summary([s for s in sections if is_syntactic(s["name"])], top_k),
      "sections": sections,
      "method": method,
      "restrict_vocab": int(restrict_vocab),
      "top_k": int(top_k),
      "case_insensitive": bool(case_insensitive),
      "candidates": int(n),
      "analogies": analogies.path,
      "malformed_lines": analogies.malformed_lines,
      "seconds": time.perf_counter() - start_time,
  }


def _solve(raw: np.ndarray, canon: np.ndarray, ids: np.ndarray, method: str, top_k: int
           ) -> tuple[np.ndarray, np.ndarray]:
  """Answers the questions.

  Args:
    raw: [n, d] float32 candidate vectors.
    canon: [n] canonical row of each candidate's (case-folded) form.
    ids: [Q, 4] canonical rows of (a, b, c, expected).
    method: "3cosadd" or "3cosmul".
    top_k: k of correct@k.

  Returns:
    (correct@1, correct@k): two bool [Q] arrays.
  """
  num_questions = ids.shape[0]
  correct = np.zeros(num_questions, dtype=bool)
  correct_k = np.zeros(num_questions, dtype=bool)
  if num_questions == 0:
    return correct, correct_k
  n = raw.shape[0]
  norms = np.linalg.norm(raw, axis=1)  # [n], as gensim's fill_norms
  safe_norms = np.where(norms > 0, norms, np.float32(1.0)).astype(np.float32)
  unit = raw / safe_norms[:, None]  # [n, d]
  exact = ExactScorer(raw, safe_norms)

  qa, qb, qc, qd = ids.T
  question_words = np.unique(ids[:, :3])  # [U]
  cached = None
  if question_words.size * n <= _CACHE_ELEMENTS:
    cached = _cosine_rows(unit, question_words, method)  # [U, n]
  rows_per_chunk = min(num_questions, max(1, _CHUNK_ELEMENTS // n))
  score_buffer = np.empty((rows_per_chunk, n), dtype=np.float32)  # reused by every chunk
  for start in range(0, num_questions, rows_per_chunk):
    stop = min(num_questions, start + rows_per_chunk)
    a, b, c, d = qa[start:stop], qb[start:stop], qc[start:stop], qd[start:stop]
    if cached is not None:
      table, lookup = cached, question_words
    else:
      lookup = np.unique(np.concatenate([a, b, c]))
      table = _cosine_rows(unit, lookup, method)
    ia, ib, ic = (np.searchsorted(lookup, x) for x in (a, b, c))
    scores = score_buffer[:stop - start]  # [m, n]
    if method == "3cosadd":
      np.add(table[ib], table[ic], out=scores)  # cos(x, b) + cos(x, c) - cos(x, a)
      scores -= table[ia]
      # gensim's scores are these divided by |b + c - a| (unit vectors).
      scale = np.linalg.norm(unit[b] + unit[c] - unit[a], axis=1)  # [m]
      tolerance = _NEAR_TIE * np.maximum(scale, 1e-12)
    else:
      np.multiply(table[ib], table[ic], out=scores)  # cos'(x,b) cos'(x,c) / (cos'(x,a) + eps)
      denominator = table[ia]
      denominator += np.float32(_COSMUL_EPSILON)
      scores /= denominator
      tolerance = None
    m = stop - start
    rows = np.arange(m)
    scores[rows, a] = -np.inf
    scores[rows, b] = -np.inf
    scores[rows, c] = -np.inf
    if top_k > 1:
      correct_k[start:stop] = _correct_at_k(scores, canon, a, b, c, d, top_k)
    best = np.argmax(scores, axis=1)  # [m]
    best_score = scores[rows, best]
    scores[rows, best] = -np.inf
    second = np.argmax(scores, axis=1)  # [m]
    second_score = scores[rows, second]
    del scores
    if tolerance is None:
      # Relative float32 noise, larger when cos'(x, a) is near 0 (x nearly opposite to a).
      smallest = np.minimum(table[ia, best], table[ia, second]) + _COSMUL_EPSILON
      tolerance = _NEAR_TIE * np.abs(best_score) * (1.0 + 1e-2 / smallest)
    best_form = canon[best]
    unsure = ((best_score - second_score <= tolerance) | ~np.isfinite(second_score)
              | (best_form == a) | (best_form == b) | (best_form == c))
    correct[start:stop] = best_form == d
    for i in np.flatnonzero(unsure):
      top5 = exact.top5(method, int(a[i]), int(b[i]), int(c[i]))
      predicted = gensim_prediction(top5, canon, {int(a[i]), int(b[i]), int(c[i])})
      correct[start + i] = predicted == d[i]
  correct_k |= correct
  return correct, correct_k


def _cosine_rows(unit: np.ndarray, rows: np.ndarray, method: str) -> np.ndarray:
  """Cosines of the given rows with every candidate: [U, n] (shifted to [0, 1] for 3CosMul)."""
  table = unit[rows] @ unit.T  # [U, n]
  if method == "3cosmul":
    table += 1.0
    table /= 2.0
  return table


def _correct_at_k(scores: np.ndarray, canon: np.ndarray, a, b, c, d, k: int) -> np.ndarray:
  """Whether the expected form is among the k best candidates whose form is not a question word.

  Args:
    scores: [m, n] scores with the question rows already at -inf.
    canon: [n] canonical rows.
    a, b, c, d: [m] canonical rows of the question.
    k: how many answers count.

  Returns:
    bool [m].
  """
  width = min(scores.shape[1], k + 8)  # a few spare for case variants of question words
  if width < scores.shape[1]:
    top = np.argpartition(-scores, width - 1, axis=1)[:, :width]  # [m, width]
  else:
    top = np.tile(np.arange(scores.shape[1]), (scores.shape[0], 1))
  order = np.argsort(-np.take_along_axis(scores, top, axis=1), axis=1, kind="stable")
  forms = canon[np.take_along_axis(top, order, axis=1)]  # [m, width], best first
  finite = np.isfinite(np.take_along_axis(scores, np.take_along_axis(top, order, axis=1), axis=1))
  usable = finite & (forms != a[:, None]) & (forms != b[:, None]) & (forms != c[:, None])
  rank = np.cumsum(usable, axis=1)  # answers so far, per position
  return ((forms == d[:, None]) & usable & (rank <= k)).any(axis=1)


def format_table(result: dict) -> str:
  """A plain-text table: section, correct/seen, accuracy, coverage (and @k)."""
  at_k = result["top_k"] > 1
  header = f"{'section':<34} {'correct/seen':>13} {'accuracy':>9} {'coverage':>9}"
  if at_k:
    header += f" {'acc@' + str(result['top_k']):>9}"
  lines = [header, "-" * len(header)]

  def percent(value: float | None) -> str:
    return f"{'n/a':>9}" if value is None else f"{100 * value:>8.2f}%"

  def row(name: str, entry: dict) -> str:
    text = (f"{name:<34} {entry['correct']:>6}/{entry['seen']:<6} "
            f"{percent(entry['accuracy'])} {100 * entry['coverage']:>8.1f}%")
    if at_k:
      text += f" {percent(entry['accuracy_at_k'])}"
    return text

  for section in result["sections"]:
    lines.append(row(section["name"], section))
  lines.append("-" * len(header))
  for key in ("semantic", "syntactic", "total"):
    lines.append(row(key, result[key]))
  return "\n".join(lines)


# --- Binary ---------------------------------------------------------------------------------------


def define_flags() -> None:
  """Defines this binary's flags (only where `python -m eval.analogy` runs it)."""
  cli.define_vector_flags()
  flags.adopt_module_key_flags(cli)  # --vectors and --model_dir listed in --help too
  flags.DEFINE_string("analogies", None,
                      "Analogy file (questions-words.txt format). Default: "
                      "data/questions-words.txt, else the copy gensim ships.")
  flags.DEFINE_integer("restrict_vocab", 30000,
                       "Only the first N words (most frequent) are candidates; questions using "
                       "other words are skipped. 0 = all. 30000 is compute-accuracy's default.")
  flags.DEFINE_string("method", "3cosadd", "3cosadd (Mikolov) or 3cosmul (Levy & Goldberg 2014).")
  flags.DEFINE_integer("top_k", 1, "Also report accuracy@k (expected word among the k best "
                       "answers).")
  flags.DEFINE_boolean("case_insensitive", True,
                       "Compare words upper-cased (gensim / compute-accuracy behaviour).")
  flags.DEFINE_string("output_json", None, "Write the results as JSON here.")


def main(argv: Sequence[str]) -> None:
  from w2v_tf.fileio import atomic_write_json  # pylint: disable=import-outside-toplevel
  cli.check_no_args(argv)
  f = flags.FLAGS
  cli.check_query_flags(f.top_k, f.restrict_vocab, f.method)
  analogy_path = cli.find_data_file("questions-words.txt", f.analogies, "--analogies",
                                    QUESTIONS_URL)
  analogies = read_analogies(analogy_path)
  word_vectors, source = cli.load_from_flags(f.vectors, f.model_dir, f.drop_nonfinite)
  if analogies.malformed_lines:
    line_number, text = analogies.first_malformed
    warn(f"{analogy_path}: skipped {analogies.malformed_lines} malformed lines "
         f"(first: line {line_number}: {text!r}); expected 'a b c expected'")
  result = evaluate_analogies(word_vectors.vectors, word_vectors.words, analogies,
                              restrict_vocab=f.restrict_vocab, method=f.method, top_k=f.top_k,
                              case_insensitive=f.case_insensitive)
  result["vectors"] = source
  if not result["total"]["seen"]:
    warn(f"{analogy_path}: none of its {result['total']['questions']:,} questions has all four "
         f"words among the first {result['candidates']:,} words of the vocabulary: the accuracy "
         "is undefined (n/a); raise --restrict_vocab or use vectors trained on a corpus that "
         "has these words")
  print(f"vectors: {source} ({len(word_vectors)} x {word_vectors.dim}); analogies: "
        f"{analogy_path}; method: {f.method}; candidates: first {result['candidates']} words")
  print(format_table(result))
  print(f"evaluated in {result['seconds']:.2f} s")
  if f.output_json:
    atomic_write_json(f.output_json, result)


if __name__ == "__main__":
  cli.run(main, define_flags)
