"""Hierarchical softmax over word2vec's Huffman tree (Morin & Bengio 2005; Mikolov et al. 2013b).

The tree's probabilities are normalised, so its own loss is the exact cross-entropy of its model
(the output rows are inner-node vectors, which a full softmax would not mean anything over): it
is both the training loss and the exact loss measured alongside.
"""

from __future__ import annotations

import tensorflow as tf

from w2v_tf.huffman import HuffmanTree
from w2v_tf.losses.base import Loss, TreePaths, masked

# An inner node's summed gradient counts at most this many pairs (see
# `hierarchical_softmax_loss`). Measured on IMDB, 1 epoch: without it SGD diverged at step 40;
# with 512, analogies 8.7% against gensim hs=1's 8.2% side by side.
MAX_NODE_PAIRS = 512.0


class TreeTables:
  """A Huffman tree's paths as constant tables; `paths(labels)` gathers a batch's."""

  def __init__(self, tree: HuffmanTree):
    self.points = tf.constant(tree.points, tf.int32)  # [V, L]
    self.signs = tf.constant(tree.signs(), tf.float32)  # [V, L]

  def paths(self, words: tf.Tensor) -> TreePaths:
    """[B] word ids -> their `TreePaths` ([B, L])."""
    words = tf.cast(words, tf.int32)
    return TreePaths(tf.gather(self.points, words), tf.gather(self.signs, words))


def hierarchical_softmax_loss(inputs, labels, mask, output_weights, paths: TreePaths,
                              max_node_pairs: float | None = None):
  """-log P(center | h) under word2vec's tree: -sum_j log sigmoid(sign_j h . u_j), per pair.

  P is a normalised distribution over the vocabulary (the branch probabilities at every inner
  node sum to 1), so this is an exact cross-entropy, comparable with the full softmax's. As in
  word2vec.c and gensim, the tree predicts the center: in skip-gram from each context's vector
  (all of a center's pairs share its path, so the logits are one batched matmul [C, d] x [d, L]
  per center; predicting each context along its own path gathered [B, C, L, d] node rows and
  ran at 7k words/s on IMDB), in CBOW from the contexts' mean. The output table's first V - 1
  rows are the inner-node vectors u (word2vec's syn1); the gathers make their gradients
  `IndexedSlices` of the nodes the batch's paths touch.

  Args:
    inputs: [B, K, d] a vector per pair (skip-gram: the contexts', K = C) or [B, d] (CBOW).
    labels: unused (the paths encode the centers); mask: [B, K].
    output_weights: [V, d]. No bias, as in word2vec: a node's bias moves by the learning rate
      times the number of pairs on its path whatever the inputs, and with one (the other
      losses' output_bias) the held-out loss rose from 8.2 to 10.3 at step 1 on IMDB.
    paths: the centers' `TreePaths` ([B, L]).
    max_node_pairs: if set, an inner node on the paths of n > max_node_pairs pairs gets its
      summed gradient scaled by max_node_pairs / n (the loss and the inputs' gradients are
      unchanged). Why: the root is on every path, and word2vec applies its updates one pair
      at a time; summed over a batch of ~24k pairs, SGD at word2vec's rate diverged within
      40 steps on IMDB. A step on a node is stable while lr * n * |h|^2 / 4 < 2 (|h| ~ 1 once
      trained: n < 320 at lr 0.025); the sampled losses bound the same sum with their groups
      of ~380 pairs.

  Returns:
    [B, K] losses (0 where masked).
  """
  del labels
  if inputs.shape.rank == 2:
    inputs = inputs[:, None, :]
  node_rows = tf.gather(output_weights, paths.points)  # [B, L, d]
  on_path = tf.abs(paths.signs)  # [B, L]
  if max_node_pairs is not None:
    pairs = tf.math.unsorted_segment_sum(
        on_path * tf.reduce_sum(tf.cast(mask, tf.float32), 1, keepdims=True), paths.points,
        tf.shape(output_weights)[0])  # [V] pairs whose path holds each node
    scale = tf.gather(tf.minimum(1.0, max_node_pairs / tf.maximum(pairs, 1.0)),
                      paths.points)[..., None]  # [B, L, 1]
    node_rows = node_rows * scale + tf.stop_gradient(node_rows * (1.0 - scale))  # same value
  logits = tf.einsum("bkd,bld->bkl", inputs, node_rows)  # [B, K, L]
  per_node = on_path[:, None, :] * tf.nn.softplus(-paths.signs[:, None, :] * logits)
  return masked(tf.reduce_sum(per_node, -1), mask)


class HierarchicalSoftmax(Loss):
  """`--loss=hierarchical_softmax`: the center's tree path, predicted from each context."""
  name = "hierarchical_softmax"
  needs_tree = True
  predicts_center = True
  has_bias = False
  exact_meaning = "the tree's own cross-entropy (normalised over the vocabulary)"

  def tree_tables(self, tree: HuffmanTree) -> TreeTables:
    return TreeTables(tree)

  def negatives(self, sampler, tree, labels, seed, config, num_groups, fused):
    del sampler, seed, config, num_groups, fused
    return tree.paths(labels[:, 0])

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives):
    del output_bias
    return hierarchical_softmax_loss(inputs, labels, mask, output_weights, negatives,
                                     MAX_NODE_PAIRS)

  def exact(self, inputs, labels, mask, output_weights, output_bias, tree):
    del output_bias
    return hierarchical_softmax_loss(inputs, labels, mask, output_weights,
                                     tree.paths(labels[:, 0]))


LOSS = HierarchicalSoftmax()
