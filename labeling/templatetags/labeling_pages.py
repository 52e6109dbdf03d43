"""Template filters of the labeling pages: a project's Markdown instructions rendered and sanitised."""
import markdown as markdown_lib
import nh3
from django import template
from django.utils.safestring import mark_safe

register = template.Library()

# What instructions may use: text structure, links, images and tables; never scripts, styles, forms or frames.
ALLOWED_TAGS = {
    "p", "br", "hr", "h1", "h2", "h3", "h4", "h5", "h6", "strong", "em", "b", "i", "code", "pre", "blockquote",
    "ul", "ol", "li", "a", "img", "table", "thead", "tbody", "tr", "th", "td", "del", "sup", "sub", "kbd",
}
ALLOWED_ATTRIBUTES = {"a": {"href", "title"}, "img": {"src", "alt", "title"}, "th": {"align"}, "td": {"align"}}


@register.filter
def markdown_safe(text: str) -> str:
    """Markdown to HTML, then nh3 keeps only the allow-listed tags and http(s)/mailto links: raw HTML in
    the instructions cannot run script in a rater's browser."""
    html = markdown_lib.markdown(text or "", extensions=["tables", "sane_lists"], output_format="html")
    return mark_safe(nh3.clean(html, tags=ALLOWED_TAGS, attributes=ALLOWED_ATTRIBUTES,
                               url_schemes={"http", "https", "mailto"}))
