from django import template

from outcomes.health.checks import OperationsStatus, operations_status

register = template.Library()


@register.simple_tag(takes_context=True)
def chasing_status(context) -> OperationsStatus | None:
    """The chasing figures for the admin home page, for staff who may see contact attempts."""
    user = context["request"].user
    if not user.has_perm("outcomes.view_contactattempt"):
        return None
    return operations_status(user=user)
