"""Message text as safe HTML (chat.markdown), made once per version, on every door."""

from __future__ import annotations

from html.parser import HTMLParser
from pathlib import Path

import pytest
from django.test import TestCase
from rest_framework.test import APIClient

from chat import markdown, services
from chat.tests.factories import make_room, make_user
from chat.tests.hostile_markdown import corpus

ALLOWED_LINK = ("http://", "https://", "mailto:")


class Elements(HTMLParser):
    """Every start tag of a fragment, with its attributes."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.found: list[tuple[str, dict[str, str | None]]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found.append((tag, dict(attrs)))


def elements(html: str) -> list[tuple[str, dict[str, str | None]]]:
    parser = Elements()
    parser.feed(html)
    return parser.found


@pytest.mark.parametrize(
    ("text", "html"),
    [
        (
            "**bold** *it* ~~gone~~ `x<y`",
            "<p><strong>bold</strong> <em>it</em> <s>gone</s> <code>x&lt;y</code></p>",
        ),
        ("one\ntwo", "<p>one<br>\ntwo</p>"),
        ("> said", "<blockquote>\n<p>said</p>\n</blockquote>"),
        ("- a\n- b", "<ul>\n<li>a</li>\n<li>b</li>\n</ul>"),
        (
            "see https://example.com/a?b=1&c=2",
            '<p>see <a href="https://example.com/a?b=1&amp;c=2" target="_blank" rel="nofollow noopener ugc">'
            "https://example.com/a?b=1&amp;c=2</a></p>",
        ),
        (
            "[mail](mailto:a@example.com)",
            '<p><a href="mailto:a@example.com" target="_blank" rel="nofollow noopener ugc">mail</a></p>',
        ),
        ("# not a heading", "<p># not a heading</p>"),
        ("<b>raw</b>", "<p>&lt;b&gt;raw&lt;/b&gt;</p>"),
    ],
)
def test_the_subset(text: str, html: str) -> None:
    assert markdown.render(text) == html


def test_code_blocks_are_highlighted_on_the_server() -> None:
    html = markdown.render('```python\nprint("<hi>")\n```')
    assert html.startswith('<pre><code class="highlight"><span class="hl-nb">print</span>')
    assert "&lt;hi&gt;" in html
    assert markdown.render("```nosuchlanguage\n<x>\n```") == '<pre><code class="">&lt;x&gt;\n</code></pre>'


def test_the_hostile_corpus_is_harmless() -> None:
    """200 texts: only allowed tags, no event handler or htmx attribute, only http(s) and
    mailto links, Pygments' classes only."""
    texts = corpus()
    assert len(texts) == 200
    for text in texts:
        html = markdown.render(text)
        for tag, attributes in elements(html):
            assert tag in markdown.TAGS, (text, html)
            for name, value in attributes.items():
                assert not name.startswith(("on", "hx-", "data-", "ws-", "style")), (text, html)
                assert name in {"href", "target", "rel", "title", "class", "start"}, (text, html)
                if name == "href":
                    assert (value or "").startswith(ALLOWED_LINK), (text, html)
                if name == "class":
                    assert set((value or "").split()) <= {"highlight", *markdown.CLASSES["span"]}, (
                        text,
                        html,
                    )


def test_the_stylesheet_is_current() -> None:
    path = Path(__file__).resolve().parents[2] / "static" / "chat" / "message.css"
    assert path.read_text() == markdown.stylesheet(), "run: python -m chat.markdown > static/chat/message.css"


class DoorTests(TestCase):
    def setUp(self):
        self.alice = make_user("alice")
        self.room = make_room(self.alice, "Notes")

    def test_made_on_write_for_every_version(self):
        message, _ = services.post_message(chat=self.room, user=self.alice, text="**v1**")
        assert message.html == "<p><strong>v1</strong></p>"
        services.edit_message(message=message, user=self.alice, text="_v2_")
        message.refresh_from_db()
        assert message.html == "<p><em>v2</em></p>"
        services.delete_message(message=message, user=self.alice)
        message.refresh_from_db()
        assert message.html == "" and message.text == ""

    def test_the_page_and_the_api_show_the_stored_html(self):
        message, _ = services.post_message(chat=self.room, user=self.alice, text="**hi** <script>x</script>")
        self.client.force_login(self.alice)
        page = self.client.get(self.room.get_absolute_url()).text
        assert "<strong>hi</strong> &lt;script&gt;x&lt;/script&gt;" in page
        api = APIClient()
        api.force_authenticate(self.alice)
        body = api.get(f"/api/messages/{message.pk}/").json()
        assert body["text"] == "**hi** <script>x</script>"
        assert body["html"] == "<p><strong>hi</strong> &lt;script&gt;x&lt;/script&gt;</p>"
