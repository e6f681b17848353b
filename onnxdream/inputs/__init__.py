"""Model inputs, below every verb: image files, mean/std normalisation, and files as feeds.

- :mod:`onnxdream.inputs.images`: read any image as RGB floats (with a pixel limit), resize,
  write by extension atomically;
- :mod:`onnxdream.inputs.normalize`: RGB pixels <-> model input, from ``onnxdream.preprocess``
  metadata;
- :mod:`onnxdream.inputs.feeds`: a ``.npy`` or an image file as the feeds of a model's one input.

Nothing here imports the verbs (check, dream, export, the zoo, the CLI); they import from here.
"""
