"""w2v_tf/config.py: one experiment config, its JSON round trip, defaults, validation, generated flags."""

import dataclasses
import json
import re
import subprocess
import sys

from absl import flags
import pytest

from tests.conftest import REPO_ROOT
from w2v_tf import config, config_flags
from w2v_tf.config import ExperimentConfig
from w2v_tf.errors import UsageError, UserError


def test_json_round_trip_keeps_every_field():
  experiment = ExperimentConfig().replace(train_csv="x.csv.gz", embedding_dim=7, loss="nce",
                                          learning_rate=0.5, analogies=None, strategy="mirrored",
                                          cpu_devices=2, jit_compile=False, strict_utf8=True)
  text = experiment.to_json()
  assert json.loads(text)["runtime"]["cpu_devices"] == 2
  assert ExperimentConfig.from_json(text) == experiment
  assert ExperimentConfig.from_json(ExperimentConfig().to_json()) == ExperimentConfig()


def test_from_dict_reads_the_earlier_layout_and_refuses_unknown_keys():
  """Before the redesign strategy/jit/progress sat under "train" and vocab_size under "model"."""
  old = {"data": {"train_csv": "a.csv", "window": 3}, "model": {"vocab_size": 42, "loss": "nce"},
         "train": {"epochs": 2, "strategy": "mirrored", "jit_compile": False, "progress": False}}
  experiment = ExperimentConfig.from_dict(old, ignore=["vocab_size"])
  assert (experiment.data.window, experiment.model.loss, experiment.train.epochs) == (3, "nce", 2)
  assert experiment.runtime == config.RuntimeConfig(strategy="mirrored", jit_compile=False,
                                                    progress=False)
  with pytest.raises(UserError, match="unknown config keys vocab_size"):
    ExperimentConfig.from_dict(old)


def test_field_names_are_unique_across_sections():
  names = [field.name for section in (config.DataConfig, config.ModelConfig, config.TrainConfig,
                                      config.RuntimeConfig) for field in dataclasses.fields(section)]
  assert len(names) == len(set(names))
  with pytest.raises(TypeError, match="no config field named 'epoch'"):
    ExperimentConfig().replace(epoch=3)


@pytest.mark.parametrize("loss,optimizer,model,num_sampled,learning_rate", [
    ("sampled_softmax", "sgd", "skipgram", 64, 0.025),
    ("negative_sampling", "sgd", "cbow", 5, 0.05),
    ("nce", "adagrad", "skipgram", 64, 0.1),
    ("full_softmax", "adam", "cbow", 64, 0.001)])
def test_resolved_fills_the_dependent_defaults(loss, optimizer, model, num_sampled,
                                               learning_rate):
  experiment = ExperimentConfig().replace(loss=loss, optimizer=optimizer, model=model)
  resolved = experiment.resolved()
  assert resolved.model.num_sampled == num_sampled
  assert resolved.train.learning_rate == learning_rate
  # Values the user gave are kept.
  given = experiment.replace(num_sampled=3, learning_rate=0.2).resolved()
  assert (given.model.num_sampled, given.train.learning_rate) == (3, 0.2)


def test_validate_names_every_bad_value():
  bad = ExperimentConfig().replace(window=0, subsample=1.0, batch_size=100, loss="hs",
                                   cpu_devices=2, learning_rate=-1.0)
  with pytest.raises(UsageError) as info:
    bad.validate()
  message = str(info.value)
  for part in ("--window must be positive (got 0)", "--subsample must be in [0, 1)",
               "--batch_size (100) must be a multiple of --sample_group_centers (64)",
               "--loss must be one of sampled_softmax, nce, negative_sampling, full_softmax",
               "--cpu_devices (2) must be >= 0, and is for --strategy=mirrored only",
               "--learning_rate must be > 0"):
    assert part in message, (part, message)
  ExperimentConfig().resolved().validate()  # the defaults are valid


def test_help_comes_from_the_docstrings():
  helps = config_flags.field_help(config.TrainConfig)
  assert helps["learning_rate"] == ("Initial learning rate, decayed linearly to 1e-4 of it "
                                    "(default: 0.025 skip-gram / 0.05 CBOW with sgd, 0.1 "
                                    "adagrad, 0.001 adam).")
  for section in (config.DataConfig, config.ModelConfig, config.TrainConfig,
                  config.RuntimeConfig):
    assert set(config_flags.field_help(section)) == {f.name for f in dataclasses.fields(section)}


def test_generated_flags_parse_back_to_the_config():
  flag_values = flags.FlagValues()
  config_flags.define_flags(flag_values)
  flag_values(["prog", "--epochs=3", "--loss=nce", "--nojit_compile", "--learning_rate=0.5",
               "--strategy=mirrored", "--stopwords=none"])
  experiment = config_flags.from_flags(flag_values)
  assert experiment == ExperimentConfig().replace(epochs=3, loss="nce", jit_compile=False,
                                                  learning_rate=0.5, strategy="mirrored",
                                                  stopwords="none")
  assert "enum" in flag_values["loss"].flag_type()
  with pytest.raises(flags.IllegalFlagValueError):
    flag_values(["prog", "--optimizer=rmsprop"])
  # A subset, with other defaults (what a benchmark shares with the trainer).
  subset = flags.FlagValues()
  config_flags.define_flags(subset, names=["epochs", "window"], defaults={"epochs": 9})
  subset(["prog"])
  assert sorted(subset) == ["epochs", "window"]
  assert config_flags.from_flags(subset, names=["epochs", "window"]).train.epochs == 9


def test_the_imdb_names_of_renamed_fields_still_work():
  """--max_reviews / --heldout_reviews (and those config.json keys) are today's
  --max_documents / --heldout_documents."""
  flag_values = flags.FlagValues()
  config_flags.define_flags(flag_values)
  flag_values(["prog", "--max_reviews=30", "--heldout_reviews=0.5"])
  data = config_flags.from_flags(flag_values).data
  assert (data.max_documents, data.heldout_documents) == (30, 0.5)
  assert (data.max_reviews, data.heldout_reviews) == (30, 0.5)  # what benchmarks read
  # A benchmark asking for the old names, with a default under one (benchmarks/crash_resume).
  subset = flags.FlagValues()
  config_flags.define_flags(subset, names=["max_reviews"], defaults={"max_reviews": 3000})
  subset(["prog"])
  assert subset.max_reviews == 3000 and subset.max_documents == 3000
  assert config_flags.from_flags(subset, names=["max_reviews"]).data.max_documents == 3000
  # config.json written before the rename.
  old = ExperimentConfig().to_dict()
  old["data"]["max_reviews"] = old["data"].pop("max_documents") + 7
  old["data"]["heldout_reviews"] = old["data"].pop("heldout_documents")
  assert ExperimentConfig.from_dict(old).data.max_documents == 7
  assert ExperimentConfig().replace(max_reviews=5).data.max_documents == 5


def test_flags_that_exclude_each_other_are_refused():
  """Two inputs, or an old name and its new name with different values (in either order)."""
  def parse(*argv):
    flag_values = flags.FlagValues()
    config_flags.define_flags(flag_values)
    flag_values(["prog", *argv])
    return config_flags.from_flags(flag_values).data

  for argv, message in (
      (["--train_csv=a.csv", "--train_text=b.txt"], "--train_csv and --train_text each name"),
      # The default's own value, given explicitly, still names a second input.
      (["--train_csv=data/IMDB_Dataset.csv", "--train_text=b.txt"], "each name the input"),
      (["--max_reviews=5", "--max_documents=9"], "--max_documents=9 and --max_reviews=5"),
      (["--max_documents=9", "--max_reviews=5"], "--max_documents=9 and --max_reviews=5"),
      (["--max_documents=5", "--max_reviews=5", "--max_reviews=7"], "--max_reviews=7"),
      (["--heldout_reviews=3", "--heldout_documents=4"], "--heldout_documents=4.0 and")):
    with pytest.raises(UsageError, match=message):
      parse(*argv)
  assert parse("--max_documents=5", "--max_reviews=5").max_documents == 5
  assert parse("--max_reviews=5", "--max_reviews=7").max_documents == 7  # one name: last wins
  assert parse("--train_text=b.txt").input_source == "b.txt"


def test_train_helpshort_lists_every_field_with_its_default():
  result = subprocess.run([sys.executable, "-m", "w2v_tf.train", "--helpshort"], cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)
  text = result.stdout + result.stderr  # (absl exits 1 after printing the help)
  listed = set(re.findall(r"^  --(?:\[no\])?(\w+):", text, re.MULTILINE))
  fields = [f for section in (config.DataConfig, config.ModelConfig, config.TrainConfig,
                              config.RuntimeConfig) for f in dataclasses.fields(section)]
  aliases = {alias for f in fields for alias in f.metadata.get("aliases", ())}  # --max_reviews
  assert listed == {f.name for f in fields} | aliases
  assert "--max_reviews: Alias for --max_documents." in text
  assert "--batch_size: Center words per step (each with up to 2*window contexts).\n    " \
         "(default: '4096')" in text


def test_importing_the_config_defines_no_flag():
  code = ("from absl import flags\nimport w2v_tf.config, w2v_tf.train, w2v_tf.build\n"
          "print(len(list(flags.FLAGS)))")
  result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, timeout=120, check=False)
  assert result.returncode == 0, result.stderr
  baseline = subprocess.run([sys.executable, "-c", "from absl import flags\nimport "
                             "tensorflow\nprint(len(list(flags.FLAGS)))"], cwd=REPO_ROOT,
                            capture_output=True, text=True, timeout=120, check=False)
  assert result.stdout.strip() == baseline.stdout.strip()
