"""stdp-pipeline: unsupervised MNIST learning by STDP in TensorFlow spiking networks.

Data flows one way through the subpackages:
``io`` (data, config) -> ``sim`` (input codes -> neurons / wiring / learning rules -> network)
-> ``stages`` (encode -> train -> assign -> evaluate -> fields / reconstruct / curves -> report)
-> ``cli``. The Python API (:mod:`stdp_pipeline.api`) is available at the top level::

    import stdp_pipeline as sp
    net = sp.build_network("diehl-cook-100")

Names are imported on first use, so ``import stdp_pipeline`` stays fast (TensorFlow loads only
when a network is built).
"""

import os as _os
from typing import Any as _Any

# TensorFlow prints C++ log lines at import; users see none of it unless they ask.
_os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
_os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"

_API = (
    "Digits",
    "assign",
    "build_network",
    "evaluate",
    "load_config",
    "load_digits",
    "present",
    "receptive_fields",
    "respond",
    "train",
)
__all__ = ["__version__", *_API]


def __getattr__(name: str) -> _Any:
    if name in _API:
        from stdp_pipeline import api

        return getattr(api, name)
    raise AttributeError(f"module 'stdp_pipeline' has no attribute {name!r}")
