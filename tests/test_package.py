"""`pip install .` gives a package with its dependencies declared and one command per binary.

The fresh virtual environment sees the site-packages of the environment the tests run in (this
machine has no internet, so the dependencies cannot be downloaded): the test checks that the
package *declares* them, then trains a few steps and exports through the installed commands, run outside the repository.
"""

import os
import site
import subprocess
import sys
import sysconfig
import venv
try:
  import tomllib
except ImportError:  # Python 3.10: the same parser as a package
  import tomli as tomllib

import pytest

from tests.conftest import REPO_ROOT

COMMANDS = ("w2v-train", "w2v-export", "w2v-data", "w2v-get-data", "w2v-analogy",
            "w2v-similarity", "w2v-neighbors", "w2v-sentiment")


@pytest.mark.slow
def test_pip_install_gives_the_commands_that_train_and_export(tmp_path, planted):
  csv_path, questions = planted
  env_dir = tmp_path / "venv"
  # The outer environment's packages, pip and setuptools (requirements.txt) through a .pth file:
  # a venv's own (Python 3.11 bundles setuptools 65.5) cannot build the package without build
  # isolation, and `system_site_packages` would show the base interpreter's, not those of the
  # venv this test runs in (a newcomer's: the base Python has none of them).
  venv.create(env_dir, with_pip=False)
  python = str(env_dir / "bin" / "python")
  inner_site = subprocess.run(
      [python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
      capture_output=True, text=True, check=True).stdout.strip()
  outer_sites = dict.fromkeys([*site.getsitepackages(), sysconfig.get_path("purelib"),
                               sysconfig.get_path("platlib")])
  with open(os.path.join(inner_site, "outer_environment.pth"), "w", encoding="utf-8") as f:
    f.write("".join(f"{path}\n" for path in outer_sites if os.path.isdir(path)))
  install = subprocess.run(
      [python, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--no-index", "-q",
       REPO_ROOT], capture_output=True, text=True, timeout=300, check=False)
  assert install.returncode == 0, install.stderr[-3000:]
  requires = subprocess.run(
      [python, "-c", "import importlib.metadata as m; print('\\n'.join(m.requires('w2v_tf')))"],
      capture_output=True, text=True, timeout=60, check=True, cwd=tmp_path).stdout
  for name in ("tensorflow", "keras", "numpy", "pandas", "nltk", "absl-py", "tensorboard"):
    assert name in requires, requires
  for command in COMMANDS:
    assert (env_dir / "bin" / command).exists(), command
  # One namespace installed: eval/ as w2v_tf.eval, no top-level eval or benchmarks.
  files = subprocess.run(
      [python, "-c", "import importlib.metadata as m; print('\\n'.join(str(f) for f in "
       "m.files('w2v_tf')))"], capture_output=True, text=True, timeout=60, check=True,
      cwd=tmp_path).stdout.split()
  tops = {name.split("/")[0] for name in files if not name.startswith("..")}
  assert tops == {"w2v_tf", next(t for t in tops if t.endswith(".dist-info"))}, tops
  assert "w2v_tf/eval/analogy.py" in files and "w2v_tf/eval/cli.py" in files, files
  assert any(name.endswith("licenses/LICENSE") for name in files), files
  # Outside the repository: the commands run the installed copy.
  env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
  env["TF_CPP_MIN_LOG_LEVEL"] = "2"
  work = tmp_path / "work"
  (work / "data").mkdir(parents=True)
  version = subprocess.run([python, "-c", "import w2v_tf; print(w2v_tf.__version__)"],
                           cwd=work, env=env, capture_output=True, text=True, check=True)
  own_flag = {"w2v-train": "--epochs", "w2v-export": "--format", "w2v-data": "--train_csv",
              "w2v-get-data": "--source", "w2v-analogy": "--analogies",
              "w2v-similarity": "--pairs", "w2v-neighbors": "--word", "w2v-sentiment": "--csv"}
  for command in COMMANDS:
    for option in ("--help", "--helpshort"):
      shown = subprocess.run([str(env_dir / "bin" / command), option], cwd=work, env=env,
                             capture_output=True, text=True, timeout=120, check=False)
      assert shown.returncode == 0, (command, option, shown.stderr[-2000:])
      assert f"USAGE: {command} [flags]" in shown.stdout, shown.stdout
      assert own_flag[command] in shown.stdout, (command, shown.stdout)
      assert "--tpu" not in shown.stdout  # its own flags only
      assert len(shown.stdout.split("\n\n")[0]) > 30  # the paragraph saying what it does
    shown = subprocess.run([str(env_dir / "bin" / command), "--version"], cwd=work, env=env,
                           capture_output=True, text=True, timeout=120, check=False)
    assert (shown.returncode, shown.stdout) == (0, f"w2v_tf {version.stdout}"), shown
  with open(questions, encoding="utf-8") as src:
    (work / "data" / "questions-words.txt").write_text(src.read(), encoding="utf-8")
  train = subprocess.run(
      [str(env_dir / "bin" / "w2v-train"), f"--train_csv={csv_path}", "--stopwords=none",
       "--cache_dir=", "--batch_size=256", "--embedding_dim=16", "--num_sampled=8",
       "--epochs=1", "--max_reviews=1500", "--model_dir=model", "--noprogress",
       "--nojit_compile"], cwd=work, env=env, capture_output=True, text=True, timeout=300,
      check=False)
  assert train.returncode == 0, train.stderr[-3000:]
  assert "site-packages" in subprocess.run(
      [python, "-c", "import w2v_tf; print(w2v_tf.__file__)"], cwd=work, env=env,
      capture_output=True, text=True, check=True).stdout
  # The quick start's default: data/questions-words.txt is scored at each epoch end.
  assert "analogies: data/questions-words.txt at each epoch end" in train.stderr
  assert "epoch 1 analogies: total" in train.stderr
  export = subprocess.run([str(env_dir / "bin" / "w2v-export"), "--model_dir=model",
                           "--output_dir=out"], cwd=work, env=env, capture_output=True,
                          text=True, timeout=300, check=False)
  assert export.returncode == 0, export.stderr[-3000:]
  assert (work / "out" / "vectors.bin").exists() and (work / "out" / "vocab.tsv").exists()
  for analogy_command in ([str(env_dir / "bin" / "w2v-analogy")],
                          [python, "-m", "w2v_tf.eval.analogy"]):
    analogy = subprocess.run(analogy_command + ["--model_dir=model",
                                                "--analogies=data/questions-words.txt"],
                             cwd=work, env=env, capture_output=True, text=True, timeout=300,
                             check=False)
    assert analogy.returncode == 0, analogy.stderr[-3000:]
    assert "total" in analogy.stdout, analogy.stdout


def test_the_wheel_lists_every_package_of_the_repository():
  with open(os.path.join(REPO_ROOT, "pyproject.toml"), "rb") as f:
    setuptools = tomllib.load(f)["tool"]["setuptools"]
  on_disk = {os.path.relpath(root, REPO_ROOT).replace(os.sep, ".")
             for root, _, names in os.walk(os.path.join(REPO_ROOT, "w2v_tf"))
             if "__init__.py" in names}
  assert set(setuptools["packages"]) == on_disk | {"w2v_tf.eval"}
  assert setuptools["package-dir"] == {"w2v_tf.eval": "eval"}


def test_analogies_none_turns_the_default_off(tmp_path, planted):
  csv_path, questions = planted
  (tmp_path / "data").mkdir()
  with open(questions, encoding="utf-8") as src:
    (tmp_path / "data" / "questions-words.txt").write_text(src.read(), encoding="utf-8")
  env = dict(os.environ, PYTHONPATH=REPO_ROOT, TF_CPP_MIN_LOG_LEVEL="2")
  run = subprocess.run(
      [sys.executable, "-m", "w2v_tf.train", f"--train_csv={csv_path}", "--stopwords=none",
       "--cache_dir=", "--batch_size=256", "--embedding_dim=16", "--num_sampled=8",
       "--epochs=1", "--max_documents=600", "--model_dir=model", "--noprogress",
       "--nojit_compile", "--analogies=none"], cwd=tmp_path, env=env, capture_output=True,
      text=True, timeout=300, check=False)
  assert run.returncode == 0, run.stderr[-3000:]
  assert "analogies" not in run.stderr, run.stderr
