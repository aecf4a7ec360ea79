"""w2v_tf/model.py's Word2Vec: word2vec's initialisation, skip-gram and CBOW inputs, unit rows."""

import numpy as np
import pytest
import tensorflow as tf

from w2v_tf import model as model_lib
from w2v_tf.config import ModelConfig


def make_model(vocab_size, dim, model="skipgram", seed=0):
  """A Word2Vec of `vocab_size` words and `dim` dimensions (the one place that builds one).

  The tests build models only through here, so a change in how Word2Vec is constructed (its
  config class, where the vocabulary size goes) is one edit.
  """
  return model_lib.Word2Vec(vocab_size, ModelConfig(model=model, embedding_dim=dim), seed=seed)


def _batch():
  """A grouped batch of 4 centers with 2W = 4 context slots; the last row is padding.

  Returns:
    {"center": [4], "contexts": [4, 4], "mask": [4, 4]} as tensors.
  """
  center = np.array([3, 0, 7, 0], np.int32)
  contexts = np.array([[1, 2, 5, 9],
                       [4, 4, 0, 0],   # a word twice, then padding slots (id 0, masked)
                       [6, 0, 0, 8],   # masked slots in the middle
                       [0, 0, 0, 0]],  # padding row: no context at all
                      np.int32)
  mask = np.array([[True, True, True, True],
                   [True, True, False, False],
                   [True, False, False, True],
                   [False, False, False, False]])
  return {"center": tf.constant(center), "contexts": tf.constant(contexts),
          "mask": tf.constant(mask)}


@pytest.mark.parametrize("dim", [4, 50])
def test_initialisation_is_word2vecs(dim):
  model = make_model(200, dim)
  inputs = model.input_embeddings.numpy()
  assert inputs.shape == (200, dim) and inputs.dtype == np.float32
  bound = 0.5 / dim
  assert np.abs(inputs).max() <= np.float32(bound)
  # Uniform over the whole interval (not a narrower one, not a constant): 200*d draws reach
  # close to both ends and average near zero.
  assert inputs.max() > 0.95 * bound and inputs.min() < -0.95 * bound
  assert abs(inputs.mean()) < 0.1 * bound
  assert np.unique(inputs).size > 0.99 * inputs.size
  np.testing.assert_array_equal(model.output_weights.numpy(), np.zeros([200, dim], np.float32))
  np.testing.assert_array_equal(model.output_bias.numpy(), np.zeros([200], np.float32))


def test_initialisation_is_deterministic_by_seed():
  first, again, other = (make_model(30, 8, seed=seed) for seed in (1, 1, 2))
  np.testing.assert_array_equal(again.input_embeddings.numpy(), first.input_embeddings.numpy())
  assert not np.allclose(other.input_embeddings.numpy(), first.input_embeddings.numpy())
  # The architecture does not change the draw: skip-gram and CBOW start from the same tables.
  cbow = make_model(30, 8, model="cbow", seed=1)
  np.testing.assert_array_equal(cbow.input_embeddings.numpy(), first.input_embeddings.numpy())


def test_skipgram_inputs_are_the_center_rows():
  model = make_model(10, 6)
  batch = _batch()
  inputs, labels, mask = model.inputs(batch)
  table = model.input_embeddings.numpy()
  assert inputs.shape == (4, 6)
  np.testing.assert_array_equal(inputs.numpy(), table[batch["center"].numpy()])
  np.testing.assert_array_equal(labels.numpy(), batch["contexts"].numpy())
  np.testing.assert_array_equal(mask.numpy(), batch["mask"].numpy())


def test_cbow_inputs_are_the_masked_mean_of_the_contexts():
  model = make_model(10, 6, model="cbow")
  batch = _batch()
  inputs, labels, has_context = model.inputs(batch)
  table = model.input_embeddings.numpy().astype(np.float64)
  contexts, mask = batch["contexts"].numpy(), batch["mask"].numpy()
  expected = np.zeros([4, 6])
  for row in range(3):
    expected[row] = table[contexts[row][mask[row]]].mean(axis=0)  # repeated words count twice
  assert inputs.shape == (4, 6)
  np.testing.assert_allclose(inputs.numpy(), expected, rtol=1e-5, atol=1e-7)
  # The masked slots hold real ids (0 is a word): a mean over all slots would differ.
  assert not np.allclose(expected[2], table[contexts[2]].mean(axis=0))
  np.testing.assert_array_equal(inputs.numpy()[3], np.zeros(6, np.float32))  # padding: no NaN
  np.testing.assert_array_equal(labels.numpy(), batch["center"].numpy()[:, None])
  np.testing.assert_array_equal(has_context.numpy(), [[True], [True], [True], [False]])


def test_cbow_gradient_spreads_over_the_contexts():
  # Each masked-in context receives 1/count of the input's gradient; masked slots receive none.
  model = make_model(10, 6, model="cbow")
  batch = _batch()
  direction = np.random.default_rng(0).normal(size=[4, 6]).astype(np.float32)
  with tf.GradientTape() as tape:
    inputs, _, _ = model.inputs(batch)
    loss = tf.reduce_sum(inputs * direction)
  gradient = tf.convert_to_tensor(tape.gradient(loss, model.input_embeddings)).numpy()
  contexts, mask = batch["contexts"].numpy(), batch["mask"].numpy()
  expected = np.zeros([10, 6])
  for row in range(4):
    for slot in np.flatnonzero(mask[row]):
      expected[contexts[row, slot]] += direction[row] / mask[row].sum()
  np.testing.assert_allclose(gradient, expected, rtol=1e-5, atol=1e-7)
