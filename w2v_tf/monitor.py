"""Monitoring as callbacks: progress bar, console lines, TensorBoard scalars and text.

The trainer calls each callback's hooks in list order, as Keras does, passing a `logs` dict that
earlier callbacks may add to (the per-epoch analogy evaluation, which the binary passes in, adds
"analogy_percent/total" etc.; `TensorBoard`, placed after it, writes every "name/part" scalar it
finds).

  on_run_begin(logs)                 {"message": the run's opening line}
  on_epoch_begin(epoch, logs)        {"epochs", "epoch_words"}
  on_progress(logs)                  {"epoch_words_done", "words_per_sec" (NaN: none yet)}
  on_log(step, logs)                 {"loss/train", "learning_rate", "words_per_sec" (absent
                                      until measured: the run's first step, which compiles,
                                      has none), "loss_name"}  (every log_every_steps)
  on_evaluation(step, logs)          on_log's, "loss/full_softmax_batch",
                                     "loss/full_softmax_heldout", "grad_cosine/heldout"
  on_epoch_end(epoch, logs)          {"step", "checkpoint", "vectors": WordVectors}
  on_interrupt(step, logs)           {"signal", "checkpoint"}
  on_run_end(logs)                   {"train_seconds", "eval_seconds", ...}
"""

from __future__ import annotations

import math
import re
import sys
import time
from typing import Callable, Sequence

import numpy as np
import tensorflow as tf

NUM_VALIDATION_WORDS = 16
# The scalars' tags (the trainer's logs keys), which the custom-scalars layout charts.
LOSS_TAGS = ("loss/train", "loss/full_softmax_batch", "loss/full_softmax_heldout")
GRAD_COSINE_TAG = "grad_cosine/heldout"
ANALOGY_PREFIX = "analogy_percent/"  # percentages, as on the console (`AnalogyEvaluation`)


class Callback:
  """Does nothing at every hook; subclasses override what they need."""

  def on_run_begin(self, logs: dict) -> None:
    pass

  def on_epoch_begin(self, epoch: int, logs: dict) -> None:
    pass

  def on_progress(self, logs: dict) -> None:
    pass

  def on_log(self, step: int, logs: dict) -> None:
    pass

  def on_evaluation(self, step: int, logs: dict) -> None:
    pass

  def on_epoch_end(self, epoch: int, logs: dict) -> None:
    pass

  def on_interrupt(self, step: int, logs: dict) -> None:
    pass

  def on_run_end(self, logs: dict) -> None:
    pass


class CallbackList(Callback):
  """Calls every hook of `callbacks` in order."""

  def __init__(self, callbacks: Sequence[Callback]):
    self.callbacks = list(callbacks)
    for name in ("on_run_begin", "on_epoch_begin", "on_progress", "on_log", "on_evaluation",
                 "on_epoch_end", "on_interrupt", "on_run_end"):
      setattr(self, name, self._fan_out(name))

  def _fan_out(self, name: str):
    def call(*args):
      for callback in self.callbacks:
        getattr(callback, name)(*args)
    return call


class ProgressBar(Callback):
  """One line per epoch on stderr: bar, percent, words/s, ETA of the epoch and of the run
  (redrawn at most 4 times/s). Cleared before any other line is printed.

  The ETAs use the rate the bar itself measures from its first draw of the epoch on (after
  the epoch's first step, which may compile: a rate including it gave an ETA of 0:23:23 for an
  epoch of 6 s) once it spans 1 s; until then the trainer's rate, which never includes a
  compilation (short epochs showed "ETA --:--" at 60% waiting for the bar's own).
  """

  def __init__(self, stream=None):
    self.stream = stream or sys.stderr
    self.tty = self.stream.isatty()
    self.title, self.total, self.epochs_after = "", 1.0, 0
    self.last_draw, self.last_percent, self.start = 0.0, -10, None

  def on_epoch_begin(self, epoch, logs):
    self.title = f"epoch {epoch + 1}/{logs['epochs']}"
    self.total = max(logs["epoch_words"], 1)
    self.epochs_after = logs["epochs"] - epoch - 1  # whole epochs left after this one
    self.last_draw, self.last_percent, self.start = 0.0, -10, None

  def on_progress(self, logs):
    self._draw(logs["epoch_words_done"], logs["words_per_sec"], force=False)

  def etas(self, done_words: float, now: float,
           words_per_sec: float = float("nan")) -> tuple[float, float]:
    """(seconds left in the epoch, in the run) at the bar's own rate, else at `words_per_sec`
    (the trainer's); NaN while neither is known."""
    if self.start is None:
      self.start = (now, done_words)
    elapsed, words = now - self.start[0], done_words - self.start[1]
    if elapsed >= 1.0 and words > 0:
      rate = words / elapsed
    else:
      rate = words_per_sec if words_per_sec > 0 else float("nan")  # NaN > 0 is False
    epoch_left = max(self.total - done_words, 0.0) / rate
    return epoch_left, epoch_left + self.epochs_after * self.total / rate

  def _draw(self, done_words: float, words_per_sec: float, force: bool) -> None:
    now = time.time()
    fraction = min(done_words / self.total, 1.0)
    percent = int(fraction * 100)
    epoch_eta, run_eta = self.etas(done_words, now, words_per_sec)
    if self.tty and not force and now - self.last_draw < 0.25:
      return
    if not self.tty and not force and percent < self.last_percent + 10:
      return
    self.last_draw, self.last_percent = now, percent
    bar = "#" * int(fraction * 30)
    line = (f"{self.title} [{bar:<30}] {percent:3d}% {format_rate(words_per_sec)} words/s "
            f"ETA {format_seconds(epoch_eta)} (run {format_seconds(run_eta)})")
    print(("\r" + line) if self.tty else line, end="" if self.tty else "\n", file=self.stream,
          flush=True)

  def clear(self) -> None:
    if self.tty:
      print("\r" + " " * 130 + "\r", end="", file=self.stream, flush=True)

  def on_evaluation(self, step, logs):
    self.clear()

  on_log = on_evaluation

  def on_epoch_end(self, epoch, logs):
    if self.last_percent < 100:  # the bar's last state: 100%
      self._draw(self.total, logs.get("words_per_sec", float("nan")), force=True)
    self.clear()

  def on_interrupt(self, step, logs):
    self.clear()


class ConsoleLog(Callback):
  """The run's lines: its setup, each loss comparison, each epoch end, a stop, the totals."""

  def __init__(self, log: Callable[[str], None]):
    self.log = log

  def on_run_begin(self, logs):
    self.log(logs["message"])

  def on_log(self, step, logs):
    self.log(f"step {step} | {logs['loss_name']} {logs['loss/train']:.2f} | "
             f"{_rate_and_lr(logs)}")

  def on_evaluation(self, step, logs):
    self.log(f"step {step} | {logs['loss_name']} {logs['loss/train']:.2f} | full softmax "
             f"(batch) {logs['loss/full_softmax_batch']:.2f} | full softmax (held-out) "
             f"{logs['loss/full_softmax_heldout']:.2f} | grad cosine "
             f"{logs['grad_cosine/heldout']:.3f} | {_rate_and_lr(logs)}")

  def on_epoch_end(self, epoch, logs):
    self.log(f"epoch {epoch + 1} done at step {logs['step']}; checkpoint {logs['checkpoint']}")

  def on_interrupt(self, step, logs):
    self.log(f"stopped by {logs['signal']} at step {step}: checkpoint saved to "
             f"{logs['checkpoint']}; run the same command to resume")

  def on_run_end(self, logs):
    seconds = logs["train_seconds"]
    self.log(f"full-softmax comparison: {logs['eval_seconds']:.1f}s, "
             f"{logs['eval_seconds'] / max(seconds, 1e-9):.1%} of {seconds:.0f}s of training")


def _rate_and_lr(logs: dict) -> str:
  """"352k words/s | lr 0.02462" (no rate before one is measured; 4 significant digits, so
  the end of the decay reads lr 2.5e-06, not lr 0.00000)."""
  rate = (f"{format_rate(logs['words_per_sec'])} words/s | " if "words_per_sec" in logs
          else "")
  return f"{rate}lr {logs['learning_rate']:.4g}"


def format_rate(words_per_sec: float) -> str:
  """"352k" ("--" when unknown)."""
  return f"{words_per_sec / 1e3:,.0f}k" if math.isfinite(words_per_sec) else "--"


def scalars_layout():
  """The custom-scalars dashboard: the losses in one chart, the gradient cosine, the analogies.

  Returns:
    A `tensorboard.plugins.custom_scalar.layout_pb2.Layout`.
  """
  from tensorboard.plugins.custom_scalar import layout_pb2  # pylint: disable=import-outside-toplevel

  def chart(title, pattern):
    return layout_pb2.Chart(title=title, multiline=layout_pb2.MultilineChartContent(
        tag=[pattern]))

  exact = "|".join(re.escape(tag) for tag in LOSS_TAGS)
  return layout_pb2.Layout(category=[layout_pb2.Category(title="word2vec", chart=[
      chart("training loss and exact full-softmax losses (batch, held-out)", f"^({exact})$"),
      chart("gradient cosine: training loss vs exact loss (held-out)",
            f"^{re.escape(GRAD_COSINE_TAG)}$"),
      chart("analogy accuracy (%)", f"^{re.escape(ANALOGY_PREFIX)}"),
  ])])


class TensorBoard(Callback):
  """Event files in `log_dir`: every "name/part" scalar of the evaluations and epoch ends,
  "learning_rate" and "words_per_sec", a text table of 16 frequent words' neighbours, and
  with each run the custom-scalars layout (`scalars_layout`)."""

  def __init__(self, log_dir: str):
    self.log_dir = log_dir
    self.writer = None

  def on_run_begin(self, logs):
    from tensorboard.plugins.custom_scalar import summary  # pylint: disable=import-outside-toplevel
    self.writer = tf.summary.create_file_writer(self.log_dir)
    with self.writer.as_default():  # the plugin reads the first point of any run's layout
      tf.summary.experimental.write_raw_pb(summary.pb(scalars_layout()).SerializeToString(),
                                           step=0)

  def _scalars(self, step: int, logs: dict) -> None:
    with self.writer.as_default():
      for name, value in logs.items():
        if ("/" in name or name in ("learning_rate", "words_per_sec")) and isinstance(
            value, (int, float)):
          tf.summary.scalar(name, value, step=step)

  def on_evaluation(self, step, logs):
    self._scalars(step, logs)

  on_log = on_evaluation

  def on_epoch_end(self, epoch, logs):
    step = logs["step"]
    self._scalars(step, logs)
    with self.writer.as_default():
      tf.summary.text("nearest_neighbors", neighbors_markdown(logs["vectors"]), step=step)

  def on_run_end(self, logs):
    self.writer.flush()


def validation_word_ids(vocab_size: int, seed: int = 0) -> np.ndarray:
  """16 frequent words (ids below 100), as the seed tutorials pick them."""
  pool = min(100, vocab_size)
  return np.sort(np.random.default_rng([seed, 23]).choice(
      pool, min(NUM_VALIDATION_WORDS, pool), replace=False))


def neighbors_markdown(vectors, top_k: int = 8) -> str:
  """A markdown table of the validation words' nearest neighbours (a `WordVectors`)."""
  ids = validation_word_ids(len(vectors.words))
  lines = ["| word | nearest neighbours |", "| --- | --- |"]
  for word_id, neighbors in zip(ids, vectors.nearest(ids, top_k)):
    lines.append(f"| {vectors.words[word_id]} | "
                 + ", ".join(f"{n} ({s:.2f})" for n, s in neighbors) + " |")
  return "\n".join(lines)


def format_seconds(seconds: float) -> str:
  if not math.isfinite(seconds):
    return "--:--"
  seconds = int(seconds)
  return f"{seconds // 3600}:{seconds % 3600 // 60:02d}:{seconds % 60:02d}"


def default_callbacks(model_dir: str, progress: bool, log: Callable[[str], None],
                      extra: Sequence[Callback] = ()) -> list[Callback]:
  """Progress bar (if `progress`), console lines, `extra` (e.g. analogies), TensorBoard."""
  return ([ProgressBar()] if progress else []) + [ConsoleLog(log), *extra,
                                                   TensorBoard(model_dir)]


class AnalogyEvaluation(Callback):
  """Scores each epoch's vectors on analogies and adds "analogy_percent/total", ".../semantic",
  ".../syntactic" (accuracies in percent, as the console line; before 2026-12-07 TensorBoard got
  fractions under "analogy/...") and "analogy" (the counts, fractions) to the epoch's logs.

  Args:
    evaluate: WordVectors -> a result with "total", "semantic" and "syntactic" parts, each
      {"accuracy", "correct", "seen", "questions"} (`eval.analogy.evaluate_analogies`, passed
      in by the binary: the library never imports eval/).
    log: prints one line per epoch.
  """

  def __init__(self, evaluate: Callable[[object], dict], log: Callable[[str], None]):
    self.evaluate, self.log = evaluate, log

  def on_epoch_end(self, epoch, logs):
    result = self.evaluate(logs["vectors"])
    parts = ("total", "semantic", "syntactic")
    for part in parts:
      if result[part]["accuracy"] is not None:  # None: no question seen, no scalar to plot
        logs[f"{ANALOGY_PREFIX}{part}"] = 100.0 * result[part]["accuracy"]
    logs["analogy"] = {part: result[part] for part in parts}
    total = result["total"]
    percent = lambda value: "n/a" if value is None else f"{value:.1%}"
    self.log(f"epoch {epoch + 1} analogies: total {percent(total['accuracy'])} "
             f"({total['correct']}/{total['seen']} seen of {total['questions']}), "
             f"semantic {percent(result['semantic']['accuracy'])}, "
             f"syntactic {percent(result['syntactic']['accuracy'])}")
