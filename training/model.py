"""ResNet-50 encoder + DeepLabV3+ decoder, read top-down (after the keras-io DeepLabV3+ example).

The caffe-style ResNet normalisation is a layer of the graph, so every consumer (Keras, ONNX, the
service) feeds plain RGB 0..255.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import keras
from keras import layers, ops

from training.config import ENCODER_STAGES

# Encoder taps: stride 16 for the ASPP (conv5 is left out, as in the keras-io model), stride 4 for detail.
HIGH_LEVEL_LAYER = "conv4_block6_2_relu"
LOW_LEVEL_LAYER = "conv2_block3_2_relu"
IMAGENET_BGR_MEAN = (103.939, 116.779, 123.68)


@keras.saving.register_keras_serializable(package="cutout")
class CaffePreprocess(layers.Layer):
    """RGB 0..255 -> BGR minus the ImageNet mean: what the ResNet-50 ImageNet weights expect."""

    def call(self, rgb):
        bgr = ops.flip(rgb, axis=-1)
        return bgr - ops.convert_to_tensor(IMAGENET_BGR_MEAN, dtype=bgr.dtype)


@keras.saving.register_keras_serializable(package="cutout")
class ShiftedDilatedConv2D(layers.Conv2D):
    """A dilated Conv2D ("same", stride 1) computed as a sum of shifted 1x1 products: the same function and
    weights as layers.Conv2D, but its gradient is plain matrix products. TensorFlow's CPU kernels take a dilated
    convolution's gradient through space-to-batch, padding every small block, which made the ASPP's gradient a
    large share of a training step (the README's training section has the `training benchmark` figures).
    Taps that fall wholly outside a map of known shape only ever see the zero padding and are left out.

    Keras keys a weights file by class name and order, not by layer name; the class is renamed below so that
    files written by either build load into the other."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "same" or self.strides != (1, 1) or self.data_format != "channels_last":
            raise ValueError("ShiftedDilatedConv2D computes 'same' padding, stride 1, channels_last only")
        if any(k % 2 == 0 for k in self.kernel_size):
            raise ValueError("ShiftedDilatedConv2D needs an odd kernel size")

    def convolution_op(self, inputs, kernel):
        # Known when the graph is traced for one input shape; run-time tensors when it serves several.
        height, width = ops.shape(inputs)[1], ops.shape(inputs)[2]
        (rate_y, rate_x), (half_y, half_x) = self.dilation_rate, (k // 2 for k in self.kernel_size)
        pad_y, pad_x = rate_y * half_y, rate_x * half_x
        padded = ops.pad(inputs, [[0, 0], [pad_y, pad_y], [pad_x, pad_x], [0, 0]])
        total = None
        for i, j in itertools.product(range(self.kernel_size[0]), range(self.kernel_size[1])):
            outside_y = isinstance(height, int) and abs(i - half_y) * rate_y >= height
            if outside_y or (isinstance(width, int) and abs(j - half_x) * rate_x >= width):
                continue
            window = padded[:, i * rate_y : i * rate_y + height, j * rate_x : j * rate_x + width, :]
            term = ops.tensordot(window, kernel[i, j], axes=1)
            total = term if total is None else total + term
        return total


ShiftedDilatedConv2D.__name__ = "Conv2D"  # weights filed as "conv2d", exactly where a plain Conv2D's would be


@keras.saving.register_keras_serializable(package="cutout")
class AnyShapeDilatedConv2D(layers.Conv2D):
    """A dilated Conv2D that the TensorFlow export turns into one dilated ONNX Conv at any input shape.
    TensorFlow computes a dilated convolution as space-to-batch, convolution, batch-to-space; the converter
    folds that back into one Conv only when the shape is known, and otherwise leaves slow reshuffles in the graph."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.padding != "same" or self.strides != (1, 1) or self.data_format != "channels_last":
            raise ValueError("AnyShapeDilatedConv2D computes 'same' padding, stride 1, channels_last only")

    def convolution_op(self, inputs, kernel):
        if inputs.shape[1] is not None and inputs.shape[2] is not None:
            return super().convolution_op(inputs, kernel)
        import tensorflow as tf  # only the TensorFlow export builds a graph without a shape

        # Explicit padding: onnxruntime runs no dilated Conv with SAME auto-padding.
        (rate_y, rate_x), (half_y, half_x) = self.dilation_rate, (k // 2 for k in self.kernel_size)
        padded = tf.pad(inputs, [[0, 0], [rate_y * half_y] * 2, [rate_x * half_x] * 2, [0, 0]])
        return tf.nn.conv2d(padded, kernel, strides=1, padding="VALID", dilations=self.dilation_rate)


AnyShapeDilatedConv2D.__name__ = "Conv2D"  # weights filed where a plain Conv2D's would be


@keras.saving.register_keras_serializable(package="cutout")
class AnyShapeUpSampling2D(layers.UpSampling2D):
    """UpSampling2D that also runs when height and width are known only at run time: Keras' own resize needs
    them when a TensorFlow graph is traced, and the exported graph with any input shape has none."""

    def call(self, inputs):
        if inputs.shape[1] is not None and inputs.shape[2] is not None:
            return super().call(inputs)
        import tensorflow as tf  # only the TensorFlow export builds a graph without a shape

        size = tf.shape(inputs)[1:3] * tf.constant(self.size, tf.int32)
        return tf.image.resize(inputs, size, method=self.interpolation)


def convolution_block(x, filters=256, kernel_size=3, dilation_rate=1, name=None, conv=layers.Conv2D):
    x = conv(filters, kernel_size, padding="same", dilation_rate=dilation_rate, use_bias=False, name=name)(x)
    x = layers.BatchNormalization(name=f"{name}_bn" if name else None)(x)
    return layers.Activation("relu")(x)


@keras.saving.register_keras_serializable(package="cutout")
class SpreadOver(layers.Layer):
    """A 1 x 1 map repeated over the height and width of another: the image-pooling branch's way back to the
    feature map's size without knowing that size when the graph is built (UpSampling2D needs it), so one
    graph serves every input shape."""

    def call(self, pooled, like):
        return pooled * ops.ones_like(like[..., :1])


def dilated_spatial_pyramid_pooling(x, dilated_conv=layers.Conv2D):
    """ASPP: image pooling, a 1x1 conv and three dilated 3x3 convs, fused by a 1x1 conv."""
    pooled = layers.GlobalAveragePooling2D(keepdims=True)(x)
    pooled = convolution_block(pooled, kernel_size=1, name="aspp_pool")
    pooled = SpreadOver()(pooled, x)
    branches = [
        pooled,
        convolution_block(x, kernel_size=1, name="aspp_1x1"),
        convolution_block(x, dilation_rate=6, name="aspp_d6", conv=dilated_conv),
        convolution_block(x, dilation_rate=12, name="aspp_d12", conv=dilated_conv),
        convolution_block(x, dilation_rate=18, name="aspp_d18", conv=dilated_conv),
    ]
    return convolution_block(layers.Concatenate()(branches), kernel_size=1, name="aspp_out")


def _resolve_weights(backbone_weights: str | None) -> str | None:
    if backbone_weights in (None, "none"):
        return None
    if backbone_weights == "imagenet":
        return "imagenet"  # downloaded by Keras on machines with internet access
    if not Path(backbone_weights).is_file():
        raise FileNotFoundError(f"backbone weights file not found: {backbone_weights}")
    return str(backbone_weights)


def build_model(
    size: int | tuple[int, int] | None = 256,
    backbone_weights: str | None = "imagenet",
    fine_tune_from: str = "conv1",
    freeze_encoder: bool = False,
    for_training: bool = False,
) -> keras.Model:
    """Build the segmenter for size x size RGB input; output is the person probability (float32).

    size: the side of the square input, or (height, width), or None for a graph that takes any shape: the
    same weights run at any shape whose sides are multiples of 16.
    fine_tune_from: the first encoder stage that trains (earlier stages stay frozen).
    for_training: the ASPP's dilated convolutions as ShiftedDilatedConv2D, whose gradient is fast on CPU; the
    default keeps dilated Conv2D layers (AnyShapeDilatedConv2D), which ONNX exports as native dilated convolutions. Both builds
    compute the same function with the same weights, so a run trained one way exports the other.
    Encoder BatchNorm layers always run in inference mode: batches of 8 are too small to re-estimate them.
    """
    height, width = (size, size) if isinstance(size, int) or size is None else size
    if any(side is not None and side % 16 for side in (height, width)):
        raise ValueError(f"size must be a multiple of 16, got {size}")
    if fine_tune_from not in ENCODER_STAGES:
        raise ValueError(f"fine_tune_from must be one of {ENCODER_STAGES}")
    inputs = keras.Input(shape=(height, width, 3), name="image")
    encoder = keras.applications.ResNet50(
        include_top=False,
        weights=_resolve_weights(backbone_weights),
        input_tensor=CaffePreprocess(name="caffe_preprocess")(inputs),
    )
    first_trainable = ENCODER_STAGES.index(fine_tune_from)
    for layer in encoder.layers:
        stage = layer.name.split("_")[0]
        stage_index = ENCODER_STAGES.index(stage) if stage in ENCODER_STAGES else 0
        frozen = freeze_encoder or stage_index < first_trainable or isinstance(layer, layers.BatchNormalization)
        layer.trainable = not frozen

    dilated_conv = ShiftedDilatedConv2D if for_training else AnyShapeDilatedConv2D
    x = dilated_spatial_pyramid_pooling(encoder.get_layer(HIGH_LEVEL_LAYER).output, dilated_conv)
    x = AnyShapeUpSampling2D(size=4, interpolation="bilinear")(x)
    skip = convolution_block(encoder.get_layer(LOW_LEVEL_LAYER).output, filters=48, kernel_size=1, name="skip")
    x = layers.Concatenate()([x, skip])
    x = convolution_block(x, name="decoder_1")
    x = convolution_block(x, name="decoder_2")
    # Classify at stride 4, then upsample the logits: as good as upsampling features, 16x cheaper.
    logits = layers.Conv2D(1, 1, name="logits")(x)
    logits = AnyShapeUpSampling2D(size=4, interpolation="bilinear", dtype="float32")(logits)
    outputs = layers.Activation("sigmoid", dtype="float32", name="mask")(logits)
    return keras.Model(inputs, outputs, name="resnet50_deeplabv3plus")
