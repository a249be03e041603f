"""Dagster resources: thin wrappers that hand the assets the framework-free core."""
