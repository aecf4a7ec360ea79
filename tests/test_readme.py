"""The README's quick start and .ci/run agree (CI runs the README's test command verbatim)."""

import os
import re

from tests.conftest import REPO_ROOT


def _quick_start_commands():
  with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    readme = f.read()
  section = readme.split("## Quick start", 1)[1].split("\n## ", 1)[0]
  return re.findall(r"```sh\n(.*?)\n```", section, re.S)


def test_quick_start_has_two_commands_and_ci_runs_the_second():
  commands = _quick_start_commands()
  assert len(commands) == 2, commands
  assert all("\n" not in c for c in commands)
  train, test = commands
  assert "w2v_tf.train" in train and "eval.analogy" in train
  assert "pytest" in test
  with open(os.path.join(REPO_ROOT, ".ci", "run"), encoding="utf-8") as f:
    ci_lines = [line.strip() for line in f]
  assert test in ci_lines


def test_layout_names_every_module():
  with open(os.path.join(REPO_ROOT, "README.md"), encoding="utf-8") as f:
    layout = f.read().split("## Layout", 1)[1].split("\n## ", 1)[0]
  for package in ("w2v_tf", "eval"):
    for name in sorted(os.listdir(os.path.join(REPO_ROOT, package))):
      if name.endswith(".py") and name != "__init__.py":
        assert name in layout, f"{package}/{name} is missing from the README's layout table"
