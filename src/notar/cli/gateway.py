"""Placeholder: this command group is being built (see the issue tracker)."""

from __future__ import annotations

import click

__all__ = ["gateway"]


@click.command(hidden=True)
def gateway() -> None:
    """Not available yet."""
    raise click.ClickException("`notar gateway` is not available in this build yet")
