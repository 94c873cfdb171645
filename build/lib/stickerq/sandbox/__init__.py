"""A local HTTP server that speaks Kaleyra's WhatsApp v2 sticker contract, with fault injection.

`SandboxServer` runs it in a thread (tests, demo); `run_sandbox` serves it in the foreground
(CLI); `build_app` gives the bare aiohttp application. Control endpoints under `/_sandbox/`
script per-recipient outcomes and expose what was received and accepted.
"""

from stickerq.sandbox.app import build_app, run_sandbox
from stickerq.sandbox.config import SandboxConfig, SandboxConfigError
from stickerq.sandbox.replies import OUTCOMES
from stickerq.sandbox.server import SandboxControlError, SandboxServer

__all__ = [
    "OUTCOMES",
    "SandboxConfig",
    "SandboxConfigError",
    "SandboxControlError",
    "SandboxServer",
    "build_app",
    "run_sandbox",
]
