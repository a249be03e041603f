"""Developer scripts for Chronos (sample-media generators and other one-off tools)."""
