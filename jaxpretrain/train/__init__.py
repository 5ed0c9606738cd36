"""Training: state, optimizer, the one train step, and the phased loop."""
