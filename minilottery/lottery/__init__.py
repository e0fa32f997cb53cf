"""The science of the three papers: pruning criteria and actions, IMP, supermasks, edge-popup, jackpots."""
