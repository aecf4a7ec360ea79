"""What the benchmark scripts share: the machine, peak memory, medians, JSON output, work folders,
workers in their own processes and scoring a vectors file.

A benchmark that trains in a subprocess writes a JSON spec with `run_worker_process`; the child
(the same module with `--worker`) reads it with `read_worker_spec` and answers with
`write_worker_result`, so each run has its own peak memory and a fresh TensorFlow.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Iterator, Sequence

from w2v_tf.errors import UserError
from w2v_tf.fileio import atomic_write_json

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- The machine ------------------------------------------------------------------------------


def available_cores() -> int:
  """The cores this process may use (its affinity mask; the CPU count where there is none)."""
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


def cpu_model() -> str:
  """lscpu's "Model name" (else /proc/cpuinfo's, else platform's)."""
  try:
    output = subprocess.run(["lscpu"], capture_output=True, text=True, check=False,
                            env=dict(os.environ, LC_ALL="C")).stdout
    for line in output.splitlines():
      if line.startswith("Model name:"):
        return line.split(":", 1)[1].strip()
  except OSError:
    pass
  try:
    with open("/proc/cpuinfo", encoding="utf-8") as f:
      for line in f:
        if line.startswith("model name"):
          return line.split(":", 1)[1].strip()
  except OSError:
    pass
  return platform.processor() or "unknown"


# Instruction sets that change what a figure means here (oneDNN's and XLA's kernels, OpenBLAS's).
CPU_ISA_FLAGS = ("avx2", "avx512f", "avx512_bf16", "amx_tile", "amx_bf16")


def cpu_isa(cpuinfo: str = "/proc/cpuinfo") -> list[str]:
  """Which of `CPU_ISA_FLAGS` the first CPU's flags in `cpuinfo` list (empty if unreadable)."""
  try:
    with open(cpuinfo, encoding="utf-8") as f:
      flags = next((line.split(":", 1)[1].split() for line in f if line.startswith("flags")), [])
  except OSError:
    return []
  return [flag for flag in CPU_ISA_FLAGS if flag in flags]


def machine() -> dict:
  """The JSON's "machine": CPU model, its instruction sets, usable cores, platform, Python."""
  return {"cpu_model": cpu_model(), "cpu_isa": cpu_isa(), "cores": available_cores(),
          "platform": platform.platform(), "python": platform.python_version()}


def command_line(module: str) -> str:
  """How this process was started, as `python -m module ARGS` (shell-quoted)."""
  return " ".join([f"python -m {module}", *(shlex.quote(arg) for arg in sys.argv[1:])])


# --- Measuring and reporting ------------------------------------------------------------------


def peak_rss_mb() -> float:
  """Peak resident memory of this process image, in MiB.

  Linux's VmHWM (the high-water mark of this address space, which starts afresh at exec);
  `ru_maxrss` is the fallback elsewhere, but on Linux it carries the parent's peak across
  fork + exec, which would charge the parent's TensorFlow and corpus to a worker.
  """
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024  # kB
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB, macOS: bytes


def median(values) -> float:
  """The median of the values that are neither None nor NaN (NaN if none is left)."""
  values = [v for v in values if v is not None and v == v]
  return statistics.median(values) if values else float("nan")


def format_value(value, pattern: str) -> str:
  """`pattern.format(value)` for a table cell; "–" for a missing (None or NaN) value."""
  if value is None or value != value:
    return "–"
  return pattern.format(value)


def save_json(path: str, payload: dict) -> None:
  """Writes the payload to `path` atomically: indented, keys sorted, NaN as NaN."""
  atomic_write_json(path, payload, sort_keys=True)


def write_json(path: str | None, payload: dict, echo: bool = True) -> None:
  """Prints the payload (with `echo`) and writes it to `path` (atomically) when given."""
  if echo:
    print(json.dumps(payload, indent=2, sort_keys=True))
  if path:
    save_json(path, payload)
    print(f"wrote {path}", file=sys.stderr)


@contextlib.contextmanager
def work_folder(keep: str | None, prefix: str) -> Iterator[str]:
  """Yields `keep` (made if missing) or, without it, a new temporary folder removed at the end."""
  path = keep or tempfile.mkdtemp(prefix=prefix)
  os.makedirs(path, exist_ok=True)
  try:
    yield path
  finally:
    if not keep:
      shutil.rmtree(path, ignore_errors=True)


# --- Workers: one run in its own process ------------------------------------------------------


def run_worker_process(name: str, worker: Sequence[str], spec: dict, run_dir: str) -> dict:
  """Runs one worker on `spec` in its own process; returns the result it wrote.

  Args:
    name: the run's name, in the spec and the progress line.
    worker: the command after the interpreter, e.g. `["-m", "benchmarks.compare",
      "--worker=gensim"]`; `--worker_spec=PATH` is appended.
    spec: what the worker needs; `name` and `result_path` are added.
    run_dir: the run's folder (made if missing): spec.json and result.json go there.

  Returns:
    The worker's result plus `process_seconds` (its whole wall clock as seen from here) and
    `load_average_before`.
  """
  os.makedirs(run_dir, exist_ok=True)
  spec = dict(spec, name=name, result_path=os.path.join(run_dir, "result.json"))
  if os.path.exists(spec["result_path"]):  # a kept --work_dir from an earlier run
    os.remove(spec["result_path"])
  spec_path = os.path.join(run_dir, "spec.json")
  with open(spec_path, "w", encoding="utf-8") as f:
    json.dump(spec, f, indent=2)
  load = os.getloadavg()[0]
  print(f"--- {name}: training (load average {load:.2f})", file=sys.stderr, flush=True)
  started = time.perf_counter()
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  process = subprocess.run([sys.executable, *worker, f"--worker_spec={spec_path}"],
                           cwd=REPO_ROOT, env=env, check=False)
  if process.returncode != 0:
    raise UserError(f"the {name} run failed (exit code {process.returncode}); its output is "
                    "above")
  with open(spec["result_path"], encoding="utf-8") as f:
    result = json.load(f)
  result["process_seconds"] = time.perf_counter() - started
  result["load_average_before"] = load
  return result


def quiet_library_logs() -> None:
  """Hides gensim's and TensorFlow's INFO lines in a worker (they drown the report)."""
  import logging  # pylint: disable=import-outside-toplevel
  from absl import logging as absl_logging  # pylint: disable=import-outside-toplevel
  for name in ("gensim", "tensorflow"):
    logging.getLogger(name).setLevel(logging.WARNING)
  absl_logging.set_verbosity(absl_logging.WARNING)


def read_worker_spec(path: str) -> dict:
  """The spec `run_worker_process` wrote for this worker."""
  with open(path, encoding="utf-8") as f:
    return json.load(f)


def write_worker_result(spec: dict, result: dict) -> None:
  """Writes the worker's result where its spec says, with this process's peak RSS unless the
  result brings its own (pWord2Vec's worker reports its child's)."""
  result.setdefault("peak_rss_mb", peak_rss_mb())
  with open(spec["result_path"], "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, sort_keys=True)


# --- Scoring ----------------------------------------------------------------------------------


def evaluate_vectors(vectors_path: str, analogies, word_pairs, restrict_vocab: int,
                     drop_words: Sequence[str] = ()) -> dict:
  """Analogy and word-pair scores of a vectors file (without the rows of `drop_words`).

  Args:
    vectors_path: any vectors file `WordVectors.load` reads.
    analogies: an `eval.analogy` analogy set, or None to skip it.
    word_pairs: an `eval.similarity` word-pair set, or None to skip it.
    restrict_vocab: analogy candidates, the first N words (0 = all).
    drop_words: words whose rows are left out before scoring.

  Returns:
    {"vocab_size", "analogy": {"total", "semantic", "syntactic", "sections"}, "wordsim",
    "dropped_words" (when any was)}.
  """
  # pylint: disable=import-outside-toplevel
  from eval.analogy import evaluate_analogies
  from eval.similarity import evaluate_word_pairs
  from w2v_tf.word_vectors import WordVectors
  loaded = WordVectors.load(vectors_path)
  words, vectors = list(loaded.words), loaded.vectors
  dropped = [word for word in words if word in set(drop_words)]
  if dropped:
    keep = [i for i, word in enumerate(words) if word not in set(drop_words)]
    words, vectors = [words[i] for i in keep], vectors[keep]
  result = {"vocab_size": len(words)}
  if dropped:
    result["dropped_words"] = dropped
  if analogies is not None:
    scores = evaluate_analogies(vectors, words, analogies, restrict_vocab=restrict_vocab)
    result["analogy"] = {part: scores[part] for part in ("total", "semantic", "syntactic")}
    result["analogy"]["sections"] = scores["sections"]
  if word_pairs is not None:
    try:
      result["wordsim"] = evaluate_word_pairs(vectors, words, word_pairs)
    except UserError as e:  # no pair known (tiny corpora)
      result["wordsim"] = {"spearman": float("nan"), "error": str(e)}
  return result
