"""w2v_tf: word2vec (skip-gram, CBOW) in TensorFlow 2, with sampled and exact softmax side by side."""

import os
import sys

from w2v_tf import startup_log

__version__ = "0.3.0"  # the one source of the version (pyproject.toml reads it)

# Our binaries print only their own lines: TensorFlow's C++ INFO / WARNING logs are quieted, and
# its start-up notices (printed before its log level applies on some CPUs and builds) filtered
# from the first `import tensorflow`. TF_CPP_MIN_LOG_LEVEL set by the user, or --verbosity,
# keeps everything.
if startup_log.wanted(sys.argv, os.environ):
  os.environ["TF_CPP_MIN_LOG_LEVEL"] = "2"
  startup_log.install()
