"""Self-contained HTML pages (images embedded as data: URIs).

Every number of a table sits in a cell with data-key (the name in `convrec
info --json` or study.json) and data-value (the exact double, repr), the
text shows it rounded. The page checks itself on load: an inline script
counts the images that decoded (naturalWidth > 0) and the script errors, and
writes the result into #selfcheck (data-images, data-broken, data-errors,
data-state="done"), so a headless browser's --dump-dom can read it.
"""
import base64
import html
import io
import math

SELF_CHECK = """<script>
(function () {
  var errors = [];
  window.addEventListener("error", function (e) { errors.push(String(e.message || e.type)); }, true);
  window.addEventListener("load", function () {
    var imgs = document.images, broken = [];
    for (var i = 0; i < imgs.length; i++)
      if (!(imgs[i].complete && imgs[i].naturalWidth > 0)) broken.push(imgs[i].alt || String(i));
    var r = document.getElementById("selfcheck");
    r.setAttribute("data-images", String(imgs.length));
    r.setAttribute("data-broken", String(broken.length));
    r.setAttribute("data-errors", String(errors.length));
    r.setAttribute("data-state", "done");
    r.textContent = "page check: " + (imgs.length - broken.length) + " of " + imgs.length +
      " images decoded" + (broken.length ? " (broken: " + broken.join(", ") + ")" : "") +
      ", " + (errors.length ? errors.length + " script errors: " + errors.join("; ") : "no script errors");
  });
})();
</script>"""

STYLE = """<style>
body { font-family: sans-serif; margin: 1.2em 2em; color: #111; max-width: 1400px; }
h1 { font-size: 1.35em; } h2 { font-size: 1.15em; margin-top: 1.6em; } h3 { font-size: 1.0em; }
table { border-collapse: collapse; font-size: 0.82em; margin: 0.6em 0; }
th, td { border: 1px solid #bbb; padding: 2px 6px; text-align: right; white-space: nowrap; }
th { background: #eee; position: sticky; top: 0; }
td.t, th.t { text-align: left; }
tr.sel td { background: #fff3d6; }
.scroll { max-height: 32em; overflow: auto; display: inline-block; }
img { max-width: 100%; height: auto; border: 1px solid #ddd; }
code, pre { background: #f4f4f4; padding: 1px 4px; }
pre { padding: 6px; overflow-x: auto; }
.note { color: #444; font-size: 0.9em; max-width: 60em; }
#selfcheck { color: #666; font-size: 0.8em; margin-top: 2em; }
</style>"""


def esc(s):
    return html.escape(str(s), quote=True)


def value_attr(v):
    """data-value: the exact number (repr round-trips a double), true/false, null."""
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return repr(v) if math.isfinite(v) else "null"
    return str(v)


def shown(v, fmt):
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "—"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if fmt == "int":
        return str(int(v))
    if fmt == "text":
        return str(v)
    return format(v, fmt)


def cell(key, v, fmt, cls=None):
    c = f' class="{cls}"' if cls else ""
    return f'<td{c} data-key="{esc(key)}" data-value="{esc(value_attr(v))}">{esc(shown(v, fmt))}</td>'


def table(columns, rows, table_id, row_attrs=None, row_class=None):
    """columns: [(key, heading, fmt)], rows: [dict]; text columns left-aligned."""
    out = [f'<table id="{esc(table_id)}"><thead><tr>']
    for key, head, fmt in columns:
        out.append(f'<th class="{"t" if fmt == "text" else ""}" title="{esc(key)}">{head}</th>')
    out.append("</tr></thead><tbody>")
    for i, r in enumerate(rows):
        attrs = row_attrs(r) if row_attrs else ""
        cls = row_class(r) if row_class else ""
        out.append(f'<tr{attrs}{f" class={chr(34)}{cls}{chr(34)}" if cls else ""}>')
        for key, head, fmt in columns:
            out.append(cell(key, r.get(key), fmt, "t" if fmt == "text" else None))
        out.append("</tr>")
    out.append("</tbody></table>")
    return "".join(out)


def png_bytes(fig):
    """The figure as PNG, reduced to a 256-colour palette when Pillow is there
    (matplotlib depends on it in Debian): line plots look the same at a
    third of the size."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", metadata={"Software": None})
    try:
        from PIL import Image
    except ImportError:
        return buf.getvalue()
    buf.seek(0)
    with Image.open(buf) as im:
        small = io.BytesIO()
        im.convert("RGB").quantize(colors=256).save(small, "PNG", optimize=True)
    return small.getvalue()


def png_data_uri(fig):
    return "data:image/png;base64," + base64.b64encode(png_bytes(fig)).decode("ascii")


def image(fig, alt):
    return f'<p><img src="{png_data_uri(fig)}" alt="{esc(alt)}"></p>'


def page(title, body):
    return ("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
            f"<title>{esc(title)}</title>\n{STYLE}\n</head>\n<body>\n{SELF_CHECK}\n{body}\n"
            '<div id="selfcheck" data-state="pending">page check: pending (needs JavaScript)</div>\n'
            "</body>\n</html>\n")
