"""Inspect what the model sees: the cleaned corpus and its vocabulary (Mikolov et al. 2013 preprocessing).

  python -m w2v_tf.data --train_csv data/IMDB_Dataset.csv --dump_tokens tokens.txt --vocab_out vocab.tsv

writes the cleaned corpus (one review per line, space-separated, before min_count and subsampling)
and the vocabulary (`word<TAB>count`, frequency-sorted, after min_count / max_vocab).
"""

from __future__ import annotations

import sys

from absl import flags

from w2v_tf import config
from w2v_tf import corpus as corpus_lib
from w2v_tf import text, vocab as vocab_lib
from w2v_tf.errors import UsageError, run_main
from w2v_tf.fileio import atomic_open, disk_errors

# The trainer's own flags for the data settings (same names, defaults and help).
_DATA_FIELDS = ("train_csv", "text_column", "max_reviews", "stopwords", "min_count",
                "max_vocab", "cache_dir", "strict_utf8")


def define_flags() -> None:
  config.define_flags(flags.FLAGS, names=_DATA_FIELDS)
  flags.DEFINE_string("dump_tokens", None, "Write the cleaned corpus here, one review a line.")
  flags.DEFINE_string("vocab_out", None, "Write the vocabulary here as word<TAB>count.")


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.dump_tokens and not FLAGS.vocab_out:
    raise UsageError("nothing to do: pass --dump_tokens PATH and/or --vocab_out PATH")
  data = config.from_flags(FLAGS, names=_DATA_FIELDS).data
  if data.problems():
    raise UsageError("; ".join(data.problems()))
  corpus_lib.read_header(data.train_csv)  # a missing / empty file first, before stopwords
  stopwords = text.load_stopwords(data.stopwords)
  corpus = corpus_lib.load_corpus(data.train_csv, data.text_column, data.max_reviews,
                                  stopwords, data.cache_dir or None,
                                  strict_utf8=data.strict_utf8)
  if FLAGS.dump_tokens:
    with disk_errors(FLAGS.dump_tokens), atomic_open(FLAGS.dump_tokens, "w") as f:
      types = corpus.types
      for start, end in zip(corpus.review_offsets[:-1], corpus.review_offsets[1:]):
        f.write(" ".join(types[i] for i in corpus.token_ids[start:end]))
        f.write("\n")
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, data.min_count,
                                data.max_vocab)
  if FLAGS.vocab_out:
    vocab.save_tsv(FLAGS.vocab_out)
  print(f"{corpus.num_reviews:,} reviews, {corpus.num_tokens:,} tokens, "
        f"{len(corpus.types):,} distinct words, vocabulary {len(vocab):,} "
        f"(min_count {data.min_count}) covering {vocab.total_count:,} tokens"
        + (f"; tokens -> {FLAGS.dump_tokens}" if FLAGS.dump_tokens else "")
        + (f"; vocab -> {FLAGS.vocab_out}" if FLAGS.vocab_out else ""), file=sys.stderr)


def run() -> None:
  """The `w2v-data` command (and `python -m w2v_tf.data`)."""
  define_flags()
  flags.adopt_module_key_flags(config)
  run_main(main)


if __name__ == "__main__":
  run()
