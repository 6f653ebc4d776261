from django import template
from django.utils.html import format_html
from django.utils.safestring import mark_safe
from django.utils.translation import gettext as _

register = template.Library()

CAP_SVG = (
    '<svg class="cap" viewBox="0 0 24 24" aria-hidden="true" focusable="false">'
    '<path d="M12 3 1 9l11 6 9-4.9V17h2V9L12 3zm-6 9.2V16c0 1.7 2.7 3 6 3s6-1.3 6-3v-3.8l-6 3.3-6-3.3z"/></svg>'
)


@register.simple_tag
def user_name(user: object) -> str:
    """A person's name as shown everywhere: escaped, with the verified
    educator's academic cap, and a warning on names that imitate one."""
    name = getattr(user, "display_name", str(user))
    html = format_html('<span class="user-name">{}</span>', name)
    if getattr(user, "is_verified_educator", False):
        html += format_html(
            ' <span class="verified" title="{}">{}<span class="visually-hidden">{}</span></span>',
            _("Verified educator"),
            mark_safe(CAP_SVG),  # noqa: S308 - a constant
            _("Verified educator"),
        )
    elif getattr(user, "is_name_flagged", False):
        html += format_html(' <span class="flagged">{}</span>', _("(not a verified educator)"))
    return html
