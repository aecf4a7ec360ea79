"""The trainer: learning planted relations, resume, TensorBoard tags, exports, model_dir checks."""

import gc
import json
import os
import re

import numpy as np
import pytest
import tensorflow as tf

from eval.analogy import evaluate_analogies
from tests.planted import load_model_dir, small_experiment, write_as_text
from w2v_tf import monitor
from w2v_tf.build import build_trainer
from w2v_tf.config import ExperimentConfig
from w2v_tf.errors import UserError
from w2v_tf.monitor import AnalogyEvaluation
from w2v_tf.sampling import GroupCandidates


def _configs(csv_path, model_dir, epochs=1, **overrides):
  return small_experiment(csv_path, model_dir, epochs, **overrides)


def _analogies(path, log):
  return [AnalogyEvaluation(lambda v: evaluate_analogies(v.vectors, list(v.words), path), log)]


def _train(experiment, log=None):
  messages = []
  log = log or messages.append
  extra = _analogies(experiment.train.analogies, log) if experiment.train.analogies else ()
  summary = build_trainer(experiment, extra, log=log).run()
  return summary, messages


def test_learns_planted_relations(planted, tmp_path):
  """Skip-gram with the default loss answers the planted analogies (random vectors: ~1%)."""
  csv_path, questions = planted
  summary, _ = _train(_configs(csv_path, tmp_path / "m", epochs=3, analogies=questions,
                               jit_compile=True))
  words, vectors = load_model_dir(str(tmp_path / "m"))
  result = evaluate_analogies(vectors, words, questions)
  assert result["total"]["seen"] == result["total"]["questions"] == 264
  assert result["total"]["accuracy"] >= 0.9, result["total"]
  assert summary.analogy[-1]["total"]["accuracy"] == result["total"]["accuracy"]
  # The sampled loss and the exact loss both fall.
  curve = summary.curve
  assert curve[-1]["train"] < curve[0]["train"]
  assert curve[-1]["full_softmax_heldout"] < curve[0]["full_softmax_heldout"]
  rng = np.random.default_rng(0)
  random_result = evaluate_analogies(rng.normal(size=vectors.shape), words, questions)
  assert random_result["total"]["accuracy"] < 0.2


@pytest.mark.parametrize("loss,model", [("negative_sampling", "skipgram"), ("nce", "skipgram"),
                                        ("full_softmax", "skipgram"),
                                        ("sampled_softmax", "cbow"),
                                        ("hierarchical_softmax", "skipgram"),
                                        ("hierarchical_softmax", "cbow")])
def test_other_losses_and_cbow_learn(planted, tmp_path, loss, model):
  csv_path, questions = planted
  _train(_configs(csv_path, tmp_path / "m", epochs=2, loss=loss, model=model))
  words, vectors = load_model_dir(str(tmp_path / "m"))
  assert evaluate_analogies(vectors, words, questions)["total"]["accuracy"] >= 0.5
  # The projector labels the output table's rows with words unless they are the tree's nodes.
  config = (tmp_path / "m" / "projector_config.pbtxt").read_text(encoding="utf-8")
  assert config.count("metadata_path") == (1 if loss == "hierarchical_softmax" else 2), config


def test_resume_continues_the_step_count(planted, tmp_path):
  csv_path, _ = planted
  first, _ = _train(_configs(csv_path, tmp_path / "m", epochs=1))
  steps_per_epoch = first.step
  assert steps_per_epoch > 0 and os.path.exists(tmp_path / "m" / f"ckpt-{steps_per_epoch}.index")
  second, messages = _train(_configs(csv_path, tmp_path / "m", epochs=2))
  assert any("resumed from" in m and f"step {steps_per_epoch}" in m for m in messages), messages
  assert second.step == 2 * steps_per_epoch


@pytest.mark.parametrize("source", ["csv", "text"])
def test_resume_mid_epoch_replays_the_same_batches(planted, tmp_path, source):
  csv_path, _ = planted
  text = {"train_text": write_as_text(csv_path), "cleaning": "imdb"} if source == "text" else {}
  experiment = _configs(csv_path, tmp_path / "m", epochs=1, checkpoint_every_steps=7,
                        keep_checkpoints=1000, **text)  # keep ckpt-7
  trainer = build_trainer(experiment, log=lambda m: None)
  trainer.run()
  full_vectors = trainer.state.model.input_embeddings.numpy()
  # Restore the step-7 checkpoint into a fresh trainer and finish the epoch from there.
  os.makedirs(tmp_path / "m2")
  for name in os.listdir(tmp_path / "m"):
    if name.startswith("ckpt-7.") or name in ("config.json", "vocab.tsv"):
      with open(tmp_path / "m" / name, "rb") as src, open(tmp_path / "m2" / name, "wb") as dst:
        dst.write(src.read())
  with open(tmp_path / "m2" / "checkpoint", "w", encoding="utf-8") as f:
    f.write('model_checkpoint_path: "ckpt-7"\nall_model_checkpoint_paths: "ckpt-7"\n')
  messages = []
  resumed = build_trainer(_configs(csv_path, tmp_path / "m2", epochs=1, checkpoint_every_steps=7,
                                   **text), log=messages.append)
  summary = resumed.run()
  assert any(m.startswith(f"resumed from {tmp_path / 'm2' / 'ckpt-7'}: step 7,")
             for m in messages), messages
  assert summary.step == trainer.state.step.numpy()
  np.testing.assert_allclose(resumed.state.model.input_embeddings.numpy(), full_vectors,
                             atol=1e-5)


def test_steps_per_call_does_not_change_training(planted, tmp_path):
  """The compiled loop's call size (and the loss-comparison steps between calls) is invisible."""
  csv_path, _ = planted
  results = []
  for steps_per_call in (1, 7, 50):
    summary, _ = _train(_configs(csv_path, tmp_path / f"m{steps_per_call}", epochs=1,
                                 jit_compile=True, steps_per_call=steps_per_call))
    results.append((summary, load_model_dir(str(tmp_path / f"m{steps_per_call}"))[1]))
  (first, vectors), others = results[0], results[1:]
  for summary, other_vectors in others:
    assert summary.step == first.step > 20
    assert [p["step"] for p in summary.curve] == [p["step"] for p in first.curve]
    np.testing.assert_allclose(other_vectors, vectors, atol=1e-6)


def test_compiled_step_adds_the_labels_expected_counts_itself(planted, tmp_path):
  """With XLA the pipeline sends GroupCandidates and the step computes the labels' expected
  counts; the first step's loss equals the uncompiled step's (SampledValues from tf.data)."""
  csv_path, _ = planted
  losses = []
  for jit_compile in (True, False):
    trainer = build_trainer(_configs(csv_path, tmp_path / f"m{jit_compile}",
                                     jit_compile=jit_compile), log=lambda m: None)
    batch = next(iter(trainer.epoch_batches(0)))
    assert isinstance(batch["negatives"], GroupCandidates) == jit_compile
    trainer.runner.run_steps(iter(tf.data.Dataset.from_tensors(batch)), 1)
    losses.append(float(trainer.state.loss_sum.numpy()))
  assert losses[0] == pytest.approx(losses[1], rel=1e-5)


def test_event_files_have_the_tags(planted, tmp_path):
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel
  from tensorboard.plugins.custom_scalar import layout_pb2  # pylint: disable=import-outside-toplevel
  csv_path, questions = planted
  summary, messages = _train(_configs(csv_path, tmp_path / "m", epochs=1, analogies=questions))
  accumulator = event_accumulator.EventAccumulator(str(tmp_path / "m"),
                                                   size_guidance={"tensors": 0})
  accumulator.Reload()
  tags = set(accumulator.Tags()["tensors"])
  expected = {"loss/train", "loss/full_softmax_batch", "loss/full_softmax_heldout",
              "grad_cosine/heldout", "learning_rate", "words_per_sec", "analogy_percent/total",
              "analogy_percent/semantic", "analogy_percent/syntactic", "nearest_neighbors",
              "custom_scalars__config__"}
  assert expected <= tags, expected - tags

  def values(tag):
    return [(e.step, float(tf.make_ndarray(e.tensor_proto))) for e in accumulator.Tensors(tag)]

  learning_rates = [value for _, value in values("learning_rate")]
  assert len(learning_rates) >= 2
  assert learning_rates == sorted(learning_rates, reverse=True)  # linear decay
  # Percentages, as the console prints them (and the run's summary's fractions x 100).
  assert values("analogy_percent/total") == [
      (summary.step, pytest.approx(100 * summary.analogy[-1]["total"]["accuracy"]))]
  assert any(f"total {values('analogy_percent/total')[0][1]:.1f}%" in m for m in messages)
  # No rate for step 1: it includes the compilation (~694 words/s against ~100k after it).
  rates = values("words_per_sec")
  assert rates and rates[0][0] > 1 and min(value for _, value in rates) > 0, rates
  step_1 = [m for m in messages if m.startswith("step 1 |")]
  assert step_1 and "words/s" not in step_1[0], step_1
  layout = layout_pb2.Layout.FromString(tf.make_ndarray(
      accumulator.Tensors("custom_scalars__config__")[0].tensor_proto).item())
  assert [chart.title for chart in layout.category[0].chart] == [
      "training loss and exact full-softmax losses (batch, held-out)",
      "gradient cosine: training loss vs exact loss (held-out)", "analogy accuracy (%)"]
  projector = tmp_path / "m" / "projector"
  assert (projector / "projector_config.pbtxt").exists()
  assert (projector / "metadata.tsv").exists()
  # The model dir's own config labels the checkpoint's tables, the input table first.
  config = (tmp_path / "m" / "projector_config.pbtxt").read_text(encoding="utf-8")
  assert config.index("model/input_embeddings/") < config.index("model/output_weights/"), config
  metadata = (tmp_path / "m" / "projector_metadata.tsv").read_text(encoding="utf-8")
  vocab = (tmp_path / "m" / "vocab.tsv").read_text(encoding="utf-8")
  assert metadata == "word\tcount\n" + vocab


def test_export_round_trips_through_gensim(planted, tmp_path):
  from gensim.models import KeyedVectors  # pylint: disable=import-outside-toplevel
  csv_path, _ = planted
  trainer = build_trainer(_configs(csv_path, tmp_path / "m", epochs=1), log=lambda m: None)
  trainer.run()
  ours = trainer.state.model.input_embeddings.numpy()
  for name, binary in (("vectors.bin", True), ("vectors.txt", False)):
    loaded = KeyedVectors.load_word2vec_format(str(tmp_path / "m" / name), binary=binary)
    assert loaded.index_to_key == list(trainer.data.vocab.words)
    np.testing.assert_allclose(loaded.vectors, ours, atol=1e-6 if binary else 1e-5)
  config = json.loads((tmp_path / "m" / "config.json").read_text())
  assert config["vocab_size"] == len(trainer.data.vocab)
  assert ExperimentConfig.from_dict(config, ignore=["vocab_size"]) == trainer.experiment
  assert (tmp_path / "m" / "vocab.tsv").read_text().splitlines()[0].split("\t")[0] == (
      trainer.data.vocab.words[0])


def test_model_dir_with_another_config_is_refused(planted, tmp_path):
  csv_path, _ = planted
  _train(_configs(csv_path, tmp_path / "m", epochs=1))
  experiment = _configs(csv_path, tmp_path / "m", epochs=1, embedding_dim=16)
  with pytest.raises(UserError, match="embedding_dim.*--overwrite"):
    build_trainer(experiment)
  # --overwrite starts afresh.
  summary, messages = _train(experiment.replace(overwrite=True))
  assert not any("resumed" in m for m in messages)
  assert load_model_dir(str(tmp_path / "m"))[1].shape[1] == 16
  assert summary.step > 0


def _points(model_dir):
  """{tag: [steps]} of the loss tags in a model dir's events."""
  from tensorboard.backend.event_processing import event_accumulator  # pylint: disable=import-outside-toplevel
  accumulator = event_accumulator.EventAccumulator(str(model_dir), size_guidance={"tensors": 0})
  accumulator.Reload()
  return {tag: sorted(e.step for e in accumulator.Tensors(tag))
          for tag in ("loss/train", "loss/full_softmax_batch", "loss/full_softmax_heldout",
                      "grad_cosine/heldout")}


def test_every_run_has_curves_resumed_or_not(planted, tmp_path):
  """With --eval_every_steps past the run, the exact losses still get the first step, mid
  first epoch and the epoch end; a resumed epoch gets its own first step and end."""
  csv_path, _ = planted
  experiment = _configs(csv_path, tmp_path / "m", epochs=1, eval_every_steps=100_000,
                        log_every_steps=10)
  first, messages = _train(experiment)
  points = _points(tmp_path / "m")
  for tag, steps in points.items():
    assert len(steps) >= 3, (tag, steps)
    assert steps[0] == 1 and steps[-1] == first.step, (tag, steps)
  assert set(range(10, first.step, 10)) <= set(points["loss/train"])
  assert [p["step"] for p in first.curve] == points["loss/full_softmax_heldout"]
  assert all(0.0 < p["grad_cosine"] < 1.0 for p in first.curve), first.curve
  assert any(re.match(r"^step 10 \| sampled softmax [\d.]+ \| \d+k words/s \| lr ", m)
             for m in messages), messages
  second, _ = _train(experiment.replace(epochs=2))
  resumed = _points(tmp_path / "m")
  for tag, steps in resumed.items():
    new = [step for step in steps if step > first.step]
    assert len(new) >= 2 and new[0] == first.step + 1 and new[-1] == second.step, (tag, steps)


def test_full_softmax_training_has_gradient_cosine_one(planted, tmp_path):
  csv_path, _ = planted
  summary, _ = _train(_configs(csv_path, tmp_path / "m", epochs=1, loss="full_softmax",
                               eval_every_steps=100_000))
  assert summary.curve and all(abs(p["grad_cosine"] - 1) < 1e-4 for p in summary.curve)


@pytest.mark.parametrize("sampler", ["log_uniform", "uniform"])
def test_other_samplers_train(planted, tmp_path, sampler):
  csv_path, questions = planted
  summary, _ = _train(_configs(csv_path, tmp_path / "m", epochs=2, sampler=sampler))
  assert summary.curve[-1]["full_softmax_heldout"] < summary.curve[0]["full_softmax_heldout"]
  config = json.loads((tmp_path / "m" / "config.json").read_text())
  assert config["model"]["sampler"] == sampler



@pytest.fixture(name="imdb_slice", scope="module")
def fixture_imdb_slice(tmp_path_factory):
  """The first 500 IMDB reviews as a CSV and as a glob of 3 .txt shards (one review a line)."""
  from tests.conftest import IMDB_CSV  # pylint: disable=import-outside-toplevel
  if not os.path.exists(IMDB_CSV):
    pytest.skip(f"{IMDB_CSV} is absent (shared data not beside the repo)")
  import pandas as pd  # pylint: disable=import-outside-toplevel
  folder = tmp_path_factory.mktemp("imdb_slice")
  frame = pd.read_csv(IMDB_CSV, nrows=500)[["review"]]
  csv_path = str(folder / "slice.csv")
  frame.to_csv(csv_path, index=False)
  lines = [" ".join(review.splitlines()) for review in frame["review"]]
  os.mkdir(folder / "shards")
  for index, start in enumerate(range(0, len(lines), 167)):
    (folder / "shards" / f"part-{index}.txt").write_text(
        "".join(line + "\n" for line in lines[start:start + 167]), encoding="utf-8")
  return csv_path, str(folder / "shards" / "part-*.txt")


def test_text_shards_train_the_same_vectors_as_the_csv(imdb_slice, tmp_path):
  """--train_text over a glob of shards with --cleaning=imdb is the CSV's run, byte for byte."""
  csv_path, shards = imdb_slice
  settings = {"embedding_dim": 8, "analogies": None, "eval_every_steps": 1000,
              "checkpoint_every_steps": 1000, "cache_dir": str(tmp_path / "cache")}
  runs = {"csv": _configs(csv_path, tmp_path / "csv", **settings),
          "text": _configs(csv_path, tmp_path / "text", train_text=shards, cleaning="imdb",
                           **settings)}
  summaries = {name: _train(experiment)[0] for name, experiment in runs.items()}
  assert summaries["csv"].step == summaries["text"].step > 50
  assert len(os.listdir(tmp_path / "cache")) == 2  # two inputs, two corpus caches
  for name in ("vectors.bin", "vocab.tsv"):
    ours = (tmp_path / "text" / name).read_bytes()
    assert ours == (tmp_path / "csv" / name).read_bytes(), name
  assert len((tmp_path / "csv" / "vocab.tsv").read_text().splitlines()) > 1000


def test_data_binary_dumps_text_shards_as_the_csv(imdb_slice, tmp_path):
  """`python -m w2v_tf.data --train_text` writes the CSV's token dump and vocabulary."""
  from tests.binaries import Runner  # pylint: disable=import-outside-toplevel
  csv_path, shards = imdb_slice
  repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
  env = {**os.environ, "PYTHONPATH": repo + os.pathsep + os.environ.get("PYTHONPATH", "")}
  runner = Runner(repo, env, workers=1, preload=(
      "w2v_tf", "numpy", "tensorflow", "absl.app", "absl.flags", "absl.logging",
      "w2v_tf.training_data"))
  try:
    for name, args in (("csv", [f"--train_csv={csv_path}"]),
                       ("text", [f"--train_text={shards}", "--cleaning=imdb"])):
      run = runner.run("w2v_tf.data", [*args, "--stopwords=none", "--min_count=2",
                                       f"--cache_dir={tmp_path / 'cache'}",
                                       f"--dump_tokens={tmp_path / name}.tokens",
                                       f"--vocab_out={tmp_path / name}.vocab"])
      assert run.returncode == 0, run.stderr
      assert run.stderr.strip().splitlines()[-1].startswith("500 documents, "), run.stderr
  finally:
    runner.close()
  for suffix in ("tokens", "vocab"):
    ours = (tmp_path / f"text.{suffix}").read_bytes()
    assert ours == (tmp_path / f"csv.{suffix}").read_bytes(), suffix
  assert len((tmp_path / "csv.tokens").read_text(encoding="utf-8").splitlines()) == 500


def _live_iterators() -> int:
  return sum(isinstance(item, tf.data.Iterator) for item in gc.get_objects())


class _LiveIterators(monitor.Callback):
  """Counts the tf.data iterators alive when each epoch begins (its own is) and ends."""

  def __init__(self):
    self.counts = []

  def on_epoch_begin(self, epoch, logs):
    self.counts.append(("begin", _live_iterators()))

  def on_epoch_end(self, epoch, logs):
    self.counts.append(("end", _live_iterators()))


def test_an_epoch_iterator_is_freed_before_the_epoch_end_work(planted, tmp_path):
  # Its buffers (a chunk built ahead, prefetched batches) would otherwise sit beside the epoch
  # end's comparisons, checkpoint and vectors, and beside the next epoch's iterator.
  csv_path, _ = planted
  live = _LiveIterators()
  build_trainer(_configs(csv_path, tmp_path / "m", epochs=2), [live], log=lambda _: None).run()
  assert live.counts == [("begin", 1), ("end", 0), ("begin", 1), ("end", 0)]


def test_a_line_every_step_still_shows_the_speed(planted, tmp_path):
  """Lines closer than the rate's 0.5 s window: the window stays open across them, so no line
  after the first shows 0 words/s (each kept the 0 it started with)."""
  csv_path, _ = planted
  experiment = _configs(csv_path, tmp_path / "m", epochs=1, eval_every_steps=100_000,
                        log_every_steps=1)
  _, messages = _train(experiment)
  rates = [float(match.group(1)) for m in messages
           for match in [re.match(r"^step (?!1 )\d+ \|.*\| ([\d.,]+)k words/s", m)] if match]
  assert len(rates) > 5 and all(rate > 0 for rate in rates), messages
