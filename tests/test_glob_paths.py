"""Paths with glob characters are paths: a model dir named `run[1]` trains, rotates, resumes, exports.

TensorFlow matches the checkpoint paths it is given as patterns; before `checkpoints.tf_path`,
`--model_dir 'DIR/run[1]'` wrote checkpoints (exit 0) that resume and export called damaged, and
kept every checkpoint (the rotation's deletes matched nothing). Through the binaries (forked from
a process that imported TensorFlow once, `tests/binaries.Runner`), then `tf_path` itself.
"""

import os
import re

import numpy as np
import pytest

from tests.binaries import module_runner
from tests.test_crash_resume import train_args, write_corpus
from w2v_tf import checkpoints
from w2v_tf.word_vectors import WordVectors

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
ENV = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2",
       "PYTHONPATH": REPO + os.pathsep + os.environ.get("PYTHONPATH", "")}


fixture_runner = module_runner(REPO, ENV, workers=1)


def _checkpoint_steps(model_dir):
  return sorted(int(m.group(1)) for m in map(re.compile(r"^ckpt-(\d+)\.index$").match,
                                             os.listdir(model_dir)) if m)


def test_a_model_dir_with_glob_characters_trains_resumes_and_exports(runner, tmp_path):
  csv_path = tmp_path / "corpus.csv"
  write_corpus(csv_path, 200)
  # '[1]' would match a directory 'run1'; '*' and '?' in the cache dir are patterns too.
  model_dir, cache = tmp_path / "run[1]", tmp_path / "cache*?"
  os.mkdir(tmp_path / "run1")  # what the pattern matches: must stay empty
  args = train_args(csv_path, model_dir, cache, epochs=1, checkpoint_every_steps=3,
                    keep_checkpoints=2, analogies="none")
  first = runner.run("w2v_tf.train", args)
  assert first.returncode == 0 and "Traceback" not in first.stderr, first.stderr
  steps = _checkpoint_steps(model_dir)
  assert len(steps) == 2, steps  # rotated: --keep_checkpoints=2
  second = runner.run("w2v_tf.train", [*args, "--epochs=2"])
  assert second.returncode == 0, second.stderr
  assert f"resumed from {model_dir}/ckpt-{steps[-1]}: step {steps[-1]}," in second.stderr
  assert "warning" not in second.stderr and "damaged" not in second.stderr, second.stderr
  assert _checkpoint_steps(model_dir)[-1] == 2 * steps[-1]
  assert os.listdir(tmp_path / "run1") == []

  output_dir = tmp_path / "out[2]"
  export = runner.run("w2v_tf.export", [f"--model_dir={model_dir}", f"--output_dir={output_dir}"])
  assert export.returncode == 0 and "warning" not in export.stderr, export.stderr
  assert f"from {model_dir}/ckpt-{2 * steps[-1]} to" in export.stderr
  exported, trained = (WordVectors.load(str(d / "vectors.bin")) for d in (output_dir, model_dir))
  assert exported.words == trained.words and np.array_equal(exported.vectors, trained.vectors)
  keras_file = tmp_path / "v[3].keras"
  export = runner.run("w2v_tf.export", [f"--model_dir={model_dir}", "--format=keras",
                                        f"--output={keras_file}"])
  assert export.returncode == 0 and keras_file.is_file(), export.stderr


def test_tf_path_aliases_only_paths_with_glob_characters(tmp_path):
  assert checkpoints.tf_path(str(tmp_path / "plain" / "ckpt-5")) == str(tmp_path / "plain" /
                                                                       "ckpt-5")
  model_dir = tmp_path / "run[1]*?"
  prefix = checkpoints.tf_path(str(model_dir / "ckpt-5"))
  directory = checkpoints.tf_path(str(model_dir), is_directory=True)
  assert prefix == os.path.join(directory, "ckpt-5")  # one alias per directory
  assert not set("*?[\\") & set(directory)
  os.mkdir(model_dir)  # made after its alias (as --overwrite clears and makes it again)
  (model_dir / "ckpt-5.index").write_text("x")
  assert os.path.samefile(prefix + ".index", model_dir / "ckpt-5.index")
  with pytest.raises(ValueError, match="only its directory"):
    checkpoints.tf_path(str(tmp_path / "ckpt-[5]"))
