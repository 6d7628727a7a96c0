"""Algorithms: the Algorithm loop, the AlgorithmConfig builder, and one package per algorithm."""
