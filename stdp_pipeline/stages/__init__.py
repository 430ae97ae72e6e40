"""The pipeline's stages, each reading and writing one run directory."""
