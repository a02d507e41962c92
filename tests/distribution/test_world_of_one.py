"""The distribution's single-process path (no mpi4py, no mpirun): always runs."""

import os
import subprocess
import sys

import numpy as np
import pytest

import pyminidl as keras
from pyminidl import distribution
from pyminidl.data import Dataset
from pyminidl.distribution import _state
from pyminidl.distribution._buckets import GradientReducer
from pyminidl.distribution._data import shard_bounds
from pyminidl.distribution._training import _mute, _state_names
from pyminidl.distribution._world import LocalWorld


@pytest.fixture
def data_parallel():
    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel())
    yield
    distribution.set_distribution(None)


def _train(seed=3, **fit_kwargs):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((53, 7)).astype("float32")
    y = rng.integers(0, 4, 53)
    keras.random.seed(seed)
    model = keras.Sequential([keras.layers.Input((7,)), keras.layers.Dense(9, activation="relu"),
                              keras.layers.Dense(4, activation="softmax")])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    history = model.fit(x, y, batch_size=8, epochs=2, verbose=0, validation_split=0.2, **fit_kwargs)
    return model, history.history, model.evaluate(x, y, verbose=0), model.predict(x, batch_size=5, verbose=0)


def test_importing_pyminidl_does_not_import_mpi4py():
    code = "import sys, pyminidl; pyminidl.distribution.initialize(); print('mpi4py' in sys.modules)"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMPI_", "PMI", "PMIX"))}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, env=env,
                          cwd=os.path.dirname(os.path.abspath(__file__)))  # not the source tree
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


def test_world_of_one_trains_exactly_as_without_a_distribution():
    plain = _train()
    distribution.initialize()
    distribution.set_distribution(distribution.DataParallel())
    try:
        dp = _train()
    finally:
        distribution.set_distribution(None)
    for a, b in zip(plain[0].get_weights(), dp[0].get_weights()):
        np.testing.assert_array_equal(a, b)
    assert plain[1] == dp[1] and plain[2] == dp[2]
    np.testing.assert_array_equal(plain[3], dp[3])


def test_public_api(data_parallel):
    assert (distribution.rank(), distribution.size()) == (0, 1)
    assert distribution.list_devices() == ["cpu:0"]
    assert isinstance(distribution.distribution(), distribution.DataParallel)
    with pytest.raises(ValueError, match="num_processes"):
        distribution.initialize(num_processes=4)
    with pytest.raises(ValueError, match="mpirun"):
        distribution.initialize(job_addresses="a:1234,b:1234")
    with pytest.raises(ValueError, match="DataParallel"):
        distribution.set_distribution("data")


def test_global_batch_not_divisible_by_world_size_is_a_clear_error(data_parallel, monkeypatch):
    class TwoRanks(LocalWorld):
        size = 2

    monkeypatch.setattr(_state, "WORLD", TwoRanks())
    distribution.set_distribution(distribution.DataParallel())
    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match=r"batch_size=7, number of processes=2"):
        model.fit(np.zeros((10, 3)), np.zeros((10, 1)), batch_size=7, verbose=0)


@pytest.mark.parametrize("length,size", [(24, 2), (2, 3), (5, 3), (1, 4), (97, 5)])
def test_shards_are_disjoint_and_cover_the_batch(length, size):
    parts = [shard_bounds(length, size, r) for r in range(size)]
    assert parts[0][0] == 0 and parts[-1][1] == length
    assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))
    assert max(b - a for a, b in parts) - min(b - a for a, b in parts) <= 1


def test_dataset_shard_takes_every_nth_element():
    ds = Dataset.range(10)
    assert [int(e) for e in ds.shard(3, 1)] == [1, 4, 7] and len(ds.shard(3, 1)) == 3
    together = sorted(int(e) for i in range(3) for e in ds.shard(3, i))
    assert together == list(range(10))
    assert [int(e) for e in Dataset.from_generator(lambda: iter(range(7))).shard(2, 1)] == [1, 3, 5]
    with pytest.raises(ValueError, match="index=3"):
        ds.shard(3, 3)


class _RecordingWorld(LocalWorld):
    """Records, at each Iallreduce, which layers already hold a gradient."""

    def __init__(self, layers):
        self.layers, self.calls = layers, []

    def iallreduce(self, buffer):
        self.calls.append([bool(layer.grads) for layer in self.layers])
        return super().iallreduce(buffer)


def _mlp_step(world, bucket_bytes):
    model = keras.Sequential([keras.layers.Input((5,)), keras.layers.Dense(6), keras.layers.Dense(6),
                              keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="mse")
    model._prepare_training()
    dense = [layer for layer in model.layers if layer.weights]
    world.layers = dense
    reducer = GradientReducer(world, model._grad_slots, bucket_bytes)
    reducer.watch(model._grad_layers)
    reducer.begin(4)
    x = np.ones((4, 5), np.float32)
    y_pred, backward = model.forward(x, training=True)
    backward(np.ones_like(y_pred) / 4)
    return reducer.finish(), model


def test_buckets_start_during_backward_in_reverse_layer_order():
    world = _RecordingWorld([])
    _, model = _mlp_step(world, bucket_bytes=1)  # one bucket per weight
    assert len(world.calls) == 6
    # The last layer's bucket starts while the first layer has no gradient yet.
    assert world.calls[0] == [False, False, True]


def test_one_bucket_holds_small_models_and_gives_the_local_gradients():
    world = _RecordingWorld([])
    grads, model = _mlp_step(world, bucket_bytes=2**20)
    assert len(world.calls) == 1
    expected = model.gradients()
    for g, e in zip(grads, expected):
        np.testing.assert_allclose(g, e, rtol=1e-6)


def test_metric_state_names_are_what_reset_state_assigns():
    assert _state_names(keras.metrics.Mean()) == ("total", "count")
    assert set(_state_names(keras.metrics.AUC())) >= {"true_positives", "false_negatives"}


def test_muted_callbacks_declare_the_same_hooks():
    from pyminidl.callbacks import CSVLogger, _overrides, _TRAIN_BATCH_HOOKS

    logger = CSVLogger("never_written.csv")
    muted = _mute(logger)
    assert _overrides(muted, ["on_epoch_end"]) and not _overrides(muted, _TRAIN_BATCH_HOOKS)
    muted.on_train_begin()
    assert not os.path.exists("never_written.csv")


def test_off_rank_0_file_writers_are_muted_and_backups_restore_everywhere(monkeypatch):
    from pyminidl.callbacks import Callback, CallbackList, CSVLogger
    from pyminidl.distribution._training import FitSync

    calls = []

    class BackupAndRestore(Callback):  # the shape of the real one: restores at begin, writes at epoch end
        def on_train_begin(self, logs=None):
            calls.append("restore")

        def on_epoch_end(self, epoch, logs=None):
            calls.append("write")

    class Rank1(LocalWorld):
        rank, size = 1, 2

    model = keras.Sequential([keras.layers.Input((3,)), keras.layers.Dense(1)])
    model._initial_epoch = 0
    cbs = FitSync(None, Rank1()).callbacks(CallbackList([CSVLogger("never_written.csv"), BackupAndRestore()],
                                                        model=model))
    cbs.on_train_begin()
    cbs.on_epoch_end(0, {"loss": 1.0})
    assert calls == ["restore"] and not os.path.exists("never_written.csv")
    assert model._initial_epoch == 0


def test_a_custom_train_step_over_several_processes_is_refused(data_parallel, monkeypatch):
    class TwoRanks(LocalWorld):
        size = 2

    class Custom(keras.Sequential):
        def train_step(self, data):
            return super().train_step(data)

    monkeypatch.setattr(_state, "WORLD", TwoRanks())
    distribution.set_distribution(distribution.DataParallel())
    model = Custom([keras.layers.Input((3,)), keras.layers.Dense(1)])
    model.compile(optimizer="sgd", loss="mse")
    with pytest.raises(ValueError, match="Custom overrides `train_step`"):
        model.fit(np.zeros((8, 3)), np.zeros((8, 1)), batch_size=4, verbose=0)


def test_a_model_trained_under_a_distribution_copies_with_plain_gradient_dicts(data_parallel):
    import copy

    model = _train()[0]
    clone = copy.deepcopy(model)
    assert all(type(layer.grads) is dict for layer in clone._all_layers())
