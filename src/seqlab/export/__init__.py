"""``seqlab export RUN_DIR --format torchscript|onnx|safetensors``: a finished run's model as
a file other programs load, checked against the PyTorch model before it is kept.

* :mod:`seqlab.export.adapters`: one :class:`~seqlab.export.adapters.ExportAdapter` per task
  and model (``EXPORTS["classify/cnn"]``): the tensors-in, tensors-out module that is
  exported, its named inputs and outputs with their symbolic axes, and example batches of
  variable length;
* :mod:`seqlab.export.formats`: one writer and one loader per format (``FORMATS``);
* :mod:`seqlab.export.run`: :func:`export_run`, which loads the run once, writes the file, its
  manifest and vocabularies, and verifies the file's outputs against the model's.
"""
