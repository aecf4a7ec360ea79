"""benchmarks/loss_study.py: the run list, the report (table, plots) and one tiny end-to-end run."""

import json
import os
import subprocess
import sys

import pytest

from benchmarks import loss_study
from tests.conftest import IMDB_CSV, QUESTIONS_WORDS, REPO_ROOT, WORDSIM353
from w2v_tf import config
from w2v_tf.errors import UsageError

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
SAMPLED = [f"sampled_softmax/{sampler}/{k}" for sampler in ("unigram", "log_uniform", "uniform")
           for k in (16, 64, 256)]


def test_every_run_once_full_softmax_last():
  names = [run.name for run in loss_study.all_runs()]
  assert names == SAMPLED + ["nce/unigram/64", "negative_sampling/5", "hierarchical_softmax",
                             "gensim_hs", "full_softmax"]
  runs = {run.name: run for run in loss_study.all_runs()}
  assert runs["nce/unigram/64"] == loss_study.Run("nce/unigram/64", "nce", "unigram", 64,
                                                  loss_study.NCE_LEARNING_RATE)
  base = config.ExperimentConfig().replace(learning_rate=0.025)
  settings = loss_study.Settings(base=base, analogies="a", wordsim="w")
  assert loss_study.run_experiment(settings, runs["nce/unigram/64"], "m").train.learning_rate == (
      loss_study.NCE_LEARNING_RATE)
  assert loss_study.run_experiment(settings, runs["negative_sampling/5"], "m"
                                   ).train.learning_rate == 0.025
  assert runs["negative_sampling/5"].num_sampled == 5
  assert runs["gensim_hs"].loss == "gensim"
  assert all(run.loss in config.LOSSES + ("gensim",) for run in runs.values())


def test_runs_flag_filters_in_study_order():
  assert len(loss_study.select_runs(None)) == len(loss_study.select_runs([])) == 14
  chosen = loss_study.select_runs(["gensim_hs", " sampled_softmax/uniform/16", ""])
  assert [run.name for run in chosen] == ["sampled_softmax/uniform/16", "gensim_hs"]
  with pytest.raises(UsageError, match="sampled_softmax/bogus/16"):
    loss_study.select_runs(["sampled_softmax/bogus/16"])


def _settings(**changes):
  return loss_study.Settings(base=config.ExperimentConfig().replace(epochs=2),
                             analogies="q.txt", wordsim="ws.tsv", **changes)


def test_full_softmax_reduction_applies_to_it_alone():
  settings = _settings(full_softmax_epochs=1, full_softmax_max_vocab=10000)
  runs = {run.name: run for run in loss_study.all_runs()}
  full = loss_study.run_experiment(settings, runs["full_softmax"], "/tmp/x")
  assert (full.train.epochs, full.data.max_vocab, full.model.loss) == (1, 10000, "full_softmax")
  sampled = loss_study.run_experiment(settings, runs["sampled_softmax/log_uniform/256"], "/tmp/y")
  assert (sampled.train.epochs, sampled.data.max_vocab) == (2, 0)
  assert (sampled.model.sampler, sampled.model.num_sampled) == ("log_uniform", 256)
  assert "1 epoch(s) instead of 2" in settings.full_softmax_reduction()
  assert "10,000" in settings.full_softmax_reduction()
  assert _settings().full_softmax_reduction() is None
  assert _settings(full_softmax_epochs=2).full_softmax_reduction() is None


def _row(name, loss, total, ce=6.0, curve=True):
  """A result row as `loss_study.study` records it (two epochs)."""
  points = [{"step": s, "seconds": 2.0 * s, "train": ce + 1, "full_softmax_batch": ce + 0.5,
             "full_softmax_heldout": ce + 1.0 / s, "grad_cosine": 0.9} for s in (1, 5, 10)]
  per_epoch = [{"epoch": e, "step": 5 * e, "seconds": 10.0 * e, "heldout_ce": ce + 0.2 / e,
                "grad_cosine": 0.9, "analogy": {"total": total * e / 2, "semantic": total / 2,
                                                "syntactic": total}} for e in (1, 2)]
  return {"name": name, "loss": loss, "status": "ok", "train_seconds": 20.0,
          "words_per_sec": 250e3, "heldout_ce": ce + 0.1, "grad_cosine": 0.9,
          "analogy": {"total": total, "semantic": total / 2, "syntactic": total},
          "wordsim": 0.55, "peak_rss_mb": 900.0, "curve": points if curve else [],
          "per_epoch": per_epoch if curve else []}


def _rows():
  rows = [_row(name, "sampled_softmax", 0.2, ce=6.0 + i / 10) for i, name in enumerate(SAMPLED)]
  rows += [_row("nce/unigram/64", "nce", 0.15),
           _row("negative_sampling/5", "negative_sampling", 0.3),
           _row("hierarchical_softmax", "hierarchical_softmax", 0.25),
           _row("gensim_hs", "gensim", 0.26, curve=False),
           {"name": "full_softmax", "loss": "full_softmax", "status": "failed", "error": "boom"}]
  for row in rows[-2:-1]:  # gensim has no curve, CE or cosine
    row.update(heldout_ce=float("nan"), grad_cosine=float("nan"))
  return rows


def test_table_has_a_row_per_run_and_the_hs_line():
  rows = _rows()
  table = loss_study.format_table(rows, "1 epoch(s) instead of 2").splitlines()
  header = [cell.strip() for cell in table[0].strip("|").split("|")]
  assert header == list(loss_study.TABLE_COLUMNS)
  assert header[1:9] == ["train s", "words/s", "held-out CE", "grad cos", "analogy total",
                         "semantic", "syntactic", "WS353 ρ"]
  body = [line for line in table[2:] if line.startswith("| ")]
  assert len(body) == len(rows)
  assert all(line.count("|") == len(header) + 1 for line in body)
  for row, line in zip(rows, body):
    assert line.startswith(f"| {row['name']}")
  hs = next(line for line in body if line.startswith("| hierarchical_softmax "))
  assert "| 20.0 | 250k | 6.100 ¹ | 0.900 | 25.0% | 12.5% | 25.0% | 0.550 | 900 |" in hs
  assert "gensim hs=1" in body[-2] and "| – | – |" in body[-2]
  assert "(failed)" in body[-1]
  text = "\n".join(table)
  assert "¹ hierarchical softmax is a normalised model" in text
  assert "full_softmax was reduced" in text and "1 epoch(s) instead of 2" in text
  assert "difference -1.0 points (within ±1.5 points: yes)" in text
  comparison = loss_study.hs_vs_gensim(rows)
  assert comparison["difference_points"] == pytest.approx(-1.0)
  assert comparison["within_tolerance"]
  assert loss_study.hs_vs_gensim(rows[:-2]) is None  # no gensim row
  assert "reduced" not in loss_study.format_table(rows)


def test_outputs_json_table_and_small_plots(tmp_path):
  payload = {"runs": _rows(), "table": loss_study.format_table(_rows()), "title": "synthetic"}
  loss_study.write_outputs(payload, str(tmp_path))
  assert json.loads((tmp_path / loss_study.JSON_FILE).read_text())["title"] == "synthetic"
  assert (tmp_path / loss_study.TABLE_FILE).read_text().startswith("| run |")
  for name in (loss_study.SECONDS_PLOT, loss_study.ANALOGY_PLOT):
    data = (tmp_path / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and 1000 < len(data) < 150_000


def test_a_failed_run_keeps_the_others(tmp_path, monkeypatch):
  from tests.test_compare import _write_tiny_corpus  # pylint: disable=import-outside-toplevel
  csv_path = tmp_path / "reviews.csv"
  _write_tiny_corpus(csv_path)
  analogies = tmp_path / "analogies.txt"
  analogies.write_text(": family\nman woman king queen\n", encoding="utf-8")
  wordsim = tmp_path / "wordsim.tsv"
  wordsim.write_text("king\tqueen\t8.0\nman\twoman\t7.5\nboy\tgirl\t7.0\n", encoding="utf-8")
  written = []

  def fake_run(name, spec, run_dir):  # pylint: disable=unused-argument
    # What the JSON held when this run started: every run before it.
    written.append([r["name"] for r in json.loads((tmp_path / "out" / loss_study.JSON_FILE)
                                                  .read_text())["runs"]] if written else [])
    if name == "nce/unigram/64":
      raise RuntimeError("boom")
    curve = [{"step": 3, "seconds": 1.0, "train": 5.0, "full_softmax_batch": 5.0,
              "full_softmax_heldout": 5.5, "grad_cosine": 0.8}]
    return {"setup_seconds": 1.0, "train_seconds": 2.0, "peak_rss_mb": 100.0, "curve": curve,
            "epochs": [{"epoch": 1, "step": 3, "seconds": 1.0,
                        "analogy": {"total": 0.5, "semantic": 0.5, "syntactic": 0.0}}]}

  monkeypatch.setattr(loss_study, "_run_ours", fake_run)
  monkeypatch.setattr(loss_study.common, "evaluate_vectors", lambda *args: {
      "analogy": {part: {"accuracy": 0.5, "seen": 1, "coverage": 1.0}
                  for part in ("total", "semantic", "syntactic")},
      "wordsim": {"spearman": 0.5}})
  base = config.ExperimentConfig().replace(train_csv=str(csv_path), stopwords="none",
                                           cache_dir="", epochs=1)
  settings = loss_study.Settings(base=base, analogies=str(analogies), wordsim=str(wordsim))
  runs = loss_study.select_runs(["nce/unigram/64", "negative_sampling/5"])
  payload = loss_study.study(runs, settings, str(tmp_path / "work"), str(tmp_path / "out"))
  assert written == [[], ["nce/unigram/64"]]
  failed, ok = payload["runs"]
  assert failed["status"] == "failed" and "boom" in failed["error"]
  assert ok["status"] == "ok" and ok["heldout_ce"] == 5.5
  # Over the training clock at the last epoch end (1.0 s), not the whole loop (2.0 s).
  assert ok["words_per_sec"] == payload["corpus"]["train_tokens"] / 1.0
  assert ok["run_seconds"] == 2.0
  assert ok["per_epoch"][0]["heldout_ce"] == 5.5
  assert json.loads((tmp_path / "out" / loss_study.JSON_FILE).read_text())["runs"][1]["name"] == (
      "negative_sampling/5")
  assert "| nce/unigram/64 (failed) |" in payload["table"]


def test_importing_defines_no_flags():
  code = ("from absl import app, flags, logging\n"
          "import tensorflow\n"  # TF's and absl's own flags are not ours
          "before = set(flags.FLAGS)\nimport benchmarks.loss_study\n"
          "print(sorted(set(flags.FLAGS) - before))\n")
  output = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True,
                          text=True, check=True).stdout
  assert output.strip() == "[]"


@pytest.mark.slow
def test_end_to_end_on_300_imdb_reviews(tmp_path):
  for path in (IMDB_CSV, QUESTIONS_WORDS, WORDSIM353):
    if not os.path.exists(path):
      pytest.skip(f"{path} is absent (shared data not beside the repo)")
  runs = ["sampled_softmax/uniform/16", "hierarchical_softmax", "gensim_hs"]
  output = tmp_path / "out"
  env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="2")
  process = subprocess.run(
      [sys.executable, "-m", "benchmarks.loss_study", f"--train_csv={IMDB_CSV}",
       f"--analogies={QUESTIONS_WORDS}", f"--wordsim={WORDSIM353}", "--max_reviews=300",
       "--epochs=1", "--embedding_dim=16", f"--runs={','.join(runs)}", "--jit_compile=false",
       f"--cache_dir={tmp_path / 'cache'}", f"--output_dir={output}"],
      cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=False, timeout=300)
  assert process.returncode == 0, process.stderr[-3000:]
  payload = json.loads((output / loss_study.JSON_FILE).read_text())
  assert [row["name"] for row in payload["runs"]] == runs
  assert all(row["status"] == "ok" for row in payload["runs"])
  assert payload["machine"]["cpu_model"] and payload["settings"]["epochs"] == 1
  ours, hs, gensim = payload["runs"]
  for row in (ours, hs):
    assert row["curve"] and row["curve"][-1]["full_softmax_heldout"] == row["heldout_ce"] > 0
    assert [p["epoch"] for p in row["per_epoch"]] == [1]
    assert set(row["per_epoch"][0]["analogy"]) == {"total", "semantic", "syntactic"}
    assert row["words_per_sec"] > 0 and row["peak_rss_mb"] > 0
  assert ours["sampler"] == "uniform" and ours["num_sampled"] == 16
  assert hs["grad_cosine"] == pytest.approx(1.0, abs=1e-3)  # an exact loss
  assert gensim["curve"] == [] and gensim["analogy"]["total"] >= 0
  assert payload["hs_vs_gensim"]["difference_points"] == pytest.approx(
      100 * (hs["analogy"]["total"] - gensim["analogy"]["total"]))
  table = (output / loss_study.TABLE_FILE).read_text()
  assert sum(line.startswith("| ") for line in table.splitlines()) == 2 + len(runs)
  assert "hierarchical_softmax vs gensim" in table
  assert process.stdout.startswith("| run |")
  for name in (loss_study.SECONDS_PLOT, loss_study.ANALOGY_PLOT):
    data = (output / name).read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) < 150_000
