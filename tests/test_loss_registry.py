"""w2v_tf/losses/__init__.py: the registry is the one place a loss's name leads to its module."""

import ast
import pathlib

import pytest

from w2v_tf import config, losses
from w2v_tf.losses import base

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_every_registered_loss_is_a_loss_of_its_own_name():
  assert config.LOSSES == losses.NAMES
  assert losses.DEFAULT in losses.NAMES
  for name in losses.NAMES:
    loss = losses.get(name)
    assert isinstance(loss, base.Loss) and loss.name == name
    assert loss.default_num_sampled is None or loss.default_num_sampled > 0


def test_an_unknown_name_is_refused_with_the_choices():
  with pytest.raises(ValueError, match="unknown loss 'softmax2'.*sampled_softmax"):
    losses.get("softmax2")


def test_the_configs_default_num_sampled_is_the_losses():
  for name in losses.NAMES:
    resolved = config.ExperimentConfig().replace(loss=name).resolved()
    assert resolved.model.num_sampled == (losses.get(name).default_num_sampled or 64)


def _string_constants(path: pathlib.Path):
  tree = ast.parse(path.read_text(encoding="utf-8"))
  for node in ast.walk(tree):
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
      yield node.lineno, node.value


def test_no_module_outside_the_losses_package_names_a_loss():
  names = set(losses.NAMES)
  found = []
  for folder in ("w2v_tf", "eval"):
    for path in sorted((REPO / folder).rglob("*.py")):
      if path.parent.name == "losses":
        continue  # each loss's own module and the registry
      found += [f"{path.relative_to(REPO)}:{line}: {value!r}"
                for line, value in _string_constants(path) if value in names]
  assert not found, "\n".join(found)
