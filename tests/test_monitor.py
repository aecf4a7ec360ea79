"""w2v_tf/monitor.py: the progress bar's ETAs (epoch and run) ignore the first step's compile."""

import io

from w2v_tf import monitor


def test_progress_eta_of_the_epoch_and_of_the_run(monkeypatch):
  clock = [100.0]
  monkeypatch.setattr(monitor.time, "time", lambda: clock[0])
  stream = io.StringIO()
  bar = monitor.ProgressBar(stream)
  bar.on_epoch_begin(0, {"epochs": 3, "epoch_words": 1000})
  # Right after the first step: the trainer's rate includes its compilation (10 words/s).
  bar.on_progress({"epoch_words_done": 100, "words_per_sec": 10.0})
  clock[0] += 2.0  # then 200 words in 2 s: 100 words/s, 700 words of this epoch left
  bar.on_progress({"epoch_words_done": 300, "words_per_sec": 100.0})
  bar.on_epoch_end(0, {"words_per_sec": 100.0})
  lines = stream.getvalue().splitlines()
  assert lines[0].endswith("ETA --:-- (run --:--)"), lines  # no rate of its own yet
  assert lines[1].endswith("ETA 0:00:07 (run 0:00:27)"), lines  # + 2 epochs x 10 s
  assert lines[-1].startswith("epoch 1/3 [" + "#" * 30 + "] 100%"), lines
  # The next epoch starts its own measurement; the last epoch's run ETA is its own.
  bar.on_epoch_begin(2, {"epochs": 3, "epoch_words": 1000})
  bar.etas(0, clock[0])  # its first draw
  clock[0] += 1.0
  assert bar.etas(500, clock[0]) == (1.0, 1.0)  # 500 words/s, 500 left, no epoch after it
