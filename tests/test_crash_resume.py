"""Crashes and signals: a stopped or killed run loses at most the steps since its last checkpoint.

- SIGTERM / SIGINT: the trainer checkpoints, says where, exits 0; the same command resumes there.
- SIGKILL at random moments (quick version: 2 kills; `benchmarks/crash_resume.py` does 10):
  every restart resumes from the last complete checkpoint, and the run ends with the step count,
  vocabulary and vectors of an uninterrupted run.
- A non-finite loss stops training with the step and learning rate; the last good checkpoint
  still loads.
- A full disk while writing a checkpoint or the exports: one clear error, the previous
  checkpoint (and the previous exports) still load. Simulated with ENOSPC in-process, and for
  real on a tiny tmpfs when `unshare -rm` can mount one.
- A truncated newest checkpoint: the restart falls back to the previous one and says so.
"""

import errno
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time

import numpy as np
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
       "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
WORDS = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(60)]


def write_corpus(path, reviews, seed=0, length=30):
  """A `review,sentiment` CSV of random reviews over WORDS (Zipf-like frequencies)."""
  rng = random.Random(seed)
  weights = [1.0 / (rank + 1) for rank in range(len(WORDS))]
  with open(path, "w", encoding="utf-8") as f:
    f.write("review,sentiment\n")
    f.writelines('"' + " ".join(rng.choices(WORDS, weights, k=length)) + '",positive\n'
                 for _ in range(reviews))


def train_args(csv_path, model_dir, cache_dir, **overrides):
  """`python -m w2v_tf.train` flags for a small, fast run (XLA off: compiling costs seconds)."""
  flags = {"train_csv": csv_path, "model_dir": model_dir, "cache_dir": cache_dir,
           "stopwords": "none", "min_count": 1, "embedding_dim": 16, "batch_size": 64,
           "sample_group_centers": 64, "num_sampled": 8, "epochs": 2,
           "checkpoint_every_steps": 10, "eval_every_steps": 10, "heldout_documents": 10,
           "jit_compile": False, "progress": False, **overrides}
  args = []
  for name, value in flags.items():
    if isinstance(value, bool):
      args.append(f"--{name}" if value else f"--no{name}")
    else:
      args.append(f"--{name}={value}")
  return args


class Trainer:
  """A `python -m w2v_tf.train` subprocess whose stderr lines are collected as they come."""

  def __init__(self, args):
    self.process = subprocess.Popen([sys.executable, "-m", "w2v_tf.train", *args], cwd=REPO,
                                    env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                    text=True, bufsize=1)
    self.lines = []
    self._reader = threading.Thread(target=self._read, daemon=True)
    self._reader.start()

  def _read(self):
    for line in self.process.stderr:
      self.lines.append(line.rstrip("\n"))

  def wait_for(self, pattern, timeout=120):
    """The first stderr line matching `pattern` (fails if the process ends or time runs out)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
      for line in list(self.lines):
        if re.search(pattern, line):
          return line
      if self.process.poll() is not None and not self._reader.is_alive():
        break
      time.sleep(0.02)
    raise AssertionError(f"no line matching {pattern!r}; stderr:\n" + "\n".join(self.lines))

  def finish(self, timeout=180):
    code = self.process.wait(timeout=timeout)
    self._reader.join(timeout=10)
    return code

  @property
  def stderr(self):
    return "\n".join(self.lines)


@pytest.fixture(name="corpus", scope="module")
def fixture_corpus(tmp_path_factory):
  folder = tmp_path_factory.mktemp("corpus")
  path = str(folder / "reviews.csv")
  write_corpus(path, reviews=2000)
  return path, str(folder / "cache")


# --- signals ---------------------------------------------------------------------------------


def test_sigterm_then_sigint_checkpoint_and_resume(corpus, tmp_path):
  csv_path, cache = corpus
  args = train_args(csv_path, str(tmp_path / "m"), cache, epochs=500, max_documents=300)
  first = Trainer(args)
  first.wait_for(r"^step \d+ \|")
  first.process.send_signal(signal.SIGTERM)
  assert first.finish() == 0, first.stderr
  assert "Traceback" not in first.stderr
  stopped = first.wait_for(r"^stopped by SIGTERM")
  match = re.fullmatch(r"stopped by SIGTERM at step (\d+): checkpoint saved to (\S+); run the "
                       r"same command to resume", stopped)
  assert match, stopped
  step, path = int(match.group(1)), match.group(2)
  assert path == str(tmp_path / "m" / f"ckpt-{step}")
  assert os.path.exists(path + ".index")
  assert not (tmp_path / "m" / "vectors.txt").exists()  # stopped runs do not export

  second = Trainer(args)
  resumed = second.wait_for(r"^resumed from ")
  assert resumed.startswith(f"resumed from {path}: step {step}, "), resumed
  second.wait_for(r"^step \d+ \|")
  second.process.send_signal(signal.SIGINT)
  assert second.finish() == 0, second.stderr
  assert "Traceback" not in second.stderr
  stopped = second.wait_for(r"^stopped by SIGINT")
  later = int(re.search(r"at step (\d+):", stopped).group(1))
  assert later > step
  assert os.path.exists(tmp_path / "m" / f"ckpt-{later}.index")


# --- SIGKILL -----------------------------------------------------------------------------------


def _latest_listed(model_dir):
  """The checkpoint the state file names as latest (what a restart must resume from)."""
  from w2v_tf import checkpoints  # pylint: disable=import-outside-toplevel
  listed = checkpoints.read_state(model_dir)
  return listed[-1] if listed else None


def _final_vectors(model_dir):
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  vectors = WordVectors.from_model_dir(model_dir)
  return list(vectors.words), vectors.vectors


@pytest.mark.slow
def test_sigkill_twice_resumes_to_the_uninterrupted_result(corpus, tmp_path):
  """Kill -9 at two random moments; the restarts end where an uninterrupted run ends."""
  csv_path, cache = corpus
  reference_dir, killed_dir = str(tmp_path / "reference"), str(tmp_path / "killed")
  small = {"max_documents": 800, "eval_every_steps": 5}
  reference = Trainer(train_args(csv_path, reference_dir, cache, **small))  # alongside the kills
  rng = random.Random(1)
  args = train_args(csv_path, killed_dir, cache, **small)
  for _ in range(2):
    expected = _latest_listed(killed_dir) if os.path.isdir(killed_dir) else None
    run = Trainer(args)
    if expected:
      line = run.wait_for(r"^resumed from ")
      assert line.startswith(f"resumed from {expected}: "), (line, expected)
    run.wait_for(r"^step \d+ \|")
    time.sleep(rng.uniform(0.0, 0.3))
    run.process.kill()
    run.finish()
    assert "fell back" not in run.stderr and "unreadable" not in run.stderr, run.stderr
  expected = _latest_listed(killed_dir)
  final = Trainer(args)
  assert final.finish() == 0, final.stderr
  if expected:
    assert f"resumed from {expected}: " in final.stderr, final.stderr
  assert "fell back" not in final.stderr and "unreadable" not in final.stderr, final.stderr
  assert not [n for n in os.listdir(killed_dir) if n.endswith("_temp")]  # partial saves removed
  assert reference.finish() == 0, reference.stderr
  done = [re.search(r"^done: (\d+) steps", text, re.MULTILINE)
          for text in (reference.stderr, final.stderr)]
  assert done[0] and done[1] and done[0].group(1) == done[1].group(1), (reference.stderr,
                                                                        final.stderr)
  with open(os.path.join(reference_dir, "vocab.tsv"), encoding="utf-8") as f:
    reference_vocab = f.read()
  with open(os.path.join(killed_dir, "vocab.tsv"), encoding="utf-8") as f:
    assert f.read() == reference_vocab
  reference_words, reference_vectors = _final_vectors(reference_dir)
  words, vectors = _final_vectors(killed_dir)
  assert words == reference_words
  np.testing.assert_allclose(vectors, reference_vectors, atol=1e-5)


# --- in-process: non-finite loss, full disk, damaged checkpoint --------------------------------


def _configs(csv_path, model_dir, cache, **overrides):
  """An experiment config for a small in-process run (one epoch, checkpoints every 5 steps)."""
  from w2v_tf.config import ExperimentConfig  # pylint: disable=import-outside-toplevel
  return ExperimentConfig().replace(**{
      "train_csv": csv_path, "stopwords": "none", "min_count": 1, "batch_size": 64,
      "heldout_documents": 10, "cache_dir": cache, "max_documents": 300, "embedding_dim": 16,
      "num_sampled": 8, "sample_group_centers": 64, "model_dir": str(model_dir), "epochs": 1,
      "checkpoint_every_steps": 5, "eval_every_steps": 5, "jit_compile": False,
      "progress": False, **overrides})


def _trainer(experiment, messages=None):
  from w2v_tf.build import build_trainer  # pylint: disable=import-outside-toplevel
  return build_trainer(experiment, log=(messages.append if messages is not None
                                        else lambda m: None))


@pytest.fixture(name="trained")
def fixture_trained(corpus, tmp_path):
  """A model dir trained for one epoch (checkpoints every 5 steps); returns its configs."""
  csv_path, cache = corpus
  experiment = _configs(csv_path, tmp_path / "m", cache)
  summary = _trainer(experiment).run()
  assert summary.step > 10
  return experiment, summary.step


def _restored_step(experiment, messages=None):
  trainer = _trainer(experiment, messages=messages)
  assert trainer.state.restore()
  assert np.all(np.isfinite(trainer.state.model.input_embeddings.numpy()))
  return int(trainer.state.step.numpy()), trainer.state


def test_non_finite_loss_names_step_and_learning_rate(trained):
  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  experiment, step = trained
  with pytest.raises(UserError) as info:
    _trainer(experiment.replace(epochs=2, learning_rate=1e9)).run()
  message = str(info.value)
  match = re.match(r"non-finite loss at step (\d+) \(learning rate ([\d.e+]+)\): training stopped "
                   r"and nothing was saved; the last good checkpoint, (\S+), is intact: lower "
                   r"--learning_rate", message)
  assert match, message
  assert int(match.group(1)) > step and float(match.group(2)) > 1e8
  restored_step, state = _restored_step(experiment)
  assert state.restored_checkpoint == match.group(3)
  assert restored_step == int(match.group(3).rsplit("-", 1)[1])


def test_a_non_finite_first_step_stops_at_once(corpus, tmp_path):
  """A run whose first step leaves NaN tables stops at that step's comparison (it used to log
  the NaN and run on to the next log line or checkpoint): through the binary, one error line
  (after the run's own start-up lines), no traceback, no checkpoint."""
  csv_path, cache = corpus
  model_dir = tmp_path / "m"
  # 1e39 is inf in float32: the first update turns the output table into NaN.
  run = subprocess.run([sys.executable, "-m", "w2v_tf.train",
                        *train_args(csv_path, str(model_dir), cache, learning_rate=1e39,
                                    epochs=1)],
                       cwd=REPO, env=ENV, capture_output=True, text=True, timeout=180,
                       check=False)
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == 1, run.stderr
  errors = [line for line in run.stderr.splitlines() if line.startswith("error: ")]
  assert len(errors) == 1 and run.stderr.strip().splitlines()[-1] == errors[0], run.stderr
  assert re.search(r"non-finite loss at step 1 \(", errors[0]), errors[0]
  assert not [name for name in os.listdir(model_dir) if name.startswith("ckpt-")]


@pytest.mark.parametrize("failure", ["oserror", "tf_error"])
def test_disk_full_while_checkpointing(trained, monkeypatch, failure):
  """The save fails half-way (a partial data file is left): clear error, old checkpoint loads."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel

  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  experiment, step = trained
  train = experiment.train
  trainer = _trainer(experiment.replace(epochs=2))

  def full_disk_write(prefix, **kwargs):
    del kwargs
    with open(prefix + ".data-00000-of-00001", "wb") as f:
      f.write(b"\0" * 100)  # what got written before the disk filled up
    os.makedirs(prefix + "_temp", exist_ok=True)
    if failure == "oserror":
      raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), prefix)
    raise tf.errors.ResourceExhaustedError(None, None, f"{prefix}_temp/part-00000-of-00001."
                                           "data-00000-of-00001; No space left on device")

  monkeypatch.setattr(trainer.state.checkpoint, "_write", full_disk_write)
  with pytest.raises(UserError) as info:
    trainer.run()
  message = str(info.value)
  assert re.match(rf"could not write a checkpoint in {re.escape(train.model_dir)} \(disk full: "
                  rf".*\); the last good checkpoint, .*ckpt-{step}, is intact: free disk space "
                  r"and run the same command again to resume", message), message
  assert not any(name.endswith("_temp") for name in os.listdir(train.model_dir))
  monkeypatch.undo()
  restored_step, _ = _restored_step(experiment)
  assert restored_step == step


def test_disk_full_while_exporting_keeps_previous_exports(trained, monkeypatch):
  from w2v_tf import export, fileio  # pylint: disable=import-outside-toplevel
  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  from w2v_tf.model_dir import load_checkpoint_vectors  # pylint: disable=import-outside-toplevel
  model_dir = trained[0].train.model_dir

  def read(name):
    with open(os.path.join(model_dir, name), "rb") as f:
      return f.read()

  before = {name: read(name) for name in ("vectors.txt", "vectors.bin", "vocab.tsv")}

  def full_disk(*args):
    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

  monkeypatch.setattr(fileio.os, "fsync", full_disk)
  words, counts, vectors, _ = load_checkpoint_vectors(model_dir, log=lambda m: None)
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match=r"^disk full while writing .*vectors\.\w+: "
                                      r"free some space and run again"):
    export.export_vectors(model_dir, WordVectors(words, vectors * 2, counts))
  monkeypatch.undo()
  for name, content in before.items():
    assert read(name) == content, name
  assert not [n for n in os.listdir(model_dir) if n.endswith(".tmp")]
  load_checkpoint_vectors(model_dir, log=lambda m: None)  # the checkpoint still loads


def test_truncated_newest_checkpoint_falls_back(trained):
  experiment, step = trained
  model_dir = experiment.train.model_dir
  newest = os.path.join(model_dir, f"ckpt-{step}.data-00000-of-00001")
  os.truncate(newest, os.path.getsize(newest) // 2)
  from w2v_tf import checkpoints  # pylint: disable=import-outside-toplevel
  previous = checkpoints.read_state(model_dir)[-2]
  messages = []
  restored_step, state = _restored_step(experiment, messages)
  assert state.restored_checkpoint == previous
  assert restored_step == int(previous.rsplit("-", 1)[1])
  assert messages[0].startswith(f"warning: checkpoint {model_dir}/ckpt-{step} is unreadable (")
  assert messages[-1] == (f"warning: fell back to the older checkpoint {previous} (the newer "
                          "ones are damaged)")


def test_unreadable_state_file_is_rebuilt(trained):
  """A garbled `checkpoint` file would make TF start afresh and overwrite the run."""
  experiment, step = trained
  with open(os.path.join(experiment.train.model_dir, "checkpoint"), "w", encoding="utf-8") as f:
    f.write("garbage {{\n")
  messages = []
  restored_step, _ = _restored_step(experiment, messages)
  assert restored_step == step
  assert "rebuilt it from the checkpoint files on disk" in messages[0]


def test_missing_state_file_is_rebuilt(trained):
  """A deleted `checkpoint` file beside the ckpt-N files: TF alone would start afresh."""
  from w2v_tf import checkpoints  # pylint: disable=import-outside-toplevel
  experiment, step = trained
  model_dir = experiment.train.model_dir
  kept = ", ".join(os.path.basename(p) for p in checkpoints.read_state(model_dir))
  os.remove(os.path.join(model_dir, "checkpoint"))
  messages = []
  restored_step, _ = _restored_step(experiment, messages)
  assert restored_step == step
  assert messages[0] == (f"warning: {model_dir}/checkpoint is missing; rebuilt it from the "
                         f"checkpoint files on disk ({kept})")


def test_partial_checkpoint_write_is_removed(trained):
  """A save killed part-way leaves ckpt-N_temp/ (TF's staging folder): the restart removes it."""
  experiment, step = trained
  staging = os.path.join(experiment.train.model_dir, f"ckpt-{step + 5}_temp")
  os.makedirs(staging)
  with open(os.path.join(staging, "part-00000-of-00001.data-00000-of-00001"), "wb") as f:
    f.write(b"\0" * 10)
  messages = []
  restored_step, _ = _restored_step(experiment, messages)
  assert restored_step == step
  assert not os.path.exists(staging)
  assert messages == [(f"removed ckpt-{step + 5}_temp: partial checkpoint write(s) of an "
                       "interrupted run")]


def _can_mount_tmpfs():
  if not sys.platform.startswith("linux") or not shutil.which("unshare"):
    return False
  probe = subprocess.run(["unshare", "-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"],
                         capture_output=True, check=False)
  return probe.returncode == 0


@pytest.mark.skipif(not _can_mount_tmpfs(), reason="cannot mount a tmpfs (unshare -rm)")
def test_real_disk_full_on_tiny_tmpfs(corpus, tmp_path):
  """Trains onto a 170 KiB filesystem: a checkpoint fails for real, the previous one exports."""
  csv_path, cache = corpus
  mount, out = tmp_path / "small_fs", tmp_path / "out"
  mount.mkdir()
  args = train_args(csv_path, str(mount / "m"), cache, embedding_dim=200, checkpoint_every_steps=5,
                    max_documents=300)
  python = f"{sys.executable} -m"
  script = (f"mount -t tmpfs -o size=170k tmpfs {mount} || exit 99; "
            f"{python} w2v_tf.train {' '.join(args)}; echo train_exit=$? >&2; "
            f"{python} w2v_tf.export --model_dir={mount / 'm'} --output_dir={out}; "
            "echo export_exit=$? >&2")
  run = subprocess.run(["unshare", "-rm", "sh", "-c", script], cwd=REPO, env=ENV,
                       capture_output=True, text=True, timeout=300, check=False)
  assert "Traceback" not in run.stderr, run.stderr
  assert "train_exit=1" in run.stderr and "export_exit=0" in run.stderr, run.stderr
  error = re.search(r"^error: could not write a checkpoint in \S+ \(disk full: .*No space left "
                    r"on device.*\); the last good checkpoint, (\S+), is intact", run.stderr,
                    re.MULTILINE)
  assert error, run.stderr
  assert re.search(rf"^exported \d+ x 200 vectors from {re.escape(error.group(1))} ", run.stderr,
                   re.MULTILINE), run.stderr
  assert (out / "vectors.bin").exists()


@pytest.mark.slow
def test_the_crash_benchmark_runs_and_passes(tmp_path):
  """`benchmarks/crash_resume.py` itself, on its generated corpus: it reads the trainer's lines."""
  out = tmp_path / "crash.json"
  result = subprocess.run(
      [sys.executable, "-m", "benchmarks.crash_resume", "--max_reviews=400", "--kills=1",
       "--reference_runs=1", "--epochs=1", f"--work_dir={tmp_path / 'work'}",
       f"--output_json={out}"], cwd=REPO, env=ENV, capture_output=True, text=True, timeout=600)
  assert result.returncode == 0, result.stderr[-3000:]
  report = json.loads(out.read_text())
  assert report["passed"] and report["kills_done"] == 1 and report["killed"]["vocab_equal"]
