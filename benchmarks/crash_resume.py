"""Crash test: SIGKILL the trainer at random moments, restart it, compare with an uninterrupted run.

  python -m benchmarks.crash_resume --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --max_reviews 3000 --kills 10 --output_json out/crash_resume.json

1. Trains `--reference_runs` times uninterrupted (`python -m w2v_tf.train`, fixed seed), each in
   a fresh model dir: the result, and the run-to-run noise when there are two.
2. Trains again in a fresh model dir, killing the process with SIGKILL `--kills` times, each a
   random delay after the run logged its start (uniform over the reference's warm-up plus
   2/kills of its training time, so kills hit start-up, steps and saves and the run still
   progresses), and restarting the same command each time; then lets it finish.
3. Checks: every restart says it resumed from the checkpoint the state file listed last when
   the previous process died (the last complete checkpoint), no restart warns about an
   unreadable checkpoint, and the final step count, vocab.tsv and vectors equal the
   uninterrupted run's (vectors and the last logged full-softmax losses within noise).

Without --train_csv it generates a small random corpus. Exits 1 with one `error:` line when a
check fails; the JSON holds every kill (delay, last step seen, checkpoint resumed from, partial
checkpoint writes left behind).
"""

from __future__ import annotations

import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

from absl import flags
import numpy as np

from benchmarks import common
from w2v_tf import checkpoints, config_flags
from w2v_tf.errors import UsageError, UserError, run_main

# The trainer's own flags for the settings it passes on, with this benchmark's defaults.
_TRAINER_DEFAULTS = {"train_csv": None, "max_reviews": 3000, "stopwords": "nltk", "epochs": 2,
                     "embedding_dim": 50, "batch_size": 256, "checkpoint_every_steps": 20,
                     "eval_every_steps": 20, "jit_compile": False}


def define_flags() -> None:
  config_flags.define_flags(flags.FLAGS, names=_TRAINER_DEFAULTS, defaults=_TRAINER_DEFAULTS)
  flags.DEFINE_integer("kills", 10, "SIGKILLs before the run may finish.")
  flags.DEFINE_integer("seed", 0, "Seed of the kill moments (training always uses --train_seed).")
  flags.DEFINE_integer("train_seed", 0, "The trainer's --seed.")
  flags.DEFINE_integer("reference_runs", 2, "Uninterrupted runs (2 measures run-to-run noise).")
  flags.DEFINE_string("work_dir", None, "Where the model dirs go (default: a temp dir, removed).")
  flags.DEFINE_float("atol", 1e-5, "Largest vector difference from the reference that passes.")
  flags.DEFINE_string("output_json", None, "Write the results here.")


FLAGS = flags.FLAGS

_STEP_LINE = re.compile(r"^step (\d+) \| .*? ([\d.]+) \| full softmax \(batch\) ([\d.]+) \| "
                        r"full softmax \(held-out\) ([\d.na]+)")
# The trainer's first line: "INPUT (cleaning ...): vocabulary N words, ...".
_FIRST_LINE = r"\): vocabulary [\d,]+ words, "
_ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}


class _Run:
  """A `python -m w2v_tf.train` process; stderr lines are collected with their arrival time."""

  def __init__(self, args: list[str]):
    self.started = time.perf_counter()
    self.process = subprocess.Popen([sys.executable, "-m", "w2v_tf.train", *args], env=_ENV,
                                    stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                                    bufsize=1)
    self.lines: list[tuple[float, str]] = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.lines.append((time.perf_counter() - self.started, line.rstrip("\n")))

  def wait_for(self, pattern: str, timeout: float = 600) -> tuple[float, str] | None:
    """(time, line) of the first line matching `pattern`; None if the process ended first."""
    deadline = time.time() + timeout
    while time.time() < deadline:
      for item in list(self.lines):
        if re.search(pattern, item[1]):
          return item
      if self.process.poll() is not None and not self._reader.is_alive():
        return None
      time.sleep(0.01)
    raise UserError(f"timed out waiting for {pattern!r}")

  def finish(self, timeout: float = 3600) -> int:
    code = self.process.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return code

  def text(self) -> str:
    return "\n".join(line for _, line in self.lines)

  def last_step_line(self) -> dict | None:
    for _, line in reversed(self.lines):
      match = _STEP_LINE.match(line)
      if match:
        return {"step": int(match.group(1)), "train_loss": float(match.group(2)),
                "full_softmax_batch": float(match.group(3)),
                "full_softmax_heldout": float(match.group(4)), "line": line}
    return None


def _generate_corpus(path: str, reviews: int = 3000, seed: int = 0) -> None:
  rng = random.Random(seed)
  words = [f"w{chr(97 + i % 26)}{chr(97 + i // 26 % 26)}{chr(97 + i // 676)}" for i in range(400)]
  weights = [1.0 / (rank + 1) for rank in range(len(words))]
  with open(path, "w", encoding="utf-8") as f:
    f.write("review,sentiment\n")
    f.writelines('"' + " ".join(rng.choices(words, weights, k=60)) + '",positive\n'
                 for _ in range(reviews))


def _train_args(train_csv: str, stopwords: str, model_dir: str, cache_dir: str) -> list[str]:
  return [f"--train_csv={train_csv}", f"--max_reviews={FLAGS.max_reviews}",
          f"--stopwords={stopwords}", f"--model_dir={model_dir}", f"--cache_dir={cache_dir}",
          f"--seed={FLAGS.train_seed}", f"--epochs={FLAGS.epochs}",
          f"--embedding_dim={FLAGS.embedding_dim}", f"--batch_size={FLAGS.batch_size}",
          f"--checkpoint_every_steps={FLAGS.checkpoint_every_steps}",
          f"--eval_every_steps={FLAGS.eval_every_steps}", "--noprogress",
          "--jit_compile" if FLAGS.jit_compile else "--nojit_compile"]


def _final(run: _Run, model_dir: str) -> dict:
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  done = re.search(r"^done: (\d+) steps", run.text(), re.MULTILINE)
  loaded = WordVectors.from_model_dir(model_dir)
  words, vectors = list(loaded.words), loaded.vectors
  with open(os.path.join(model_dir, "vocab.tsv"), encoding="utf-8") as f:
    vocab = f.read()
  return {"steps": int(done.group(1)) if done else None, "words": words, "vectors": vectors,
          "vocab_tsv": vocab, "last_step_line": run.last_step_line()}


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.kills < 1 or FLAGS.reference_runs < 1:
    raise UsageError("--kills and --reference_runs must be 1 or more")
  with common.work_folder(FLAGS.work_dir, "crash-resume-") as work_dir:
    _crash_test(work_dir)


def _crash_test(work_dir: str) -> None:
  """Trains uninterrupted, then killed and restarted; writes the result, raises if a check fails."""
  cache_dir = os.path.join(work_dir, "cache")
  train_csv, stopwords = FLAGS.train_csv, FLAGS.stopwords
  if not train_csv:
    train_csv, stopwords = os.path.join(work_dir, "random.csv"), "none"
    _generate_corpus(train_csv)
  result = {"train_csv": train_csv, "max_reviews": FLAGS.max_reviews, "kills_planned": FLAGS.kills,
            "seed": FLAGS.seed, "epochs": FLAGS.epochs, "embedding_dim": FLAGS.embedding_dim,
            "batch_size": FLAGS.batch_size, "jit_compile": FLAGS.jit_compile,
            "checkpoint_every_steps": FLAGS.checkpoint_every_steps, "cores": os.cpu_count()}
  # 1. Uninterrupted.
  references = []
  for index in range(FLAGS.reference_runs):
    model_dir = os.path.join(work_dir, f"reference{index}")
    shutil.rmtree(model_dir, ignore_errors=True)
    run = _Run(_train_args(train_csv, stopwords, model_dir, cache_dir))
    if run.finish() != 0:
      raise UserError(f"the uninterrupted run failed:\n{run.text()[-2000:]}")
    start, first_step = run.wait_for(_FIRST_LINE), run.wait_for(r"^step \d+ \|")
    if start is None or first_step is None:
      raise UserError(f"the uninterrupted run printed no first line or step line:\n"
                      f"{run.text()[-2000:]}")
    start = start[0]
    warmup = first_step[0] - start  # first step (tracing) + first eval
    references.append((run, _final(run, model_dir), start, run.lines[-1][0], warmup))
    print(f"reference {index}: {references[-1][1]['steps']} steps, training "
          f"{references[-1][3] - start:.1f} s of {references[-1][3]:.1f} s", file=sys.stderr)
  reference = references[0][1]
  train_seconds, warmup = references[0][3] - references[0][2], references[0][4]
  result["reference"] = {"steps": reference["steps"], "process_seconds": references[0][3],
                         "train_seconds": train_seconds, "warmup_seconds": warmup,
                         "last_step_line": reference["last_step_line"]}
  if len(references) > 1:
    other = references[1][1]
    result["reference_noise"] = {
        "max_abs_vector_diff": float(np.max(np.abs(other["vectors"] - reference["vectors"]))),
        "last_step_lines": [reference["last_step_line"], other["last_step_line"]]}

  # 2. Killed and restarted.
  rng = random.Random(FLAGS.seed)
  model_dir = os.path.join(work_dir, "killed")
  shutil.rmtree(model_dir, ignore_errors=True)
  args = _train_args(train_csv, stopwords, model_dir, cache_dir)
  kills, problems = [], []
  final_run = None
  started = time.perf_counter()
  while True:
    expected = checkpoints.read_state(model_dir) if os.path.isdir(model_dir) else None
    expected = expected[-1] if expected else None
    run = _Run(args)
    if expected:
      resumed = run.wait_for(r"^resumed from ")
      if resumed is None or not resumed[1].startswith(f"resumed from {expected}: "):
        problems.append(f"restart {len(kills)} did not resume from {expected}: "
                        f"{resumed[1] if resumed else run.text()[-500:]}")
    if len(kills) >= FLAGS.kills:
      final_run = run
      break
    begin = run.wait_for(_FIRST_LINE)
    # Uniform over the warm-up (tracing, first eval) plus twice a tenth of the rest: the
    # kills hit start-up and saves too, and the run still progresses between them.
    delay = rng.uniform(0.0, warmup + 2.0 * max(train_seconds - warmup, 0.1) / FLAGS.kills)
    if begin is not None:
      time.sleep(max(0.0, begin[0] + delay - (time.perf_counter() - run.started)))
    if run.process.poll() is not None:  # finished before the kill moment
      final_run = run
      break
    run.process.send_signal(signal.SIGKILL)
    run.finish()
    last = run.last_step_line()
    leftovers = sorted(n for n in os.listdir(model_dir) if n.endswith("_temp"))
    listed = checkpoints.read_state(model_dir) or [None]
    kills.append({"delay_after_start_s": round(delay, 3),
                  "resumed_from": expected,
                  "last_step_logged": last["step"] if last else None,
                  "latest_checkpoint_after_kill": listed[-1],
                  "partial_checkpoint_writes": leftovers})
    print(f"kill {len(kills)}: {delay:.2f} s into training, last step logged "
          f"{kills[-1]['last_step_logged']}, resumes from "
          f"{kills[-1]['latest_checkpoint_after_kill']}"
          + (f" (partial write {leftovers})" if leftovers else ""), file=sys.stderr)
    for _, line in run.lines:
      if "unreadable" in line or "fell back" in line or "Traceback" in line:
        problems.append(f"killed run {len(kills)} logged: {line}")
  if final_run.finish() != 0:
    raise UserError(f"the restarted run failed:\n{final_run.text()[-2000:]}")
  for _, line in final_run.lines:
    if "unreadable" in line or "fell back" in line:
      problems.append(f"the last run logged: {line}")
  result["killed_run_seconds"] = time.perf_counter() - started
  killed = _final(final_run, model_dir)
  result["kills"] = kills
  diff = float(np.max(np.abs(killed["vectors"] - reference["vectors"])))
  result["killed"] = {"steps": killed["steps"], "last_step_line": killed["last_step_line"],
                      "max_abs_vector_diff_vs_reference": diff,
                      "vocab_equal": killed["vocab_tsv"] == reference["vocab_tsv"]}
  if killed["steps"] != reference["steps"]:
    problems.append(f"final step {killed['steps']} != reference {reference['steps']}")
  if not result["killed"]["vocab_equal"] or killed["words"] != reference["words"]:
    problems.append("vocab.tsv differs from the reference")
  if not diff <= FLAGS.atol:
    problems.append(f"vectors differ from the reference by {diff:.3g} (> --atol {FLAGS.atol})")
  ours, theirs = killed["last_step_line"], reference["last_step_line"]
  if ours and theirs:
    result["killed"]["heldout_loss_diff"] = abs(ours["full_softmax_heldout"]
                                                - theirs["full_softmax_heldout"])
    if ours["step"] != theirs["step"] or result["killed"]["heldout_loss_diff"] > 0.011:
      problems.append(f"last loss line differs: {ours['line']!r} vs {theirs['line']!r}")
  result["kills_done"] = len(kills)
  result["problems"] = problems
  result["passed"] = not problems
  common.write_json(FLAGS.output_json, result)
  if problems:
    raise UserError(f"{len(problems)} check(s) failed; first: {problems[0]}")


if __name__ == "__main__":
  define_flags()
  run_main(main)
