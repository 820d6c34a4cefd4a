"""The portal side of the demo: users, accounts and memberships. Idempotent."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import transaction

from ecsportal.accounts.models import AwsAccount, CredentialSource, Membership, Role
from ecsportal.demo import localaws

DEMO_USERS = {
    "admin": None,  # superuser: admin everywhere
    "operator": Role.OPERATOR,
    "approver": Role.APPROVER,
    "approver2": Role.APPROVER,
    "viewer": Role.VIEWER,
}


@transaction.atomic
def seed_portal(*, password: str) -> dict[str, AwsAccount]:
    prod, _ = AwsAccount.objects.update_or_create(
        name="Acme Production",
        defaults={
            "account_id": localaws.ACCOUNT_A,
            "regions": ["eu-west-1", "us-east-1"],
            "credential_source": CredentialSource.DEFAULT_CHAIN,
            "is_production": True,
            "is_enabled": True,
        },
    )
    staging, _ = AwsAccount.objects.update_or_create(
        name="Acme Staging",
        defaults={
            "account_id": localaws.ACCOUNT_B,
            "regions": ["eu-west-1", "eu-central-1"],
            "credential_source": CredentialSource.DEFAULT_CHAIN,
            "role_arn": localaws.ROLE_B,
            "external_id": localaws.EXTERNAL_ID_B,
            "session_name": "ecsportal-demo",
            "allowed_role_arns": [localaws.ROLE_B_READONLY],
            "is_enabled": True,
        },
    )
    user_model = get_user_model()
    for username, role in DEMO_USERS.items():
        user, _ = user_model.objects.get_or_create(username=username)
        user.is_superuser = user.is_staff = role is None
        user.is_active = True
        user.set_password(password)
        user.save()
        if role is not None:
            for account in (prod, staging):
                Membership.objects.update_or_create(user=user, account=account, defaults={"role": role})
    return {"prod": prod, "staging": staging}
