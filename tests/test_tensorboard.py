"""The real TensorBoard server on a trained model dir (`tensorboard --logdir MODEL_DIR`, the
README's command): its HTTP API serves the scalars, the projector (the input table first, with
the vocabulary as metadata) and the custom-scalars layout, all of one run.

What the API returned is printed (pytest shows it when the test fails; `-s` shows it always).
"""

import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from eval.analogy import evaluate_analogies
from tests.planted import small_experiment
from w2v_tf.build import build_trainer
from w2v_tf.monitor import AnalogyEvaluation
from w2v_tf.run_state import model_key

INPUT, OUTPUT = model_key("input_embeddings"), model_key("output_weights")
STARTUP_SECONDS = 120  # 18 s on a loaded 2-core machine


def _free_port() -> int:
  with socket.socket() as s:
    s.bind(("127.0.0.1", 0))
    return s.getsockname()[1]


def _get(port: int, path: str, **params) -> tuple[int, bytes]:
  query = ("?" + urllib.parse.urlencode(params)) if params else ""
  try:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}{query}", timeout=30) as r:
      return r.status, r.read()
  except urllib.error.HTTPError as e:
    return e.code, e.read()


@pytest.fixture(name="tensorboard")
def fixture_tensorboard(tmp_path):
  """start(logdir) -> port of a TensorBoard server answering on localhost (stopped after)."""
  servers = []

  def start(logdir):
    port = _free_port()
    log = open(tmp_path / "tensorboard.log", "wb")  # pylint: disable=consider-using-with
    server = subprocess.Popen(  # pylint: disable=consider-using-with
        [sys.executable, "-m", "tensorboard.main", f"--logdir={logdir}", "--host=127.0.0.1",
         f"--port={port}", "--load_fast=false", "--reload_interval=1"],
        stdout=log, stderr=subprocess.STDOUT)
    servers.append((server, log))
    deadline = time.time() + STARTUP_SECONDS
    while time.time() < deadline:  # until the event files are loaded, not only the socket
      if server.poll() is not None:
        pytest.fail(f"tensorboard exited ({server.returncode}): "
                    f"{(tmp_path / 'tensorboard.log').read_text(errors='replace')[-3000:]}")
      try:
        status, body = _get(port, "/data/plugin/scalars/tags")
        if status == 200 and "loss/train" in json.loads(body).get(".", {}):
          return port
      except (OSError, ValueError):
        pass
      time.sleep(0.5)
    pytest.fail(f"tensorboard did not serve the scalars in {STARTUP_SECONDS} s")
    return None

  yield start
  for server, log in servers:
    server.terminate()
    try:
      server.wait(timeout=20)
    except subprocess.TimeoutExpired:
      server.kill()
      server.wait()
    log.close()


@pytest.mark.slow
def test_tensorboard_serves_scalars_projector_and_layout_of_the_model_dir(planted, tmp_path,
                                                                         tensorboard):
  csv_path, questions = planted
  model_dir = tmp_path / "m"
  evaluate = lambda v: evaluate_analogies(v.vectors, list(v.words), questions)
  build_trainer(small_experiment(csv_path, model_dir, 1, analogies=questions),
                [AnalogyEvaluation(evaluate, lambda _: None)], log=lambda _: None).run()
  port = tensorboard(str(model_dir))

  responses = {}

  def get(path, **params):
    status, body = _get(port, path, **params)
    text = body.decode("utf-8", errors="replace")
    responses[path + ("?" + urllib.parse.urlencode(params) if params else "")] = (
        f"{status} {text}")
    assert status == 200, (path, params, status, text)
    return text

  try:
    scalars = json.loads(get("/data/plugin/scalars/tags"))
    runs = json.loads(get("/data/plugin/projector/runs"))
    info = json.loads(get("/data/plugin/projector/info", run="."))
    metadata = get("/data/plugin/projector/metadata", run=".", name=INPUT, num_rows=4)
    layout = json.loads(get("/data/plugin/custom_scalars/layout"))
    charts = [chart for category in layout["category"] for chart in category["chart"]]
    charted = [json.loads(get("/data/plugin/custom_scalars/scalars", run=".",
                              tag=chart["multiline"]["tag"][0])) for chart in charts]
    # One run, ".": the model dir, where the event files and the checkpoints are.
    assert list(scalars) == ["."], scalars
    assert {"loss/train", "loss/full_softmax_batch", "loss/full_softmax_heldout",
            "grad_cosine/heldout", "learning_rate", "words_per_sec", "analogy_percent/total",
            "analogy_percent/semantic", "analogy_percent/syntactic"} <= set(scalars["."])
    assert runs == ["."], runs
    embeddings = info["embeddings"]
    assert [e["tensorName"] for e in embeddings[:2]] == [INPUT, OUTPUT], embeddings
    vocab = (model_dir / "vocab.tsv").read_text(encoding="utf-8").splitlines()
    assert embeddings[0]["tensorShape"] == [len(vocab), 32]
    assert embeddings[0]["metadataPath"] == embeddings[1]["metadataPath"] == (
        "projector_metadata.tsv")
    assert metadata.splitlines() == ["word\tcount"] + vocab[:4]
    assert [chart["multiline"]["tag"] for chart in charts] == [
        ["^(loss/train|loss/full_softmax_batch|loss/full_softmax_heldout)$"],
        ["^grad_cosine/heldout$"], ["^analogy_percent/"]], layout
    # Each chart's pattern finds its series in the run.
    assert [sorted(c["tag_to_events"]) for c in charted] == [
        ["loss/full_softmax_batch", "loss/full_softmax_heldout", "loss/train"],
        ["grad_cosine/heldout"],
        ["analogy_percent/semantic", "analogy_percent/syntactic", "analogy_percent/total"]]
  finally:
    print(json.dumps(responses, indent=1))
