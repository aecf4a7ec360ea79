"""The word2vec model: input embeddings [V, d], output weights [V, d] and output bias [V].

Initialisation follows word2vec's C tool and gensim: input embeddings uniform in ±0.5/d, output
weights and bias zero. (The seed notebook used Keras defaults, uniform ±0.05 for both tables;
with zero output weights every loss starts at the same value, log of the candidate count, which
makes the curves comparable across losses.)
"""

from __future__ import annotations

import numpy as np
import tensorflow as tf

from w2v_tf import losses
from w2v_tf.config import ModelConfig


class Word2Vec(tf.Module):
  """Embedding tables; `inputs` turns a grouped batch into (inputs [B, d], labels, mask)."""

  def __init__(self, vocab_size: int, config: ModelConfig, seed: int = 0):
    super().__init__(name="word2vec")
    self.config = config
    self.vocab_size = vocab_size
    rng = np.random.default_rng([seed, 17])
    bound = 0.5 / config.embedding_dim
    self.input_embeddings = tf.Variable(
        rng.uniform(-bound, bound, [vocab_size, config.embedding_dim]).astype(np.float32),
        name="input_embeddings")
    self.output_weights = tf.Variable(
        tf.zeros([vocab_size, config.embedding_dim]), name="output_weights")
    self.output_bias = tf.Variable(tf.zeros([vocab_size]), name="output_bias")

  @property
  def tables(self) -> list[tf.Variable]:
    """[input_embeddings [V, d], output_weights [V, d], output_bias [V]]: what the step updates."""
    return [self.input_embeddings, self.output_weights, self.output_bias]

  def inputs(self, batch: dict) -> tuple[tf.Tensor, tf.Tensor, tf.Tensor]:
    """Model inputs and targets of a grouped batch.

    Args:
      batch: {"center": [B], "contexts": [B, 2W], "mask": [B, 2W]}.

    Returns:
      skip-gram: (input_embeddings[center] [B, d], contexts [B, 2W], mask [B, 2W]);
      CBOW: (masked mean of input_embeddings[contexts] [B, d], center [B, 1], has-context
      [B, 1]; padding rows have no context and so no loss);
      skip-gram with a loss that predicts the center from each context (word2vec.c's tree):
      (input_embeddings[contexts] [B, 2W, d], center [B, 1], mask [B, 2W]).
    """
    if per_context_inputs(self.config):
      return (tf.gather(self.input_embeddings, batch["contexts"]), batch["center"][:, None],
              batch["mask"])
    if self.config.model == "skipgram":
      return tf.gather(self.input_embeddings, batch["center"]), batch["contexts"], batch["mask"]
    weights = tf.cast(batch["mask"], tf.float32)  # [B, 2W]
    context_vectors = tf.gather(self.input_embeddings, batch["contexts"])  # [B, 2W, d]
    mean = (tf.einsum("bc,bcd->bd", weights, context_vectors)
            / tf.maximum(tf.reduce_sum(weights, 1, keepdims=True), 1.0))
    center = batch["center"][:, None]
    return mean, center, tf.reduce_any(batch["mask"], axis=1, keepdims=True)


def per_context_inputs(config: ModelConfig) -> bool:
  """Whether `Word2Vec.inputs` gives [B, C, d], a row per context: skip-gram with a loss that
  predicts the center from each context (word2vec.c's orientation)."""
  return config.model == "skipgram" and losses.get(config.loss).predicts_center_in(config)
