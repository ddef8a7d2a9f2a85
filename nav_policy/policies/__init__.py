"""Torch model definitions of the learned planners (the energy model of kind `ebm`)."""
