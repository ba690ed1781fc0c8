"""A third-party nasplat plugin, as the entry-point test installs it (see ``module``)."""
