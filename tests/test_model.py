"""The architecture: shapes, output range, preprocessing inside the graph, freezing."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("tensorflow", reason="the [train] extra is not installed")
import keras  # noqa: E402

from tests.conftest import BACKBONE, TINY_SIZE  # noqa: E402
from training.model import AnyShapeDilatedConv2D, CaffePreprocess, ShiftedDilatedConv2D, build_model  # noqa: E402


@pytest.fixture(scope="module")
def model():
    return build_model(TINY_SIZE, backbone_weights="none")


def test_output_is_a_probability_map_of_the_input_size(model):
    x = np.random.default_rng(0).uniform(0, 255, (2, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    y = model.predict(x, verbose=0)
    assert y.shape == (2, TINY_SIZE, TINY_SIZE, 1)
    assert y.dtype == np.float32 and y.min() >= 0 and y.max() <= 1


def test_decoder_has_the_deeplabv3plus_parts(model):
    names = {layer.name for layer in model.layers}
    assert {"aspp_pool", "aspp_1x1", "aspp_d6", "aspp_d12", "aspp_d18", "aspp_out", "skip", "decoder_1", "decoder_2"} <= names
    assert "conv4_block6_2_relu" in names and "conv2_block3_2_relu" in names
    assert any(isinstance(layer, keras.layers.GlobalAveragePooling2D) for layer in model.layers)  # image pooling


def test_preprocessing_matches_keras_resnet50():
    rgb = np.random.default_rng(1).uniform(0, 255, (1, 4, 4, 3)).astype(np.float32)
    expected = keras.applications.resnet50.preprocess_input(rgb.copy())
    np.testing.assert_allclose(np.asarray(CaffePreprocess()(rgb)), expected, atol=1e-4)


def test_encoder_batchnorm_is_always_frozen_and_stages_follow_fine_tune_from():
    model = build_model(TINY_SIZE, backbone_weights="none", fine_tune_from="conv4")
    layers = {layer.name: layer for layer in model.layers}
    assert not layers["conv2_block1_1_conv"].trainable
    assert not layers["conv3_block1_1_conv"].trainable
    assert layers["conv4_block1_1_conv"].trainable
    assert not layers["conv4_block1_1_bn"].trainable
    assert layers["aspp_out"].trainable and layers["aspp_out_bn"].trainable  # decoder BN learns
    frozen = build_model(TINY_SIZE, backbone_weights="none", freeze_encoder=True)
    assert not any(layer.trainable for layer in frozen.layers if layer.name.startswith("conv4_"))


def test_size_must_be_a_multiple_of_16():
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model(100, backbone_weights="none")
    with pytest.raises(ValueError, match="multiple of 16"):
        build_model((TINY_SIZE, 100), backbone_weights="none")


def test_the_same_weights_run_at_a_non_square_shape(model):
    wide = build_model((TINY_SIZE, 2 * TINY_SIZE), backbone_weights="none")
    assert [w.shape for w in wide.get_weights()] == [w.shape for w in model.get_weights()]
    wide.set_weights(model.get_weights())
    x = np.random.default_rng(2).uniform(0, 255, (1, TINY_SIZE, 2 * TINY_SIZE, 3)).astype(np.float32)
    y = wide.predict(x, verbose=0)
    assert y.shape == (1, TINY_SIZE, 2 * TINY_SIZE, 1)
    assert y.min() >= 0 and y.max() <= 1


def test_missing_weights_file_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="backbone weights file not found"):
        build_model(TINY_SIZE, backbone_weights=str(tmp_path / "nope.h5"))


@pytest.mark.skipif(not BACKBONE.exists(), reason="../shared/weights is not beside the checkout")
def test_local_imagenet_weights_load_into_the_encoder():
    model = build_model(TINY_SIZE, backbone_weights=str(BACKBONE))
    reference = keras.applications.ResNet50(include_top=False, weights=str(BACKBONE), input_shape=(TINY_SIZE, TINY_SIZE, 3))
    ours = model.get_layer("conv1_conv").get_weights()[0]
    np.testing.assert_array_equal(ours, reference.get_layer("conv1_conv").get_weights()[0])
    assert np.abs(ours).sum() > 0


@pytest.mark.parametrize("rate", [1, 6, 12, 18])
def test_shifted_dilated_convolution_is_the_dilated_convolution_and_its_gradient(rate):
    """On a 20 x 20 map (a 320 px input at stride 16) every tap of every ASPP rate reaches inside the map."""
    import tensorflow as tf

    x = tf.constant(np.random.default_rng(rate).normal(size=(2, 20, 20, 8)).astype(np.float32))
    plain = keras.layers.Conv2D(5, 3, padding="same", dilation_rate=rate, use_bias=False)
    shifted = ShiftedDilatedConv2D(5, 3, padding="same", dilation_rate=rate, use_bias=False)
    plain.build(x.shape)
    shifted.build(x.shape)
    shifted.set_weights(plain.get_weights())
    gradients = []
    for layer in (plain, shifted):
        with tf.GradientTape() as tape:
            tape.watch(x)
            y = layer(x)
            loss = tf.reduce_sum(y * tf.cos(y))
        gradients.append((y, *tape.gradient(loss, [x, layer.kernel])))
    for ours, reference in zip(gradients[1], gradients[0], strict=True):
        np.testing.assert_allclose(ours.numpy(), reference.numpy(), atol=1e-4)
    with pytest.raises(ValueError, match="'same' padding"):
        ShiftedDilatedConv2D(5, 3, padding="valid", dilation_rate=rate)


def test_shifted_dilated_convolution_runs_where_the_shape_is_known_only_at_run_time():
    """Training on crops of several shapes traces the graph without height and width: every tap is kept then,
    even one that falls wholly outside a map too short for its rate, and the result is still the convolution."""
    import tensorflow as tf

    plain = keras.layers.Conv2D(4, 3, padding="same", dilation_rate=18, use_bias=False)
    shifted = ShiftedDilatedConv2D(4, 3, padding="same", dilation_rate=18, use_bias=False)
    plain.build((None, None, None, 6))
    shifted.build((None, None, None, 6))
    shifted.set_weights(plain.get_weights())
    any_shape = tf.function(shifted.__call__, input_signature=[tf.TensorSpec((None, None, None, 6), tf.float32)])
    for shape in ((1, 16, 24, 6), (2, 24, 16, 6)):  # rate 18 reaches past a side of 16
        x = tf.constant(np.random.default_rng(shape[1]).normal(size=shape).astype(np.float32))
        np.testing.assert_allclose(any_shape(x).numpy(), plain(x).numpy(), atol=1e-4)


def test_training_and_export_builds_share_weights_files_and_compute_the_same(model, tmp_path):
    trainable = build_model(TINY_SIZE, backbone_weights="none", for_training=True)
    assert isinstance(trainable.get_layer("aspp_d6"), ShiftedDilatedConv2D)
    assert type(model.get_layer("aspp_d6")) is AnyShapeDilatedConv2D  # what ONNX exports as a native dilated Conv
    trainable.set_weights([w + 0.01 for w in trainable.get_weights()])
    trainable.save_weights(tmp_path / "trained.weights.h5")
    exported = build_model(TINY_SIZE, backbone_weights="none")
    exported.load_weights(tmp_path / "trained.weights.h5")
    x = np.random.default_rng(2).uniform(0, 255, (2, TINY_SIZE, TINY_SIZE, 3)).astype(np.float32)
    np.testing.assert_allclose(exported.predict(x, verbose=0), trainable.predict(x, verbose=0), atol=1e-5)

    any_shape = build_model(None, backbone_weights="none")  # the graph the aspect-view export converts
    any_shape.load_weights(tmp_path / "trained.weights.h5")
    np.testing.assert_allclose(any_shape.predict(x, verbose=0), exported.predict(x, verbose=0), atol=1e-5)
    wide = np.random.default_rng(3).uniform(0, 255, (1, TINY_SIZE - 16, 2 * TINY_SIZE, 3)).astype(np.float32)
    fixed_wide = build_model(wide.shape[1:3], backbone_weights="none")
    fixed_wide.load_weights(tmp_path / "trained.weights.h5")
    np.testing.assert_allclose(any_shape.predict(wide, verbose=0), fixed_wide.predict(wide, verbose=0), atol=1e-5)


def test_input_shape_rules_of_the_shape_comparison():
    from scripts.input_shape_compare import input_shape

    assert input_shape("stretch", 448, 298, 416) == (416, 416)
    assert input_shape("aspect-area", 448, 298, 416) == (336, 512)  # about 416 x 416 pixels, the photo's shape
    assert input_shape("aspect-area", 298, 448, 416) == (512, 336)
    assert input_shape("aspect-native", 448, 298, 416) == (304, 448)
    assert input_shape("aspect-native", 448, 448, 416) == (448, 448)
    with pytest.raises(ValueError, match="unknown rule"):
        input_shape("letterbox", 448, 298, 416)
