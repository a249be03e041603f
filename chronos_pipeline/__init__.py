"""Chronos: lecture videos in, cited answers and a cost ledger out."""
