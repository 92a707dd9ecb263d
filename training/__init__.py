"""Offline trainer: data, ResNet-50 DeepLabV3+ model, fit, export to ONNX, evaluation. Needs the [train] extra."""
