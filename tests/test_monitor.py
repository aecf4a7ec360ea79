"""w2v_tf/monitor.py: the progress bar's ETAs, the console lines, the custom-scalars layout,
the analogy scores' unit."""

import io
import math
import re

from w2v_tf import monitor


def test_progress_eta_of_the_epoch_and_of_the_run(monkeypatch):
  clock = [100.0]
  monkeypatch.setattr(monitor.time, "time", lambda: clock[0])
  stream = io.StringIO()
  bar = monitor.ProgressBar(stream)
  bar.on_epoch_begin(0, {"epochs": 3, "epoch_words": 1000})
  # Right after the first step (which compiles) the trainer has no rate yet.
  bar.on_progress({"epoch_words_done": 100, "words_per_sec": math.nan})
  clock[0] += 2.0  # then 200 words in 2 s: 100 words/s, 700 words of this epoch left
  bar.on_progress({"epoch_words_done": 300, "words_per_sec": 100.0})
  bar.on_epoch_end(0, {"words_per_sec": 100.0})
  lines = stream.getvalue().splitlines()
  assert lines[0].endswith("10% -- words/s ETA --:-- (run --:--)"), lines  # no rate at all
  assert lines[1].endswith("ETA 0:00:07 (run 0:00:27)"), lines  # + 2 epochs x 10 s
  assert lines[-1].startswith("epoch 1/3 [" + "#" * 30 + "] 100%"), lines
  # The next epoch starts its own measurement; the last epoch's run ETA is its own.
  bar.on_epoch_begin(2, {"epochs": 3, "epoch_words": 1000})
  bar.etas(0, clock[0])  # its first draw
  clock[0] += 1.0
  assert bar.etas(500, clock[0]) == (1.0, 1.0)  # 500 words/s, 500 left, no epoch after it


def test_a_short_epoch_gets_an_eta_from_the_trainers_rate(monkeypatch):
  """Before the bar's own rate spans 1 s it takes the trainer's (which excludes compilation):
  short epochs showed "ETA --:--" up to 60% and more."""
  clock = [100.0]
  monkeypatch.setattr(monitor.time, "time", lambda: clock[0])
  stream = io.StringIO()
  bar = monitor.ProgressBar(stream)
  bar.on_epoch_begin(0, {"epochs": 2, "epoch_words": 1000})
  bar.on_progress({"epoch_words_done": 100, "words_per_sec": math.nan})
  clock[0] += 0.5
  bar.on_progress({"epoch_words_done": 600, "words_per_sec": 200.0})  # 60%, 0.5 s in
  lines = stream.getvalue().splitlines()
  assert lines[-1].endswith("60% 0k words/s ETA 0:00:02 (run 0:00:07)"), lines  # 400 / 200


def _console_lines(logs):
  lines = []
  console = monitor.ConsoleLog(lines.append)
  console.on_log(7, {"loss_name": "sampled softmax", "loss/train": 3.0, **logs})
  return lines


def test_console_learning_rate_has_significant_digits():
  """The end of the decay (1e-4 of 0.025) read "lr 0.00000"."""
  assert _console_lines({"learning_rate": 2.5e-6, "words_per_sec": 352e3}) == [
      "step 7 | sampled softmax 3.00 | 352k words/s | lr 2.5e-06"]
  assert _console_lines({"learning_rate": 0.024615})[0].endswith("| lr 0.02462")


def test_console_line_without_a_rate_says_none():
  """The run's first step compiles: its line has no words/s rather than one that includes it."""
  assert _console_lines({"learning_rate": 0.025}) == ["step 7 | sampled softmax 3.00 | lr 0.025"]


def test_the_custom_scalars_layout_charts_the_trainers_tags():
  layout = monitor.scalars_layout()
  charts = [chart for category in layout.category for chart in category.chart]
  tags = ["loss/train", "loss/full_softmax_batch", "loss/full_softmax_heldout",
          "grad_cosine/heldout", "analogy_percent/total", "analogy_percent/semantic",
          "analogy_percent/syntactic", "learning_rate", "words_per_sec", "analogy/total"]

  def charted(chart):
    return [tag for tag in tags if any(re.search(p, tag) for p in chart.multiline.tag)]

  assert [charted(chart) for chart in charts] == [tags[:3], tags[3:4], tags[4:7]]


def test_analogy_scores_are_percentages_in_tensorboard_as_on_the_console():
  result = {part: {"accuracy": accuracy, "correct": 1, "seen": 8, "questions": 10}
            for part, accuracy in (("total", 0.125), ("semantic", 0.25), ("syntactic", 0.0))}
  lines, logs = [], {"vectors": None}
  monitor.AnalogyEvaluation(lambda vectors: result, lines.append).on_epoch_end(0, logs)
  assert {key: value for key, value in logs.items() if "/" in key} == {
      "analogy_percent/total": 12.5, "analogy_percent/semantic": 25.0,
      "analogy_percent/syntactic": 0.0}
  assert lines == ["epoch 1 analogies: total 12.5% (1/8 seen of 10), semantic 25.0%, "
                   "syntactic 0.0%"]
  assert logs["analogy"]["total"]["accuracy"] == 0.125  # the counts keep fractions
