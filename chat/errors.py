"""Errors of the services that Django has no exception for."""


class Conflict(Exception):
    """A request that contradicts an earlier one with the same client id."""
