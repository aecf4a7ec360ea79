"""A model dir through the binaries: its data, its checkpoints, its owner (issue 14).

Each case runs `python -m w2v_tf.train` or `w2v_tf.export` as a user would (forked from a process
that imported TensorFlow once, `tests/binaries.Runner`) and checks the exit status, that stderr
holds exactly one `error:` line (or the expected `warning:`), no traceback, and that a refused
run wrote nothing into the model dir (no file added, changed or removed, the lock included):

- the same --train_csv path with other content (same vocabulary size) is refused: "the training
  data changed since ..."; a config.json from before fingerprints is accepted with one warning;
- with config.json deleted, another --embedding_dim fails on the checkpoint shapes (saying what
  differs, not "damaged", not --overwrite) without writing config.json, and the original command
  then resumes; another --optimizer is a mismatch, not damage;
- --epochs below the epochs done is refused;
- a live trainer owns its dir: a second trainer and a second run with --overwrite refuse naming
  its pid and host, export reads a consistent checkpoint while it rotates them every step, and
  SIGTERM releases the lock; a lock left by a dead process is taken over with a warning, one
  naming another host is refused.

Then the module itself, in process (`w2v_tf.model_dir`, in its order): `config_payload` /
`read_config` (the old layout too), `prepare_model_dir` -> `ModelDir` (the lock held, nothing
written until `write`; a file refused; `--overwrite` clears only this project's files, as
`clear_model_dir` does), `ModelDirLock` taking over a dead owner's file, `load_exported_vectors`
(the eval binaries' reader) and `load_checkpoint_vectors` (the export binary's).
"""

import concurrent.futures
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.binaries import module_runner

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0",
       "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}
# TensorFlow's C++ start-up lines (not ours).
_TF_NOISE = re.compile(r"^(WARNING: All log messages before absl::InitializeLog|"
                       r"[IWE]\d{4} [\d:. ]+\d+ [\w.]+:\d+\]|To enable the following instructions)")
WORDS = [f"w{chr(97 + i % 26)}{chr(97 + i // 26)}" for i in range(40)]


def _csv(seed, count=200, length=30):
  import random  # pylint: disable=import-outside-toplevel
  rng = random.Random(seed)
  reviews = [" ".join(rng.choice(WORDS) for _ in range(length)) for _ in range(count)]
  return "review,sentiment\n" + "".join(f'"{r}",positive\n' for r in reviews)


def _train_args(csv_path, model_dir, cache, *extra):
  return [f"--train_csv={csv_path}", f"--model_dir={model_dir}", f"--cache_dir={cache}",
          "--stopwords=none", "--epochs=2", "--batch_size=64", "--sample_group_centers=64",
          "--embedding_dim=8", "--min_count=1", "--num_sampled=8", "--nojit_compile",
          "--noprogress", "--heldout_documents=2", "--checkpoint_every_steps=20", *extra]


def _lines(run):
  return [line for line in run.stderr.splitlines() if line.strip() and not _TF_NOISE.match(line)]


def _snapshot(folder):
  """{relative path: (size, mtime_ns)} of every file under `folder`, hidden ones included."""
  result = {}
  for root, _, names in os.walk(folder):
    for name in names:
      stat = os.stat(os.path.join(root, name))
      result[os.path.relpath(os.path.join(root, name), folder)] = (stat.st_size, stat.st_mtime_ns)
  return result


def _refused(run, pattern, before, model_dir):
  """Exit 1, one `error:` line matching `pattern`, nothing changed in `model_dir`."""
  assert "Traceback" not in run.stderr, run.stderr
  assert run.returncode == 1, run.stderr
  lines = _lines(run)
  assert len(lines) == 1 and lines[0].startswith("error: "), run.stderr
  assert re.search(pattern, lines[0]), lines[0]
  assert _snapshot(model_dir) == before, "a refused run changed the model dir"
  return lines[0]


fixture_runner = module_runner(REPO, ENV, workers=2)


@pytest.fixture(name="trained", scope="module")
def fixture_trained(runner, tmp_path_factory):
  """A model dir trained for 2 epochs on `good.csv`; returns (folder, csv, cache, model_dir)."""
  tmp = tmp_path_factory.mktemp("model_dir")
  csv_path, cache, model_dir = tmp / "good.csv", str(tmp / "cache"), tmp / "model"
  csv_path.write_text(_csv(0), encoding="utf-8")
  run = runner.run("w2v_tf.train", _train_args(csv_path, model_dir, cache))
  assert run.returncode == 0, run.stderr
  assert not (model_dir / ".lock").exists()  # released at the end
  config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
  assert re.fullmatch(r"[0-9a-f]{24}\+chunks:[0-9]+", config["data_fingerprint"]), config
  return tmp, str(csv_path), cache, model_dir


def _copy(trained, name):
  tmp, _, _, model_dir = trained
  shutil.copytree(model_dir, tmp / name)
  return tmp / name


def _edit_config(model_dir, edit):
  config = json.loads((model_dir / "config.json").read_text(encoding="utf-8"))
  edit(config)
  (model_dir / "config.json").write_text(json.dumps(config), encoding="utf-8")


def _setups(trained):
  """{case: (model_dir, extra train flags, train_csv)} of the refused runs (one copy each)."""
  tmp, csv_path, _, _ = trained
  changed = tmp / "changed.csv"
  changed.write_text(_csv(1), encoding="utf-8")  # other reviews over the same 40 words
  cases = {name: _copy(trained, name) for name in ("changed", "shapes", "optimizer", "epochs",
                                                   "other-host")}
  # As if good.csv itself had been rewritten: same path in config.json, other content.
  _edit_config(cases["changed"], lambda c: c["data"].update(train_csv=str(changed)))
  for name in ("shapes", "optimizer"):
    os.remove(cases[name] / "config.json")
  (cases["other-host"] / ".lock").write_text(json.dumps(
      {"pid": 12345678, "host": "elsewhere.example", "since": "then"}))
  return {"changed": (cases["changed"], ["--epochs=3"], str(changed)),
          "shapes": (cases["shapes"], ["--embedding_dim=16"], csv_path),
          "optimizer": (cases["optimizer"], ["--optimizer=adam"], csv_path),
          "epochs": (cases["epochs"], ["--epochs=1"], csv_path),
          "other-host": (cases["other-host"], [], csv_path)}


@pytest.fixture(name="refused", scope="module")
def fixture_refused(runner, trained):
  """{case: (run, model dir, snapshot before)}: the refused runs, two at a time."""
  cache = trained[2]
  setups = _setups(trained)
  before = {name: _snapshot(model_dir) for name, (model_dir, _, _) in setups.items()}
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    futures = {name: pool.submit(runner.run, "w2v_tf.train",
                                 _train_args(csv_path, model_dir, cache, *extra))
               for name, (model_dir, extra, csv_path) in setups.items()}
    return {name: (future.result(), setups[name][0], before[name])
            for name, future in futures.items()}


def test_data_changed_under_the_same_path_is_refused(refused):
  """Same path, same flags, same vocabulary size: only the content differs."""
  run, model_dir, before = refused["changed"]
  line = _refused(run, rf"^error: the training data changed since {re.escape(str(model_dir))} "
                       r"was trained \(data fingerprint [0-9a-f]{24}\+chunks:[0-9]+ -> "
                       r"[0-9a-f]{24}\+chunks:[0-9]+: ", before,
                  model_dir)
  assert "vocab_size" not in line and "also" not in line, line  # nothing else differs


def test_deleted_config_and_other_shapes_write_nothing(refused, runner, trained):
  """The checkpoints say what differs; the original command resumes afterwards."""
  run, model_dir, before = refused["shapes"]
  line = _refused(run, rf"^error: the checkpoints in {re.escape(str(model_dir))} hold "
                       r"embedding_dim 8, this run asks for 16 \(.*no config\.json.*\): run "
                       "with the flags they were trained with", before, model_dir)
  assert "damaged" not in line and "--overwrite" not in line, line
  _, csv_path, cache, _ = trained
  run = runner.run("w2v_tf.train", _train_args(csv_path, model_dir, cache))
  assert run.returncode == 0, run.stderr
  assert re.search(r"^resumed from .*ckpt-\d+: step \d+, ", run.stderr, re.MULTILINE), run.stderr
  assert (model_dir / "config.json").exists()


def test_checkpoints_of_another_optimizer_are_not_called_damaged(refused):
  """Same shapes, other optimizer slots: the files read, so this is a mismatch, not damage."""
  run, model_dir, before = refused["optimizer"]
  line = _refused(run, r"^error: the checkpoints in .* do not fit this run's model or "
                       r"--optimizer \(newest: .*ckpt-\d+ \(", before, model_dir)
  assert "damaged" not in line and "--overwrite" not in line, line


def test_lowering_epochs_below_the_epochs_done_is_refused(refused):
  run, model_dir, before = refused["epochs"]
  _refused(run, rf"^error: {re.escape(str(model_dir))} has trained 2 epochs \(step \d+\), more "
                r"than --epochs=1: pass --epochs=2 or more", before, model_dir)


def test_lock_naming_another_host_is_refused(refused):
  run, model_dir, before = refused["other-host"]
  _refused(run, r"\.lock names pid 12345678 on host elsewhere\.example, another machine .*: if "
                r"that run has ended, delete ", before, model_dir)


def _dead_pid():
  process = subprocess.Popen([sys.executable, "-c", ""])
  process.wait()
  return process.pid


def test_old_config_and_a_dead_owners_lock_are_accepted_with_a_warning(runner, trained):
  """config.json without a fingerprint: accepted once, then recorded. A lock left by a dead
  process on this host: taken over, then released."""
  _, csv_path, cache, _ = trained
  old, stale = _copy(trained, "old"), _copy(trained, "stale")
  fingerprint = json.loads((old / "config.json").read_text())["data_fingerprint"]
  _edit_config(old, lambda c: c.pop("data_fingerprint"))
  pid = _dead_pid()
  (stale / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                           "since": "then"}))
  with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
    runs = list(pool.map(lambda d: runner.run("w2v_tf.train", _train_args(csv_path, d, cache)),
                         (old, stale)))
  for run in runs:
    assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
  warnings = [line for line in _lines(runs[0]) if line.startswith("warning: ")]
  assert len(warnings) == 1 and "records no data fingerprint" in warnings[0], runs[0].stderr
  assert json.loads((old / "config.json").read_text())["data_fingerprint"] == fingerprint
  warnings = [line for line in _lines(runs[1]) if line.startswith("warning: ")]
  assert len(warnings) == 1 and re.fullmatch(
      rf"warning: took over \S+\.lock: it was left by pid {pid} on .*no longer running",
      warnings[0]), runs[1].stderr
  assert not (stale / ".lock").exists()


def test_a_live_run_owns_its_model_dir(runner, trained, tmp_path):
  """A second trainer and --overwrite refuse naming the owner; export reads while it rotates."""
  _, csv_path, cache, _ = trained
  model_dir = tmp_path / "live"
  # Many epochs, a checkpoint every step and only one kept: the oldest goes at every save.
  args = _train_args(csv_path, model_dir, cache, "--epochs=10000", "--checkpoint_every_steps=1",
                     "--keep_checkpoints=1", "--log_every_steps=1000")
  with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
    first = pool.submit(runner.run, "w2v_tf.train", args, 240)
    try:
      owner = _wait_for_owner(model_dir, first)
      events = [n for n in os.listdir(model_dir) if n.startswith("events.out.tfevents.")]
      owner_pattern = rf"pid {owner['pid']} on host {re.escape(owner['host'])}, since "
      second = runner.run("w2v_tf.train", args, timeout=90)
      lines = _lines(second)
      assert second.returncode == 1 and len(lines) == 1, second.stderr
      assert re.search(rf"^error: {re.escape(str(model_dir))} is in use by another training "
                       rf"run \({owner_pattern}", lines[0]), lines[0]
      overwrite = runner.run("w2v_tf.train", [*args, "--overwrite"], timeout=90)
      lines = _lines(overwrite)
      assert overwrite.returncode == 1 and len(lines) == 1, overwrite.stderr
      assert re.search(rf"^error: --overwrite refused: .* in use by another training run "
                       rf"\({owner_pattern}", lines[0]), lines[0]
      assert set(events) <= set(os.listdir(model_dir))  # the live run's events are still there
      export = runner.run("w2v_tf.export", [f"--model_dir={model_dir}",
                                            f"--output_dir={tmp_path / 'out'}"], timeout=90)
      assert export.returncode == 0, export.stderr
      assert [line for line in _lines(export) if not line.startswith("exported ")] == [], (
          export.stderr)
      # Unlocked, about 1 read in 10 found its checkpoint deleted by the next save: read often.
      # pylint: disable-next=import-outside-toplevel
      from w2v_tf.model_dir import load_checkpoint_vectors
      messages, read = [], set()
      load_checkpoint_vectors(str(model_dir), log=messages.append)  # TensorFlow starts
      deadline = time.time() + 10
      while len(read) < 4 and time.time() < deadline:  # back to back, ~100 reads/s
        read.add(load_checkpoint_vectors(str(model_dir), log=messages.append)[3])
      assert not messages and len(read) > 1, (messages, read)  # read while it rotated
      assert first.running(), "the live run ended early"
    finally:
      if not first.done() and (model_dir / ".lock").exists():
        os.kill(int(json.loads((model_dir / ".lock").read_text())["pid"]), signal.SIGTERM)
    run = first.result()
  assert run.returncode == 0 and "Traceback" not in run.stderr, run.stderr
  assert re.search(r"^stopped by SIGTERM at step \d+: checkpoint saved", run.stderr, re.MULTILINE)
  assert not (model_dir / ".lock").exists()  # released on SIGTERM


def _wait_for_owner(model_dir, future, timeout=120):
  """The owner recorded in the live run's lock, once it has written a checkpoint."""
  deadline = time.time() + timeout
  while time.time() < deadline and not future.done():
    try:
      owner = json.loads((model_dir / ".lock").read_text())
      if (model_dir / "checkpoint").exists():
        return owner
    except (OSError, ValueError):
      pass
    time.sleep(0.05)
  stderr = future.result().stderr if future.done() else "(still starting)"
  raise AssertionError(f"the first run did not start: {stderr}")


def test_the_data_fingerprint_changes_with_the_chunk_size(planted, tmp_path, monkeypatch):
  """The chunk size decides each epoch's batch order: a mid-epoch resume needs the same one."""
  from tests.planted import small_experiment  # pylint: disable=import-outside-toplevel
  from w2v_tf import pipeline, training_data  # pylint: disable=import-outside-toplevel
  data = small_experiment(planted[0], tmp_path / "m", 1).resolved().data
  before = training_data.prepare_data(data, progress=False).fingerprint
  assert before.endswith(f"+chunks:{pipeline.CHUNK_TOKENS}")
  monkeypatch.setattr(pipeline, "CHUNK_TOKENS", pipeline.CHUNK_TOKENS // 2)
  assert training_data.prepare_data(data, progress=False).fingerprint != before


# --- w2v_tf.model_dir in process -----------------------------------------------------------------


def _experiment(model_dir, **changes):
  from w2v_tf.config import ExperimentConfig  # pylint: disable=import-outside-toplevel
  return ExperimentConfig().replace(model_dir=str(model_dir), embedding_dim=4, **changes)


def test_config_round_trips_and_the_old_layout_reads(tmp_path):
  from w2v_tf import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  experiment = _experiment(tmp_path)
  payload = model_dir_lib.config_payload(experiment, 40, "abc+chunks:8")
  assert payload["vocab_size"] == 40 and payload["data_fingerprint"] == "abc+chunks:8"
  assert "data_fingerprint" not in model_dir_lib.config_payload(experiment, 40)
  (tmp_path / "config.json").write_text(json.dumps(payload), encoding="utf-8")
  assert model_dir_lib.read_config(str(tmp_path)) == (experiment, 40)
  # Earlier versions kept the vocabulary size under "model".
  old = {key: value for key, value in payload.items() if key != "vocab_size"}
  old["model"] = {**old["model"], "vocab_size": 39}
  (tmp_path / "config.json").write_text(json.dumps(old), encoding="utf-8")
  assert model_dir_lib.read_config(str(tmp_path)) == (experiment, 39)


def test_read_config_errors_are_user_errors(tmp_path):
  from w2v_tf import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match=r"has no config\.json: not a model dir written by "):
    model_dir_lib.read_config(str(tmp_path))
  (tmp_path / "config.json").write_text("{not json", encoding="utf-8")
  with pytest.raises(UserError, match=r"config\.json is unreadable \(JSONDecodeError: .*\); "
                                      "re-run training to rewrite it"):
    model_dir_lib.read_config(str(tmp_path))


def test_prepare_holds_the_lock_and_writes_only_on_write(tmp_path):
  from w2v_tf import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  from w2v_tf.vocab import Vocab  # pylint: disable=import-outside-toplevel
  folder, messages = tmp_path / "m", []
  experiment = _experiment(folder)
  held = model_dir_lib.prepare_model_dir(experiment, 3, "fp", messages.append)
  try:
    assert held.path == str(folder)
    assert os.listdir(folder) == [".lock"]  # nothing else before the run is known to fit
    assert json.loads((folder / ".lock").read_text())["pid"] == os.getpid()
    held.write(Vocab(["the", "movie", "film"], [9, 5, 2]))
    assert sorted(os.listdir(folder)) == [".lock", "config.json", "vocab.tsv"]
    assert model_dir_lib.read_config(str(folder)) == (experiment, 3)
    config = json.loads((folder / "config.json").read_text())
    assert config["data_fingerprint"] == "fp"
    assert (folder / "vocab.tsv").read_text() == "the\t9\nmovie\t5\nfilm\t2\n"
    # A run whose fingerprint is not known keeps the recorded one. (A second ModelDir of the
    # same dir in this process takes the first one's lock: a Trainer built but never run.)
    again = model_dir_lib.prepare_model_dir(experiment, 3, None, messages.append)
    again.write(Vocab(["the", "movie", "film"], [9, 5, 2]))
    assert json.loads((folder / "config.json").read_text())["data_fingerprint"] == "fp"
    held.release()  # handed on: does nothing
    assert (folder / ".lock").exists()
    again.release()
    again.release()  # idempotent
  finally:
    held.release()
  assert sorted(os.listdir(folder)) == ["config.json", "vocab.tsv"]  # the lock is gone
  assert messages == []


def test_prepare_refuses_a_file_and_overwrite_clears_only_our_files(tmp_path):
  from w2v_tf import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  (tmp_path / "file").write_text("x")
  with pytest.raises(UserError, match=r"^--model_dir=\S+file is a file, not a directory: "):
    model_dir_lib.prepare_model_dir(_experiment(tmp_path / "file"), 3, None, print)
  folder = tmp_path / "m"
  (folder / "projector").mkdir(parents=True)
  (folder / "ckpt-7_temp").mkdir()  # left by a save that was killed
  ours = ["checkpoint", "config.json", "vocab.tsv", "vectors.bin", "vectors.txt", "ckpt-7.index",
          "events.out.tfevents.1.host", "projector/metadata.tsv", "projector_config.pbtxt",
          "projector_metadata.tsv"]
  theirs = ["notes.txt", "vocab.tsv.bak", "data/vectors.bin"]
  for name in ours + theirs:
    (folder / name).parent.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text("x")
  held = model_dir_lib.prepare_model_dir(_experiment(folder, overwrite=True), 3, None, print)
  try:
    assert sorted(os.listdir(folder)) == [".lock", "data", "notes.txt", "vocab.tsv.bak"]
    assert (folder / "data" / "vectors.bin").exists()
  finally:
    held.release()


def test_the_lock_of_a_dead_owner_is_taken_over(tmp_path):
  from w2v_tf.model_dir_lock import ModelDirLock  # pylint: disable=import-outside-toplevel
  pid, messages = _dead_pid(), []
  (tmp_path / ".lock").write_text(json.dumps({"pid": pid, "host": socket.gethostname(),
                                              "since": "then"}))
  lock = ModelDirLock(str(tmp_path), messages.append)
  try:
    assert json.loads((tmp_path / ".lock").read_text())["pid"] == os.getpid()
    assert len(messages) == 1 and re.fullmatch(
        rf"warning: took over \S+\.lock: it was left by pid {pid} on \S+ \(since then\), which "
        "is no longer running", messages[0]), messages
  finally:
    lock.release()
  assert not (tmp_path / ".lock").exists()


def _exported(tmp_path, words, vectors, binary=True, text=True, vocab=None):
  """A model dir holding what a trainer exports; vectors.txt holds `vectors + 1`."""
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  folder = tmp_path / "model"
  folder.mkdir()
  if binary:
    WordVectors(words, vectors).save(folder / "vectors.bin", binary=True)
  if text:
    WordVectors(words, vectors + 1).save(folder / "vectors.txt", float_format="%.9g")
  vocab = words if vocab is None else vocab
  (folder / "vocab.tsv").write_text("".join(f"{w}\t{100 - i}\n" for i, w in enumerate(vocab)),
                                    encoding="utf-8")
  return folder


@pytest.fixture(name="toy")
def fixture_toy():
  import numpy as np  # pylint: disable=import-outside-toplevel
  rng = np.random.default_rng(0)
  words = ["the", "movie", "film", "naïve", "König", "</s>"] + [f"w{i}" for i in range(50)]
  return words, rng.standard_normal((len(words), 7)).astype(np.float32)  # [V, d]


def test_exported_vectors_prefer_the_binary_with_counts_from_the_vocab(tmp_path, toy):
  import numpy as np  # pylint: disable=import-outside-toplevel
  from w2v_tf.model_dir import load_exported_vectors  # pylint: disable=import-outside-toplevel
  words, vectors = toy
  got = load_exported_vectors(_exported(tmp_path, words, vectors))
  assert list(got.words) == words
  np.testing.assert_array_equal(got.vectors, vectors)
  assert got.counts.tolist() == [100 - i for i in range(len(words))]


def test_exported_vectors_fall_back_to_the_text(tmp_path, toy):
  import numpy as np  # pylint: disable=import-outside-toplevel
  from w2v_tf.model_dir import load_exported_vectors  # pylint: disable=import-outside-toplevel
  words, vectors = toy
  got = load_exported_vectors(_exported(tmp_path, words, vectors, binary=False))
  np.testing.assert_allclose(got.vectors, vectors + 1, rtol=1e-6)


def test_exported_vectors_errors(tmp_path, toy):
  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  from w2v_tf.model_dir import load_exported_vectors  # pylint: disable=import-outside-toplevel
  words, vectors = toy
  with pytest.raises(UserError, match="not found: pass the trainer's --model_dir"):
    load_exported_vectors(tmp_path / "missing")
  empty = tmp_path / "empty"
  empty.mkdir()
  with pytest.raises(UserError, match="has no vectors.bin or vectors.txt: train to the end"):
    load_exported_vectors(empty)
  swapped = [words[1], words[0]] + words[2:]
  with pytest.raises(UserError, match="disagree at row 1 .*: the model_dir mixes two exports"):
    load_exported_vectors(_exported(tmp_path, words, vectors, vocab=swapped))


def test_checkpoint_vectors_read_the_newest_checkpoint(tmp_path):
  import numpy as np  # pylint: disable=import-outside-toplevel
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from w2v_tf import model_dir as model_dir_lib  # pylint: disable=import-outside-toplevel
  from w2v_tf.errors import UserError  # pylint: disable=import-outside-toplevel
  from w2v_tf.model import Word2Vec  # pylint: disable=import-outside-toplevel
  with pytest.raises(UserError, match=r"^--model_dir=\S+nope: no such directory: "):
    model_dir_lib.load_checkpoint_vectors(str(tmp_path / "nope"))
  experiment = _experiment(tmp_path)
  (tmp_path / "config.json").write_text(json.dumps(model_dir_lib.config_payload(experiment, 3)))
  (tmp_path / "vocab.tsv").write_text("the\t9\nmovie\t5\nfilm\t2\n", encoding="utf-8")
  with pytest.raises(UserError, match=r"^no checkpoint in \S+: train first"):
    model_dir_lib.load_checkpoint_vectors(str(tmp_path), log=print)
  model = Word2Vec(3, experiment.model, seed=1)
  tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
  model.input_embeddings.assign(model.input_embeddings + 1.0)
  newest = tf.train.Checkpoint(model=model).save(str(tmp_path / "ckpt"))
  words, counts, vectors, path = model_dir_lib.load_checkpoint_vectors(str(tmp_path), log=print)
  assert (words, counts.tolist(), path) == (["the", "movie", "film"], [9, 5, 2], newest)
  np.testing.assert_array_equal(vectors, model.input_embeddings.numpy())
  (tmp_path / "vocab.tsv").write_text("the\t9\nmovie\t5\n", encoding="utf-8")
  with pytest.raises(UserError, match=r"vocab\.tsv has 2 words but config\.json says vocab_size 3: "
                                      "the files come from different runs"):
    model_dir_lib.load_checkpoint_vectors(str(tmp_path), log=print)
