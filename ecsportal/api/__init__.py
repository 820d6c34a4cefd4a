"""The JSON API, `/api/v1/`: django-ninja over the same gates and services as the pages."""
