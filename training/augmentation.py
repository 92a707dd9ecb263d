"""The ranges of the training augmentation, in one place for its two implementations: the tf.data pipeline
(training.pipeline) and its numpy twin for machines without TensorFlow (training.portable).

Plain numbers, no imports: the GPU machine reads this module without TensorFlow.
"""

# A crop box covers this share of each side of the photo...
SCALE = (0.55, 1.15)
# ...or, zoom_out_fraction of the time, this many sides: people smaller than in any training photo.
ZOOM_OUT_SCALE = (1.15, 1.8)
# Height / width of the box, before it is resized to the square input.
ASPECT = (0.85, 1.18)
# ...or, true_aspect_fraction of the time, the photo's own width / height, so that the square crop shows
# people in their true proportions, as the service's mirrored view at the photo's aspect ratio does.
# Beyond its border the photo is mirrored by this share of a side each way, so a box that leaves the
# photo shows scene, not a flat colour, around a small person.
MIRROR_PAD = 0.6
# A person-free crop is a square of this share of the photo's largest person-free square, inside it.
NEGATIVE_SHRINK = (0.6, 1.0)
# Colour jitter on 0..1 pixels: brightness is added, contrast and saturation multiply.
BRIGHTNESS = 0.15
CONTRAST = (0.75, 1.25)
SATURATION = (0.7, 1.3)
