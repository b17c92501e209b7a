"""Placeholder: this command group is being built (see the issue tracker)."""

from __future__ import annotations

import click

__all__ = ["release", "secrets"]


@click.command(hidden=True)
def release() -> None:
    """Not available yet."""
    raise click.ClickException("`notar release` is not available in this build yet")


@click.command(hidden=True)
def secrets() -> None:
    """Not available yet."""
    raise click.ClickException("`notar secrets` is not available in this build yet")
