"""The redaction filter on botocore's and websockets' DEBUG loggers, on the texts they really log."""

from __future__ import annotations

import logging

import pytest

from ecsportal.logredact import RedactSecrets, redact

TOKEN = "AAEAAfakeSsmTokenValue+/x9=="
SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYREDACTME"
SESSION = "FwoGZXIvYXdzEFakeSessionToken//////////wEaDA=="
RUNBOOK_SECRET = "hunter2-redact-me"


class TokenFrame:
    """Like websockets' Frame: a short text, a repr with every byte."""

    data = ('{"MessageSchemaVersion": "1.0", "RequestId": "r", "TokenValue": "' + TOKEN + '"}').encode()

    def __str__(self) -> str:
        return 'TEXT \'{"MessageSchemaVersion": "1.0", "RequestId": "r..."}\' [100 bytes]'

    def __repr__(self) -> str:
        return f"Frame(opcode=<Opcode.TEXT: 1>, data={self.data!r}, fin=True)"


@pytest.mark.parametrize(
    ("logger", "fmt", "args"),
    [
        # botocore.parsers, ExecuteCommand's answer
        (
            "botocore.parsers",
            "Response body:\n%r",
            (('{"session":{"sessionId":"ecs-1","streamUrl":"wss://x","tokenValue":"' + TOKEN + '"}}').encode(),),
        ),
        # botocore.parsers, STS AssumeRole's answer (XML)
        (
            "botocore.parsers",
            "Response body:\n%r",
            (
                (
                    "<AssumeRoleResult><Credentials><AccessKeyId>ASIA1</AccessKeyId>"
                    f"<SecretAccessKey>{SECRET}</SecretAccessKey><SessionToken>{SESSION}</SessionToken>"
                    "</Credentials></AssumeRoleResult>"
                ).encode(),
            ),
        ),
        # botocore.endpoint, the ExecuteCommand request with a runbook secret in the command
        (
            "botocore.endpoint",
            "Making request for %s with params: %s",
            (
                "OperationModel(name=ExecuteCommand)",
                {
                    "body": (
                        '{"cluster": "c", "task": "t", "command": "/bin/sh -c \'printf %s '
                        + RUNBOOK_SECRET
                        + ' | sha256sum\'", "interactive": true}'
                    ).encode()
                },
            ),
        ),
        # botocore.endpoint, a request signed with an assumed role's session token
        (
            "botocore.endpoint",
            "Sending http request: %s",
            (
                "<AWSPreparedRequest stream_output=False, method=POST, url=https://ecs.eu-west-1.amazonaws.com/, "
                f"headers={{'X-Amz-Date': b'20261203T090000Z', 'X-Amz-Security-Token': b'{SESSION}', "
                "'Authorization': b'AWS4-HMAC-SHA256 Credential=ASIA1/20261203/eu-west-1/ecs/aws4_request'}>",
            ),
        ),
        # botocore.auth, the canonical request it signs
        (
            "botocore.auth",
            "CanonicalRequest:\n%s",
            (
                f"POST\n/\n\nhost:ecs.eu-west-1.amazonaws.com\nx-amz-date:20261203T090000Z\nx-amz-security-token:{SESSION}\n",
            ),
        ),
        # the data channel's token frame, as websockets logs it: its text shortened, the
        # frame object (in the record's arguments) whole
        ("ecsportal.ssm.websockets", "> %s", (TokenFrame(),)),
    ],
)
def test_the_secret_is_blanked_and_the_record_kept(caplog, logger, fmt, args):
    caplog.set_level(logging.DEBUG, logger=logger)
    logging.getLogger(logger).debug(fmt, *args)
    (record,) = [r for r in caplog.records if r.name == logger]
    text = f"{record.getMessage()} {record.args!r}"
    for secret in (TOKEN, SECRET, SESSION, RUNBOOK_SECRET):
        assert secret not in text
    assert "[redacted]" in text or record.args is None
    assert RedactSecrets in {type(f) for f in logging.getLogger(logger).filters}, "installed by settings.LOGGING"


def test_ordinary_messages_are_left_alone():
    text = 'Response body:\nb\'{"clusters": [{"clusterName": "prod"}], "command": "ls"}\''
    assert redact(text) == text
