"""The word2vec model: input embeddings [V, d], output weights [V, d] and output bias [V].

Initialisation follows word2vec's C tool and gensim: input embeddings uniform in ±0.5/d, output
weights and bias zero. (The seed notebook used Keras defaults, uniform ±0.05 for both tables;
with zero output weights every loss starts at the same value, log of the candidate count, which
makes the curves comparable across losses.)
"""

from __future__ import annotations

import dataclasses

import numpy as np
import tensorflow as tf


@dataclasses.dataclass(frozen=True)
class ModelConfig:
  """Model shape and objective.

  Attributes:
    vocab_size: V.
    embedding_dim: d.
    model: "skipgram" (center -> each context) or "cbow" (mean of contexts -> center).
    loss: "sampled_softmax", "nce", "negative_sampling" or "full_softmax".
    num_sampled: candidates per group of centers (sampled softmax, NCE) or negatives per pair
      (negative sampling).
    sample_group_centers: centers that share one candidate set (sampled softmax, NCE). Sharing
      one set across a whole large batch magnifies each candidate's summed update by the number
      of pairs (tens of thousands), which diverges at word2vec's learning rate; groups of 64
      centers (~380 pairs) train like small-batch SGD and keep the batch large for speed.
  """
  vocab_size: int
  embedding_dim: int = 100
  model: str = "skipgram"
  loss: str = "sampled_softmax"
  num_sampled: int = 64
  sample_group_centers: int = 64


class Word2Vec(tf.Module):
  """Embedding tables; `inputs` turns a grouped batch into (inputs [B, d], labels, mask)."""

  def __init__(self, config: ModelConfig, seed: int = 0):
    super().__init__(name="word2vec")
    self.config = config
    rng = np.random.default_rng([seed, 17])
    bound = 0.5 / config.embedding_dim
    self.input_embeddings = tf.Variable(
        rng.uniform(-bound, bound, [config.vocab_size, config.embedding_dim]).astype(np.float32),
        name="input_embeddings")
    self.output_weights = tf.Variable(
        tf.zeros([config.vocab_size, config.embedding_dim]), name="output_weights")
    self.output_bias = tf.Variable(tf.zeros([config.vocab_size]), name="output_bias")

  def inputs(self, batch: dict) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Model inputs and targets of a grouped batch.

    Args:
      batch: {"center": [B], "contexts": [B, 2W], "mask": [B, 2W]}.

    Returns:
      skip-gram: (input_embeddings[center] [B, d], contexts [B, 2W], mask [B, 2W]);
      CBOW: (masked mean of input_embeddings[contexts] [B, d], center [B, 1], has-context
      [B, 1]; padding rows have no context and so no loss).
    """
    if self.config.model == "skipgram":
      return tf.gather(self.input_embeddings, batch["center"]), batch["contexts"], batch["mask"]
    weights = tf.cast(batch["mask"], tf.float32)  # [B, 2W]
    context_vectors = tf.gather(self.input_embeddings, batch["contexts"])  # [B, 2W, d]
    mean = (tf.einsum("bc,bcd->bd", weights, context_vectors)
            / tf.maximum(tf.reduce_sum(weights, 1, keepdims=True), 1.0))
    center = batch["center"][:, None]
    return mean, center, tf.reduce_any(batch["mask"], axis=1, keepdims=True)

  def normalized_embeddings(self) -> np.ndarray:
    """[V, d] unit-length input embeddings (what eval and export use)."""
    vectors = self.input_embeddings.numpy()
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
