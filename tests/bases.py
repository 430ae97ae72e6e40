"""Configs the tests build on (``tests/configs/``), apart from the presets users get: a test pins
the figures of its base, and a preset may change when a better setting is measured."""

from __future__ import annotations

from pathlib import Path

#: ``tests/configs/dc100.toml``: diehl-cook-100 with one pass, no input delays, the TensorFlow
#: engines (as a path string: it goes to ``load_config`` and ``--config`` alike).
DC100 = str(Path(__file__).with_name("configs") / "dc100.toml")
