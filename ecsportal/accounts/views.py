from __future__ import annotations

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.debug import sensitive_post_parameters
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from ecsportal.accounts import services
from ecsportal.accounts.forms import AccountForm, MembershipForm, RoleForm
from ecsportal.accounts.models import Membership, Role
from ecsportal.accounts.selectors import account_get_for_user, accounts_for_user, roles_by_account_for_user
from ecsportal.audit.services import client_ip
from ecsportal.aws.errors import AccountMismatch, AwsError
from ecsportal.aws.records import Identity
from ecsportal.ui.http import HtmxHttpRequest


def _redirect(request: HtmxHttpRequest, url: str) -> HttpResponse:
    return HttpResponseClientRedirect(url) if request.htmx else redirect(url)


def _refused(form: AccountForm, checked: object) -> bool:
    """The credentials reach another account than the declared ID: nothing is saved."""
    if isinstance(checked, AccountMismatch):
        form.add_error("account_id", str(checked))
        return True
    return False


def _report_check(request: HtmxHttpRequest, saved: str, checked: Identity | AwsError | None) -> None:
    if isinstance(checked, AwsError):
        messages.warning(
            request,
            f"{saved} Its account ID could not be checked: {checked} Press Test connection once this is fixed; "
            "stopped tasks are collected only once the credentials are seen to reach this account.",
        )
    elif isinstance(checked, Identity):
        messages.success(request, f"{saved} Checked: its credentials reach account {checked.account_id}.")
    else:
        messages.success(request, saved)


@require_GET
def account_list(request: HtmxHttpRequest) -> HttpResponse:
    accounts = accounts_for_user(user=request.user).order_by("name")
    roles = roles_by_account_for_user(user=request.user)
    rows = [(a, roles.get(a.pk)) for a in accounts]
    return render(request, "accounts/list.html", {"rows": rows, "can_create": request.user.is_superuser})


@sensitive_post_parameters("secret_access_key")  # hidden from error pages and reports
@require_http_methods(["GET", "POST"])
def account_create(request: HtmxHttpRequest) -> HttpResponse:
    if not request.user.is_superuser:
        raise PermissionDenied("Only portal administrators (superusers) add AWS accounts.")
    form = AccountForm(request.POST or None)
    if request.method == "POST" and form.is_valid():
        checked = services.account_identity_check(data=form.cleaned_data)
        if not _refused(form, checked):
            account = services.account_create(actor=request.user, data=form.cleaned_data, source_ip=client_ip(request))
            _report_check(request, f"Account {account.name} added.", checked)
            return _redirect(request, reverse("accounts:detail", args=[account.pk]))
    template = "accounts/_account_form.html" if request.htmx else "accounts/form.html"
    return render(request, template, {"form": form, "account": None})


@require_GET
def account_detail(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    return _detail(request, pk)


def _detail(request: HtmxHttpRequest, pk: int, connection: dict | None = None) -> HttpResponse:
    """The account's page; "Test connection" (a POST) renders it too, with the outcome."""
    account = account_get_for_user(user=request.user, account_pk=pk)
    roles = roles_by_account_for_user(user=request.user)
    is_admin = roles.get(account.pk, Role.VIEWER) >= Role.ADMIN
    memberships = Membership.objects.filter(account=account).select_related("user") if is_admin else []
    return render(
        request,
        "accounts/detail.html",
        {
            "account": account,
            "role": roles.get(account.pk),
            "is_admin": is_admin,
            "memberships": memberships,
            "member_form": MembershipForm(),
            "roles": Role.choices,
            "connection": connection,
        },
    )


@sensitive_post_parameters("secret_access_key")  # hidden from error pages and reports
@require_http_methods(["GET", "POST"])
def account_edit(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=pk, min_role=Role.ADMIN)
    form = AccountForm(request.POST or None, instance=account, connection_locked=not request.user.is_superuser)
    if request.method == "POST" and form.is_valid():
        checked = services.account_identity_check(data=form.cleaned_data, account=account)
        if not _refused(form, checked):
            account = services.account_update(
                actor=request.user, account=account, data=form.cleaned_data, source_ip=client_ip(request)
            )
            _report_check(request, f"Account {account.name} saved.", checked)
            return _redirect(request, reverse("accounts:detail", args=[account.pk]))
    template = "accounts/_account_form.html" if request.htmx else "accounts/form.html"
    return render(request, template, {"form": form, "account": account})


@require_POST
def account_toggle(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=pk, min_role=Role.ADMIN)
    enabled = request.POST.get("enabled") == "1"
    services.account_set_enabled(actor=request.user, account=account, enabled=enabled, source_ip=client_ip(request))
    messages.success(request, f"{account.name} is now {'enabled' if enabled else 'disabled'}.")
    return _redirect(request, reverse("accounts:detail", args=[account.pk]))


@require_POST
def account_test(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=pk, min_role=Role.ADMIN)
    identity, error = services.account_test_connection(
        actor=request.user, account=account, source_ip=client_ip(request)
    )
    if not request.htmx:  # without JavaScript: the whole page, with the result in place
        return _detail(request, pk, connection={"identity": identity, "error": error})
    return render(
        request,
        "accounts/_connection_result.html",
        {"account": account, "identity": identity, "error": error},
    )


@require_POST
def membership_add(request: HtmxHttpRequest, pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=pk, min_role=Role.ADMIN)
    form = MembershipForm(request.POST)
    if form.is_valid():
        services.membership_set(
            actor=request.user,
            account=account,
            user=form.cleaned_data["username"],
            role=form.cleaned_data["role"],
            source_ip=client_ip(request),
        )
        messages.success(
            request, f"{form.cleaned_data['username']} is now {Role(form.cleaned_data['role']).label.lower()}."
        )
        return _redirect(request, reverse("accounts:detail", args=[account.pk]))
    return render(request, "accounts/_member_form.html", {"account": account, "member_form": form}, status=422)


@require_POST
def membership_change(request: HtmxHttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=pk, min_role=Role.ADMIN)
    membership = Membership.objects.select_related("user").filter(account=account, pk=membership_pk).first()
    form = RoleForm(request.POST)
    if membership is None or not form.is_valid():
        messages.error(request, "That membership or role does not exist.")
    else:
        services.membership_set(
            actor=request.user,
            account=account,
            user=membership.user,
            role=form.cleaned_data["role"],
            source_ip=client_ip(request),
        )
        messages.success(request, f"{membership.user} is now {Role(form.cleaned_data['role']).label.lower()}.")
    return _redirect(request, reverse("accounts:detail", args=[account.pk]))


@require_POST
def membership_delete(request: HtmxHttpRequest, pk: int, membership_pk: int) -> HttpResponse:
    account = account_get_for_user(user=request.user, account_pk=pk, min_role=Role.ADMIN)
    services.membership_remove(
        actor=request.user, account=account, membership_pk=membership_pk, source_ip=client_ip(request)
    )
    messages.success(request, "Membership removed.")
    return _redirect(request, reverse("accounts:detail", args=[account.pk]))
