"""A logging filter that blanks secrets out of the DEBUG output of libraries we do not control.

The settings hold botocore and the data channel's websockets logger at WARNING, because at
DEBUG they print what must never be logged: botocore the request parameters (an ExecuteCommand's
command, which holds runbook secrets) and response bodies (STS AssumeRole's secret key and
session token, ExecuteCommand's SSM session token), websockets every frame (the SSM token
frame). Someone chasing an AWS problem will turn them up anyway; this filter, attached to those
loggers in `settings.LOGGING`, rewrites each record's text so the values are gone even then.
"""

from __future__ import annotations

import logging
import re

REDACTED = "[redacted]"

# "TokenValue": "…", 'tokenValue': '…', SecretAccessKey=…, "sessionToken": "…", and the
# assumed role's session token as a request header: 'X-Amz-Security-Token': b'…' (botocore.endpoint)
# or x-amz-security-token:… (botocore.auth's canonical request)
_KEY_VALUE = re.compile(
    r"""(?ix)
    (["']?(?:token_?value|secret_?access_?key|session_?token|(?:x-amz-)?security[-_]?token)["']?
     \s*[:=]\s*b?\\?["']?)
    [^"'\\\s,}&<]+
    """
)
# STS's XML answers: <SecretAccessKey>…</SecretAccessKey>, <SessionToken>…</SessionToken>
_XML = re.compile(r"(<(SecretAccessKey|SessionToken)>)[^<]*(</\2>)")
# The command of an ExecuteCommand request (JSON in the request body): runbook secrets live
# there. Quoting inside it is escaped twice over in a logged repr, so everything from the key to
# the end of the line goes.
_COMMAND = re.compile(r"""(\\?"command\\?"\s*:\s*).*$""", re.MULTILINE)


def redact(text: str) -> str:
    text = _XML.sub(rf"\g<1>{REDACTED}\g<3>", text)
    text = _KEY_VALUE.sub(rf"\g<1>{REDACTED}", text)
    if "ExecuteCommand" in text:
        text = _COMMAND.sub(rf'\g<1>"{REDACTED}" (and the rest of the request)', text)
    return text


class RedactSecrets(logging.Filter):
    """Rewrites the record's message with the secrets blanked out; never drops a record.

    The arguments are checked too: websockets logs a frame object whose text is shortened but
    whose repr (which handlers such as error trackers keep) holds the whole token frame. When
    they carry a secret they are dropped, leaving the formatted, blanked message.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a malformed record: leave it to the handler's own error path
            return True
        clean = redact(message)
        arguments = repr(record.args) if record.args else ""
        if clean != message or redact(arguments) != arguments:
            record.msg, record.args = clean, None
        return True
