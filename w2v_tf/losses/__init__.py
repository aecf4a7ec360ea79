"""The losses of word2vec, one module each, and the registry from a loss's name to its object.

A loss object (`w2v_tf.losses.base.Loss`) owns all of its behaviour: how its negatives are
drawn, its per-example loss, which output rows it touches (the parameter-server step), whether
it needs the Huffman tree, its default `num_sampled`, its exact-loss meaning. Adding a loss is
one new module in this package and one line in `_MODULES`; no other module names a loss.

This module imports no TensorFlow (the config lists the names for its flag); `get` imports a
loss's module when it is first asked for.
"""

from __future__ import annotations

import importlib

# Loss name -> the module (in this package) that defines it as `LOSS`.
_MODULES = {
    "sampled_softmax": "sampled_softmax",
    "nce": "nce",
    "negative_sampling": "negative_sampling",
    "full_softmax": "full_softmax",
    "hierarchical_softmax": "hierarchical_softmax",
}

NAMES = tuple(_MODULES)
DEFAULT = "sampled_softmax"


def get(name: str):
  """The loss object (`base.Loss`) registered as `name`."""
  if name not in _MODULES:
    raise ValueError(f"unknown loss {name!r}: one of {', '.join(NAMES)}")
  return importlib.import_module(f"{__name__}.{_MODULES[name]}").LOSS
