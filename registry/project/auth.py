"""Authentication backend: Django's ModelBackend, with the request's user read together with
everything every staff page asks about it: permissions, roles, sites (by
``registry.access.GRANTS_SQL``) and whether the user has a confirmed second-factor device
(``registry.project.admin_site.otp_required``). Read apart that was four queries after the
session's: the user, the device, and one for permissions, roles and sites (which was itself
four before). At registry scale each query counts (a staff page's budget is 8 queries), and
scoping rows by a list of site ids lets PostgreSQL plan with the site's real share of the
rows."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.contrib.auth.backends import ModelBackend
from django.contrib.postgres.fields import ArrayField
from django.db import DEFAULT_DB_ALIAS, connection
from django.db.models import Exists, OuterRef, TextField
from django.db.models.expressions import RawSQL
from django_otp import device_classes

from registry.access import GRANTS_SQL, fill_roles_and_permissions, load_roles_and_permissions


class RegistryModelBackend(ModelBackend):
    """ModelBackend whose permission caches are filled with the user (see module docstring).
    Superusers keep ModelBackend's "every permission" answer."""

    def get_user(self, user_id):
        model = get_user_model()
        user_id_column = (
            f"{connection.ops.quote_name(model._meta.db_table)}."
            f"{connection.ops.quote_name(model._meta.pk.column)}"
        )
        # Our own SQL and quoted names: no input reaches it.
        grants = RawSQL(  # noqa: S611
            "ARRAY(SELECT ARRAY[g.kind, g.name, g.codename]::text[] FROM ("  # noqa: S608
            + GRANTS_SQL.format(user=user_id_column)
            + ") AS g (kind, name, codename))",
            (),
            output_field=ArrayField(ArrayField(TextField())),
        )
        devices = {
            f"_has_device_{n}": Exists(device.objects.filter(user=OuterRef("pk"), confirmed=True))
            for n, device in enumerate(device_classes())
        }
        # From the primary, as load_roles_and_permissions: a revoked role or site must not live
        # on in a replica's lagging copy.
        user = (
            model._default_manager.using(DEFAULT_DB_ALIAS)
            .annotate(_grants=grants, **devices)
            .filter(pk=user_id)
            .first()
        )
        if user is None or not self.user_can_authenticate(user):
            return None
        if not user.is_superuser:
            fill_roles_and_permissions(user, user._grants)
        user._has_confirmed_device_cache = any(getattr(user, name) for name in devices)
        return user

    def _get_permissions(self, user_obj, obj, from_name):
        if (
            user_obj.is_active
            and not user_obj.is_anonymous
            and not user_obj.is_superuser
            and obj is None
            and not hasattr(user_obj, f"_{from_name}_perm_cache")
        ):
            load_roles_and_permissions(user_obj)
        return super()._get_permissions(user_obj, obj, from_name)
