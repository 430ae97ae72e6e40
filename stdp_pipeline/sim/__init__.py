"""The simulation: neuron models, learning rules, input codes, wiring and the network."""
