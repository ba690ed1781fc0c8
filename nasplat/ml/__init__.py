"""Machine learning support: datasets, the training loop, profiling (torch imported here)."""
