"""Reading a page the way a browser does: elements found by id, whatever order their attributes are written in."""

from dataclasses import dataclass, field
from html.parser import HTMLParser

# Elements that never have an end tag, so never hold text.
VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


@dataclass
class Element:
    tag: str
    attributes: dict[str, str]  # an attribute without a value, like autofocus, has ""
    text: str = ""
    children: list["Element"] = field(default_factory=list)


class Page(HTMLParser):
    def __init__(self, html):
        super().__init__(convert_charrefs=True)
        self.elements = []
        self.by_id = {}
        self.open = []
        self.feed(html)
        self.close()

    def handle_starttag(self, tag, attrs):
        element = Element(tag, {name: value or "" for name, value in attrs})
        self.elements.append(element)
        for parent in self.open:
            parent.children.append(element)
        if "id" in element.attributes:
            self.by_id.setdefault(element.attributes["id"], element)
        if tag not in VOID:
            self.open.append(element)

    def handle_endtag(self, tag):
        while self.open:
            if self.open.pop().tag == tag:
                break

    def handle_data(self, data):
        for element in self.open:
            element.text += data


def element(html, element_id):
    """The element with this id on the page; the test fails, saying so, when there is none."""
    found = Page(html).by_id.get(element_id)
    assert found is not None, f'the page has no element with id="{element_id}"'
    return found
