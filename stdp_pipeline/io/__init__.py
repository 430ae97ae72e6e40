"""Storage: data sets, the config tree, run directories, atomic writes (no simulation here)."""
