"""Input codes, one file each, all of one shape (see :mod:`stdp_pipeline.sim.codes.base`)."""
