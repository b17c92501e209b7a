"""Placeholder: this command group is being built (see the issue tracker)."""

from __future__ import annotations

import click

__all__ = ["push", "pull"]


@click.command(hidden=True)
def push() -> None:
    """Not available yet."""
    raise click.ClickException("`notar push` is not available in this build yet")


@click.command(hidden=True)
def pull() -> None:
    """Not available yet."""
    raise click.ClickException("`notar pull` is not available in this build yet")
