"""What checking a cache costs when it is opened (`w2v_tf/cache_check.py`).

  python -m benchmarks.cache_check --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --generated_tokens 100000000 --output_json out/cache_check.json

For the IMDB cache (NLTK stopwords, as the trainer builds it) and a generated cache of
--generated_tokens tokens (Zipf-distributed ids over --generated_types words, documents of 200
tokens), both with their training chunks (min_count 5): the median over --repeats of opening
the corpus without checks (`StoredCorpus(path, check=False)`: the tables), with them (sizes,
CRC-32 of every file, ids < U), and checking the chunks (`verify_chunks`), each with the files
in the page cache (warm, as a second run finds them) and, with --cold, evicted first
(`posix_fadvise(DONTNEED)` on the cache's own files: no root, nothing else evicted). Also the
bytes checked, the rate, and the time the build took, for scale. Needs ~9 bytes a generated
token of disk under --work_dir (a temporary folder by default).
"""

from __future__ import annotations

import os
import sys
import time

import numpy as np
from absl import flags

from benchmarks import common
from w2v_tf import cache_check, corpus_store, pipeline, text
from w2v_tf import corpus as corpus_lib
from w2v_tf import vocab as vocab_lib
from w2v_tf.errors import UsageError, run_main
from w2v_tf.sources import CorpusSpec

_SHARED = os.path.join(os.path.dirname(common.REPO_ROOT), "shared", "data")
FLAGS = flags.FLAGS


def define_flags() -> None:
  flags.DEFINE_string("train_csv", os.path.join(_SHARED, "imdb", "IMDB_Dataset.csv.gz"),
                      "The IMDB CSV ('' skips it).")
  flags.DEFINE_string("stopwords", "nltk", "Stopwords of the IMDB cache (as the trainer's).")
  flags.DEFINE_integer("generated_tokens", 100_000_000, "Tokens of the generated cache (0 skips).")
  flags.DEFINE_integer("generated_types", 200_000, "Distinct words of the generated cache.")
  flags.DEFINE_integer("repeats", 3, "Timed runs of each measurement (the median is reported).")
  flags.DEFINE_bool("cold", True, "Also time each check with the cache's files evicted first.")
  flags.DEFINE_string("work_dir", None, "Keep the caches here (default: a temporary folder).")
  flags.DEFINE_string("output_json", None, "Write the results here.")


def _files(folder: str) -> list[str]:
  return [os.path.join(root, name) for root, _, names in os.walk(folder) for name in names]


def _evict(folder: str) -> None:
  for path in _files(folder):
    fd = os.open(path, os.O_RDONLY)
    try:
      os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
      os.close(fd)


def _timed(function, folder: str, cold: bool) -> float:
  """Median seconds of `function()` over --repeats (evicting `folder` first when `cold`)."""
  seconds = []
  for _ in range(FLAGS.repeats):
    if cold:
      _evict(folder)
    started = time.perf_counter()
    function()
    seconds.append(time.perf_counter() - started)
  return common.median(seconds)


def _generated_corpus(path: str, tokens: int, types: int) -> corpus_store.StoredCorpus:
  """A cache of `tokens` Zipf(1.1) ids over `types` words, written as the corpus pass does."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  words = np.array([f"w{i}".encode() for i in range(types)], dtype=object)
  keys = corpus_store.fingerprints(tf.constant(words.tolist())).numpy()
  rng = np.random.default_rng(0)
  writer = corpus_store.CorpusWriter(path)
  batch = 1 << 20
  for start in range(0, tokens, batch):
    ids = (rng.zipf(1.1, min(batch, tokens - start)) - 1) % types
    present, inverse, counts = np.unique(ids, return_inverse=True, return_counts=True)
    provisional = writer.add_words(keys[present], words[present], counts.astype(np.int64))
    lengths = np.full(len(ids) // 200, 200, np.int64)
    lengths = np.r_[lengths, len(ids) - lengths.sum()] if lengths.sum() < len(ids) else lengths
    writer.add_tokens(provisional[inverse], lengths)
  return writer.finish({})


def measure(name: str, build) -> dict:
  """The measurements of one cache; `build()` makes it and returns the `StoredCorpus`."""
  started = time.perf_counter()
  corpus = build()
  vocab = vocab_lib.build_vocab(corpus.types, corpus.type_counts, 5)
  tokens = pipeline.training_tokens(corpus, len(vocab))
  built = time.perf_counter() - started
  folder = tokens.chunk_folder
  corpus_bytes = sum(size for size, _ in cache_check.read_manifest(corpus.path).values())
  chunk_bytes = sum(os.path.getsize(p) for p in _files(folder))
  result = {"cache": name, "corpus_tokens": corpus.num_tokens, "types": len(corpus.types),
            "vocab": len(vocab), "training_tokens": tokens.num_tokens,
            "chunks": tokens.num_chunks, "corpus_bytes": corpus_bytes, "chunk_bytes": chunk_bytes,
            "build_seconds": built}
  checks = {"open_unchecked": lambda: corpus_store.StoredCorpus(corpus.path, check=False),
            "open_checked": lambda: corpus_store.StoredCorpus(corpus.path),
            "chunks_checked": lambda: cache_check.verify_chunks(folder, tokens.num_chunks,
                                                                len(vocab))}
  for cold in (False, True) if FLAGS.cold else (False,):
    for check, function in checks.items():
      where = folder if check.startswith("chunks") else corpus.path
      result[f"{check}_{'cold' if cold else 'warm'}_seconds"] = _timed(function, where, cold)
    prefix = "cold" if cold else "warm"
    extra = (result[f"open_checked_{prefix}_seconds"] - result[f"open_unchecked_{prefix}_seconds"]
             + result[f"chunks_checked_{prefix}_seconds"])
    result[f"check_{prefix}_seconds"] = extra
    result[f"check_{prefix}_gb_per_second"] = (corpus_bytes + chunk_bytes) / max(extra, 1e-9) / 1e9
    print(f"{name}: checking {(corpus_bytes + chunk_bytes) / 1e6:,.0f} MB ({prefix}) adds "
          f"{extra:.3f} s to opening the cache; building it took {built:.1f} s", file=sys.stderr)
  return result


def main(argv):
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.repeats < 1 or FLAGS.generated_tokens < 0 or FLAGS.generated_types < 2:
    raise UsageError("--repeats must be >= 1, --generated_tokens >= 0, --generated_types >= 2")
  results = []
  with common.work_folder(FLAGS.work_dir, "cache-check-") as work:
    if FLAGS.train_csv:
      spec = CorpusSpec(source=FLAGS.train_csv, text_column="review",
                        stopwords=text.load_stopwords(FLAGS.stopwords))
      cache = os.path.join(work, "imdb")
      results.append(measure("imdb", lambda: corpus_lib.load(spec, cache, progress=False)))
    if FLAGS.generated_tokens:
      path = os.path.join(work, "generated", "corpus-generated")
      results.append(measure(f"generated-{FLAGS.generated_tokens}", lambda: _generated_corpus(
          path, FLAGS.generated_tokens, FLAGS.generated_types)))
  common.write_json(FLAGS.output_json, {"machine": common.machine(),
                                        "command": common.command_line("benchmarks.cache_check"),
                                        "repeats": FLAGS.repeats, "results": results})


if __name__ == "__main__":
  define_flags()
  run_main(main)
