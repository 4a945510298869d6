"""Extract, validate and load MIS extracts into warehouse snapshots."""
