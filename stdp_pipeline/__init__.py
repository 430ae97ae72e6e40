"""stdp-pipeline: unsupervised MNIST learning by STDP in TensorFlow spiking networks.

Data flows one way through the modules:
``data -> encoding -> neurons / wiring / learning -> network -> train -> assign -> evaluate``.
"""

import os as _os

# TensorFlow prints C++ log lines at import; users see none of it unless they ask.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"
