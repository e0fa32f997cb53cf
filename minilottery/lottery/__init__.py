"""The science: pruning, resets, and the iterative magnitude pruning experiment."""
