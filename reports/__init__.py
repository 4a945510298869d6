"""Read-only queries over the warehouse and the ops store, returned as DataFrames."""
