"""This project's trainer against gensim's `Word2Vec`, side by side on the same cleaned token stream.

  python -m benchmarks.compare --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --analogies ../shared/data/eval/questions-words.txt \
      --wordsim ../shared/data/eval/wordsim353.tsv \
      --output_json out/compare.json --plot out/compare.png

The corpus is cleaned once with this project's pipeline (`w2v_tf.corpus.load_corpus`, cached).
Both systems then train on the same reviews: the trainer holds `--heldout_reviews` of them out
for its held-out loss (default 1%), and gensim is given exactly the other ones, in corpus order,
as an in-memory list of word lists (the cleaned tokens before min_count and subsampling; gensim
applies `min_count` and `sample` itself). Each run is its own subprocess (this module with
`--worker`), so each reports its own peak RSS, and gensim's process never imports TensorFlow.

Settings shared by both: skip-gram, `--epochs`, `--embedding_dim`, `--window`, `--min_count`,
`--subsample`, `--seed`; gensim also gets `negative=--negative`, `hs=0` (with `--gensim_hs`:
`hs=1, negative=0`, the peer of `--losses=hierarchical_softmax`), `workers=--workers`
(default: the cores this process may use) and its default learning rate; this project trains
each loss in `--losses` (default: its default loss, sampled softmax) with its own defaults
unless `--batch_size`, `--num_sampled`, `--learning_rate`, `--sample_group_centers`,
`--optimizer` or `--jit_compile` are given.

Timing: gensim's `build_vocab` and this project's trainer setup (corpus cache hit, vocabulary,
held-out set, model) are reported as "setup"; words/s counts only the training wall time
(gensim's `train`; the trainer's whole `run` loop with its periodic loss evaluation and
checkpoints, without the final export). words/s = corpus tokens of the training reviews
(cleaned, before min_count and subsampling) x epochs / train seconds, the same numerator for
both. `--repeats N` runs every system N times (alternating) and reports medians.

Every result's vectors are written in word2vec binary format and read back with
`WordVectors.load`, then scored with `eval.analogy.evaluate_analogies` (3CosAdd,
`--restrict_vocab`) and `eval.similarity.evaluate_word_pairs` (Spearman). See benchmarks/README.md.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Sequence

from absl import flags
from absl import logging as absl_logging
import numpy as np

from eval import cli
from w2v_tf import config
from w2v_tf.word_vectors import WordVectors
from w2v_tf.errors import UsageError, UserError, run_main

GENSIM = "gensim"
OUR_LOSSES = config.LOSSES
_REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_STREAM_FILE = "stream.npz"


def _default_workers() -> int:
  try:
    return len(os.sched_getaffinity(0))
  except AttributeError:  # not Linux
    return os.cpu_count() or 1


# This project's settings, as the trainer's own flags (same names, defaults and help): the shared
# data and training settings apply to gensim too.
OUR_FIELDS = ("train_csv", "text_column", "max_reviews", "stopwords", "cache_dir",
              "heldout_reviews", "epochs", "embedding_dim", "window", "min_count", "subsample",
              "seed", "batch_size", "num_sampled", "learning_rate", "sample_group_centers",
              "optimizer", "jit_compile")


def define_flags() -> None:
  """Defines this binary's flags (when it runs as `python -m benchmarks.compare`)."""
  config.define_flags(flags.FLAGS, names=OUR_FIELDS)
  # gensim only.
  flags.DEFINE_integer("negative", 5, "gensim: negative samples per pair.")
  flags.DEFINE_integer("workers", _default_workers(),
                       "gensim: worker threads (default: the cores this process may use).")
  flags.DEFINE_float("gensim_alpha", 0.025, "gensim: initial learning rate (its default).")
  flags.DEFINE_bool("gensim_hs", False, "gensim: hierarchical softmax (hs=1, negative=0) instead "
                    "of negative sampling; the peer of --losses=hierarchical_softmax.")
  # This project only.
  flags.DEFINE_list("losses", ["sampled_softmax"],
                    f"Losses of this project to train, each a row ({', '.join(OUR_LOSSES)}).")
  # Evaluation and output.
  flags.DEFINE_string("analogies", None,
                      "Analogy file (default: data/questions-words.txt, else gensim's copy).")
  flags.DEFINE_string("wordsim", None,
                      "Word-pair file (default: data/wordsim353.tsv, else gensim's copy).")
  flags.DEFINE_integer("restrict_vocab", 30000, "Analogy candidates: the first N words (0 = all).")
  flags.DEFINE_integer("repeats", 1, "Runs per system (medians are reported).")
  flags.DEFINE_string("work_dir", None, "Keep the runs (model dirs, gensim vectors) here; "
                      "default: a temporary folder, removed.")
  flags.DEFINE_string("output_json", None, "Write all results as JSON here.")
  flags.DEFINE_string("plot", None, "Write a bar chart (PNG) here.")
  # Internal: one training run in this process (what the parent starts).
  flags.DEFINE_enum("worker", None, ["gensim", "ours"],
                    "Internal: run one trainer from --worker_spec and write its result.")
  flags.DEFINE_string("worker_spec", None, "Internal: the worker's JSON spec.")


FLAGS = flags.FLAGS


# --- Workers (one training run each, in a subprocess) ----------------------------------------


def peak_rss_mb() -> float:
  """Peak resident memory of this process image, in MiB.

  Linux's VmHWM (the high-water mark of this address space, which starts afresh at exec);
  `ru_maxrss` is the fallback elsewhere, but on Linux it carries the parent's peak across
  fork + exec, which would charge the parent's TensorFlow and corpus to the gensim worker.
  """
  try:
    with open("/proc/self/status", encoding="ascii") as f:
      for line in f:
        if line.startswith("VmHWM:"):
          return int(line.split()[1]) / 1024  # kB
  except OSError:
    pass
  return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB, macOS: bytes


def _write_result(spec: dict, result: dict) -> None:
  result["peak_rss_mb"] = peak_rss_mb()
  with open(spec["result_path"], "w", encoding="utf-8") as f:
    json.dump(result, f, indent=2, sort_keys=True)


def load_stream(path: str) -> list[list[str]]:
  """The training reviews written by `write_stream`, as lists of words (no TensorFlow)."""
  with np.load(path) as data:
    types = np.array(bytes(data["types"]).decode("utf-8").split("\n"), dtype=object)
    token_ids, offsets = data["token_ids"], data["offsets"]
  return [types[token_ids[start:end]].tolist() for start, end in zip(offsets[:-1], offsets[1:])]


def gensim_worker(spec: dict) -> dict:
  """Trains gensim's Word2Vec on the stream; writes word2vec binary vectors."""
  import gensim  # pylint: disable=import-outside-toplevel
  from gensim.models import Word2Vec  # pylint: disable=import-outside-toplevel
  started = time.perf_counter()
  sentences = load_stream(spec["stream_path"])
  stream_seconds = time.perf_counter() - started
  tokens = sum(len(s) for s in sentences)
  model = Word2Vec(vector_size=spec["embedding_dim"], window=spec["window"],
                   min_count=spec["min_count"], sample=spec["subsample"], sg=1, hs=int(spec.get("hs", 0)),
                   negative=0 if spec.get("hs") else spec["negative"], workers=spec["workers"], alpha=spec["alpha"],
                   seed=spec["seed"])
  started = time.perf_counter()
  model.build_vocab(sentences)
  setup_seconds = time.perf_counter() - started
  started = time.perf_counter()
  effective_words, raw_words = model.train(sentences, total_examples=len(sentences),
                                           total_words=tokens, epochs=spec["epochs"])
  train_seconds = time.perf_counter() - started
  model.wv.save_word2vec_format(spec["vectors_path"], binary=True)
  return {"setup_seconds": setup_seconds, "train_seconds": train_seconds,
          "stream_load_seconds": stream_seconds,
          "vocab_size": len(model.wv.index_to_key), "stream_tokens": tokens,
          "raw_words": int(raw_words), "effective_words": int(effective_words),
          "version": f"gensim {gensim.__version__}"}


def ours_worker(spec: dict) -> dict:
  """Runs this project's trainer on the spec's experiment config; its vectors.bin is the result."""
  import tensorflow as tf  # pylint: disable=import-outside-toplevel
  from w2v_tf.build import build_trainer  # pylint: disable=import-outside-toplevel
  experiment = config.ExperimentConfig.from_dict(spec["experiment"])
  log = lambda message: print(f"[{spec['name']}] {message}", file=sys.stderr, flush=True)
  started = time.perf_counter()
  trainer = build_trainer(experiment, log=log)
  setup_seconds = time.perf_counter() - started
  summary = trainer.run()
  if summary.interrupted:
    raise UserError("training was interrupted")
  return {"setup_seconds": setup_seconds, "train_seconds": summary.train_seconds,
          "vocab_size": len(trainer.data.vocab),
          "train_tokens_in_vocab": trainer.data.tokens.num_tokens,
          "trainer_words_per_sec": summary.words_per_sec, "steps": summary.step,
          "learning_rate": trainer.experiment.train.learning_rate,
          "num_sampled": trainer.experiment.model.num_sampled,
          "version": f"tensorflow {tf.__version__}"}


def run_worker(kind: str, spec_path: str) -> None:
  """Runs one trainer as described by the JSON spec the parent wrote; writes its result."""
  for name in ("gensim", "tensorflow"):  # their per-second INFO lines drown the report
    logging.getLogger(name).setLevel(logging.WARNING)
  absl_logging.set_verbosity(absl_logging.WARNING)
  with open(spec_path, encoding="utf-8") as f:
    spec = json.load(f)
  result = gensim_worker(spec) if kind == "gensim" else ours_worker(spec)
  _write_result(spec, result)


# --- The parent: corpus, runs, evaluation, report --------------------------------------------


def write_stream(corpus, review_mask: np.ndarray, path: str) -> int:
  """Writes the chosen reviews' cleaned tokens for the gensim worker. Returns their count.

  Args:
    corpus: a `w2v_tf.corpus.Corpus`.
    review_mask: [R] bool, the reviews to keep (the trainer's training reviews).
    path: the .npz to write.
  """
  lengths = np.diff(corpus.review_offsets)  # [R]
  review_of_token = np.repeat(np.arange(corpus.num_reviews), lengths)  # [T]
  token_ids = corpus.token_ids[review_mask[review_of_token]]
  offsets = np.concatenate([[0], np.cumsum(lengths[review_mask])]).astype(np.int64)
  with open(path, "wb") as f:
    np.savez(f, types="\n".join(corpus.types).encode("utf-8"), token_ids=token_ids,
             offsets=offsets)
  return int(len(token_ids))


def _run_subprocess(name: str, kind: str, spec: dict, run_dir: str,
                    worker: Sequence[str] | None = None) -> dict:
  """Runs one worker on `spec` in its own process; returns the result it wrote.

  `worker`: the command after the interpreter (default: this module's `--worker=kind`).
  """
  worker = list(worker or ["-m", "benchmarks.compare", f"--worker={kind}"])
  os.makedirs(run_dir, exist_ok=True)
  spec = dict(spec, name=name, result_path=os.path.join(run_dir, "result.json"))
  if os.path.exists(spec["result_path"]):  # a kept --work_dir from an earlier comparison
    os.remove(spec["result_path"])
  spec_path = os.path.join(run_dir, "spec.json")
  with open(spec_path, "w", encoding="utf-8") as f:
    json.dump(spec, f, indent=2)
  load = os.getloadavg()[0]
  print(f"--- {name}: training (load average {load:.2f})", file=sys.stderr, flush=True)
  started = time.perf_counter()
  env = dict(os.environ)
  env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
  process = subprocess.run([sys.executable, *worker, f"--worker_spec={spec_path}"],
                           cwd=_REPO_ROOT, env=env, check=False)
  if process.returncode != 0:
    raise UserError(f"the {name} run failed (exit code {process.returncode}); its output is "
                    "above")
  with open(spec["result_path"], encoding="utf-8") as f:
    result = json.load(f)
  result["process_seconds"] = time.perf_counter() - started
  result["load_average_before"] = load
  return result


def _gensim_spec(stream_path: str, run_dir: str) -> dict:
  return {"stream_path": stream_path, "vectors_path": os.path.join(run_dir, "vectors.bin"),
          "embedding_dim": FLAGS.embedding_dim, "window": FLAGS.window,
          "min_count": FLAGS.min_count, "subsample": FLAGS.subsample, "negative": FLAGS.negative,
          "workers": FLAGS.workers, "alpha": FLAGS.gensim_alpha, "seed": FLAGS.seed,
          "epochs": FLAGS.epochs, "hs": FLAGS.gensim_hs}


def our_experiment(loss: str, model_dir: str) -> config.ExperimentConfig:
  """The trainer's config for one row: the flags' settings, skip-gram, `loss`, no analogies."""
  return config.from_flags(FLAGS, names=OUR_FIELDS).replace(
      model="skipgram", loss=loss, model_dir=model_dir, analogies=None, progress=False,
      overwrite=True)


def _ours_spec(loss: str, model_dir: str) -> dict:
  return {"experiment": our_experiment(loss, model_dir).to_dict()}


def evaluate(vectors_path: str, analogies, word_pairs, restrict_vocab: int) -> dict:
  """Analogy and word-pair scores of a vectors file."""
  from eval.analogy import evaluate_analogies  # pylint: disable=import-outside-toplevel
  from eval.similarity import evaluate_word_pairs  # pylint: disable=import-outside-toplevel
  loaded = WordVectors.load(vectors_path)
  words, vectors = list(loaded.words), loaded.vectors
  result = {"vocab_size": len(words)}
  if analogies is not None:
    scores = evaluate_analogies(vectors, words, analogies, restrict_vocab=restrict_vocab)
    result["analogy"] = {part: scores[part] for part in ("total", "semantic", "syntactic")}
    result["analogy"]["sections"] = scores["sections"]
  if word_pairs is not None:
    try:
      result["wordsim"] = evaluate_word_pairs(vectors, words, word_pairs)
    except UserError as e:  # no pair known (tiny corpora)
      result["wordsim"] = {"spearman": float("nan"), "error": str(e)}
  return result


def _median(values):
  values = [v for v in values if v is not None and v == v]
  return statistics.median(values) if values else float("nan")


def summarize(name: str, runs: list[dict]) -> dict:
  """Medians over the repeats of one system."""
  row = {"system": name, "repeats": len(runs)}
  for key in ("setup_seconds", "train_seconds", "words_per_sec", "peak_rss_mb"):
    row[key] = _median([r[key] for r in runs])
  for part in ("total", "semantic", "syntactic"):
    row[f"analogy_{part}"] = _median(
        [r["eval"]["analogy"][part]["accuracy"] for r in runs if "analogy" in r["eval"]])
  row["analogy_coverage"] = _median(
      [r["eval"]["analogy"]["total"]["coverage"] for r in runs if "analogy" in r["eval"]])
  row["analogy_seen"] = _median(
      [r["eval"]["analogy"]["total"]["seen"] for r in runs if "analogy" in r["eval"]])
  row["wordsim_spearman"] = _median(
      [r["eval"]["wordsim"]["spearman"] for r in runs if "wordsim" in r["eval"]])
  row["vocab_size"] = runs[0]["vocab_size"]
  return row


def _fmt(value, pattern: str) -> str:
  if value is None or value != value:
    return "–"
  return pattern.format(value)


def format_table(rows: list[dict]) -> str:
  """The markdown table of the summarized rows (gensim first)."""
  lines = ["| system | setup s | train s | corpus words/s | × gensim | peak RSS MiB | "
           "analogy total | semantic | syntactic | coverage | WS353 ρ |",
           "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
  for row in rows:
    lines.append(
        f"| {row['system']} | {_fmt(row['setup_seconds'], '{:.1f}')} | "
        f"{_fmt(row['train_seconds'], '{:.1f}')} | {_fmt(row['words_per_sec'] / 1e3, '{:,.0f}k')} | "
        f"{_fmt(row.get('ratio_to_gensim'), '{:.2f}×')} | {_fmt(row['peak_rss_mb'], '{:,.0f}')} | "
        f"{_fmt(100 * row['analogy_total'], '{:.1f}%')} | "
        f"{_fmt(100 * row['analogy_semantic'], '{:.1f}%')} | "
        f"{_fmt(100 * row['analogy_syntactic'], '{:.1f}%')} | "
        f"{_fmt(100 * row['analogy_coverage'], '{:.1f}%')} | "
        f"{_fmt(row['wordsim_spearman'], '{:.3f}')} |")
  return "\n".join(lines)


def check_targets(rows: list[dict]) -> dict:
  """The issue's targets for each of our rows against the gensim row."""
  reference = rows[0]
  targets = {}
  for row in rows[1:]:
    ratio = row["ratio_to_gensim"]
    targets[row["system"]] = {
        "throughput_ratio_ge_1": bool(ratio >= 1.0),
        "throughput_ratio_ge_1_5_stretch": bool(ratio >= 1.5),
        "analogy_total_ge_gensim": bool(row["analogy_total"] >= reference["analogy_total"]),
        "wordsim_ge_gensim_minus_0_02": bool(
            row["wordsim_spearman"] >= reference["wordsim_spearman"] - 0.02),
        "peak_rss_le_2GiB": bool(row["peak_rss_mb"] <= 2048),
    }
  return targets


def plot(rows: list[dict], path: str, title: str) -> None:
  """Bar charts of words/s, analogy accuracy (total / semantic / syntactic) and WS353 rho."""
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  names = [row["system"] for row in rows]
  x = np.arange(len(rows))
  figure, axes = plt.subplots(1, 3, figsize=(5 + 3.2 * len(rows), 4.2))
  speeds = [row["words_per_sec"] / 1e3 for row in rows]
  axes[0].bar(x, speeds, color=["tab:gray"] + ["tab:blue"] * (len(rows) - 1))
  for i, row in enumerate(rows[1:], start=1):
    axes[0].annotate(f"{row['ratio_to_gensim']:.2f}×", (i, speeds[i]), ha="center",
                     va="bottom")
  axes[0].set_title("training throughput")
  axes[0].set_ylabel("corpus words/s (thousands)")
  width = 0.27
  for offset, part in zip((-width, 0, width), ("total", "semantic", "syntactic")):
    axes[1].bar(x + offset, [100 * np.nan_to_num(row[f"analogy_{part}"]) for row in rows],
                width, label=part)
  axes[1].set_title("analogy accuracy (3CosAdd)")
  axes[1].set_ylabel("% of covered questions")
  top = max([100 * np.nan_to_num(row[f"analogy_{part}"]) for row in rows
             for part in ("total", "semantic", "syntactic")] + [1e-3])
  axes[1].set_ylim(0, 1.3 * top)  # room for the legend above the bars
  axes[1].legend(fontsize="small", ncol=3, loc="upper center")
  axes[2].bar(x, [np.nan_to_num(row["wordsim_spearman"]) for row in rows],
              color=["tab:gray"] + ["tab:green"] * (len(rows) - 1))
  axes[2].set_title("WordSim353 Spearman ρ")
  for axis in axes:
    axis.set_xticks(x, names, rotation=15, fontsize="small")
  figure.suptitle(title, fontsize="small")
  figure.tight_layout()
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  figure.savefig(path, dpi=110)
  plt.close(figure)


def _system_name(loss: str) -> str:
  return f"w2v-tf ({loss})"


def compare(work_dir: str) -> dict:
  """Cleans the corpus, runs every system, evaluates; returns the JSON payload."""
  # pylint: disable=import-outside-toplevel
  from eval.analogy import QUESTIONS_URL, read_analogies
  from eval.similarity import WORDSIM_URL, read_word_pairs
  from w2v_tf import corpus as corpus_lib
  from w2v_tf import pipeline, text

  analogies = read_analogies(cli.find_data_file(
      "questions-words.txt", FLAGS.analogies, "--analogies", QUESTIONS_URL))
  word_pairs = read_word_pairs(cli.find_data_file(
      "wordsim353.tsv", FLAGS.wordsim, "--wordsim", WORDSIM_URL))

  started = time.perf_counter()
  stopwords = text.load_stopwords(FLAGS.stopwords)
  corpus = corpus_lib.load_corpus(FLAGS.train_csv, FLAGS.text_column, FLAGS.max_reviews,
                                  stopwords, FLAGS.cache_dir or None)
  corpus_seconds = time.perf_counter() - started
  heldout = pipeline.split_heldout(corpus.num_reviews, FLAGS.heldout_reviews, FLAGS.seed)
  stream_path = os.path.join(work_dir, _STREAM_FILE)
  train_tokens = write_stream(corpus, ~heldout, stream_path)
  train_reviews = int((~heldout).sum())
  del corpus
  print(f"corpus: {train_reviews:,} training reviews ({int(heldout.sum()):,} held out), "
        f"{train_tokens:,} cleaned tokens; {corpus_seconds:.1f}s to load", file=sys.stderr)

  systems = [(GENSIM, "gensim", None)] + [(_system_name(loss), "ours", loss)
                                          for loss in FLAGS.losses]
  runs = {name: [] for name, _, _ in systems}
  for repeat in range(FLAGS.repeats):
    for name, kind, loss in systems:
      run_dir = os.path.join(work_dir, f"{kind}-{loss or 'gensim'}-r{repeat}")
      if kind == "gensim":
        spec = _gensim_spec(stream_path, run_dir)
        vectors_path = spec["vectors_path"]
      else:
        spec = _ours_spec(loss, run_dir)
        vectors_path = os.path.join(run_dir, "vectors.bin")
      result = _run_subprocess(name, kind, spec, run_dir)
      result["words_per_sec"] = train_tokens * FLAGS.epochs / result["train_seconds"]
      result["eval"] = evaluate(vectors_path, analogies, word_pairs, FLAGS.restrict_vocab)
      result["repeat"] = repeat
      runs[name].append(result)
      total = result["eval"].get("analogy", {}).get("total", {})
      print(f"--- {name}: {result['train_seconds']:.1f}s train, "
            f"{result['words_per_sec'] / 1e3:,.0f}k words/s, {result['peak_rss_mb']:,.0f} MiB, "
            f"analogy {100 * total.get('accuracy', float('nan')):.1f}%", file=sys.stderr,
            flush=True)

  rows = [summarize(name, runs[name]) for name, _, _ in systems]
  for row in rows:
    row["ratio_to_gensim"] = row["words_per_sec"] / rows[0]["words_per_sec"]
  versions = {name: runs[name][0].get("version") for name, _, _ in systems}
  return {
      "settings": {
          "train_csv": FLAGS.train_csv, "max_reviews": FLAGS.max_reviews,
          "stopwords": FLAGS.stopwords, "heldout_reviews": FLAGS.heldout_reviews,
          "epochs": FLAGS.epochs, "embedding_dim": FLAGS.embedding_dim, "window": FLAGS.window,
          "min_count": FLAGS.min_count, "subsample": FLAGS.subsample, "seed": FLAGS.seed,
          "negative": FLAGS.negative, "workers": FLAGS.workers,
          "gensim_alpha": FLAGS.gensim_alpha, "losses": list(FLAGS.losses),
          "batch_size": FLAGS.batch_size, "num_sampled": FLAGS.num_sampled,
          "learning_rate": FLAGS.learning_rate,
          "sample_group_centers": FLAGS.sample_group_centers, "optimizer": FLAGS.optimizer,
          "jit_compile": FLAGS.jit_compile, "restrict_vocab": FLAGS.restrict_vocab,
          "analogies": analogies.path, "wordsim": word_pairs.path, "repeats": FLAGS.repeats},
      "machine": {"cores": _default_workers(), "cpu_count": os.cpu_count(),
                  "platform": platform.platform(), "python": platform.python_version(),
                  "versions": versions},
      "corpus": {"train_reviews": train_reviews, "heldout_reviews": int(heldout.sum()),
                 "train_tokens": train_tokens, "load_seconds": corpus_seconds},
      "command": " ".join(["python -m benchmarks.compare",
                           *(shlex.quote(arg) for arg in sys.argv[1:])]),
      "rows": rows,
      "ratio": {row["system"]: row["ratio_to_gensim"] for row in rows[1:]},
      "targets": check_targets(rows),
      "runs": runs,
      "table": format_table(rows),
  }


def _validate() -> None:
  problems = []
  for name in ("negative", "workers", "repeats"):
    if getattr(FLAGS, name) <= 0:
      problems.append(f"--{name} must be positive (got {getattr(FLAGS, name)})")
  unknown = [loss for loss in FLAGS.losses if loss not in OUR_LOSSES]
  if unknown or not FLAGS.losses:
    problems.append(f"--losses must name some of {', '.join(OUR_LOSSES)} (got "
                    f"{','.join(FLAGS.losses)!r})")
  if problems:
    raise UsageError("; ".join(problems))
  for loss in FLAGS.losses:  # the trainer's own checks of its settings
    our_experiment(loss, "unused").resolved().validate()


def main(argv: Sequence[str]) -> None:
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  if FLAGS.worker:
    run_worker(FLAGS.worker, FLAGS.worker_spec)
    return
  _validate()
  work_dir = FLAGS.work_dir or tempfile.mkdtemp(prefix="w2v-compare-")
  os.makedirs(work_dir, exist_ok=True)
  try:
    payload = compare(work_dir)
  finally:
    if not FLAGS.work_dir:
      shutil.rmtree(work_dir, ignore_errors=True)
  if FLAGS.output_json:
    _write_json(FLAGS.output_json, payload)
  if FLAGS.plot:
    settings = payload["settings"]
    plot(payload["rows"], FLAGS.plot,
         f"{os.path.basename(settings['train_csv'])}: {payload['corpus']['train_tokens']:,} "
         f"tokens x {settings['epochs']} epochs, dim {settings['embedding_dim']}, window "
         f"{settings['window']}, {payload['machine']['cores']} cores")
  print(payload["table"])
  for system, checks in payload["targets"].items():
    print(f"{system}: " + ", ".join(f"{k} {'yes' if v else 'NO'}" for k, v in checks.items()))


def _write_json(path: str, payload: dict) -> None:
  from w2v_tf.fileio import atomic_write_text  # pylint: disable=import-outside-toplevel
  directory = os.path.dirname(os.path.abspath(path))
  os.makedirs(directory, exist_ok=True)
  atomic_write_text(path, json.dumps(payload, indent=2, sort_keys=True, allow_nan=True) + "\n")
  print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
  define_flags()
  run_main(main)
