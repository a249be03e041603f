"""The framework-free core of Chronos.

Nothing under this package imports Dagster or Litestar: the pipeline's assets and the HTTP
API are thin layers over these modules.
"""
