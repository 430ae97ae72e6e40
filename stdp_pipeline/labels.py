"""The class labels every stage shares: the digits 0..9 (MNIST, and Fashion-MNIST's ten classes).

Labels are the integers ``0 .. N_CLASSES - 1``; a neuron that never fired is given class ``-1``
(see :mod:`stdp_pipeline.stages.assign`).
"""

from __future__ import annotations

#: Number of classes: label arrays hold 0..9, per-class tables have this many rows.
N_CLASSES = 10
