"""Neuron models, one file each, all of one shape (see :mod:`stdp_pipeline.sim.neurons.base`)."""
