"""w2v_tf: word2vec (skip-gram, CBOW) in TensorFlow 2, with sampled and exact softmax side by side."""

import os

# Quiet TensorFlow's C++ INFO/WARNING logs once it is initialised (its first lines, printed before
# absl::InitializeLog, cannot be silenced this way); set TF_CPP_MIN_LOG_LEVEL=0 to see them.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
