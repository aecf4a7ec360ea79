"""The tf.distribute strategies on localhost, for real: mirrored, multi_worker, parameter_server.

The strategies run as `python -m w2v_tf.train --strategy ...` in subprocesses (logical CPU
devices and TF_CONFIG must be set before TensorFlow starts), talking over 127.0.0.1 ports picked
free by the test, each with a time limit. The slow tests take about half a minute each.
"""

import json
import os
import re
import socket
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import tensorflow as tf

from eval.analogy import evaluate_analogies
from tests.planted import write_as_text, load_model_dir, small_experiment
from w2v_tf import cluster as cluster_lib
from w2v_tf import pipeline, strategies
from w2v_tf.losses import base
from w2v_tf.build import build_trainer
from w2v_tf.config import RuntimeConfig
from w2v_tf.errors import UsageError
from w2v_tf.model_dir import load_checkpoint_vectors
from w2v_tf.step import touched_rows_step
from w2v_tf.trainer import Trainer
from w2v_tf.training_data import prepare_data

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_TIMEOUT = 240  # seconds for any one training process


def _configs(csv_path, model_dir, epochs=2, **overrides):
  return small_experiment(csv_path, model_dir, epochs, **overrides)


def _flags(csv_path, model_dir, epochs=2, **extra):
  """`python -m w2v_tf.train` arguments matching `_configs`; `train_text=` replaces the CSV."""
  source = (f"--train_text={extra.pop('train_text')}" if "train_text" in extra
            else f"--train_csv={csv_path}")
  args = [sys.executable, "-m", "w2v_tf.train", source, "--stopwords=none",
          "--batch_size=256", "--cache_dir=", "--heldout_documents=0.02", "--embedding_dim=32",
          "--num_sampled=16", f"--epochs={epochs}", "--eval_every_steps=20",
          "--checkpoint_every_steps=50", f"--model_dir={model_dir}", "--noprogress",
          "--nojit_compile"]
  return args + [f"--{key}={value}" for key, value in extra.items()]


def _env(tf_config=None):
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  env.pop("TF_CONFIG", None)
  if tf_config is not None:
    env["TF_CONFIG"] = json.dumps(tf_config)
  return env


def _free_ports(count):
  """Ports free on 127.0.0.1 (all bound at once, so they differ, then released)."""
  sockets = []
  try:
    for _ in range(count):
      sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
      sock.bind(("127.0.0.1", 0))
      sockets.append(sock)
    return [sock.getsockname()[1] for sock in sockets]
  finally:
    for sock in sockets:
      sock.close()


@pytest.fixture
def processes():
  """Starts processes with their output in a log file; kills the ones still running at the end."""
  started = []

  def start(args, env, log_path):
    log = open(log_path, "w", encoding="utf-8")  # pylint: disable=consider-using-with
    process = subprocess.Popen(args, cwd=REPO_ROOT, env=env, stdout=log,
                               stderr=subprocess.STDOUT)
    started.append((process, log))
    return process

  yield start
  for process, log in started:
    if process.poll() is None:
      process.kill()
      process.wait(timeout=30)
    log.close()


def _wait(process, log_path, timeout=_TIMEOUT) -> str:
  """Waits for a process to exit 0 and returns its output."""
  try:
    process.wait(timeout=timeout)
  except subprocess.TimeoutExpired:
    process.kill()
    process.wait()
  with open(log_path, encoding="utf-8") as f:
    output = f.read()
  assert process.returncode == 0, f"exit {process.returncode}:\n{output[-4000:]}"
  return output


def _wait_for_ports(ports, timeout=90):
  deadline = time.time() + timeout
  for port in ports:
    while True:
      try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        break
      except OSError:
        if time.time() > deadline:
          raise TimeoutError(f"nothing listens on 127.0.0.1:{port} after {timeout} s")
        time.sleep(0.2)


def _curve(model_dir):
  """{step: (train loss, held-out full softmax)} from the run's TensorBoard events."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel
  accumulator = event_accumulator.EventAccumulator(str(model_dir), size_guidance={"tensors": 0})
  accumulator.Reload()
  values = {tag: {e.step: float(tf.make_ndarray(e.tensor_proto))
                  for e in accumulator.Tensors(tag)}
            for tag in ("loss/train", "loss/full_softmax_heldout")}
  return {step: (values["loss/train"][step], values["loss/full_softmax_heldout"][step])
          for step in sorted(values["loss/train"])}


def _accuracy(model_dir, questions):
  words, vectors = load_model_dir(str(model_dir))
  return evaluate_analogies(vectors, words, questions)["total"]["accuracy"]


_BATCHES = {}


def _steps_per_epoch(csv_path, epochs):
  """Batches the pipeline yields in `epochs` epochs (what the step counter must reach)."""
  if csv_path not in _BATCHES:
    data = _configs(csv_path, "unused").data
    prepared = prepare_data(data, progress=False)
    _BATCHES[csv_path] = [sum(1 for _ in pipeline.epoch_dataset(
        prepared.tokens, prepared.keep_probability, data.window, data.batch_size, data.seed, e))
                          for e in range(4)]
  return sum(_BATCHES[csv_path][:epochs])


def _checkpoint_step(model_dir):
  path = tf.train.latest_checkpoint(str(model_dir))
  return int(tf.train.load_variable(path, "step/.ATTRIBUTES/VARIABLE_VALUE"))


# --- fast checks -------------------------------------------------------------------------------


def test_take_part_splits_rows_and_their_candidate_groups():
  rows, groups, context = 8, 4, 3
  rng = np.random.default_rng(0)
  batch = {"center": tf.range(rows), "contexts": tf.reshape(tf.range(rows * context), [rows, -1]),
           "mask": tf.constant(rng.random([rows, context]) < 0.5), "words": tf.constant(17.0)}
  negative_kinds = [
      base.SampledValues(tf.reshape(tf.range(groups * 5, dtype=tf.int64), [groups, 5]),
                           tf.random.uniform([rows, context]), tf.random.uniform([groups, 5])),
      base.PairNegatives(tf.reshape(tf.range(rows * context * 2), [rows, context, 2])),
      base.TreePaths(tf.reshape(tf.range(rows * 4), [rows, 4]), tf.ones([rows, 4])),
      base.NoNegatives()]
  for negatives in negative_kinds:
    parts = [pipeline.take_part({**batch, "negatives": negatives}, tf.constant(i), 2, rows,
                                   groups) for i in range(2)]
    for key in ("center", "contexts", "mask"):
      np.testing.assert_array_equal(tf.concat([p[key] for p in parts], 0), batch[key])
    assert all(float(p["words"]) == 17.0 for p in parts)  # the whole batch's words
    joined = tf.nest.map_structure(lambda *x: tf.concat(x, 0), *[p["negatives"] for p in parts])
    tf.nest.map_structure(np.testing.assert_array_equal, joined, negatives)
    if isinstance(negatives, base.SampledValues):  # rows 0-3 go with groups 0-1
      assert parts[0]["negatives"].sampled.shape == [2, 5]


def test_task_info_from_tf_config(monkeypatch):
  def info(cluster, task_type, index):
    monkeypatch.setenv("TF_CONFIG", json.dumps(
        {"cluster": cluster, "task": {"type": task_type, "index": index}}))
    return cluster_lib.task_info(tf.distribute.cluster_resolver.TFConfigClusterResolver())

  workers = {"worker": ["127.0.0.1:1", "127.0.0.1:2"]}
  assert info(workers, "worker", 0) == cluster_lib.TaskInfo("worker", 0, True, 0, 2, 0)
  assert info(workers, "worker", 1) == cluster_lib.TaskInfo("worker", 1, False, 1, 2, 0)
  cluster = {"chief": ["127.0.0.1:1"], "worker": ["127.0.0.1:2", "127.0.0.1:3"],
             "ps": ["127.0.0.1:4", "127.0.0.1:5"]}
  assert info(cluster, "chief", 0).is_chief
  assert info(cluster, "worker", 0) == cluster_lib.TaskInfo("worker", 0, False, 1, 3, 2)
  assert cluster_lib.task_info(None) == cluster_lib.TaskInfo(None, 0, True, 0, 1, 0)


def test_bad_strategy_settings_are_usage_errors(planted, tmp_path, monkeypatch):
  csv_path, _ = planted
  experiment = _configs(csv_path, tmp_path / "m")
  with pytest.raises(UsageError, match="--strategy must be one of"):
    build_trainer(experiment.replace(strategy="horovod"))
  with pytest.raises(UsageError, match="--cpu_devices.*mirrored only"):
    build_trainer(experiment.replace(cpu_devices=2))
  monkeypatch.delenv("TF_CONFIG", raising=False)
  with pytest.raises(UsageError, match="TF_CONFIG"):
    build_trainer(experiment.replace(strategy="parameter_server"))
  assert not cluster_lib.serve_if_server_task("parameter_server")  # no TF_CONFIG: not a server
  trainer = build_trainer(experiment, log=lambda m: None)
  assert type(trainer.runner) is strategies.Runner  # pylint: disable=unidiomatic-typecheck
  # Strategies are plugged in, never subclassed from the trainer.
  assert not Trainer.__subclasses__()
  assert isinstance(strategies.make_runner(RuntimeConfig(), print), strategies.Runner)


@pytest.mark.parametrize("loss,model,optimizer", [
    ("sampled_softmax", "skipgram", "sgd"), ("sampled_softmax", "cbow", "adagrad"),
    ("negative_sampling", "skipgram", "adam"), ("nce", "cbow", "sgd"),
    ("full_softmax", "skipgram", "sgd"), ("hierarchical_softmax", "skipgram", "adagrad"),
    ("hierarchical_softmax", "cbow", "sgd")])
def test_touched_rows_step_is_the_single_device_step(planted, tmp_path, loss, model, optimizer):
  """The parameter-server step (reads and writes only the touched rows) changes the tables
  exactly as the default step does, for every loss, model and optimizer."""
  csv_path, _ = planted
  trainers = [build_trainer(_configs(csv_path, tmp_path / name, loss=loss, model=model,
                                     optimizer=optimizer), log=lambda m: None)
              for name in ("default", "rows")]
  default, rows = trainers
  step = tf.function(lambda examples, rate: touched_rows_step(
      rows.step.model, rows.step.optimizer, examples, rate))
  learning_rate = tf.constant(0.05)
  for index, batch in enumerate(default.epoch_batches(0)):
    if index == 4:
      break
    default.step.update(batch, learning_rate)
    total, _ = step({k: batch[k] for k in ("center", "contexts", "mask", "negatives")},
                    learning_rate)
  assert float(total) > 0
  for ours, theirs in zip(rows.step.tables, default.step.tables):
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-6, atol=1e-6)
  assert np.abs(rows.step.model.output_weights.numpy()).max() > 1e-3  # it did train


# --- the strategies, for real ------------------------------------------------------------------


@pytest.mark.slow
def test_mirrored_on_two_cpus_matches_one_device_and_learns(planted, tmp_path, processes):
  csv_path, questions = planted
  log_path = tmp_path / "mirrored.log"
  # The mirrored run reads the corpus as plain text, the one-device run as the CSV: the same
  # reviews, so the same batches (issue 12: the strategies work on text input too).
  output = _wait(processes(_flags(csv_path, tmp_path / "mirrored", strategy="mirrored",
                                  cpu_devices=2, analogies=questions,
                                  train_text=write_as_text(csv_path), cleaning="imdb"),
                           _env(), log_path),
                 log_path)
  assert "2 replicas on" in output and "device:CPU:1" in output, output
  assert "input_embeddings IndexedSlices, output_weights IndexedSlices" in output, output
  summary = build_trainer(_configs(csv_path, tmp_path / "default"), log=lambda m: None).run()
  # Same batches and negatives, the replicas' gradients summed: the same loss curve.
  mirrored, default = _curve(tmp_path / "mirrored"), _curve(tmp_path / "default")
  assert list(mirrored) == [point["step"] for point in summary.curve] == list(default)
  for step, (train, heldout) in mirrored.items():
    assert abs(train - default[step][0]) < 0.02 and abs(heldout - default[step][1]) < 0.02, (
        step, mirrored, default)
  first, last = mirrored[min(mirrored)], mirrored[max(mirrored)]
  assert last[1] < first[1]
  assert _accuracy(tmp_path / "mirrored", questions) >= 0.9
  np.testing.assert_allclose(load_model_dir(str(tmp_path / "mirrored"))[1],
                             load_model_dir(str(tmp_path / "default"))[1], atol=1e-4)


_MIRRORED_MATRIX = textwrap.dedent("""
    import json, sys
    from w2v_tf import cluster
    cluster.configure_cpu_devices(2)
    import numpy as np, tensorflow as tf
    from tests.test_distributed import _configs
    from w2v_tf.build import build_trainer
    csv_path, folder = sys.argv[1], sys.argv[2]
    results = []
    for loss, model, optimizer in [("negative_sampling", "cbow", "adagrad"),
                                   ("full_softmax", "skipgram", "sgd"),
                                   ("nce", "skipgram", "adam")]:
      experiment = _configs(csv_path, f"{folder}/{loss}", loss=loss, model=model,
                            optimizer=optimizer)
      trainers = [build_trainer(experiment.replace(model_dir=f"{folder}/{loss}-{name}", **extra),
                                log=lambda m: None)
                  for name, extra in (("default", {}),
                                      ("mirrored", {"strategy": "mirrored", "cpu_devices": 2}))]
      for index, batch in enumerate(trainers[0].epoch_batches(0)):
        if index == 6:
          break
        for trainer in trainers:
          trainer.runner.run_one(batch)
      results.append({"case": [loss, model, optimizer], "replicas": trainers[1].runner.replicas,
                      "difference": max(float(np.abs(a.numpy() - b.numpy()).max())
                                        for a, b in zip(*(t.step.tables for t in trainers))),
                      "loss": [float(t.state.loss_sum.numpy()) for t in trainers]})
    print("RESULT " + json.dumps(results))
""")


@pytest.mark.slow
def test_mirrored_step_equals_one_device_step_for_other_losses(planted, tmp_path):
  """Negative sampling + CBOW + Adagrad, full softmax (dense gradient), NCE + Adam."""
  csv_path, _ = planted
  result = subprocess.run([sys.executable, "-c", _MIRRORED_MATRIX, csv_path, str(tmp_path)],
                          cwd=REPO_ROOT, env=_env(), capture_output=True, text=True,
                          timeout=_TIMEOUT, check=False)
  assert result.returncode == 0, result.stderr[-4000:]
  results = json.loads(result.stdout.split("RESULT ", 1)[1])
  for case in results:
    assert case["replicas"] == 2, case
    assert case["difference"] < 1e-5, case
    assert case["loss"][0] > 0 and abs(case["loss"][0] - case["loss"][1]) < 1e-3 * case["loss"][0]


@pytest.mark.slow
def test_multi_worker_two_processes_on_localhost(planted, tmp_path, processes):
  csv_path, questions = planted
  ports = _free_ports(2)
  cluster = {"worker": [f"127.0.0.1:{port}" for port in ports]}
  model_dir = tmp_path / "model"
  logs = [tmp_path / f"worker{index}.log" for index in range(2)]
  workers = [processes(_flags(csv_path, model_dir, strategy="multi_worker", analogies=questions),
                       _env({"cluster": cluster, "task": {"type": "worker", "index": index}}),
                       logs[index]) for index in range(2)]
  outputs = [_wait(worker, log) for worker, log in zip(workers, logs)]
  expected_steps = _steps_per_epoch(csv_path, 2)
  for output in outputs:
    assert f"done: {expected_steps} steps" in output, output
    assert "input_embeddings IndexedSlices" in output, output
  assert "worker 0 of 2, chief" in outputs[0] and "worker 1 of 2" in outputs[1]
  assert _checkpoint_step(model_dir) == expected_steps
  # Only the chief wrote: one event file; the other worker's scratch dir is gone.
  assert len([n for n in os.listdir(model_dir) if n.startswith("events.out")]) == 1
  scratch = re.search(r"writes to scratch (\S+)\)", outputs[1]).group(1)
  assert not os.path.exists(scratch)
  words, vectors = load_model_dir(str(model_dir))
  assert vectors.shape == (len(words), 32)
  assert _accuracy(model_dir, questions) >= 0.9


@pytest.mark.slow
def test_parameter_server_shards_tables_learns_and_restores_across_strategies(
    planted, tmp_path, processes):
  csv_path, questions = planted
  ports = _free_ports(5)
  cluster = {"chief": [f"127.0.0.1:{ports[0]}"],
             "worker": [f"127.0.0.1:{port}" for port in ports[1:3]],
             "ps": [f"127.0.0.1:{port}" for port in ports[3:]]}
  model_dir = tmp_path / "model"

  def run_chief(epochs, name):
    args = _flags(csv_path, model_dir, epochs=epochs, strategy="parameter_server",
                  analogies=questions)
    log_path = tmp_path / f"{name}.log"
    return _wait(processes(args, _env({"cluster": cluster, "task": {"type": "chief",
                                                                    "index": 0}}), log_path),
                 log_path)

  server_args = _flags(csv_path, model_dir, strategy="parameter_server")
  for task_type, index in (("ps", 0), ("ps", 1), ("worker", 0), ("worker", 1)):
    processes(server_args, _env({"cluster": cluster, "task": {"type": task_type,
                                                               "index": index}}),
              tmp_path / f"{task_type}{index}.log")
  _wait_for_ports(ports[1:])
  output = run_chief(2, "chief")
  # The tables really are split across the two parameter servers.
  for table in ("input_embeddings", "output_weights"):
    assert re.search(rf"{table} 2 shards: \d+ rows on /job:ps/replica:0/task:0, \d+ rows on "
                     r"/job:ps/replica:0/task:1", output), output
  # The chief and each parameter server wrote their part of the checkpoint.
  latest = tf.train.latest_checkpoint(str(model_dir))
  assert len([n for n in os.listdir(model_dir)
              if n.startswith(os.path.basename(latest) + ".data-")]) == 3
  two_epochs = _steps_per_epoch(csv_path, 2)
  assert f"done: {two_epochs} steps" in output
  curve = _curve(model_dir)
  assert curve[max(curve)][1] < curve[min(curve)][1]  # held-out full softmax falls
  assert _accuracy(model_dir, questions) >= 0.9
  # The sharded checkpoint on one device: export from it, then train a third epoch.
  words, _, vectors, path = load_checkpoint_vectors(str(model_dir), log=lambda m: None)
  assert path == latest and list(words) == load_model_dir(str(model_dir))[0]
  np.testing.assert_array_equal(vectors, load_model_dir(str(model_dir))[1])
  # The projector's checkpoint is one whole tensor in the chief's files (not the shards).
  projector = tf.train.load_checkpoint(str(model_dir / "projector" / "embedding.ckpt"))
  np.testing.assert_array_equal(
      projector.get_tensor("embeddings/.ATTRIBUTES/VARIABLE_VALUE"), vectors)
  messages = []
  summary = build_trainer(_configs(csv_path, model_dir, epochs=3), log=messages.append).run()
  assert any(f"resumed from {latest}: step {two_epochs}" in m for m in messages), messages
  three_epochs = _steps_per_epoch(csv_path, 3)
  assert summary.step == three_epochs
  # And back: a new chief on the same cluster restores that checkpoint into the shards.
  output = run_chief(4, "chief-again")
  assert f"resumed from {model_dir}/ckpt-{three_epochs}: step {three_epochs}" in output, output
  assert f"done: {_steps_per_epoch(csv_path, 4)} steps" in output
  assert _accuracy(model_dir, questions) >= 0.9
