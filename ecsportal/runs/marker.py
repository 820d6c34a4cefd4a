"""The exit marker: how a shell run reports its exit code, which ECS Exec does not return."""

from __future__ import annotations

import re
import secrets
import shlex


class ExitMarker:
    """Wraps a shell command so it reports its exit code, and removes that report from the output.

    The command runs as ``/bin/sh -c '<EXIT trap>\\n<command>'``; the trap prints
    ``\\x1e ecsportal-exit:<32 random hex>=<code>`` as the shell exits (also after `exit 3`).
    The marker's token is printed as two halves, so its text never appears in the command
    (nor in a process listing as one string). Only the marker at the very end of the output
    counts: another run's marker, a forged one or this one followed by more output is kept
    as output and changes nothing. Only trailing bytes that could begin the marker are held
    back, so output is not delayed otherwise.
    """

    PREFIX = b"\x1eecsportal-exit:"

    def __init__(self, token: str | None = None) -> None:
        self.token = token or secrets.token_hex(16)
        self.marker = self.PREFIX + self.token.encode()
        self._full = re.compile(re.escape(self.marker) + rb"=(\d{1,3})\r*\n")
        self._partial = re.compile(re.escape(self.marker) + rb"(=\d{0,3}\r*)?")
        self._held = bytearray()

    def wrap(self, command: str) -> str:
        half = len(self.token) // 2
        a, b = self.token[:half], self.token[half:]
        trap = f'trap \'ecsportal_rc=$?; printf "\\036ecsportal-exit:%s%s=%d\\n" {a} {b} "$ecsportal_rc"\' EXIT'
        return "/bin/sh -c " + shlex.quote(f"{trap}\n{command}")

    def feed(self, data: bytes) -> bytes:
        """Add output; return what can be shown now."""
        if not self._held and self.PREFIX[:1] not in data:
            return data  # nothing held, no byte that could begin the marker: all of it, uncopied
        held = self._held
        held += data
        out = bytearray()
        while True:
            at = held.find(self.marker)
            if at < 0:
                break
            out += held[:at]
            del held[:at]
            full = self._full.match(held)
            if full:
                if full.end() == len(held):
                    return bytes(out)  # a complete trailer at the end: hold it
                out += held[: full.end()]  # more output after it: it was not the end
                del held[: full.end()]
                continue
            if self._partial.fullmatch(held):
                return bytes(out)  # the trailer may still be arriving
            out += held[: len(self.marker)]
            del held[: len(self.marker)]
        start = held.rfind(self.PREFIX[:1], max(0, len(held) - len(self.marker) + 1))
        if start >= 0 and self.marker.startswith(bytes(held[start:])):
            out += held[:start]
            del held[:start]
        else:
            out += held
            held.clear()
        return bytes(out)

    def finish(self) -> tuple[bytes, int | None]:
        """At the end of the session: the output still held and the exit code (None if unknown)."""
        full = self._full.fullmatch(self._held)
        code = int(full.group(1)) if full else None
        rest = b"" if full else bytes(self._held)
        self._held.clear()
        return rest, code
