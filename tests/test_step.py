"""w2v_tf/step.py: the gradient cosine between a training loss and the exact full softmax."""

import numpy as np
import pytest
import tensorflow as tf

from w2v_tf.config import ModelConfig
from w2v_tf.model import Word2Vec
from w2v_tf.optim import make_optimizer
from w2v_tf.sampling import make_sampler
from w2v_tf.step import TrainStep

VOCAB, DIM = 40, 8


def _step(loss, model="skipgram", num_sampled=8):
  config = ModelConfig(model=model, loss=loss, embedding_dim=DIM, num_sampled=num_sampled,
                       sample_group_centers=4)
  word2vec = Word2Vec(VOCAB, config, seed=1)
  rng = np.random.default_rng(2)
  word2vec.output_weights.assign(rng.normal(size=[VOCAB, DIM]).astype(np.float32))
  word2vec.output_bias.assign(rng.normal(size=[VOCAB]).astype(np.float32))
  word2vec.input_embeddings.assign(rng.normal(size=[VOCAB, DIM]).astype(np.float32))
  sampler = make_sampler("unigram", np.arange(VOCAB, 0, -1))
  return TrainStep(word2vec, make_optimizer("sgd", word2vec.tables), config, sampler,
                   batch_size=8, jit_compile=False)


def _examples(rows=10, contexts=4):
  rng = np.random.default_rng(3)
  return {"center": rng.integers(0, VOCAB, rows).astype(np.int32),
          "contexts": rng.integers(0, VOCAB, [rows, contexts]).astype(np.int32),
          "mask": rng.random([rows, contexts]) < 0.8}


def _cosine_by_hand(step, examples):
  """The exact loss's own gradient against the full softmax computed with tf.nn."""
  inputs = tf.gather(step.model.input_embeddings, examples["center"])
  logits = inputs @ tf.transpose(step.model.output_weights) + step.model.output_bias
  probabilities = tf.nn.softmax(logits)  # [B, V]
  one_hot = tf.one_hot(examples["contexts"], VOCAB) * tf.cast(examples["mask"], tf.float32)[
      ..., None]  # [B, C, V]
  pairs = tf.reduce_sum(tf.cast(examples["mask"], tf.float32), 1, keepdims=True)  # [B, 1]
  return (pairs * probabilities - tf.reduce_sum(one_hot, 1)) @ step.model.output_weights


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_full_softmax_training_loss_gives_cosine_one(model):
  step = _step("full_softmax", model)
  assert step.gradient_cosine(_examples()) == pytest.approx(1.0, abs=1e-5)


def test_gradient_of_the_exact_loss_is_the_textbook_one():
  """Cross-check the quantity itself: <g, g_exact> / |g||g_exact| with g from tf.nn by hand."""
  step = _step("sampled_softmax")
  examples = _examples(rows=8)
  exact = _cosine_by_hand(step, examples).numpy()
  products = step._gradient_dots(examples, tf.constant([0, 0], tf.int64))  # pylint: disable=protected-access
  np.testing.assert_allclose(products[2], np.sum(exact ** 2), rtol=1e-4)


@pytest.mark.parametrize("loss", ["sampled_softmax", "nce", "negative_sampling"])
def test_approximations_point_roughly_but_not_exactly_the_true_way(loss):
  step = _step(loss)
  cosine = step.gradient_cosine(_examples(rows=12), seed=4)
  assert 0.0 < cosine < 0.9999, cosine
  # The same seed draws the same negatives: the figure is reproducible.
  assert step.gradient_cosine(_examples(rows=12), seed=4) == cosine


@pytest.mark.parametrize("model", ["skipgram", "cbow"])
def test_hierarchical_softmax_is_its_own_exact_loss_and_the_compiled_step_matches(model):
  """With a tree the exact loss is the tree's cross-entropy (cosine 1, equal to the training
  loss), and the XLA-fused update changes the tables as the plain one does."""
  from w2v_tf.huffman import build_huffman_tree  # pylint: disable=import-outside-toplevel
  config = ModelConfig(model=model, loss="hierarchical_softmax", embedding_dim=DIM,
                       num_sampled=5, sample_group_centers=4)
  tree = build_huffman_tree(np.arange(VOCAB, 0, -1) * 3)
  steps = []
  for jit in (False, True):
    word2vec = Word2Vec(VOCAB, config, seed=1)
    word2vec.output_weights.assign(np.random.default_rng(2).normal(
        size=[VOCAB, DIM]).astype(np.float32))
    steps.append(TrainStep(word2vec, make_optimizer("sgd", word2vec.tables), config,
                           make_sampler("unigram", np.arange(VOCAB, 0, -1)), batch_size=8,
                           jit_compile=jit, tree=tree))
  examples = _examples(rows=8)
  plain, fused = steps
  assert fused.fused and not plain.fused
  assert plain.gradient_cosine(examples) == pytest.approx(1.0, abs=1e-5)
  batch = {key: tf.constant(value) for key, value in examples.items()}
  negatives = plain.negatives(batch, tf.constant([0, 0], tf.int64))
  total, pairs = plain._compute(batch, negatives)[:2]  # pylint: disable=protected-access
  assert plain.full_softmax_mean(examples) == pytest.approx(float(total / pairs), rel=1e-5)
  for step in steps:
    step.update({**batch, "negatives": negatives}, tf.constant(0.1))
  for ours, theirs in zip(fused.tables, plain.tables):
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)
  assert not np.any(plain.model.output_bias.numpy())  # no bias, as in word2vec
  with pytest.raises(ValueError, match="Huffman tree"):
    TrainStep(plain.model, plain.optimizer, config, plain.sampler, 8, False)


@pytest.mark.parametrize("loss", ["sampled_softmax", "nce"])
def test_loss_in_row_slices_equals_the_whole_batch(loss):
  """The compiled step sums its loss over row slices (`_STEP_PARTS`): same loss, same gradients."""
  step = _step(loss)
  batch = {key: tf.constant(value) for key, value in _examples(rows=8).items()}
  negatives = step.negatives(batch, tf.constant([0, 0], tf.int64))
  assert step.num_sample_groups == 2
  whole, sliced = (step.loss_and_gradients(batch, negatives, parts=parts) for parts in (1, 2))
  assert float(sliced[0]) == pytest.approx(float(whole[0]), rel=1e-6)
  assert float(sliced[1]) == float(whole[1]) > 0
  for ours, theirs in zip(sliced[2], whole[2]):
    np.testing.assert_allclose(tf.convert_to_tensor(ours), tf.convert_to_tensor(theirs),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("negatives_per", ["window", "center", "pair"])
def test_each_negative_sharing_points_roughly_the_true_way_and_the_compiled_step_matches(
    negatives_per):
  """Each --negatives_per: the gradient cosine to its exact loss is in (0, 1), the exact loss is
  the full softmax of what it predicts (the center under window), and the XLA-fused update
  changes the tables as the plain one does."""
  config = ModelConfig(loss="negative_sampling", embedding_dim=DIM, num_sampled=5,
                       negatives_per=negatives_per)
  steps = []
  for jit in (False, True):
    word2vec = Word2Vec(VOCAB, config, seed=1)
    rng = np.random.default_rng(2)
    word2vec.output_weights.assign(rng.normal(size=[VOCAB, DIM]).astype(np.float32))
    word2vec.input_embeddings.assign(rng.normal(size=[VOCAB, DIM]).astype(np.float32))
    steps.append(TrainStep(word2vec, make_optimizer("sgd", word2vec.tables), config,
                           make_sampler("unigram", np.arange(VOCAB, 0, -1)), batch_size=8,
                           jit_compile=jit))
  plain, fused = steps
  assert fused.fused and not plain.fused
  examples = _examples(rows=8)
  assert 0.0 < plain.gradient_cosine(examples, seed=4) < 0.9999
  rows = (plain.model.input_embeddings.numpy()[examples["contexts"]]
          if negatives_per == "window" else
          np.repeat(plain.model.input_embeddings.numpy()[examples["center"]][:, None], 4, 1))
  targets = (np.repeat(examples["center"][:, None], 4, 1) if negatives_per == "window"
             else examples["contexts"])
  logits = rows @ plain.model.output_weights.numpy().T  # [B, C, V]; the bias is 0
  log_probs = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
  expected = -np.take_along_axis(log_probs, targets[..., None], -1)[..., 0][examples["mask"]]
  assert plain.full_softmax_mean(examples) == pytest.approx(float(np.mean(expected)), rel=1e-5)
  batch = {key: tf.constant(value) for key, value in examples.items()}
  negatives = plain.negatives(batch, tf.constant([0, 0], tf.int64))
  for step in steps:
    step.update({**batch, "negatives": negatives}, tf.constant(0.1))
  for ours, theirs in zip(fused.tables, plain.tables):
    np.testing.assert_allclose(ours.numpy(), theirs.numpy(), rtol=1e-5, atol=1e-6)


def test_per_context_exact_loss_slices_bound_the_logit_rows_and_keep_the_values(monkeypatch):
  """Under --negatives_per=window each context has its own [V] logits: a slice holds
  FULL_SOFTMAX_SLICE // C centers, and the exact loss and the gradient cosine do not depend on
  the slicing."""
  from w2v_tf import step as step_lib  # pylint: disable=import-outside-toplevel
  config = ModelConfig(loss="negative_sampling", embedding_dim=DIM, num_sampled=5,
                       negatives_per="window", sample_group_centers=4)
  word2vec = Word2Vec(VOCAB, config, seed=1)
  word2vec.output_weights.assign(np.random.default_rng(2).normal(size=[VOCAB, DIM]).astype(
      np.float32))
  step = TrainStep(word2vec, make_optimizer("sgd", word2vec.tables), config,
                   make_sampler("unigram", np.arange(VOCAB, 0, -1)), batch_size=8,
                   jit_compile=False)
  assert step.per_context_inputs
  examples = _examples(rows=40, contexts=4)
  monkeypatch.setattr(step_lib, "FULL_SOFTMAX_SLICE", 16)
  slices = list(step_lib._exact_slices(examples, 40, True))  # pylint: disable=protected-access
  assert [len(piece["center"]) for piece in slices] == [4] * 10  # 4 centers x 4 contexts
  assert [len(p["center"]) for p in step_lib._exact_slices(  # pylint: disable=protected-access
      examples, 40, False)] == [16, 16, 8]
  sliced = step.full_softmax_mean(examples), step.gradient_cosine(examples, seed=4)
  monkeypatch.setattr(step_lib, "FULL_SOFTMAX_SLICE", 4096)
  whole = step.full_softmax_mean(examples), step.gradient_cosine(examples, seed=4)
  assert sliced == pytest.approx(whole, rel=1e-5)
