from __future__ import annotations

app_name = "runbooks"
urlpatterns: list = []
