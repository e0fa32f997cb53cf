"""Experiment kinds on one protocol (base.py): IMP, the Deconstructing comparisons, supermasks, jackpots."""
