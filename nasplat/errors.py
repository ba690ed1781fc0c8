"""User-facing errors: the CLI prints their message on one line and exits with status 2."""

from __future__ import annotations


class NasplatError(Exception):
    """Base of every error caused by bad input (names, files, configs, genotypes, URLs)."""


class UnknownNameError(NasplatError, KeyError):
    """A name that is not in a registry."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class InvalidGenotypeError(NasplatError, ValueError):
    """A genotype that does not belong to its space; the message names the decision."""


class ConfigError(NasplatError, ValueError):
    """A malformed configuration file or option value."""


class StorageError(NasplatError):
    """The store cannot be opened or does not hold what was asked for."""


class StudyExistsError(StorageError):
    """A study of that name is in the store already."""


class DatasetError(NasplatError):
    """A dataset's files are missing or malformed."""


class ExportError(NasplatError):
    """An export that would overwrite files, or a model that does not export faithfully."""


class TrialPruned(Exception):
    """Raised inside an evaluation when its reporter decides to stop the trial early."""


class InfeasibleError(ConfigError):
    """The constraints admit no architecture: every proposal of a search was rejected."""
