"""The colour theme of a page: `{% current_theme as theme %}` gives "light", "dark" or "system"."""

from __future__ import annotations

from django import template

from chat.theme_views import chosen_theme

register = template.Library()


@register.simple_tag(takes_context=True)
def current_theme(context: template.Context) -> str:
    """The theme chosen with the switcher; "system" where there is no request (the 500 page)."""
    return chosen_theme(context.get("request"))
