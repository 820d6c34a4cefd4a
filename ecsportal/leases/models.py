"""A lease is one row per name: who holds it and until when.

Taken and renewed only by conditional UPDATEs (services.py), so it works the same on SQLite and
PostgreSQL, with no lock held between statements.
"""

from __future__ import annotations

from django.db import models


class Lease(models.Model):
    name = models.CharField(max_length=100, primary_key=True)
    holder = models.CharField(max_length=200)  # "<host>:<pid>:<random>" of the process (services.process_id())
    expires_at = models.DateTimeField()
    taken_at = models.DateTimeField()  # when the current holder took it (renewals keep it)

    def __str__(self) -> str:
        return f"lease {self.name} held by {self.holder} until {self.expires_at:%H:%M:%S}"
