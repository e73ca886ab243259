from urllib.parse import urlsplit

from hypothesis import given, settings
from hypothesis import strategies as st

from matpo_gym.tools.html_text import html_to_text

BASE = "http://world.test/wiki/Ada_Lovelace"


def test_drops_chrome_and_code_keeps_content() -> None:
    html = """<html><head><title>T</title><style>.x { color: red }</style>
    <script>var secret = 'SCRIPT';</script></head><body>
    <noscript>NOSCRIPT</noscript><svg><text>SVGTEXT</text></svg>
    <nav><a href="/">NAVLINK</a></nav>
    <p>Visible prose.</p>
    <form><input value="FORMVALUE"><button>FORMBUTTON</button><label>FORMLABEL</label></form>
    <footer>FOOTER text</footer></body></html>"""
    page = html_to_text(html, BASE)
    assert page.text == "Visible prose."
    assert page.links == []


def test_structure_headings_paragraphs_lists() -> None:
    html = """<h1>Ada <b>Lovelace</b></h1><p>First
    paragraph,   spread\tover lines.</p><h2>Life</h2>
    <ul><li>Born 1815<ul><li>in London</li></ul></li><li>Died 1852</li></ul>
    <ol><li>one</li></ol><div>A div<br>with a break</div>"""
    assert html_to_text(html, BASE).text.split("\n") == [
        "# Ada Lovelace",
        "First paragraph, spread over lines.",
        "## Life",
        "- Born 1815",
        "  - in London",
        "- Died 1852",
        "- one",
        "A div",
        "with a break",
    ]


def test_infobox_rows_become_label_value_and_other_rows_pipe_joined() -> None:
    html = """<table class="infobox">
    <tr><th>Born</th><td>10 December 1815</td></tr>
    <tr><th>Field</th><td><a href="/wiki/Mathematics">Mathematics</a></td></tr>
    <tr><td>a</td><td>b</td><td>c</td></tr>
    <tr><th>Empty</th><td></td></tr></table>"""
    assert html_to_text(html, BASE).text.split("\n") == [
        "Born: 10 December 1815",
        "Field: [Mathematics](http://world.test/wiki/Mathematics)",
        "a | b | c",
        "Empty",
    ]


def test_nested_tables_flatten_into_their_cell() -> None:
    html = """<table><tr><th>Outer</th><td>before
    <table><tr><td>inner one</td><td>inner two</td></tr></table> after</td></tr>
    <tr><th>Next</th><td>row</td></tr></table>"""
    assert html_to_text(html, BASE).text.split("\n") == [
        "Outer: before inner one inner two after",
        "Next: row",
    ]


def test_links_are_resolved_inline_and_listed_once() -> None:
    html = """<p><a href="Charles_Babbage">rel</a> <a href="/wiki/London">root</a>
    <a href="../index.html">up</a> <a href="https://other.example/x?y=1">ext</a>
    <a href="#Life">anchor only</a> <a href="javascript:void(0)">js</a>
    <a href="/wiki/London">root</a> <a href="/wiki/Empty"></a> <a>no href</a></p>"""
    page = html_to_text(html, BASE)
    assert page.text == (
        "[rel](http://world.test/wiki/Charles_Babbage) [root](http://world.test/wiki/London) "
        "[up](http://world.test/index.html) [ext](https://other.example/x?y=1) anchor only js "
        "[root](http://world.test/wiki/London) no href"
    )
    assert page.links == [
        ("rel", "http://world.test/wiki/Charles_Babbage"),
        ("root", "http://world.test/wiki/London"),
        ("up", "http://world.test/index.html"),
        ("ext", "https://other.example/x?y=1"),
    ]


def test_plain_mode_writes_anchor_text_only_but_still_lists_links() -> None:
    page = html_to_text('<p>See <a href="/wiki/London">London</a>.</p>', BASE, inline_links=False)
    assert page.text == "See London."
    assert page.links == [("London", "http://world.test/wiki/London")]


def test_entities_and_whitespace() -> None:
    html = (
        "<p>Fish &amp; chips &lt;3&nbsp;&nbsp;for &#163;5 &mdash; &quot;ok&quot;</p><!-- gone -->"
    )
    assert html_to_text(html, BASE).text == 'Fish & chips <3 for £5 — "ok"'


def test_title_prefers_title_tag_then_h1() -> None:
    assert html_to_text("<title> Page  title </title><h1>Heading</h1>", BASE).title == "Page title"
    assert (
        html_to_text("<h2>Sub</h2><h1>Main <a href='/x'>link</a></h1>", BASE).title == "Main link"
    )
    assert html_to_text("<p>no title</p>", BASE).title == ""


def test_broken_html_keeps_the_text() -> None:
    html = """<html><body><div><p>unclosed paragraph <b>bold <i>both</div></span></p>
    stray </td> end tag <p>price < 5 and > 3</p><a href="/wiki/X">unterminated link
    <p class="x>attribute never closes</p><table><td>cell without row"""
    text = html_to_text(html, BASE).text
    for fragment in [
        "unclosed paragraph bold both",
        "stray end tag",
        "price < 5 and > 3",
        "cell without row",
    ]:
        assert fragment in text


def test_pre_keeps_line_breaks() -> None:
    html = "<p>Code:</p><pre>def f():\n    return 1\n</pre>"
    assert html_to_text(html, BASE).text.split("\n") == ["Code:", "def f():", "    return 1"]


def test_very_deep_nesting_does_not_hit_the_recursion_limit() -> None:
    html = "<div>" * 5000 + "deep text" + "</div>" * 5000
    assert html_to_text(html, BASE).text == "deep text"


def _assert_well_formed(html: str) -> None:
    page = html_to_text(html, BASE)
    assert isinstance(page.title, str) and isinstance(page.text, str)
    for line in page.text.split("\n") if page.text else []:
        assert line.strip() and line == line.rstrip()
    for anchor, url in page.links:
        assert anchor and anchor == anchor.strip()
        assert urlsplit(url).scheme and not any(c.isspace() for c in url)


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_arbitrary_text_never_raises(html: str) -> None:
    _assert_well_formed(html)


HTML_BITS = st.sampled_from(
    [
        "<",
        ">",
        "</",
        "/>",
        "<p>",
        "</p>",
        "<a href='",
        '<a href="/x">',
        "</a>",
        "<table>",
        "<tr>",
        "<td>",
        "<th>",
        "</table>",
        "<ul>",
        "<li>",
        "<script>",
        "</script>",
        "<!--",
        "-->",
        "<![CDATA[",
        "]]>",
        "<!DOCTYPE",
        "&amp;",
        "&#",
        "&#x",
        ";",
        "=",
        "'",
        '"',
        " ",
        "\n",
        "<h1>",
        "</h1>",
        "<br/>",
        "<nav>",
        "<pre>",
        "<?php",
        "?>",
        "<![",
        "<title>",
        "</title>",
        "javascript:",
        "#",
        "x",
    ]
)


@settings(max_examples=500, deadline=None)
@given(st.lists(st.one_of(HTML_BITS, st.text(max_size=5)), max_size=60).map("".join))
def test_tag_soup_never_raises(html: str) -> None:
    _assert_well_formed(html)
