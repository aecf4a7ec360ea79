"""Speed of `eval.analogy.evaluate_analogies` (Mikolov's analogy set) on a 42k x 300 vocabulary.

The vocabulary holds every word of the analogy file (so every question is evaluated: the worst
case) placed at seeded random rows among the first `restrict_vocab`, plus filler words, with
random unit vectors. Prints the median of `--repeats` runs per method and writes
`--output_json`.

  python -m benchmarks.analogy_speed [--vocab_size=42000] [--dim=300] [--repeats=3]
"""

from __future__ import annotations

import os
import platform
import statistics
import time
from typing import Sequence

import numpy as np
from absl import flags

from eval import analogy
from eval import cli
from w2v_tf.errors import UsageError

_FLAGS = flags.FLAGS


def define_flags() -> None:
  """Defines this benchmark's flags (only where `python -m benchmarks.analogy_speed` runs it)."""
  flags.DEFINE_string("analogies", None,
                      "Analogy file (default: data/questions-words.txt or gensim's copy).")
  flags.DEFINE_integer("vocab_size", 42000, "Rows of the vocabulary.")
  flags.DEFINE_integer("dim", 300, "Vector dimension.")
  flags.DEFINE_integer("restrict_vocab", 30000, "Candidates: the first N rows (0 = all).")
  flags.DEFINE_list("methods", ["3cosadd", "3cosmul"], "Methods to time.")
  flags.DEFINE_integer("repeats", 3, "Timed runs per method.")
  flags.DEFINE_integer("seed", 0, "Seed of the vectors and row order.")
  flags.DEFINE_string("output_json", None, "Write the timings here.")


def synthetic_vocabulary(analogies: analogy.AnalogySet, vocab_size: int, dim: int,
                         restrict_vocab: int, seed: int) -> tuple[list[str], np.ndarray]:
  """Question words at random rows among the first `restrict_vocab`, filler elsewhere.

  Args:
    analogies: the parsed analogy set.
    vocab_size: V.
    dim: d.
    restrict_vocab: question words are placed among the first this many rows.
    seed: random seed.

  Returns:
    (words [V], unit vectors float32 [V, d]).
  """
  rng = np.random.default_rng(seed)
  question_words = sorted({w.lower() for s in analogies.sections for q in s.questions for w in q})
  if len(question_words) > vocab_size:
    raise UsageError(f"--vocab_size={vocab_size} is smaller than the {len(question_words)} "
                     "question words")
  head = min(vocab_size, restrict_vocab or vocab_size)
  words = [f"filler{i:06d}" for i in range(vocab_size)]
  rows = rng.choice(head, size=len(question_words), replace=False)
  for row, word in zip(rows, question_words):
    words[row] = word
  vectors = rng.standard_normal((vocab_size, dim)).astype(np.float32)  # [V, d]
  vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
  return words, vectors


def main(argv: Sequence[str]) -> None:
  from w2v_tf.fileio import atomic_write_json  # pylint: disable=import-outside-toplevel
  cli.check_no_args(argv)
  path = cli.find_data_file("questions-words.txt", _FLAGS.analogies, "--analogies",
                            analogy.QUESTIONS_URL)
  analogies = analogy.read_analogies(path)
  words, vectors = synthetic_vocabulary(analogies, _FLAGS.vocab_size, _FLAGS.dim,
                                        _FLAGS.restrict_vocab, _FLAGS.seed)
  report = {"vocab_size": _FLAGS.vocab_size, "dim": _FLAGS.dim,
            "restrict_vocab": _FLAGS.restrict_vocab, "analogies": path,
            "machine": platform.processor() or platform.machine(), "cpus": os.cpu_count(),
            "methods": {}}
  for method in _FLAGS.methods:
    times = []
    for _ in range(_FLAGS.repeats):
      start = time.perf_counter()
      result = analogy.evaluate_analogies(vectors, words, analogies,
                                          restrict_vocab=_FLAGS.restrict_vocab, method=method)
      times.append(time.perf_counter() - start)
    total = result["total"]
    report["methods"][method] = {"seconds": times, "median_seconds": statistics.median(times),
                                 "questions": total["questions"], "seen": total["seen"]}
    print(f"{method}: {total['seen']}/{total['questions']} questions against "
          f"{_FLAGS.vocab_size} x {_FLAGS.dim} (candidates: first {result['candidates']}): "
          f"median {statistics.median(times):.2f} s over {len(times)} runs "
          f"({', '.join(f'{t:.2f}' for t in times)})")
  if _FLAGS.output_json:
    atomic_write_json(_FLAGS.output_json, report)


if __name__ == "__main__":
  from w2v_tf.errors import run_main

  define_flags()
  run_main(main)
