"""Sensors that turn storage events into runs."""
