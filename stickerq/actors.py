"""Who made a change, as the audit log names them: an API key's name, or the CLI's user."""

from __future__ import annotations

import getpass
import socket


def cli_actor() -> str:
    """`cli:<user>@<host>`: a command run by hand (or by a script) on this machine."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no name for this uid (a container's), nor $USER
        user = "unknown"
    return f"cli:{user}@{socket.gethostname()}"
