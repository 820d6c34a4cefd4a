from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "ecsportal.accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from ecsportal.accounts import crypto, revocation, sockets  # noqa: F401  (sockets: connects the logout signal)
        from ecsportal.aws import sessions

        sessions.configure(
            endpoint_url=settings.AWS_ENDPOINT_URL or None,
            connect_timeout=settings.AWS_CONNECT_TIMEOUT,
            read_timeout=settings.AWS_READ_TIMEOUT,
            max_attempts=settings.AWS_MAX_ATTEMPTS,
            local_exec=settings.ECSPORTAL_LOCAL_EXEC,
        )
        revocation.connect_signals()
        crypto.register_sealed("accounts.AwsAccount", "secret_access_key_encrypted", lambda a: f"account {a.name}")
