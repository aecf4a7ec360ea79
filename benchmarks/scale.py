"""Memory and speed against corpus size: 1 epoch on corpora of ~6M, 25M and 100M tokens.

  python -m benchmarks.scale --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --copies 1,4,17 --output_json docs/scale/scale.json

The corpora are the IMDB reviews repeated: a folder holding the reviews as plain text (one review
a line) `copies` times, read with `--train_text FOLDER --cleaning=imdb` (so the vocabulary, and
with it the model, is the same at every size: what grows is the corpus alone). The copies are
hard links of one file (the disk holds it once; the page cache may serve the repeats).

Each size is trained twice, each time in a fresh process (`--worker`): cold (an empty cache: read
+ clean + count + cache, then train) and warm (the cache from the cold run). A run reports its
peak RSS (VmHWM: the process's high-water mark), the peak after the corpus pass alone, the
corpus pass's seconds and tokens/s, and words/s of training (corpus tokens of the training
documents per second: the median of the trainer's per-interval figures, its console lines, so
the one-time XLA compilation and the exact comparisons, the same at every size, do not make
small corpora look slow; the whole run's figure is `run_words_per_sec`). The report gives the
growth of peak RSS per corpus token between the smallest and the largest corpus, cold and warm,
and the spread of words/s, against the targets (<= 1 byte per token; within 10%; cold
pass >= 1.5M tokens/s on IMDB, the smallest corpus).
"""

from __future__ import annotations

import os
import re
import statistics
import shutil
import sys
import time
from typing import Sequence

from absl import flags

from benchmarks import common
from w2v_tf import config, config_flags
from w2v_tf.errors import UsageError, UserError, run_main

_WORKER_FIELDS = ("batch_size", "epochs", "model", "loss", "embedding_dim", "window",
                  "min_count", "subsample", "stopwords", "seed")


def define_flags() -> None:
  flags.DEFINE_string("train_csv", None, "The IMDB CSV the corpora are made of.")
  flags.DEFINE_list("copies", ["1", "4", "17"], "Corpus sizes, in copies of the IMDB reviews "
                    "(IMDB is 5.9M cleaned tokens: 1, 4, 17 give ~6M, 24M, 101M).")
  flags.DEFINE_bool("scale_min_count", True, "Multiply --min_count by the copies, so every size "
                    "has the same vocabulary (see the module doc); false keeps it fixed.")
  flags.DEFINE_string("work_dir", None, "Keep corpora, caches and model dirs here (default: a "
                      "temporary folder, removed at the end).")
  flags.DEFINE_string("output_json", None, "Write the results as JSON here.")
  flags.DEFINE_string("output_md", None, "Write the table as Markdown here.")
  flags.DEFINE_enum("worker", None, ["ours"], "Internal: run one training run and exit.")
  flags.DEFINE_string("worker_spec", None, "Internal: the worker's JSON spec.")
  config_flags.define_flags(flags.FLAGS, names=_WORKER_FIELDS, defaults={"epochs": 1})


FLAGS = flags.FLAGS


def worker(spec: dict) -> dict:
  """One run: the corpus pass (timed), then the trainer from that corpus; peak RSS of both."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from w2v_tf import training_data  # pylint: disable=import-outside-toplevel
  from w2v_tf.build import build_trainer  # pylint: disable=import-outside-toplevel
  experiment = config.ExperimentConfig.from_dict(spec["experiment"])
  rates = []  # the trainer's words/s of each log interval (its console lines)

  def log(message: str) -> None:
    rate = re.search(r"\| ([\d,.]+)k words/s \|", message)
    if rate and not message.startswith("step 1 |"):
      rates.append(float(rate.group(1).replace(",", "")) * 1e3)
    print(f"[{spec['name']}] {message}", file=sys.stderr, flush=True)

  started = time.perf_counter()
  corpus = training_data.load_data_corpus(experiment.data, progress=False)
  corpus_seconds = time.perf_counter() - started
  corpus_peak = common.peak_rss_mb()
  trainer = build_trainer(experiment, log=log)
  summary = trainer.run()
  if summary.interrupted:
    raise UserError("training was interrupted")
  return {"corpus_seconds": corpus_seconds, "corpus_tokens": corpus.num_tokens,
          "corpus_documents": corpus.num_reviews,
          "corpus_tokens_per_sec": corpus.num_tokens / corpus_seconds,
          "tokenize_seconds": corpus.meta.get("seconds"),
          "peak_rss_after_corpus_mb": corpus_peak, "peak_rss_mb": common.peak_rss_mb(),
          "train_seconds": summary.train_seconds, "run_words_per_sec": summary.words_per_sec,
          "words_per_sec": statistics.median(rates) if rates else summary.words_per_sec,
          "steps": summary.step, "vocab_size": len(trainer.data.vocab),
          "version": f"tensorflow {tf.__version__}"}


def _write_corpus(reviews_file: str, folder: str, copies: int) -> None:
  os.makedirs(folder, exist_ok=True)
  for copy in range(copies):
    os.link(reviews_file, os.path.join(folder, f"copy-{copy:03d}.txt"))


def _reviews_as_lines(train_csv: str, path: str) -> int:
  """Writes the CSV's reviews one a line (line breaks inside a review become spaces)."""
  import pandas as pd  # pylint: disable=import-outside-toplevel
  reviews = pd.read_csv(train_csv)["review"].astype(str)
  with open(path, "w", encoding="utf-8") as f:
    for review in reviews:
      f.write(" ".join(review.splitlines()).replace("\r", " ") + "\n")
  return len(reviews)


def _experiment(corpus_folder: str, cache_dir: str, model_dir: str, copies: int) -> dict:
  base = config_flags.from_flags(FLAGS, names=_WORKER_FIELDS)
  min_count = base.data.min_count * (copies if FLAGS.scale_min_count else 1)
  return base.replace(train_text=corpus_folder, cleaning="imdb", cache_dir=cache_dir,
                      model_dir=model_dir, analogies="none", progress=False, overwrite=True,
                      min_count=min_count).to_dict()


def _spread(values: list[float]) -> float:
  return (max(values) - min(values)) / max(values)


def report(rows: list[dict]) -> dict:
  """Growth of peak RSS per token (smallest -> largest corpus) and the words/s spread."""
  small, large = rows[0], rows[-1]
  tokens = large["corpus_tokens"] - small["corpus_tokens"]
  summary = {}
  for run in ("cold", "warm"):
    growth = (large[run]["peak_rss_mb"] - small[run]["peak_rss_mb"]) * 2 ** 20 / max(tokens, 1)
    summary[f"{run}_rss_bytes_per_token_growth"] = growth
    summary[f"{run}_words_per_sec_spread"] = _spread([r[run]["words_per_sec"] for r in rows])
  summary["cold_pass_tokens_per_sec_imdb"] = small["cold"]["corpus_tokens_per_sec"]
  summary["targets"] = {
      "rss_growth_le_1_byte_per_token": all(
          summary[f"{run}_rss_bytes_per_token_growth"] <= 1.0 for run in ("cold", "warm")),
      "words_per_sec_within_10_percent": all(
          summary[f"{run}_words_per_sec_spread"] <= 0.10 for run in ("cold", "warm")),
      "cold_pass_ge_1_5M_tokens_per_sec": summary["cold_pass_tokens_per_sec_imdb"] >= 1.5e6}
  return summary


def format_table(rows: list[dict], summary: dict) -> str:
  lines = ["| corpus tokens | vocabulary | cold: peak RSS | cold: corpus pass | warm: peak RSS | "
           "words/s (cold, warm) | RSS bytes / token |",
           "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
  for row in rows:
    cold, warm = row["cold"], row["warm"]
    lines.append(
        f"| {row['corpus_tokens'] / 1e6:,.1f}M | {cold['vocab_size']:,} | "
        f"{cold['peak_rss_mb']:,.0f} MiB | "
        f"{cold['corpus_seconds']:.1f} s ({cold['corpus_tokens_per_sec'] / 1e6:.2f}M tokens/s) | "
        f"{warm['peak_rss_mb']:,.0f} MiB | {cold['words_per_sec'] / 1e3:,.0f}k, "
        f"{warm['words_per_sec'] / 1e3:,.0f}k | "
        f"{cold['peak_rss_mb'] * 2 ** 20 / row['corpus_tokens']:.1f} cold, "
        f"{warm['peak_rss_mb'] * 2 ** 20 / row['corpus_tokens']:.1f} warm |")
  lines.append("")
  lines.append(
      f"Peak RSS growth, smallest to largest corpus: "
      f"{summary['cold_rss_bytes_per_token_growth']:.3f} bytes/token cold, "
      f"{summary['warm_rss_bytes_per_token_growth']:.3f} warm (target <= 1). words/s spread: "
      f"{summary['cold_words_per_sec_spread']:.1%} cold, "
      f"{summary['warm_words_per_sec_spread']:.1%} warm (target <= 10%). Cold pass on IMDB: "
      f"{summary['cold_pass_tokens_per_sec_imdb'] / 1e6:.2f}M tokens/s (target >= 1.5M).")
  return "\n".join(lines) + "\n"


def scale(work_dir: str) -> dict:
  reviews_file = os.path.join(work_dir, "imdb-reviews.txt")
  reviews = _reviews_as_lines(FLAGS.train_csv, reviews_file)
  rows = []
  for copies in sorted(int(c) for c in FLAGS.copies):
    name = f"{copies}x"
    corpus_folder = os.path.join(work_dir, f"corpus-{name}")
    _write_corpus(reviews_file, corpus_folder, copies)
    cache_dir = os.path.join(work_dir, f"cache-{name}")
    row = {"copies": copies, "documents": reviews * copies}
    for run in ("cold", "warm"):
      if run == "cold" and os.path.isdir(cache_dir):
        shutil.rmtree(cache_dir)
      spec = {"experiment": _experiment(corpus_folder, cache_dir,
                                        os.path.join(work_dir, f"model-{name}-{run}"), copies)}
      row[run] = common.run_worker_process(
          f"{name} {run}", ["-m", "benchmarks.scale", "--worker=ours"], spec,
          os.path.join(work_dir, f"run-{name}-{run}"))
      print(f"{name} {run}: peak RSS {row[run]['peak_rss_mb']:,.0f} MiB, corpus pass "
            f"{row[run]['corpus_seconds']:.1f} s, {row[run]['words_per_sec'] / 1e3:,.0f}k "
            "words/s", file=sys.stderr, flush=True)
    row["corpus_tokens"] = row["cold"]["corpus_tokens"]
    shutil.rmtree(cache_dir, ignore_errors=True)  # the next size's corpus needs the disk
    rows.append(row)
  summary = report(rows)
  return {"rows": rows, "summary": summary, "table": format_table(rows, summary),
          "settings": {name: FLAGS[name].value for name in _WORKER_FIELDS + ("scale_min_count",)},
          "cpu": common.cpu_model(), "cpu_isa": common.cpu_isa(), "cores": os.cpu_count()}


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
  if FLAGS.worker:
    spec = common.read_worker_spec(FLAGS.worker_spec)
    common.write_worker_result(spec, worker(spec))
    return
  if not FLAGS.train_csv or not os.path.isfile(FLAGS.train_csv):
    raise UsageError("--train_csv must name the IMDB CSV the corpora are made of")
  if len(FLAGS.copies) < 2:
    raise UsageError("--copies needs at least two sizes (growth is measured between them)")
  with common.work_folder(FLAGS.work_dir, "w2v_scale-") as work_dir:
    payload = scale(work_dir)
  print(payload["table"], file=sys.stderr)
  common.write_json(FLAGS.output_json, payload)
  if FLAGS.output_md:
    with open(FLAGS.output_md, "w", encoding="utf-8") as f:
      f.write(payload["table"])


if __name__ == "__main__":
  define_flags()
  run_main(main)
