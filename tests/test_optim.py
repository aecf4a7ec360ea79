"""w2v_tf/optim.py's sparse SGD, Adagrad and lazy Adam against numpy references of their updates."""

import numpy as np
import pytest
import tensorflow as tf

from w2v_tf import optim

VOCAB, DIM = 7, 3
# Rows 1 and 4 repeat (a word used by several pairs of a batch); rows 0, 3 and 6 are untouched.
INDICES = np.array([4, 1, 4, 2, 5, 1, 4], np.int32)


def _table(seed=0):
  """[VOCAB, DIM] float32 starting values."""
  return np.random.default_rng(seed).normal(size=[VOCAB, DIM]).astype(np.float32)


def _values(seed=1, rows=len(INDICES)):
  """[rows, DIM] float32 per-pair gradient rows."""
  return np.random.default_rng(seed).normal(size=[rows, DIM]).astype(np.float32)


def _slices(indices, values):
  return tf.IndexedSlices(tf.constant(values), tf.constant(indices))


def _summed(indices, values):
  """The dense [VOCAB, DIM] gradient of per-pair rows: duplicates add up."""
  dense = np.zeros([VOCAB, DIM], np.float64)
  np.add.at(dense, indices, values)
  return dense


def _touched(indices):
  return np.isin(np.arange(VOCAB), indices)


# --- SparseSGD ----------------------------------------------------------------------------------


def test_sgd_sums_the_per_pair_gradients_of_a_repeated_row():
  # The gradient comes from a real tape over tf.gather, as in training: IndexedSlices whose
  # repeated rows must each contribute (word2vec applies every pair's update).
  start, weights = _table(), _values()
  table = tf.Variable(start)
  with tf.GradientTape() as tape:
    loss = tf.reduce_sum(tf.gather(table, INDICES) * weights)
  gradient = tape.gradient(loss, table)
  assert isinstance(gradient, tf.IndexedSlices)
  sgd = optim.SparseSGD([table])
  sgd.apply([gradient], [table], tf.constant(0.5))
  np.testing.assert_allclose(table.numpy(), start - 0.5 * _summed(INDICES, weights), rtol=1e-6,
                             atol=1e-6)
  assert int(sgd.iterations) == 1


def test_sgd_xla_in_place_path_equals_the_scatter_path():
  start, values = _table(), _values()
  plain, fused = tf.Variable(start), tf.Variable(start)
  sgd_plain, sgd_fused = optim.SparseSGD([plain]), optim.SparseSGD([fused])

  @tf.function(jit_compile=True)
  def fused_step(indices, values, learning_rate):
    sgd_fused.apply([tf.IndexedSlices(values, indices)], [fused], learning_rate, xla=True)

  for step in range(2):  # twice: the compiled step must also start from an updated table
    sgd_plain.apply([_slices(INDICES, values)], [plain], tf.constant(0.25), xla=False)
    fused_step(tf.constant(INDICES), tf.constant(values), tf.constant(0.25))
    np.testing.assert_allclose(fused.numpy(), plain.numpy(), rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(fused.numpy(), start - (step + 1) * 0.25 * _summed(INDICES, values),
                               rtol=1e-5, atol=1e-6)
  assert int(sgd_fused.iterations) == int(sgd_plain.iterations) == 2


def test_sgd_dense_gradient_and_missing_gradient():
  start, dense = _table(), _table(seed=5)
  table, untouched = tf.Variable(start), tf.Variable(start)
  sgd = optim.SparseSGD([table, untouched])
  sgd.apply([tf.constant(dense), None], [table, untouched], 0.1)
  np.testing.assert_allclose(table.numpy(), start - 0.1 * dense, rtol=1e-6, atol=1e-6)
  np.testing.assert_array_equal(untouched.numpy(), start)  # None: the variable had no gradient


def _run_steps(name, steps, learning_rate, dense=False):
  """Applies `steps` of (indices, values) with a fresh optimizer `name` to a copy of `_table()`.

  Args:
    name: "sgd", "adagrad" or "adam".
    steps: [(indices [n], values [n, DIM])] per-pair gradient rows, one entry per step.
    learning_rate: the rate of every step.
    dense: give the optimizer the summed [VOCAB, DIM] gradient instead of IndexedSlices.

  Returns:
    (the optimizer, [the table after each step]).
  """
  table = tf.Variable(_table())
  optimizer = optim.make_optimizer(name, [table])
  after = []
  for indices, values in steps:
    gradient = (tf.constant(_summed(indices, values), tf.float32) if dense
                else _slices(indices, values))
    optimizer.apply([gradient], [table], tf.constant(learning_rate))
    after.append(table.numpy().copy())  # a snapshot, not a view of the variable
  return optimizer, after


# Step 2 repeats row 2 and adds row 0; rows 3 and 6 are in neither step.
TWO_STEPS = [(INDICES, _values(1)), (np.array([0, 2, 2], np.int32), _values(2, rows=3))]


# --- SparseAdagrad ------------------------------------------------------------------------------


def _adagrad_reference(steps, learning_rate, initial=0.1, epsilon=1e-7):
  """Adagrad in float64 from `_table()` over `steps`; only the rows in a step move."""
  table = _table().astype(np.float64)
  accumulator = np.full_like(table, initial)
  for indices, values in steps:
    gradient, rows = _summed(indices, values), _touched(indices)
    accumulator[rows] += gradient[rows] ** 2
    table[rows] -= learning_rate * gradient[rows] / np.sqrt(accumulator[rows] + epsilon)
  return table, accumulator


def test_adagrad_sparse_updates_only_touched_rows():
  adagrad, after = _run_steps("adagrad", TWO_STEPS, 0.3)
  assert isinstance(adagrad, optim.SparseAdagrad)
  expected, accumulator = _adagrad_reference(TWO_STEPS, 0.3)
  np.testing.assert_allclose(after[-1], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(adagrad.accumulators[0].numpy(), accumulator, rtol=1e-5)
  np.testing.assert_array_equal(after[-1][[3, 6]], _table()[[3, 6]])
  np.testing.assert_array_equal(adagrad.accumulators[0].numpy()[[3, 6]], np.float32(0.1))
  assert int(adagrad.iterations) == 2


def test_adagrad_dense_gradient_matches_the_sparse_one():
  # With zeros in the untouched rows, a dense gradient leaves those rows as the sparse one does.
  sparse, sparse_after = _run_steps("adagrad", TWO_STEPS, 0.3)
  dense, dense_after = _run_steps("adagrad", TWO_STEPS, 0.3, dense=True)
  np.testing.assert_allclose(dense_after[-1], sparse_after[-1], rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(dense.accumulators[0].numpy(), sparse.accumulators[0].numpy(),
                             rtol=1e-5)
  np.testing.assert_allclose(dense_after[-1], _adagrad_reference(TWO_STEPS, 0.3)[0], rtol=1e-5,
                             atol=1e-6)


# --- LazyAdam -----------------------------------------------------------------------------------


def _adam_reference(steps, learning_rate, beta_1=0.9, beta_2=0.999, epsilon=1e-7, lazy=True):
  """Adam in float64 from `_table()`; lazy: rows absent from a step keep moments and values."""
  table = _table().astype(np.float64)
  m, v = np.zeros_like(table), np.zeros_like(table)
  for t, (indices, values) in enumerate(steps, start=1):
    gradient = _summed(indices, values)
    rows = _touched(indices) if lazy else np.ones(VOCAB, bool)
    m[rows] = beta_1 * m[rows] + (1 - beta_1) * gradient[rows]
    v[rows] = beta_2 * v[rows] + (1 - beta_2) * gradient[rows] ** 2
    rate = learning_rate * np.sqrt(1 - beta_2**t) / (1 - beta_1**t)
    table[rows] -= rate * m[rows] / (np.sqrt(v[rows]) + epsilon)
  return table, m, v


def test_lazy_adam_moves_only_the_rows_of_each_step():
  # Row 4 is in step 1 only: dense Adam would keep moving it on its momentum, lazy Adam must not.
  steps = TWO_STEPS + [(np.array([5, 1], np.int32), _values(3, rows=2))]
  adam, after = _run_steps("adam", steps, 0.01)
  assert isinstance(adam, optim.LazyAdam)
  expected, m, v = _adam_reference(steps, 0.01)
  np.testing.assert_allclose(after[-1], expected, rtol=1e-5, atol=1e-6)
  np.testing.assert_allclose(adam.first_moments[0].numpy(), m, rtol=1e-5, atol=1e-7)
  np.testing.assert_allclose(adam.second_moments[0].numpy(), v, rtol=1e-5, atol=1e-9)
  np.testing.assert_array_equal(after[2][4], after[0][4])
  np.testing.assert_array_equal(after[-1][[3, 6]], _table()[[3, 6]])
  dense_expected, _, _ = _adam_reference(steps, 0.01, lazy=False)
  assert np.abs(dense_expected[4] - expected[4]).max() > 1e-3  # the test tells lazy from dense
  assert int(adam.iterations) == 3


def test_adam_dense_gradient_is_plain_adam():
  _, after = _run_steps("adam", TWO_STEPS, 0.01, dense=True)
  np.testing.assert_allclose(after[-1], _adam_reference(TWO_STEPS, 0.01, lazy=False)[0],
                             rtol=1e-5, atol=1e-6)


# --- all three ----------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["sgd", "adagrad", "adam"])
def test_slots_survive_a_checkpoint(tmp_path, name):
  # A resumed run must continue exactly: same slots, same step count (Adam's bias correction).
  start = _table()
  first, second = TWO_STEPS
  table = tf.Variable(start)
  optimizer = optim.make_optimizer(name, [table])
  assert isinstance(optimizer, optim.OPTIMIZERS[name])
  optimizer.apply([_slices(*first)], [table], 0.05)
  path = tf.train.Checkpoint(table=table, optimizer=optimizer).save(str(tmp_path / "ckpt"))
  optimizer.apply([_slices(*second)], [table], 0.05)

  restored_table = tf.Variable(np.zeros_like(start))
  restored = optim.make_optimizer(name, [restored_table])
  tf.train.Checkpoint(table=restored_table, optimizer=restored).restore(
      path).assert_existing_objects_matched()
  assert int(restored.iterations) == 1
  restored.apply([_slices(*second)], [restored_table], 0.05)
  np.testing.assert_allclose(restored_table.numpy(), table.numpy(), rtol=1e-6, atol=1e-7)
  slots = {"sgd": lambda o: [], "adagrad": lambda o: o.accumulators,
           "adam": lambda o: o.first_moments + o.second_moments}[name]
  assert len(slots(optimizer)) == {"sgd": 0, "adagrad": 1, "adam": 2}[name]
  for saved, loaded in zip(slots(optimizer), slots(restored)):
    np.testing.assert_allclose(loaded.numpy(), saved.numpy(), rtol=1e-6, atol=1e-9)
