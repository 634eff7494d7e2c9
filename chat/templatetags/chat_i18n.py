"""Tags for the words of a page that its pushed fragments leave out.

A pushed fragment is the same bytes for every viewer, whatever their language, so it
carries no words: each page says them once, in its own language, as CSS `content` (for
what is seen), hidden elements named by `aria-labelledby` (for what is heard) and a JSON
object that chat.js reads (for what it writes).
"""

from __future__ import annotations

import json
from typing import Any

from django import template
from django.utils.safestring import SafeString, mark_safe

from chat import i18n

register = template.Library()


@register.filter
def css_string(value: object) -> SafeString:
    """The text as a quoted CSS string, for a `content:` rule inside a <style> element.

    Anything but letters, digits and spaces is written as a CSS escape, so that no quote,
    backslash or "</style>" can end the string or the element.
    """
    escaped = "".join(char if char.isalnum() or char == " " else f"\\{ord(char):x} " for char in str(value))
    return mark_safe(f'"{escaped}"')  # noqa: S308 (every character but letters, digits and spaces is escaped)


# As django.utils.html.json_script escapes: nothing in the JSON can end the <script> element.
JSON_SCRIPT_ESCAPES = {ord("<"): "\\u003C", ord(">"): "\\u003E", ord("&"): "\\u0026"}


@register.filter
def json_data(value: object) -> SafeString:
    """The value as JSON for a <script type="application/json"> element, which the template
    writes itself so that it carries the page's CSP nonce like every other script."""
    return mark_safe(json.dumps(value, ensure_ascii=False).translate(JSON_SCRIPT_ESCAPES))  # noqa: S308 (escaped as json_script does)


@register.simple_tag
def page_strings() -> dict[str, Any]:
    """The words chat.js writes, in the active language: `{{ strings|json_script:"…" }}`."""
    return i18n.page_strings()
