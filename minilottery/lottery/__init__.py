"""Mask math of the three papers: pruning, criteria, actions, resets, scores, supermasks, edge-popup, jackpots, overlap."""
