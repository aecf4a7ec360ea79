"""w2v_tf/startup_log.py: our binaries print only their own lines, whatever the CPU does.

TensorFlow prints its start-up notices only on some CPUs and builds (oneDNN's on recent Intel
Xeons, the CPU feature guard where the build lacks the CPU's instructions), so each check here
makes the notices appear on any CPU: `TF_ENABLE_ONEDNN_OPTS=1` turns oneDNN (and its notice) on
for x86 CPUs of either maker, and a stand-in `tensorflow` package prints them verbatim.
"""

import os
import subprocess
import sys
import textwrap

from w2v_tf import startup_log

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# What `import tensorflow` printed on an Intel Xeon with oneDNN (issue 14), and a real message.
NOTICES = [
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    "I0000 00:00:1796133390.682676    4209 port.cc:153] oneDNN custom operations are on. You may "
    "see slightly different numerical results due to floating-point round-off errors from "
    "different computation orders. To turn them off, set the environment variable "
    "`TF_ENABLE_ONEDNN_OPTS=0`.",
    "I0000 00:00:1796133390.863077    4209 cpu_feature_guard.cc:227] This TensorFlow binary is "
    "optimized to use available CPU instructions in performance-critical operations.",
    "To enable the following instructions: AMX_TILE AMX_INT8 AMX_BF16, in other operations, "
    "rebuild TensorFlow with the appropriate compiler flags.",
]
REAL = "E0000 00:00:1796133390.9 4209 some_kernel.cc:12] a real error stays"


def _env(**changes):
  env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
  env.update(changes)
  return env


def test_the_notices_are_filtered_and_everything_else_kept():
  text = "\n".join(NOTICES + [REAL, "Traceback (most recent call last):"]) + "\n"
  assert startup_log.filter_lines(text) == REAL + "\nTraceback (most recent call last):\n"
  assert startup_log.wanted(["w2v-train"], {})
  assert not startup_log.wanted(["w2v-train"], {"TF_CPP_MIN_LOG_LEVEL": "0"})
  assert not startup_log.wanted(["w2v-train", "--verbosity=1"], {})


def test_a_stand_in_tensorflow_printing_the_notices(tmp_path):
  """The filter on a CPU-independent stand-in: notices printed from C (fd 2) during import."""
  fake = tmp_path / "tensorflow"
  fake.mkdir()
  lines = "".join(f"{line}\n" for line in NOTICES + [REAL])
  (fake / "__init__.py").write_text(f"import os\nos.write(2, {lines.encode()!r})\n")
  script = textwrap.dedent("""
      import sys
      import w2v_tf
      import tensorflow
      print("error: one line", file=sys.stderr)
  """)
  env = _env(PYTHONPATH=os.pathsep.join([str(tmp_path), REPO_ROOT]))
  quiet = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                         text=True, check=True)
  assert quiet.stderr.splitlines() == [REAL, "error: one line"]
  loud = subprocess.run([sys.executable, "-c", script], env=dict(env, TF_CPP_MIN_LOG_LEVEL="0"),
                        capture_output=True, text=True, check=True)
  assert loud.stderr.splitlines() == NOTICES + [REAL, "error: one line"]  # asked for: kept


def test_a_binary_prints_one_line_with_onednn_on():
  """The real TensorFlow with oneDNN forced on: a bad flag is one stderr line, not five."""
  env = _env(TF_ENABLE_ONEDNN_OPTS="1")
  result = subprocess.run([sys.executable, "-m", "w2v_tf.train", "--embedding_dim=0"], env=env,
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
  assert result.returncode != 0
  assert result.stderr.splitlines() == ["error: --embedding_dim must be positive (got 0)"], (
      result.stderr)
