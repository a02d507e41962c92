"""Default names from class names: one snake_case rule for layers, losses and metrics (Keras 3's)."""

import pytest

import pyminidl
from pyminidl._naming import to_snake_case


@pytest.mark.parametrize("cls,expect", [
    ("Conv2D", "conv2d"), ("MaxPooling2D", "max_pooling2d"), ("Conv2DTranspose", "conv2d_transpose"),
    ("KLDivergence", "kl_divergence"), ("HTTPConv2D", "http_conv2d"), ("LSTM", "lstm"),
    ("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy"), ("MyConv2DLoss", "my_conv2d_loss"),
])
def test_to_snake_case_matches_keras(cls, expect):
    # Values from Keras 3.15 (keras.src.utils.naming.to_snake_case)
    assert to_snake_case(cls) == expect


def test_layers_losses_and_metrics_name_a_subclass_alike():
    # Losses and metrics had their own rule, which gave "my_conv2_dloss" where layers gave "my_conv2d_..."
    class MyConv2DLoss(pyminidl.losses.Loss):
        def call(self, y_true, y_pred):
            return y_pred

    class MyConv2DMetric(pyminidl.metrics.Metric):
        def update_state(self, *args, **kwargs):
            return None

        def result(self):
            return 0.0

    class MyConv2DLayer(pyminidl.layers.Layer):
        pass

    assert MyConv2DLoss().name == "my_conv2d_loss"  # as Keras 3.15
    assert MyConv2DMetric().name == "my_conv2d_metric"
    assert MyConv2DLayer().name.startswith("my_conv2d_layer")
