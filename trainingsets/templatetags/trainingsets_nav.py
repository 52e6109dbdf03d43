"""`{% reads_training_sets request.user as reads %}`: whether the nav shows a non-staff user the training sets."""
from django import template

from ..selectors import trainingset_list_for

register = template.Library()


@register.simple_tag
def reads_training_sets(user) -> bool:
    """Staff always; anyone else when they own or read at least one set."""
    if not getattr(user, "is_authenticated", False):
        return False
    return user.is_staff or trainingset_list_for(user).exists()
