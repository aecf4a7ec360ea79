"""The fused sampled-softmax loss equals tf.nn.sampled_softmax_loss (losses and gradients); other losses."""

import numpy as np
import pytest
import tensorflow as tf

from w2v_tf.losses import (base, candidates, full_softmax, hierarchical_softmax, nce,
                           negative_sampling, sampled_softmax)
from w2v_tf.sampling import UnigramSampler


def _problem(seed=0, batch=12, contexts=4, vocab=50, dim=8, num_sampled=10, num_groups=1):
  rng = np.random.default_rng(seed)
  inputs = tf.Variable(rng.normal(size=[batch, dim]).astype(np.float32))
  weights = tf.Variable(rng.normal(size=[vocab, dim]).astype(np.float32))
  bias = tf.Variable(rng.normal(size=[vocab]).astype(np.float32))
  labels = tf.constant(rng.integers(0, vocab, [batch, contexts]), tf.int32)
  mask = tf.constant(rng.random([batch, contexts]) < 0.7)
  counts = rng.integers(1, 1000, vocab)
  sampler = UnigramSampler(counts)
  sampled = sampler.sample_unique(tf.constant([seed, 0], tf.int64), num_sampled, labels,
                                  num_groups)
  return inputs, weights, bias, labels, mask, sampled, num_sampled, vocab


def _reference(inputs, weights, bias, labels, mask, sampled, num_sampled, vocab,
               tf_loss=tf.nn.sampled_softmax_loss, **kwargs):
  """One `tf_loss` call per group of centers over its flattened pairs, masked."""
  num_groups = sampled.sampled.shape[0]
  contexts = labels.shape[1]
  group_losses = []
  for group, (group_inputs, group_labels, group_true) in enumerate(zip(
      tf.split(inputs, num_groups), tf.split(labels, num_groups),
      tf.split(sampled.true_expected_count, num_groups))):
    group_losses.append(tf_loss(
        weights=weights, biases=bias, labels=tf.reshape(tf.cast(group_labels, tf.int64), [-1, 1]),
        inputs=tf.repeat(group_inputs, contexts, axis=0), num_sampled=num_sampled,
        num_classes=vocab,
        sampled_values=(sampled.sampled[group], tf.reshape(group_true, [-1, 1]),
                        sampled.sampled_expected_count[group]), **kwargs))
  loss = tf.reshape(tf.concat(group_losses, 0), labels.shape)
  return tf.where(mask, loss, 0.0)


@pytest.mark.parametrize("num_groups", [1, 3])
def test_grouped_sampled_softmax_equals_tf_including_gradients(num_groups):
  for seed in range(3):
    inputs, weights, bias, labels, mask, sampled, num_sampled, vocab = _problem(
        seed, num_groups=num_groups)
    hits = np.isin(labels.numpy(), sampled.sampled.numpy())
    assert hits.any()  # the accidental-hit path is exercised
    with tf.GradientTape(persistent=True) as tape:
      ours = sampled_softmax.grouped_sampled_softmax_loss(inputs, labels, mask, weights, bias, sampled)
      reference = _reference(inputs, weights, bias, labels, mask, sampled, num_sampled, vocab)
      ours_total, reference_total = tf.reduce_sum(ours), tf.reduce_sum(reference)
    np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-5, rtol=1e-5)
    for variable in (inputs, weights, bias):
      ours_grad = tf.convert_to_tensor(tape.gradient(ours_total, variable))
      reference_grad = tf.convert_to_tensor(tape.gradient(reference_total, variable))
      np.testing.assert_allclose(ours_grad.numpy(), reference_grad.numpy(), atol=1e-5, rtol=1e-5)


def test_full_softmax_is_exact_cross_entropy():
  inputs, weights, bias, labels, mask, *_ = _problem()
  got = full_softmax.full_softmax_loss(inputs, labels, mask, weights, bias).numpy()
  logits = inputs.numpy() @ weights.numpy().T + bias.numpy()
  log_probs = logits - np.log(np.exp(logits).sum(-1, keepdims=True))
  expected = -np.take_along_axis(log_probs, labels.numpy(), 1) * mask.numpy()
  np.testing.assert_allclose(got, expected, atol=1e-5)


def test_sampled_softmax_tracks_full_softmax_in_expectation():
  """With many samples, the sampled loss approaches the full loss (both are cross-entropies)."""
  inputs, weights, bias, labels, mask, *_ = _problem(batch=64, vocab=200)
  full = tf.reduce_sum(full_softmax.full_softmax_loss(inputs, labels, mask, weights, bias))
  sampler = UnigramSampler(np.ones(200))
  sampled = sampler.sample_unique(tf.constant([1, 0], tf.int64), 190, labels)
  approx = tf.reduce_sum(sampled_softmax.grouped_sampled_softmax_loss(inputs, labels, mask, weights, bias,
                                                             sampled))
  assert abs(float(approx) - float(full)) / float(full) < 0.05


@pytest.mark.parametrize("num_groups", [1, 2])
def test_nce_matches_tf_and_negative_sampling_formula(num_groups):
  inputs, weights, bias, labels, mask, sampled, num_sampled, vocab = _problem(
      num_groups=num_groups)
  with tf.GradientTape(persistent=True) as tape:
    got = nce.nce_loss(inputs, labels, mask, weights, bias, sampled)
    reference = _reference(inputs, weights, bias, labels, mask, sampled, num_sampled, vocab,
                           tf_loss=tf.nn.nce_loss)
    got_total, reference_total = tf.reduce_sum(got), tf.reduce_sum(reference)
  np.testing.assert_allclose(got.numpy(), reference.numpy(), atol=1e-5)
  for variable in (inputs, weights, bias):
    np.testing.assert_allclose(tf.convert_to_tensor(tape.gradient(got_total, variable)).numpy(),
                               tf.convert_to_tensor(tape.gradient(reference_total,
                                                                  variable)).numpy(), atol=1e-5)
  negatives = tf.constant(np.random.default_rng(0).integers(0, vocab, list(labels.shape) + [3]))
  got = negative_sampling.negative_sampling_loss(inputs, labels, mask, weights, bias,
                                                negatives).numpy()
  h, w, b = inputs.numpy(), weights.numpy(), bias.numpy()
  def log_sigmoid(x):
    return -np.log1p(np.exp(-x))
  for i in range(labels.shape[0]):
    for j in range(labels.shape[1]):
      expected = -log_sigmoid(h[i] @ w[labels[i, j]] + b[labels[i, j]])
      expected -= sum(log_sigmoid(-(h[i] @ w[k] + b[k])) for k in negatives.numpy()[i, j])
      assert abs(got[i, j] - (expected if mask[i, j] else 0)) < 1e-4


def test_negatives_shared_per_center_equal_the_same_negatives_drawn_for_each_pair():
  """[B, K] negatives (--negatives_per=center) give the losses and gradients of [B, C, K] ones
  that repeat each center's K for every pair."""
  inputs, weights, bias, labels, mask, _, _, vocab = _problem(3)
  shared = tf.constant(np.random.default_rng(1).integers(0, vocab, [labels.shape[0], 4]))
  per_pair = tf.repeat(shared[:, None, :], labels.shape[1], axis=1)  # [B, C, K]
  with tf.GradientTape(persistent=True) as tape:
    got = negative_sampling.negative_sampling_loss(inputs, labels, mask, weights, bias, shared)
    expected = negative_sampling.negative_sampling_loss(inputs, labels, mask, weights, bias,
                                                        per_pair)
    got_total, expected_total = tf.reduce_sum(got), tf.reduce_sum(expected)
  np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=1e-6)
  assert np.count_nonzero(got.numpy()) == np.count_nonzero(mask.numpy())
  for variable in (inputs, weights, bias):
    np.testing.assert_allclose(tf.convert_to_tensor(tape.gradient(got_total, variable)).numpy(),
                               tf.convert_to_tensor(tape.gradient(expected_total,
                                                                  variable)).numpy(), atol=1e-5)


def test_negatives_per_window_score_each_context_against_the_center_and_its_negatives():
  """--negatives_per=window (word2vec.c's orientation): each context's row v_c against the
  center's output row and the window's K negatives, skipping a negative equal to the center:
  -log s(v_c.u_o + b_o) - sum_{k != o} log s(-(v_c.u_k + b_k)), per pair."""
  _, weights, bias, _, mask, _, _, vocab = _problem(4)
  rng = np.random.default_rng(4)
  contexts = tf.constant(rng.normal(size=[*mask.shape, weights.shape[1]]).astype(np.float32))
  center = tf.constant(rng.integers(0, vocab, [mask.shape[0], 1]), tf.int32)
  negatives = rng.integers(0, vocab, [mask.shape[0], 6])
  negatives[0, :2] = center[0, 0]  # two draws of the center itself: skipped
  got = negative_sampling.negative_sampling_loss(contexts, center, mask, weights, bias,
                                                 tf.constant(negatives)).numpy()
  v, w, b, o = contexts.numpy(), weights.numpy(), bias.numpy(), center.numpy()[:, 0]
  def log_sigmoid(x):
    return -np.log1p(np.exp(-x))
  for i in range(mask.shape[0]):
    for j in range(mask.shape[1]):
      expected = -log_sigmoid(v[i, j] @ w[o[i]] + b[o[i]])
      expected -= sum(log_sigmoid(-(v[i, j] @ w[k] + b[k])) for k in negatives[i] if k != o[i])
      assert abs(got[i, j] - (expected if mask.numpy()[i, j] else 0)) < 1e-4


def test_full_softmax_of_the_center_from_each_context():
  """Inputs [B, C, d] with labels [B, 1]: -log softmax(v_c . W + b)[center] per pair (the exact
  loss of --negatives_per=window and of the tree)."""
  _, weights, bias, _, mask, _, _, vocab = _problem(5)
  rng = np.random.default_rng(5)
  contexts = tf.constant(rng.normal(size=[*mask.shape, weights.shape[1]]).astype(np.float32))
  center = tf.constant(rng.integers(0, vocab, [mask.shape[0], 1]), tf.int32)
  got = full_softmax.full_softmax_loss(contexts, center, mask, weights, bias).numpy()
  logits = contexts.numpy() @ weights.numpy().T + bias.numpy()  # [B, C, V]
  log_probs = logits - np.log(np.sum(np.exp(logits), -1, keepdims=True))
  expected = -np.take_along_axis(
      log_probs, np.repeat(center.numpy()[:, :, None], mask.shape[1], 1), -1)[..., 0]
  np.testing.assert_allclose(got, np.where(mask.numpy(), expected, 0), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("sampler_name", ["log_uniform", "uniform", "unigram"])
def test_sampled_softmax_equals_tf_given_each_tf_samplers_output(sampler_name):
  """The candidates and expected counts come from TF's own sampler (one group)."""
  inputs, weights, bias, labels, mask, _, num_sampled, vocab = _problem(1)
  flat_labels = tf.reshape(tf.cast(labels, tf.int64), [-1, 1])
  kwargs = dict(true_classes=flat_labels, num_true=1, num_sampled=num_sampled, unique=True,
                range_max=vocab, seed=5)
  if sampler_name == "log_uniform":
    drawn = tf.random.log_uniform_candidate_sampler(**kwargs)
  elif sampler_name == "uniform":
    drawn = tf.random.uniform_candidate_sampler(**kwargs)
  else:
    drawn = tf.random.fixed_unigram_candidate_sampler(
        **kwargs, distortion=0.75, unigrams=np.arange(vocab, 0, -1).astype(float).tolist())
  sampled = base.SampledValues(drawn[0][None, :], tf.reshape(drawn[1], labels.shape),
                                 drawn[2][None, :])
  ours = sampled_softmax.grouped_sampled_softmax_loss(inputs, labels, mask, weights, bias, sampled)
  reference = _reference(inputs, weights, bias, labels, mask, sampled, num_sampled, vocab)
  np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-5, rtol=1e-5)


# --- hierarchical softmax -----------------------------------------------------------------


def _tree_problem(vocab=37, dim=6, seed=0):
  from w2v_tf.huffman import build_huffman_tree  # pylint: disable=import-outside-toplevel
  TreeTables = hierarchical_softmax.TreeTables
  rng = np.random.default_rng(seed)
  counts = np.sort(rng.integers(1, 500, vocab))[::-1]
  tables = TreeTables(build_huffman_tree(counts))
  weights = tf.Variable(rng.normal(size=[vocab, dim]).astype(np.float32))
  return tables, weights, rng


@pytest.mark.parametrize("contexts", [1, 4], ids=["cbow", "skipgram"])
def test_hierarchical_softmax_probabilities_sum_to_one(contexts):
  """P(w | h) over all V words sums to 1 for each input vector: an exact distribution."""
  tables, weights, rng = _tree_problem()
  vocab = weights.shape[0]
  inputs = tf.constant(rng.normal(size=[3, contexts, 6]).astype(np.float32))
  words = tf.range(vocab)
  # Every (input, word): batch row = word, the same inputs for all rows.
  all_inputs = tf.reshape(tf.tile(inputs[None], [vocab, 1, 1, 1]), [vocab, -1, 6])  # [V, 3C, d]
  per_word = hierarchical_softmax.hierarchical_softmax_loss(all_inputs, None, tf.ones([vocab, 3 * contexts],
                                                                         tf.bool),
                                              weights, tables.paths(words))  # [V, 3C]
  np.testing.assert_allclose(tf.reduce_sum(tf.exp(-per_word), 0).numpy(), 1.0, rtol=1e-5)


def test_hierarchical_softmax_is_the_path_product_and_updates_only_its_nodes():
  """The loss is -sum log sigmoid(sign h.u) over the center's path (a direct numpy check), a
  node's gradient is capped at max_node_pairs pairs, and only path nodes get gradients."""
  tables, weights, rng = _tree_problem()
  inputs = tf.Variable(rng.normal(size=[5, 3, 6]).astype(np.float32))
  centers = tf.constant([0, 3, 3, 20, 36])
  mask = tf.constant(rng.random([5, 3]) < 0.7)
  paths = tables.paths(centers)
  with tf.GradientTape(persistent=True) as tape:
    loss = hierarchical_softmax.hierarchical_softmax_loss(inputs, None, mask, weights, paths)
    capped = hierarchical_softmax.hierarchical_softmax_loss(inputs, None, mask, weights, paths,
                                              max_node_pairs=1.0)
    loss_sum, capped_sum = tf.reduce_sum(loss), tf.reduce_sum(capped)
  points, signs = paths.points.numpy(), paths.signs.numpy()
  w, h = weights.numpy(), inputs.numpy()
  expected = np.zeros([5, 3])
  for row in range(5):
    for slot in range(3):
      on = signs[row] != 0
      logits = w[points[row][on]] @ h[row, slot]
      expected[row, slot] = np.sum(np.log1p(np.exp(-signs[row][on] * logits)))
  expected[~mask.numpy()] = 0
  np.testing.assert_allclose(loss.numpy(), expected, rtol=1e-5)
  np.testing.assert_allclose(capped.numpy(), loss.numpy())  # the cap changes gradients only
  gradient = tape.gradient(loss_sum, weights)
  assert isinstance(gradient, tf.IndexedSlices)  # sparse: only the touched inner nodes
  dense = tf.convert_to_tensor(gradient).numpy()
  touched = set(points[signs != 0].tolist())
  assert set(np.flatnonzero(np.abs(dense).sum(1)).tolist()) <= touched
  assert np.abs(dense[len(dense) - 1]).sum() == 0  # V - 1 inner nodes: the last row is unused
  # The root is on every pair's path: capped at 1 pair its gradient shrinks by the pair count.
  root = len(dense) - 2
  capped_root = tf.convert_to_tensor(tape.gradient(capped_sum, weights)).numpy()[root]
  pairs = mask.numpy().sum()
  np.testing.assert_allclose(capped_root * pairs, dense[root], rtol=1e-4, atol=1e-6)
  np.testing.assert_allclose(tape.gradient(capped_sum, inputs).numpy(),
                             tape.gradient(loss_sum, inputs).numpy(), rtol=1e-6)


@pytest.mark.parametrize("groups", [1, 64, 70, 130])
def test_sampled_hits_are_the_labels_among_their_groups_candidates(groups):
  rng = np.random.default_rng(groups)
  vocab, centers_per_group, contexts, num_sampled = 50, 3, 4, 8
  sampled = np.stack([rng.choice(vocab, num_sampled, replace=False) for _ in range(groups)])
  labels = rng.integers(0, vocab, [groups * centers_per_group, contexts])
  expected = np.array([[label in sampled[row // centers_per_group] for label in labels_of_row]
                       for row, labels_of_row in enumerate(labels)])
  assert expected.any() and not expected.all()
  got = candidates.sampled_hits(tf.constant(labels), tf.constant(sampled if groups > 1 else
                                                                 sampled[0]), vocab)
  np.testing.assert_array_equal(got.numpy(), expected)
  compiled = tf.function(candidates.sampled_hits, jit_compile=True)
  np.testing.assert_array_equal(compiled(tf.constant(labels), tf.constant(sampled), vocab).numpy(),
                                expected)
