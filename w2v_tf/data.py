"""Inspect what the model sees: the cleaned corpus and its vocabulary (Mikolov et al. 2013 preprocessing).

  python -m w2v_tf.data --train_csv data/IMDB_Dataset.csv --dump_tokens tokens.txt --vocab_out vocab.tsv
  python -m w2v_tf.data --train_text 'shards/*.gz' --cleaning=none --phrases=2 --dump_tokens t.txt

writes the cleaned corpus (one document per line, space-separated, after the phrase passes,
before min_count and subsampling) and the vocabulary (`word<TAB>count`, frequency-sorted, after
min_count / max_vocab). It reads, cleans and caches the input exactly as the trainer does.
"""

from __future__ import annotations

import sys

from absl import flags

from w2v_tf import config_flags
from w2v_tf import corpus as corpus_lib
from w2v_tf import training_data, vocab as vocab_lib
from w2v_tf.errors import UsageError, run_main
from w2v_tf.fileio import atomic_open, disk_errors

# The trainer's own flags for the data settings (same names, defaults and help).
_DATA_FIELDS = ("train_csv", "train_text", "text_column", "max_documents", "cleaning",
                "lowercase", "max_document_tokens", "max_vocab_size", "phrases",
                "phrase_min_count", "phrase_threshold", "phrase_scoring", "stopwords",
                "min_count", "max_vocab", "cache_dir", "strict_utf8")


def define_flags() -> None:
  config_flags.define_flags(flags.FLAGS, names=_DATA_FIELDS)
  flags.DEFINE_string("dump_tokens", None, "Write the cleaned corpus here, one document a line.")
  flags.DEFINE_string("vocab_out", None, "Write the vocabulary here as word<TAB>count.")


FLAGS = flags.FLAGS


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if not FLAGS.dump_tokens and not FLAGS.vocab_out:
    raise UsageError("nothing to do: pass --dump_tokens PATH and/or --vocab_out PATH")
  data = config_flags.from_flags(FLAGS, names=_DATA_FIELDS).data
  if data.problems():
    raise UsageError("; ".join(data.problems()))
  corpus = training_data.load_data_corpus(data)
  if FLAGS.dump_tokens:
    with disk_errors(FLAGS.dump_tokens), atomic_open(FLAGS.dump_tokens, "w") as f:
      for words in corpus_lib.documents(corpus):
        f.write(" ".join(words))
        f.write("\n")
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, data.min_count,
                                data.max_vocab)
  if FLAGS.vocab_out:
    vocab.save_tsv(FLAGS.vocab_out)
  pruned = (f" ({corpus.pruned_tokens:,} of them of words pruned while counting, left out of "
            "the dump)" if corpus.pruned_tokens else "")
  print(f"{corpus.num_documents:,} documents, {corpus.num_tokens:,} tokens{pruned}, "
        f"{len(corpus.types):,} distinct words, vocabulary {len(vocab):,} "
        f"(min_count {data.min_count}) covering {vocab.total_count:,} tokens"
        + (f"; tokens -> {FLAGS.dump_tokens}" if FLAGS.dump_tokens else "")
        + (f"; vocab -> {FLAGS.vocab_out}" if FLAGS.vocab_out else ""), file=sys.stderr)


def run() -> None:
  """The `w2v-data` command (and `python -m w2v_tf.data`)."""
  define_flags()
  flags.adopt_module_key_flags(config_flags)
  run_main(main)


if __name__ == "__main__":
  run()
