"""Inspect what the model sees: the cleaned corpus and its vocabulary (Mikolov et al. 2013 preprocessing).

  python -m w2v_tf.data --train_csv data/IMDB_Dataset.csv --dump_tokens tokens.txt --vocab_out vocab.tsv

writes the cleaned corpus (one review per line, space-separated, before min_count and subsampling)
and the vocabulary (`word<TAB>count`, frequency-sorted, after min_count / max_vocab).
"""

from __future__ import annotations

import sys

from absl import flags

from w2v_tf import corpus as corpus_lib
from w2v_tf import text, vocab as vocab_lib
from w2v_tf.errors import UsageError, run_main
from w2v_tf.fileio import atomic_open, disk_errors

flags.DEFINE_string("train_csv", "data/IMDB_Dataset.csv", "CSV or CSV.gz with a header row.")
flags.DEFINE_string("text_column", "review", "Name of the column holding the text.")
flags.DEFINE_integer("max_reviews", 0, "Read only the first N rows (0 = all).")
flags.DEFINE_string("stopwords", "nltk", "'nltk' (NLTK English), 'none', or a file, one word a line.")
flags.DEFINE_integer("min_count", 5, "Drop words seen fewer times (vocabulary only).")
flags.DEFINE_integer("max_vocab", 0, "Keep at most this many words (0 = no limit).")
flags.DEFINE_string("cache_dir", "data/cache", "Tokenized-corpus cache folder ('' = no cache).")
flags.DEFINE_bool("strict_utf8", False,
                  "Refuse a CSV with bytes that are not UTF-8 (default: replace them with U+FFFD, "
                  "which forms no token, and warn once with the count).")
flags.DEFINE_string("dump_tokens", None, "Write the cleaned corpus here, one review a line.")
flags.DEFINE_string("vocab_out", None, "Write the vocabulary here as word<TAB>count.")

FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.dump_tokens and not FLAGS.vocab_out:
    raise UsageError("nothing to do: pass --dump_tokens PATH and/or --vocab_out PATH")
  if FLAGS.min_count < 1 or FLAGS.max_reviews < 0 or FLAGS.max_vocab < 0:
    raise UsageError("--min_count must be >= 1 and --max_reviews, --max_vocab >= 0")
  corpus_lib.read_header(FLAGS.train_csv)  # a missing / empty file first, before stopwords
  stopwords = text.load_stopwords(FLAGS.stopwords)
  corpus = corpus_lib.load_corpus(FLAGS.train_csv, FLAGS.text_column, FLAGS.max_reviews,
                                  stopwords, FLAGS.cache_dir or None,
                                  strict_utf8=FLAGS.strict_utf8)
  if FLAGS.dump_tokens:
    with disk_errors(FLAGS.dump_tokens), atomic_open(FLAGS.dump_tokens, "w") as f:
      types = corpus.types
      for start, end in zip(corpus.review_offsets[:-1], corpus.review_offsets[1:]):
        f.write(" ".join(types[i] for i in corpus.token_ids[start:end]))
        f.write("\n")
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, FLAGS.min_count,
                                FLAGS.max_vocab)
  if FLAGS.vocab_out:
    vocab.save_tsv(FLAGS.vocab_out)
  print(f"{corpus.num_reviews:,} reviews, {corpus.num_tokens:,} tokens, "
        f"{len(corpus.types):,} distinct words, vocabulary {len(vocab):,} "
        f"(min_count {FLAGS.min_count}) covering {vocab.total_count:,} tokens"
        + (f"; tokens -> {FLAGS.dump_tokens}" if FLAGS.dump_tokens else "")
        + (f"; vocab -> {FLAGS.vocab_out}" if FLAGS.vocab_out else ""), file=sys.stderr)


if __name__ == "__main__":
  run_main(main)
