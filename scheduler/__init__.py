"""The separate scheduler process and its jobs."""
