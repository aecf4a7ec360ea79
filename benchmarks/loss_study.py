"""Every training loss of this project on one corpus: speed, exact held-out loss and quality.

  python -m benchmarks.loss_study --train_csv ../shared/data/imdb/IMDB_Dataset.csv.gz \
      --analogies ../shared/data/eval/questions-words.txt \
      --wordsim ../shared/data/eval/wordsim353.tsv --epochs 2 --output_dir docs/loss_study

Trains skip-gram once per run, all on the same cleaned reviews with the same epochs, dimension,
window, min_count, subsampling and seed:

  sampled_softmax/{unigram,log_uniform,uniform}/{16,64,256}  sampler x candidates per group
  nce/unigram/64, negative_sampling/5                         the other sampled losses
  hierarchical_softmax                                        word2vec's Huffman tree
  gensim_hs                                                   gensim, hs=1, negative=0: its peer
  full_softmax                                                the exact reference (slowest, last)

Each run is its own subprocess (this module with `--worker`, or `benchmarks.compare`'s gensim
worker), so each reports its own peak RSS (VmHWM) and starts with a clean TensorFlow. Measured
per run: the trainer's curve of the exact full-softmax cross-entropy on its fixed held-out set
and of the gradient cosine against training seconds (every `--eval_every_steps` steps and at
each epoch end), the analogy accuracy at each epoch end (3CosAdd, `--restrict_vocab`
candidates), and at the end the exported vectors' analogy total / semantic / syntactic accuracy
and WordSim353 Spearman, scored by `benchmarks.common.evaluate_vectors`. Hierarchical softmax is
a normalised model, so its "held-out CE" is its tree's own exact cross-entropy.

words/s has compare.py's numerator: corpus tokens of the training reviews (cleaned, before
min_count and subsampling) x epochs, over train seconds: for our runs the trainer's training
clock (`TrainSummary` curve / epoch "seconds": wall-clock of the `run()` loop with first-step
compilation and checkpoints, less the exact-loss evaluations, which this study runs 10x as often
as the trainer's default, and the epoch-end analogy scoring); for gensim its `train` call. The
whole loop's seconds are kept as "run_seconds".

Writes to --output_dir: loss_study.json (rewritten after every run, so a failed or interrupted
run loses nothing before it), loss_study.md (the table), heldout_vs_seconds.png and
heldout_vs_analogy.png. Progress goes to stderr; the table is printed at the end.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
import traceback
from typing import Iterable, Sequence

from benchmarks import common, compare
from benchmarks.common import format_value
from w2v_tf import config, config_flags
from w2v_tf.errors import UsageError, UserError, run_main

GENSIM_RUN = "gensim_hs"
HS_RUN = "hierarchical_softmax"
SAMPLERS = ("unigram", "log_uniform", "uniform")
SAMPLED_SOFTMAX_CANDIDATES = (16, 64, 256)
JSON_FILE, TABLE_FILE = "loss_study.json", "loss_study.md"
SECONDS_PLOT, ANALOGY_PLOT = "heldout_vs_seconds.png", "heldout_vs_analogy.png"
HS_GENSIM_TOLERANCE_POINTS = 1.5  # |our hs - gensim hs=1| analogy total, percentage points

# The trainer's settings every run shares, as its own flags (same names, defaults and help); the
# loss, sampler and num_sampled are the runs' own.
STUDY_FIELDS = ("train_csv", "text_column", "max_reviews", "stopwords", "cache_dir",
                "heldout_reviews", "epochs", "embedding_dim", "window", "min_count", "subsample",
                "seed", "batch_size", "learning_rate", "sample_group_centers", "optimizer",
                "jit_compile", "eval_every_steps", "heldout_centers")
# The gensim run is compare.py's gensim worker; ours is this module's.
GENSIM_WORKER = ("-m", "benchmarks.compare", "--worker=gensim")
OURS_WORKER = ("-m", "benchmarks.loss_study", "--worker")
# The trainer's 4,000 would give a curve of 3-5 points on IMDB (~1,350 steps an epoch).
DEFAULT_EVAL_EVERY_STEPS = 200


@dataclasses.dataclass(frozen=True)
class Run:
  """One row: a loss of ours with its sampler and num_sampled, or gensim (loss "gensim").

  `learning_rate` overrides the shared one for this run only (None: the shared one).
  """
  name: str
  loss: str
  sampler: str | None = None
  num_sampled: int | None = None
  learning_rate: float | None = None


# NCE at word2vec's 0.025 diverged by step 100 on IMDB (its loss starts at 343: every sampled
# rare word's logit is corrected by -log Q ~ +10); at 0.005 it trains.
NCE_LEARNING_RATE = 0.005


def all_runs() -> list[Run]:
  """Every run of the study, in the order they train (the full softmax, slowest, last)."""
  runs = [Run(f"sampled_softmax/{sampler}/{k}", "sampled_softmax", sampler, k)
          for sampler in SAMPLERS for k in SAMPLED_SOFTMAX_CANDIDATES]
  runs += [Run("nce/unigram/64", "nce", "unigram", 64, NCE_LEARNING_RATE),
           Run("negative_sampling/5", "negative_sampling", "unigram", 5),
           Run(HS_RUN, "hierarchical_softmax"),
           Run(GENSIM_RUN, "gensim"),
           Run("full_softmax", "full_softmax")]
  return runs


def select_runs(names: Iterable[str] | None) -> list[Run]:
  """The runs named (all when `names` is empty or None), in the study's order."""
  runs = all_runs()
  wanted = [name.strip() for name in names or () if name.strip()]
  if not wanted:
    return runs
  known = {run.name for run in runs}
  unknown = [name for name in wanted if name not in known]
  if unknown:
    raise UsageError(f"--runs: unknown run(s) {', '.join(unknown)}; the runs are "
                     f"{', '.join(sorted(known))}")
  return [run for run in runs if run.name in wanted]


@dataclasses.dataclass(frozen=True)
class Settings:
  """What every run shares, besides the trainer's own config."""
  base: config.ExperimentConfig  # the shared trainer settings (not resolved)
  analogies: str
  wordsim: str
  restrict_vocab: int = 30000
  full_softmax_epochs: int | None = None  # None: base's epochs
  full_softmax_max_vocab: int = 0  # 0: the same vocabulary as the others
  workers: int = 1  # gensim's threads
  gensim_alpha: float = 0.025

  @property
  def epochs(self) -> int:
    return self.base.train.epochs

  def epochs_of(self, run: Run) -> int:
    if run.loss == "full_softmax" and self.full_softmax_epochs:
      return self.full_softmax_epochs
    return self.epochs

  def full_softmax_reduction(self) -> str | None:
    """How the full softmax differs from the other runs, in words (None: it doesn't)."""
    parts = []
    if self.full_softmax_epochs and self.full_softmax_epochs != self.epochs:
      parts.append(f"{self.full_softmax_epochs} epoch(s) instead of {self.epochs}")
    if self.full_softmax_max_vocab:
      parts.append(f"its vocabulary capped at the {self.full_softmax_max_vocab:,} most frequent "
                   "words (its held-out CE is over that smaller softmax, so lower than a "
                   "full-vocabulary one; held-out pairs with a dropped word are not counted)")
    return "; ".join(parts) or None


def run_experiment(settings: Settings, run: Run, model_dir: str) -> config.ExperimentConfig:
  """The trainer's config for one of our runs: shared settings, skip-gram, the run's loss."""
  changes = {"model": "skipgram", "loss": run.loss, "model_dir": model_dir, "analogies": None,
             "progress": False, "overwrite": True}
  if run.sampler is not None:
    changes["sampler"] = run.sampler
  changes["num_sampled"] = run.num_sampled  # None: the trainer's default (unused by hs / full)
  if run.learning_rate is not None:
    changes["learning_rate"] = run.learning_rate
  if run.loss == "full_softmax":
    changes["epochs"] = settings.epochs_of(run)
    if settings.full_softmax_max_vocab:
      changes["max_vocab"] = settings.full_softmax_max_vocab
  return settings.base.replace(**changes)


# --- Our worker (one training run, in its own process) ---------------------------------------


def ours_worker(spec: dict) -> dict:
  """Trains one config with the per-epoch analogy callback; returns the summary's numbers.

  Args:
    spec: {"name", "experiment" (ExperimentConfig.to_dict()), "analogies" (path),
      "restrict_vocab"}.
  """
  # pylint: disable=import-outside-toplevel
  import tensorflow as tf
  from eval.analogy import evaluate_analogies, read_analogies
  from w2v_tf import monitor
  from w2v_tf.build import build_trainer
  experiment = config.ExperimentConfig.from_dict(spec["experiment"])
  def log(message: str) -> None:
    print(f"[{spec['name']}] {message}", file=sys.stderr, flush=True)
  analogies = read_analogies(spec["analogies"])  # read once, scored every epoch
  restrict_vocab = spec["restrict_vocab"]
  # As w2v_tf.train's callback, with the final evaluation's candidates so the points agree.
  callback = monitor.AnalogyEvaluation(
      lambda vectors: evaluate_analogies(vectors.vectors, list(vectors.words), analogies,
                                         restrict_vocab=restrict_vocab), log)
  started = time.perf_counter()
  trainer = build_trainer(experiment, extra_callbacks=[callback], log=log)
  setup_seconds = time.perf_counter() - started
  summary = trainer.run()
  if summary.interrupted:
    raise UserError("training was interrupted")
  epochs = [{"epoch": e["epoch"], "step": e["step"], "seconds": e["seconds"],
             "trainer_words_per_sec": e.get("words_per_sec")} for e in summary.epochs]
  for point, scores in zip(epochs, _analogy_by_epoch(summary.analogy, epochs)):
    point["analogy"] = scores
  return {"setup_seconds": setup_seconds, "train_seconds": summary.train_seconds,
          "trainer_words_per_sec": summary.words_per_sec, "eval_seconds": summary.eval_seconds,
          "steps": summary.step, "vocab_size": len(trainer.data.vocab),
          "train_tokens_in_vocab": trainer.data.tokens.num_tokens,
          "learning_rate": trainer.experiment.train.learning_rate,
          "num_sampled": trainer.experiment.model.num_sampled,
          "vectors_path": summary.exported.get("binary"),
          "curve": summary.curve, "epochs": epochs, "version": f"tensorflow {tf.__version__}"}


def _analogy_by_epoch(analogy: list[dict], epochs: list[dict]) -> list[dict]:
  """{part: accuracy} for each epoch of `epochs` ({} where it was not scored)."""
  by_epoch = {entry["epoch"]: entry for entry in analogy}
  return [{part: by_epoch[e["epoch"]][part]["accuracy"]
           for part in ("total", "semantic", "syntactic")} if e["epoch"] in by_epoch else {}
          for e in epochs]


def run_worker(spec_path: str) -> None:
  """Runs `ours_worker` on the JSON spec the parent wrote; writes its result beside it."""
  common.quiet_library_logs()
  spec = common.read_worker_spec(spec_path)
  common.write_worker_result(spec, ours_worker(spec))


def _run_ours(name: str, spec: dict, run_dir: str) -> dict:
  """Runs `spec` in `python -m benchmarks.loss_study --worker`; returns its result."""
  return common.run_worker_process(name, OURS_WORKER, spec, run_dir)


# --- The parent: corpus, runs, scores, report ------------------------------------------------


def _gensim_spec(settings: Settings, stream_path: str, run_dir: str) -> dict:
  """compare.gensim_worker's spec: hs=1, negative=0, the shared settings."""
  data, model = settings.base.data, settings.base.model
  return {"stream_path": stream_path, "vectors_path": os.path.join(run_dir, "vectors.bin"),
          "embedding_dim": model.embedding_dim, "window": data.window,
          "min_count": data.min_count, "subsample": data.subsample, "negative": 0, "hs": True,
          "workers": settings.workers, "alpha": settings.gensim_alpha, "seed": data.seed,
          "epochs": settings.epochs}


def _at_step(curve: list[dict], step: int) -> dict:
  """The curve's point at `step` (the latest one before it if none is exactly there)."""
  before = [point for point in curve if point["step"] <= step]
  return before[-1] if before else {}


def _nan() -> float:
  return float("nan")


def _row(run: Run, settings: Settings, result: dict, scores: dict, train_tokens: int) -> dict:
  """One run's record: its settings, headline numbers, curve and per-epoch points."""
  epochs = settings.epochs_of(run)
  curve = result.get("curve", [])
  last = curve[-1] if curve else {}
  per_epoch = []
  for point in result.get("epochs", []):
    exact = _at_step(curve, point["step"])
    per_epoch.append({**point, "heldout_ce": exact.get("full_softmax_heldout", _nan()),
                      "grad_cosine": exact.get("grad_cosine", _nan())})
  # Ours: the trainer's training clock at the last epoch end (the exact comparisons, which
  # this study runs 10x as often as the trainer's default, and the epoch-end analogy scoring
  # excluded, as on the curves' time axis); gensim: its `train` call.
  train_seconds = (result["epochs"][-1]["seconds"] if result.get("epochs")
                   else result["train_seconds"])
  analogy = scores.get("analogy", {})
  return {
      "name": run.name, "loss": run.loss, "sampler": run.sampler,
      "run_learning_rate": run.learning_rate,
      "num_sampled": result.get("num_sampled") if run.num_sampled is None and run.loss in (
          "sampled_softmax", "nce", "negative_sampling") else run.num_sampled,
      "epochs": epochs, "status": "ok",
      "setup_seconds": result["setup_seconds"], "train_seconds": train_seconds,
      "run_seconds": result["train_seconds"],
      "words_per_sec": train_tokens * epochs / train_seconds,
      "trainer_words_per_sec": result.get("trainer_words_per_sec"),
      "eval_seconds": result.get("eval_seconds"), "steps": result.get("steps"),
      "heldout_ce": last.get("full_softmax_heldout", _nan()),
      "grad_cosine": last.get("grad_cosine", _nan()),
      "analogy": {part: analogy[part]["accuracy"] for part in ("total", "semantic", "syntactic")
                  } if analogy else {},
      "analogy_seen": analogy.get("total", {}).get("seen"),
      "analogy_coverage": analogy.get("total", {}).get("coverage"),
      "wordsim": scores.get("wordsim", {}).get("spearman", _nan()),
      "peak_rss_mb": result["peak_rss_mb"], "vocab_size": result.get("vocab_size"),
      "learning_rate": result.get("learning_rate"), "version": result.get("version"),
      "process_seconds": result.get("process_seconds"),
      "load_average_before": result.get("load_average_before"),
      "curve": curve, "per_epoch": per_epoch,
  }


def hs_vs_gensim(rows: list[dict]) -> dict | None:
  """Our hierarchical softmax's analogy total against gensim hs=1's (None: not both ran)."""
  by_name = {row["name"]: row for row in rows if row.get("status") == "ok"}
  ours, peer = by_name.get(HS_RUN), by_name.get(GENSIM_RUN)
  if not ours or not peer or "total" not in ours["analogy"] or "total" not in peer["analogy"]:
    return None
  difference = 100 * (ours["analogy"]["total"] - peer["analogy"]["total"])
  return {HS_RUN: ours["analogy"]["total"], GENSIM_RUN: peer["analogy"]["total"],
          "difference_points": difference, "tolerance_points": HS_GENSIM_TOLERANCE_POINTS,
          "within_tolerance": bool(abs(difference) <= HS_GENSIM_TOLERANCE_POINTS)}


TABLE_COLUMNS = ("run", "train s", "words/s", "held-out CE", "grad cos", "analogy total",
                 "semantic", "syntactic", "WS353 ρ", "peak RSS MiB")


def format_table(rows: list[dict], full_softmax_reduction: str | None = None) -> str:
  """The markdown report: one table row per run, footnotes, and the hs-vs-gensim line."""
  lines = ["| " + " | ".join(TABLE_COLUMNS) + " |",
           "| --- |" + " ---: |" * (len(TABLE_COLUMNS) - 1)]
  for row in rows:
    if row.get("status") != "ok":
      lines.append(f"| {row['name']} (failed) |" + " – |" * (len(TABLE_COLUMNS) - 1))
      continue
    name, ce_mark = row["name"], ""
    if row["loss"] == "gensim":
      name += " (gensim hs=1)"
    elif row["loss"] == "hierarchical_softmax":
      ce_mark = " ¹"
    elif row["loss"] == "full_softmax" and full_softmax_reduction:
      name += " ²"
    if row.get("run_learning_rate") is not None:
      name += f" (lr {row['run_learning_rate']:g})"
    analogy = row["analogy"]
    lines.append(
        f"| {name} | {format_value(row['train_seconds'], '{:.1f}')} | "
        f"{format_value(row['words_per_sec'] / 1e3, '{:,.0f}k')} | "
        f"{format_value(row['heldout_ce'], '{:.3f}')}{ce_mark} | "
        f"{format_value(row['grad_cosine'], '{:.3f}')} | "
        + " | ".join(format_value(100 * analogy[part] if part in analogy else None, "{:.1f}%")
                     for part in ("total", "semantic", "syntactic"))
        + f" | {format_value(row['wordsim'], '{:.3f}')} | "
        f"{format_value(row['peak_rss_mb'], '{:,.0f}')} |")
  lines += ["", "words/s: corpus tokens of the training reviews (cleaned, before min_count and "
            "subsampling) x epochs / train s (the trainer's training clock: its run loop less "
            "the exact-loss evaluations and the epoch-end analogy scoring; gensim's `train`). "
            "(lr x): that run's own learning rate. held-out CE: the exact full-softmax "
            "cross-entropy per pair on the fixed held-out set at the last step (nats); grad "
            "cos: cosine between the training loss's gradient and the exact loss's on held-out "
            "centers (1 for the exact losses). Analogy: 3CosAdd accuracy on the covered "
            "questions; WS353: Spearman ρ.",
            "",
            "¹ hierarchical softmax is a normalised model: its held-out CE is its Huffman "
            "tree's own exact cross-entropy, not a softmax over the output table."]
  if full_softmax_reduction:
    lines += ["", f"² full_softmax was reduced to keep it affordable: {full_softmax_reduction}."]
  comparison = hs_vs_gensim(rows)
  if comparison is not None:
    lines += ["", f"hierarchical_softmax vs gensim hs=1, analogy total: "
              f"{100 * comparison[HS_RUN]:.1f}% vs {100 * comparison[GENSIM_RUN]:.1f}%, "
              f"difference {comparison['difference_points']:+.1f} points (within "
              f"±{HS_GENSIM_TOLERANCE_POINTS} points: "
              f"{'yes' if comparison['within_tolerance'] else 'NO'})."]
  return "\n".join(lines)


def _pyplot():
  import matplotlib  # pylint: disable=import-outside-toplevel
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt  # pylint: disable=import-outside-toplevel
  return plt


def _curves(rows: list[dict]) -> list[dict]:
  return [row for row in rows if row.get("status") == "ok" and row.get("curve")]


def _styles(count: int) -> list[dict]:
  """Line styles telling up to 30 runs apart: tab10's colours, then dashed, then dotted."""
  colormap = _pyplot().get_cmap("tab10")
  return [{"color": colormap(i % 10), "linestyle": ("-", "--", ":")[(i // 10) % 3]}
          for i in range(count)]


def _save(figure, path: str) -> None:
  os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
  figure.tight_layout()
  figure.savefig(path, dpi=90)
  _pyplot().close(figure)


def plot_heldout_vs_seconds(rows: list[dict], path: str, title: str = "") -> None:
  """Exact held-out cross-entropy against wall-clock seconds, one line per run with a curve."""
  plt = _pyplot()
  figure, axis = plt.subplots(figsize=(9, 5.5))
  with_curves = _curves(rows)
  for row, style in zip(with_curves, _styles(len(with_curves))):
    points = [p for p in row["curve"] if p["full_softmax_heldout"] == p["full_softmax_heldout"]]
    axis.plot([p["seconds"] for p in points], [p["full_softmax_heldout"] for p in points],
              marker=".", markersize=4, linewidth=1.2, label=row["name"], **style)
  axis.set_xlabel("training seconds since the run's start (exact evaluations excluded)")
  axis.set_ylabel("exact held-out cross-entropy (nats per pair)")
  axis.set_title(title or "held-out cross-entropy vs training time", fontsize="medium")
  axis.grid(alpha=0.3)
  if with_curves:
    axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
  _save(figure, path)


def plot_heldout_vs_analogy(rows: list[dict], path: str, title: str = "") -> None:
  """Held-out CE at each epoch end against that epoch's analogy total, one series per run."""
  plt = _pyplot()
  figure, axis = plt.subplots(figsize=(9, 5.5))
  with_curves = _curves(rows)
  for row, style in zip(with_curves, _styles(len(with_curves))):
    points = [p for p in row["per_epoch"] if "total" in p.get("analogy", {})]
    x = [p["heldout_ce"] for p in points]
    y = [100 * p["analogy"]["total"] for p in points]
    axis.plot(x, y, marker="o", markersize=5, linewidth=1.0, label=row["name"], **style)
    for p, xi, yi in zip(points, x, y):
      axis.annotate(str(p["epoch"]), (xi, yi), fontsize="xx-small", xytext=(3, 3),
                    textcoords="offset points")
  axis.set_xlabel("exact held-out cross-entropy at the epoch's end (nats per pair)")
  axis.set_ylabel("analogy total accuracy at that epoch (%)")
  axis.set_title(title or "held-out cross-entropy vs analogy accuracy (labels: epoch)",
                 fontsize="medium")
  axis.grid(alpha=0.3)
  if with_curves:
    axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(1.01, 1.0))
  _save(figure, path)


def write_outputs(payload: dict, output_dir: str, plots: bool = True) -> None:
  """loss_study.json always; loss_study.md and the two plots with `plots`."""
  from w2v_tf.fileio import atomic_write_text  # pylint: disable=import-outside-toplevel
  os.makedirs(output_dir, exist_ok=True)
  common.save_json(os.path.join(output_dir, JSON_FILE), payload)
  if not plots:
    return
  atomic_write_text(os.path.join(output_dir, TABLE_FILE), payload["table"] + "\n")
  title = payload.get("title", "")
  plot_heldout_vs_seconds(payload["runs"], os.path.join(output_dir, SECONDS_PLOT), title)
  plot_heldout_vs_analogy(payload["runs"], os.path.join(output_dir, ANALOGY_PLOT), title)


def study(runs: Sequence[Run], settings: Settings, work_dir: str, output_dir: str,
          command: str = "") -> dict:
  """Cleans the corpus once, trains and scores every run; returns (and writes) the payload."""
  # pylint: disable=import-outside-toplevel
  from eval.analogy import read_analogies
  from eval.similarity import read_word_pairs
  from w2v_tf import corpus as corpus_lib
  from w2v_tf import pipeline, text

  analogies = read_analogies(settings.analogies)
  word_pairs = read_word_pairs(settings.wordsim)
  data = settings.base.data
  started = time.perf_counter()
  corpus = corpus_lib.load_corpus(data.train_csv, data.text_column, data.max_reviews,
                                  text.load_stopwords(data.stopwords), data.cache_dir or None)
  corpus_seconds = time.perf_counter() - started
  heldout = pipeline.split_heldout(corpus.num_reviews, data.heldout_reviews, data.seed)
  # gensim gets exactly our training reviews; the stream's count is words/s's numerator.
  os.makedirs(work_dir, exist_ok=True)
  stream_path = os.path.join(work_dir, "stream.npz")
  train_tokens = compare.write_stream(corpus, ~heldout, stream_path)
  del corpus
  print(f"corpus: {int((~heldout).sum()):,} training reviews ({int(heldout.sum()):,} held "
        f"out), {train_tokens:,} cleaned tokens; {corpus_seconds:.1f}s to load",
        file=sys.stderr, flush=True)

  base = settings.base.resolved()
  reduction = settings.full_softmax_reduction()
  payload = {
      "settings": {**{name: getattr(getattr(base, section), name)
                      for section in ("data", "model", "train", "runtime")
                      for name in STUDY_FIELDS if hasattr(getattr(base, section), name)},
                   "restrict_vocab": settings.restrict_vocab,
                   "full_softmax_epochs": settings.epochs_of(Run("full_softmax", "full_softmax")),
                   "full_softmax_max_vocab": settings.full_softmax_max_vocab,
                   "full_softmax_reduction": reduction,
                   "gensim_workers": settings.workers, "gensim_alpha": settings.gensim_alpha,
                   "analogies": settings.analogies, "wordsim": settings.wordsim,
                   "runs": [run.name for run in runs]},
      "machine": common.machine(),
      "corpus": {"train_reviews": int((~heldout).sum()), "heldout_reviews": int(heldout.sum()),
                 "train_tokens": train_tokens, "load_seconds": corpus_seconds},
      "command": command, "runs": [], "hs_vs_gensim": None, "table": "",
      "title": (f"{os.path.basename(data.train_csv)}: {train_tokens:,} tokens, dim "
                f"{base.model.embedding_dim}, {settings.epochs} epoch(s), "
                f"{common.available_cores()} cores"),
  }
  for run in runs:
    run_dir = os.path.join(work_dir, run.name.replace("/", "-"))
    try:
      if run.loss == "gensim":
        spec = _gensim_spec(settings, stream_path, run_dir)
        result = common.run_worker_process(run.name, GENSIM_WORKER, spec, run_dir)
        vectors_path = spec["vectors_path"]
      else:
        spec = {"experiment": run_experiment(settings, run, run_dir).to_dict(),
                "analogies": analogies.path, "restrict_vocab": settings.restrict_vocab}
        result = _run_ours(run.name, spec, run_dir)
        vectors_path = result.get("vectors_path") or os.path.join(run_dir, "vectors.bin")
      scores = common.evaluate_vectors(vectors_path, analogies, word_pairs,
                                       settings.restrict_vocab)
      row = _row(run, settings, result, scores, train_tokens)
      print(f"--- {run.name}: {row['train_seconds']:.1f}s train, "
            f"{row['words_per_sec'] / 1e3:,.0f}k words/s, held-out CE {row['heldout_ce']:.3f}, "
            f"grad cos {row['grad_cosine']:.3f}, analogy "
            f"{100 * row['analogy'].get('total', _nan()):.1f}%, WS353 {row['wordsim']:.3f}, "
            f"{row['peak_rss_mb']:,.0f} MiB", file=sys.stderr, flush=True)
    except Exception as e:  # pylint: disable=broad-except
      # One failed run must not cost the others: record it and go on.
      print(f"--- {run.name}: FAILED: {e}", file=sys.stderr, flush=True)
      row = {"name": run.name, "loss": run.loss, "sampler": run.sampler,
             "num_sampled": run.num_sampled, "status": "failed", "error": str(e),
             "traceback": traceback.format_exc()}
    payload["runs"].append(row)
    payload["hs_vs_gensim"] = hs_vs_gensim(payload["runs"])
    payload["table"] = format_table(payload["runs"], reduction)
    write_outputs(payload, output_dir, plots=False)  # after every run: nothing is lost
  write_outputs(payload, output_dir)
  return payload


# --- The binary ------------------------------------------------------------------------------


def define_flags() -> None:
  """Defines this binary's flags (when it runs as `python -m benchmarks.loss_study`)."""
  from absl import flags  # pylint: disable=import-outside-toplevel
  config_flags.define_flags(flags.FLAGS, names=STUDY_FIELDS,
                      defaults={"eval_every_steps": DEFAULT_EVAL_EVERY_STEPS})
  flags.DEFINE_list("runs", [], "Only these runs (comma list of names, default all): "
                    + ", ".join(run.name for run in all_runs()) + ".")
  flags.DEFINE_integer("full_softmax_epochs", None,
                       "Epochs of the full_softmax run (default: --epochs); the table says so "
                       "when it differs.")
  flags.DEFINE_integer("full_softmax_max_vocab", 0,
                       "Cap the full_softmax run's vocabulary at this many words (0 = the same "
                       "vocabulary as the others); the table says so.")
  flags.DEFINE_integer("workers", common.available_cores(),
                       "gensim: worker threads (default: the cores this process may use).")
  flags.DEFINE_float("gensim_alpha", 0.025, "gensim: initial learning rate (its default).")
  flags.DEFINE_string("analogies", None,
                      "Analogy file (default: data/questions-words.txt, else gensim's copy).")
  flags.DEFINE_string("wordsim", None,
                      "Word-pair file (default: data/wordsim353.tsv, else gensim's copy).")
  flags.DEFINE_integer("restrict_vocab", 30000, "Analogy candidates: the first N words (0 = all).")
  flags.DEFINE_string("work_dir", None, "Keep the runs (model dirs, gensim vectors, the token "
                      "stream) here; default: a temporary folder, removed.")
  flags.DEFINE_string("output_dir", "docs/loss_study",
                      "Where loss_study.json / .md and the two plots go.")
  # Internal: one of our training runs in this process (what the parent starts).
  flags.DEFINE_bool("worker", False, "Internal: train the run of --worker_spec, write its result.")
  flags.DEFINE_string("worker_spec", None, "Internal: the worker's JSON spec.")


def _settings_from_flags(flag_values) -> Settings:
  # pylint: disable=import-outside-toplevel
  from eval import cli
  from eval.analogy import QUESTIONS_URL
  from eval.similarity import WORDSIM_URL
  problems = []
  for name in ("workers", "epochs"):
    if flag_values[name].value <= 0:
      problems.append(f"--{name} must be positive (got {flag_values[name].value})")
  if flag_values.full_softmax_epochs is not None and flag_values.full_softmax_epochs <= 0:
    problems.append(f"--full_softmax_epochs must be positive (got "
                    f"{flag_values.full_softmax_epochs})")
  if flag_values.full_softmax_max_vocab < 0:
    problems.append(f"--full_softmax_max_vocab must be >= 0 (got "
                    f"{flag_values.full_softmax_max_vocab})")
  if problems:
    raise UsageError("; ".join(problems))
  return Settings(
      base=config_flags.from_flags(flag_values, names=STUDY_FIELDS),
      analogies=cli.find_data_file("questions-words.txt", flag_values.analogies, "--analogies",
                                   QUESTIONS_URL),
      wordsim=cli.find_data_file("wordsim353.tsv", flag_values.wordsim, "--wordsim",
                                 WORDSIM_URL),
      restrict_vocab=flag_values.restrict_vocab,
      full_softmax_epochs=flag_values.full_softmax_epochs,
      full_softmax_max_vocab=flag_values.full_softmax_max_vocab,
      workers=flag_values.workers, gensim_alpha=flag_values.gensim_alpha)


def main(argv: Sequence[str]) -> None:
  from absl import flags  # pylint: disable=import-outside-toplevel
  flag_values = flags.FLAGS
  if len(argv) > 1:
    raise UsageError(f"unexpected arguments: {' '.join(argv[1:])} (flags start with --)")
  if flag_values.worker:
    run_worker(flag_values.worker_spec)
    return
  runs = select_runs(flag_values.runs)
  settings = _settings_from_flags(flag_values)
  for run in runs:  # the trainer's own checks, before any run starts
    if run.loss != "gensim":
      run_experiment(settings, run, "unused").resolved().validate()
  command = common.command_line("benchmarks.loss_study")
  with common.work_folder(flag_values.work_dir, "w2v-loss-study-") as work_dir:
    payload = study(runs, settings, work_dir, flag_values.output_dir, command)
  print(f"wrote {flag_values.output_dir}/{{{JSON_FILE},{TABLE_FILE},{SECONDS_PLOT},"
        f"{ANALOGY_PLOT}}}", file=sys.stderr)
  print(payload["table"])
  failed = [row["name"] for row in payload["runs"] if row.get("status") != "ok"]
  if failed:
    raise UserError(f"{len(failed)} run(s) failed: {', '.join(failed)} (the others' results "
                    f"are in {flag_values.output_dir})")


if __name__ == "__main__":
  define_flags()
  run_main(main)
