"""Experiments that compare models on real data and print the tables of docs/results."""
