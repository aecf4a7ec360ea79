"""What every loss object provides (`Loss`), and the kinds of negatives a batch carries.

Every loss takes a grouped batch: `inputs` [B, d] (a center's input embedding for skip-gram, the
masked mean of the context embeddings for CBOW; [B, C, d] for a loss that predicts the center
from each context), `labels` [B, C] target ids and `mask` [B, C] (C = 2*window for skip-gram, 1
for CBOW), and returns per-example losses [B, C] that are 0 where `mask` is False. Summing them
gives word2vec's objective: the learning rate then means what it means in word2vec and gensim
(a per-pair step size).

A batch's negatives are one of the tuples below; each knows how to cut itself into row slices
(`take`) and which output rows it reads (`output_ids`, for the parameter-server step that
gathers only the rows a batch touches).
"""

from __future__ import annotations

from typing import Callable, NamedTuple

import tensorflow as tf

Cut = Callable[[tf.Tensor], tf.Tensor]


class SampledValues(NamedTuple):
  """Candidates shared by groups of centers, as `tf.random.*_candidate_sampler` returns them.

  The batch's B centers are split into G consecutive groups of B/G centers; every pair of a group
  is scored against that group's S candidates (G = 1: one set for the whole batch, exactly
  `tf.nn.sampled_softmax_loss` over the batch; G > 1: one such call per group).

  Attributes:
    sampled: [G, S] (or [S] for G = 1) int64 candidate ids, distinct within a group.
    true_expected_count: [B, C] float32 expected count of each label in its group's sample.
    sampled_expected_count: [G, S] (or [S]) float32 expected count of each candidate.
  """
  sampled: tf.Tensor
  true_expected_count: tf.Tensor
  sampled_expected_count: tf.Tensor

  def take(self, cut_rows: Cut, cut_groups: Cut) -> "SampledValues":
    return SampledValues(cut_groups(self.sampled), cut_rows(self.true_expected_count),
                         cut_groups(self.sampled_expected_count))

  def output_ids(self) -> tf.Tensor:
    return self.sampled

  def with_output_ids(self, ids: tf.Tensor) -> "SampledValues":
    return self._replace(sampled=ids)


class PairNegatives(NamedTuple):
  """Negatives drawn for every pair (word2vec's negative sampling).

  Attributes:
    ids: [B, C, K] int ids drawn from the noise distribution.
  """
  ids: tf.Tensor

  def take(self, cut_rows: Cut, cut_groups: Cut) -> "PairNegatives":
    del cut_groups
    return PairNegatives(cut_rows(self.ids))

  def output_ids(self) -> tf.Tensor:
    return self.ids

  def with_output_ids(self, ids: tf.Tensor) -> "PairNegatives":
    return PairNegatives(ids)


class TreePaths(NamedTuple):
  """The Huffman-tree paths of a batch's centers (`w2v_tf.huffman`), for hierarchical softmax.

  Attributes:
    points: [B, L] int32 inner-node ids (rows of the output table), root first.
    signs: [B, L] float32: +1 (code 0), -1 (code 1), 0 past the end of the path.
  """
  points: tf.Tensor
  signs: tf.Tensor

  def take(self, cut_rows: Cut, cut_groups: Cut) -> "TreePaths":
    del cut_groups
    return TreePaths(cut_rows(self.points), cut_rows(self.signs))

  def output_ids(self) -> tf.Tensor:
    return self.points

  def with_output_ids(self, ids: tf.Tensor) -> "TreePaths":
    return self._replace(points=ids)


class NoNegatives(NamedTuple):
  """No negatives: the loss reads the whole output table (the full softmax)."""

  def take(self, cut_rows: Cut, cut_groups: Cut) -> "NoNegatives":
    del cut_rows, cut_groups
    return self

  def output_ids(self) -> None:
    return None  # every row

  def with_output_ids(self, ids) -> "NoNegatives":
    del ids
    return self


def masked(losses: tf.Tensor, mask: tf.Tensor) -> tf.Tensor:
  """`losses` where `mask`, else 0 (same shape)."""
  return tf.where(mask, losses, tf.zeros_like(losses))


class Loss:
  """A training loss and everything the step needs to know of it (subclass per loss module).

  Attributes:
    name: the registry's name (the --loss value).
    default_num_sampled: --num_sampled when unset (None: the loss draws no negatives).
    shares_candidates: candidates shared per group of --sample_group_centers centers (their
      count must be below the vocabulary's size).
    needs_tree: trains on word2vec's Huffman tree (`w2v_tf.huffman`).
    predicts_center: skip-gram predicts the center from each context (word2vec.c's tree
      losses), so the inputs are the contexts' vectors [B, 2W, d] and the label the center
      (`predicts_center_in` says it for a config, where a loss's setting decides it).
    reads_whole_output_table: every step reads and updates every output row (no negatives).
    has_bias: the output bias is part of the model (else it stays 0 and gets no gradient).
    exact_meaning: what the exact loss measured alongside is, in words.
  """
  name = ""
  default_num_sampled: int | None = None
  shares_candidates = False
  needs_tree = False
  predicts_center = False
  reads_whole_output_table = False
  has_bias = True
  exact_meaning = "the full softmax over the vocabulary"

  def predicts_center_in(self, config) -> bool:
    """Whether skip-gram under `config` (a `config.ModelConfig`) predicts the center from each
    context (inputs [B, 2W, d], labels [B, 1]) rather than each context from the center."""
    del config
    return self.predicts_center

  def negatives(self, sampler, tree, labels: tf.Tensor, seed: tf.Tensor, config,
                num_groups: int, fused: bool):
    """A batch's negatives, drawn statelessly from `seed` [2].

    Args:
      sampler: the run's `sampling.CandidateSampler`.
      tree: the Huffman tree's tables (`hierarchical_softmax.TreeTables`) or None.
      labels: [B, C] the batch's targets.
      config: the run's `config.ModelConfig` (num_sampled, and the loss's own settings).
      num_groups: candidate groups per batch.
      fused: for the compiled step that adds the labels' expected counts itself
        (`complete_negatives`).
    """
    del sampler, tree, labels, seed, config, num_groups, fused
    return NoNegatives()

  def tree_tables(self, tree):
    """The tables of word2vec's Huffman tree the loss reads (a loss that `needs_tree`)."""
    raise ValueError(f"--loss={self.name} trains on no tree")

  def complete_negatives(self, sampler, negatives, labels: tf.Tensor):
    """What a fused step's negatives lack, added inside the step (default: nothing)."""
    del sampler, labels
    return negatives

  def per_example(self, inputs, labels, mask, output_weights, output_bias, negatives
                  ) -> tf.Tensor:
    """[B, C] training losses on the given output table (or the rows the batch indexes)."""
    raise NotImplementedError

  def exact(self, inputs, labels, mask, output_weights, output_bias, tree) -> tf.Tensor:
    """[B, C] the exact cross-entropy the training loss approximates (default: full softmax)."""
    del tree
    from w2v_tf.losses import full_softmax  # pylint: disable=import-outside-toplevel
    return full_softmax.full_softmax_loss(inputs, labels, mask, output_weights, output_bias)
