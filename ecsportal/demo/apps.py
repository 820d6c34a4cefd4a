from django.apps import AppConfig


class DemoConfig(AppConfig):
    name = "ecsportal.demo"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        # Portal processes of a local several-process setup (`manage.py demo --aws-only` prints
        # these): ExecuteCommand's sessions go to the emulator in that process. No thread starts.
        url = getattr(settings, "ECSPORTAL_LOCAL_EXEC_EMULATOR", "")
        if settings.ECSPORTAL_LOCAL_EXEC and url:
            from ecsportal.demo.localaws import use_remote_data_channel

            use_remote_data_channel(url, settings.ECSPORTAL_LOCAL_EXEC_EMULATOR_KEY)
