"""Signals and leftovers outside the training loop (which checkpoints on SIGINT / SIGTERM).

Real signals sent to `python -m w2v_tf.data` / `w2v_tf.train` during the corpus pass: SIGINT
and SIGTERM each end the run within seconds with one `error: interrupted ...` line (130 / 143)
and leave no temp folder (SIGTERM used to exit 143 with no message, leaving the 17 MB
`corpus-v3-KEY.tmp-*/`; Ctrl-C printed its line and then, 3 times in 25, never exited). A
SIGKILL leaves the temp folder, named with the writer's pid, and the next run removes it; temp
files of a dead export (`.vectors.txt.*.tmp`, a SavedModel's `.sm.*.tmp/`) are removed by the
next export into that place, never those of a live writer.
"""

import concurrent.futures
import os
import random
import re
import signal
import subprocess
import sys
import time

import pytest

from tests.binaries import module_runner
from tests.test_errors import ENV, REPO, _csv, _reviews
from w2v_tf import fileio

_TRAIN = ["--stopwords=none", "--epochs=1", "--batch_size=64", "--sample_group_centers=64",
          "--embedding_dim=8", "--min_count=1", "--num_sampled=8", "--nojit_compile",
          "--heldout_documents=2"]
_EXIT_SECONDS = 5  # an interrupted run must be gone this soon after the signal


# Plain `python -m` processes, as users run them: a child forked from a zygote that imported
# TensorFlow (the other binary tests' runner) aborted (SIGABRT) on SIGTERM in 1 of ~24 tries, a
# hazard of forking a process with threads, never seen in 30 tries of plain processes.
fixture_runner = module_runner(REPO, ENV, workers=2, fork=False)


@pytest.fixture(name="big_csv", scope="module")
def fixture_big_csv(tmp_path_factory):
  """A corpus whose pass lasts a few seconds (400k documents, 16M tokens: 4 s at the 4M tokens/s
  of a forked run). 160k documents (1.5 s) were once all read before a signal sent 0.5 s after
  the first progress line arrived, the whole suite loading both cores."""
  path = tmp_path_factory.mktemp("big") / "big.csv"
  path.write_text(_csv(_reviews(2_000, seed=3, length=40) * 200), encoding="utf-8")
  return str(path)


def _dead_pid() -> int:
  return int(subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                            capture_output=True, text=True, check=True).stdout)


def _start_in_corpus_pass(runner, module, csv, work, delay):
  """Starts `module` on `csv`; returns it once it shows the corpus pass's progress + `delay`."""
  argv = [f"--train_csv={csv}", f"--cache_dir={work}/cache", "--stopwords=none"]
  argv += ([f"--vocab_out={work}/v.tsv"] if module == "w2v_tf.data"
           else [f"--model_dir={work}/m", *_TRAIN])
  started = runner.start(module, argv, timeout=60)
  deadline = time.time() + 90
  while "cleaning" not in started.stderr() and time.time() < deadline:
    time.sleep(0.02)
  if "cleaning" not in started.stderr():  # end it, or its zygote is never free again
    os.kill(started.pid, signal.SIGKILL)
    raise AssertionError(f"{module} never showed the corpus pass: {started.wait().stderr}")
  time.sleep(delay)
  return started


def _interrupt(runner, module, signum, csv, work, delay):
  started = _start_in_corpus_pass(runner, module, csv, work, delay)
  os.kill(started.pid, signum)
  sent = time.time()
  run = started.wait()
  return run, time.time() - sent


@pytest.mark.parametrize("tries", [8])
def test_sigint_and_sigterm_in_the_corpus_pass_end_it_at_once_with_one_line(
    runner, big_csv, tmp_path, tries):
  rng = random.Random(0)
  jobs = [(("w2v_tf.data", "w2v_tf.train")[i % 2], (signal.SIGINT, signal.SIGTERM)[i // 2 % 2],
           tmp_path / str(i), rng.uniform(0, 0.5)) for i in range(tries)]
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    results = list(pool.map(lambda job: _interrupt(runner, job[0], job[1], big_csv, *job[2:]),
                            jobs))
  for (module, signum, work, _), (run, seconds) in zip(jobs, results):
    what = f"{module} {signal.Signals(signum).name}: {run.stderr[-400:]!r}"
    assert run.returncode == 128 + signum, what
    assert seconds < _EXIT_SECONDS, what
    assert "Traceback" not in run.stderr, what
    lines = [line for line in re.split(r"[\r\n]", run.stderr) if line.strip()]
    errors = [line for line in lines if "error:" in line or "warning:" in line]
    name = " by SIGTERM" if signum == signal.SIGTERM else ""
    assert errors == [f"error: interrupted{name} (nothing more was written; files already "
                      "written are complete)"], what
    assert all(line.startswith("cleaning ") for line in lines[:-1]), what
    cache = work / "cache"
    assert not os.path.isdir(cache) or os.listdir(cache) == [], os.listdir(cache)
    assert not (work / "m" / ".lock").exists()


def test_a_killed_corpus_pass_leaves_a_folder_the_next_run_removes(runner, big_csv, tmp_path):
  started = _start_in_corpus_pass(runner, "w2v_tf.data", big_csv, tmp_path, 0.2)
  os.kill(started.pid, signal.SIGKILL)
  assert started.wait().returncode == -9
  (left,) = os.listdir(tmp_path / "cache")
  assert re.fullmatch(rf"corpus-v\d+-\w+\.tmp-{started.pid}@[\w-]+\.\w+", left), left
  run = runner.run("w2v_tf.data", [f"--train_csv={big_csv}", f"--cache_dir={tmp_path}/cache",
                                   "--stopwords=none", f"--vocab_out={tmp_path}/v.tsv"])
  assert run.returncode == 0, run.stderr
  assert [n for n in os.listdir(tmp_path / "cache") if ".tmp-" in n] == []


def test_temp_files_of_a_dead_export_are_removed_by_the_next_one(runner, tmp_path):
  csv = tmp_path / "small.csv"
  csv.write_text(_csv(_reviews(200)), encoding="utf-8")
  model = tmp_path / "m"
  run = runner.run("w2v_tf.train", [f"--train_csv={csv}", f"--cache_dir={tmp_path}/cache",
                                    f"--model_dir={model}", "--noprogress", *_TRAIN])
  assert run.returncode == 0, run.stderr
  dead, host = _dead_pid(), fileio.owner_tag().split("@")[1]
  stale = [f".vectors.txt.{dead}@{host}.k1ll3d_a.tmp", f".vectors.bin.{dead}@{host}.k1ll3d_b.tmp"]
  live = f".vectors.txt.{os.getpid()}@{host}.runn1ng_.tmp"  # this process: alive
  for name in [*stale, live]:
    (model / name).write_text("partial")
  os.mkdir(model / f".sm.{dead}@{host}.k1ll3d_c.tmp")  # a SavedModel's, not written here
  run = runner.run("w2v_tf.export", [f"--model_dir={model}"])
  assert run.returncode == 0, run.stderr
  names = os.listdir(model)
  assert not set(stale) & set(names), names
  assert live in names
  fileio.remove_stale(str(model), ".sm.", ".tmp")  # the SavedModel writer's own clean-up
  assert not [n for n in os.listdir(model) if n.startswith(".sm.")]
