"""A generated corpus with planted relations (gensim's model_sanity idea) for learning tests.

Two relations, each over `pairs` entity pairs: country -> capital ("semantic") and
noun -> plural ("syntactic", a `gram` section). Each entity i has its own topic words; the first
member of a pair appears with topic_i and one set of marker words, the second with topic_i and
another set. So vec(second_i) - vec(first_i) is the same offset for every i, and analogies
first_a : second_a :: first_b : ? are answerable only if training learned that structure.
"""

from __future__ import annotations

import csv
import os
import itertools
import random


def _letters(i: int) -> str:
  """0 -> "ba", 1 -> "bb", ...: an alphabetic suffix (the cleaning drops tokens with digits)."""
  return "b" + chr(ord("a") + i // 26) + chr(ord("a") + i % 26) if i >= 26 else "b" + chr(
      ord("a") + i)


def write_planted_corpus(csv_path: str, questions_path: str, pairs: int = 12,
                         reviews: int = 12000, seed: int = 0) -> None:
  """Writes a `review,sentiment` CSV and a questions-words-style file with its analogies."""
  rng = random.Random(seed)
  relations = {
      "capital-planted": ("country", "capital", ["nation", "state", "border"],
                          ["city", "downtown", "mayor"]),
      "gram-plural-planted": ("thing", "things", ["single", "one", "alone"],
                              ["many", "several", "plenty"]),
  }
  rows = []
  for first, second, first_markers, second_markers in relations.values():
    for _ in range(reviews // (2 * len(relations))):
      i = rng.randrange(pairs)
      topic = [f"topic{first}{_letters(i)}x{_letters(k)}" for k in range(3)]
      for word, markers in ((f"{first}{_letters(i)}", first_markers),
                             (f"{second}{_letters(i)}", second_markers)):
        tokens = [word] + rng.sample(markers, 2) + rng.sample(topic, 2)
        rng.shuffle(tokens)
        rows.append(" ".join(tokens))
  rng.shuffle(rows)
  with open(csv_path, "w", newline="", encoding="utf-8") as f:
    writer = csv.writer(f)
    writer.writerow(["review", "sentiment"])
    for row in rows:
      writer.writerow([row, "positive"])
  with open(questions_path, "w", encoding="utf-8") as f:
    for section, (first, second, _, _) in relations.items():
      f.write(f": {section}\n")
      for a, b in itertools.permutations(range(pairs), 2):
        f.write(f"{first}{_letters(a)} {second}{_letters(a)} {first}{_letters(b)} "
                f"{second}{_letters(b)}\n")


def small_experiment(csv_path, model_dir, epochs=1, loss="sampled_softmax", model="skipgram",
                     **overrides):
  """Small, fast trainer settings for the planted corpus (XLA off unless asked: it costs seconds).

  They match `python -m w2v_tf.train --stopwords=none --batch_size=256 --cache_dir=
  --heldout_documents=0.02 --embedding_dim=32 --num_sampled=16 --eval_every_steps=20
  --checkpoint_every_steps=50 --noprogress --nojit_compile`.
  """
  from w2v_tf.config import ExperimentConfig  # pylint: disable=import-outside-toplevel
  return ExperimentConfig().replace(**{
      "train_csv": csv_path, "stopwords": "none", "batch_size": 256, "cache_dir": "",
      "heldout_documents": 0.02, "embedding_dim": 32, "loss": loss, "model": model,
      "num_sampled": 5 if loss == "negative_sampling" else 16, "model_dir": str(model_dir),
      "epochs": epochs, "progress": False, "eval_every_steps": 20,
      "checkpoint_every_steps": 50, "jit_compile": False, **overrides})


def write_as_text(csv_path: str) -> str:
  """The CSV's reviews as a plain-text file beside it, one a line (`--train_text`); its path."""
  text_path = os.path.splitext(csv_path)[0] + ".txt"
  with open(csv_path, newline="", encoding="utf-8") as f, \
      open(text_path, "w", encoding="utf-8") as out:
    for row in csv.DictReader(f):
      out.write(" ".join(row["review"].split()) + "\n")
  return text_path


def load_model_dir(model_dir):
  """(words, vectors) exported into a model dir."""
  from w2v_tf.word_vectors import WordVectors  # pylint: disable=import-outside-toplevel
  vectors = WordVectors.from_model_dir(model_dir)
  return list(vectors.words), vectors.vectors
