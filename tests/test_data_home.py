"""Where the commands keep their data by default (w2v_tf/data_home.py), through the binaries."""

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT
from w2v_tf import data_home


def _env(tmp_path, **extra):
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2",
             XDG_CACHE_HOME=str(tmp_path / "xdg"), **extra)
  env.pop("W2V_TF_DATA", None) if "W2V_TF_DATA" not in extra else None
  return env


def test_data_dir_is_data_when_present_else_the_user_cache(tmp_path, monkeypatch):
  monkeypatch.chdir(tmp_path)
  monkeypatch.delenv("W2V_TF_DATA", raising=False)
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
  assert data_home.data_dir() == str(tmp_path / "xdg" / "w2v_tf")
  monkeypatch.delenv("XDG_CACHE_HOME")
  assert data_home.data_dir() == os.path.join(os.path.expanduser("~"), ".cache", "w2v_tf")
  (tmp_path / "data").mkdir()
  assert data_home.path("cache") == os.path.join("data", "cache")
  monkeypatch.setenv("W2V_TF_DATA", str(tmp_path / "mine"))
  assert data_home.path("cache") == str(tmp_path / "mine" / "cache")


def test_outside_a_data_folder_the_cache_goes_to_the_user_cache_dir(tmp_path, planted):
  csv_path, _ = planted
  work = tmp_path / "work"
  work.mkdir()
  run = subprocess.run(
      [sys.executable, "-m", "w2v_tf.train", f"--train_csv={csv_path}", "--stopwords=none",
       "--batch_size=256", "--embedding_dim=16", "--num_sampled=8", "--epochs=1",
       "--max_documents=600", "--model_dir=model", "--noprogress", "--nojit_compile"],
      cwd=work, env=_env(tmp_path), capture_output=True, text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  assert sorted(os.listdir(work)) == ["model"]  # no data/cache/ in the working directory
  cache = tmp_path / "xdg" / "w2v_tf" / "cache"
  assert any(name.startswith("corpus-") for name in os.listdir(cache)), os.listdir(cache)
  # The first lines say that no analogy file is scored, and how to get one.
  expected = os.path.join(str(tmp_path / "xdg" / "w2v_tf"), "questions-words.txt")
  assert f"analogies: none scored (no {expected}: `python -m w2v_tf.get_data" in run.stderr


def test_get_data_fetches_the_eval_sets_where_the_commands_find_them(tmp_path, planted):
  _, questions = planted
  work = tmp_path / "work"
  work.mkdir()
  mine = tmp_path / "mine"
  env = _env(tmp_path, W2V_TF_DATA=str(mine))
  fetch = subprocess.run(
      [sys.executable, "-m", "w2v_tf.get_data", "--skip_imdb",
       f"--questions_words_url=file://{questions}",
       f"--wordsim353_url=file://{questions}"], cwd=work, env=env, capture_output=True,
      text=True, timeout=120, check=False)
  assert fetch.returncode == 0, fetch.stderr[-3000:]
  assert (mine / "questions-words.txt").read_text() == open(questions).read()
  shown = subprocess.run([sys.executable, "-m", "w2v_tf.train", "--helpfull"], cwd=work, env=env,
                         capture_output=True, text=True, timeout=120, check=False).stdout
  shown = "".join(shown.split())  # absl wraps long defaults
  assert f"(default:'{mine / 'cache'}')" in shown, shown
  assert f"(default:'{mine / 'IMDB_Dataset.csv'}')" in shown, shown
