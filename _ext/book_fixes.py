"""Small Sphinx fixes that keep a Jupyter Book 1.x page free of browser console errors.

- sphinx-thebe 0.3.1 adds its inline config script (``const THEBE_JS_URL = ...``) once with
  ``filename=None`` and Sphinx 7.4 re-adds it with ``filename=''``; the two copies are not
  equal, both are written, and the second throws "Identifier 'THEBE_JS_URL' has already been
  declared" on every page. Drop the duplicate.
- pydata-sphinx-theme's layout reads a template variable ``default_mode`` that nothing sets
  here, so on a first visit ``data-mode`` is ``""`` and the theme logs "Got invalid theme mode"
  as a console error; give the variable a value.
"""


def _fix_page_context(app, pagename, templatename, context, doctree):
    if not context.get("default_mode"):
        context["default_mode"] = "light"
    files = context.get("script_files")
    if not files:
        return
    seen, keep = set(), []
    for js in files:
        key = (str(getattr(js, "filename", js) or ""), getattr(js, "priority", 0),
               tuple(sorted((k, str(v)) for k, v in getattr(js, "attributes", {}).items())))
        if key not in seen:
            seen.add(key)
            keep.append(js)
    files[:] = keep


def setup(app):
    app.connect("html-page-context", _fix_page_context, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
