"""schemathesis hooks for test_registry_schemathesis.py (SCHEMATHESIS_HOOKS=schemathesis_hooks): control characters
are taken out of path parameters before a request is sent. sluice's HTTP layer refuses them (400) before any route,
by design (a subject with a newline would forge log lines), and the OpenAPI file documents no 400 for those
operations. (A filter_path_parameters hook is not applied in every phase; before_call is.)

Generated mode changes are sent as READWRITE instead of READONLY/READONLY_OVERRIDE: in a read-only mode every write
(a subject's DELETE included) answers 42205 as Confluent's server does, and the OpenAPI file documents no 422 for
most of those operations; tests/integration/test_registry_api.py covers the read-only modes themselves.

A POST generated without a body and without a Content-Type is sent with the registry's JSON type: the HTTP layer
answers 415 to a POST that does not say it is JSON (what a cross-site form sends; docs/security.md), a status the
OpenAPI file does not document. With the type, the registry itself answers the empty body (422 or 404)."""
from urllib.parse import quote, unquote

import schemathesis


def _clean(v):
    # The values arrive percent-encoded already: clean the decoded text, encode it again.
    if isinstance(v, str) and any(ord(ch) < 0x20 or ord(ch) == 0x7f for ch in unquote(v)):
        text = "".join(ch for ch in unquote(v) if ord(ch) >= 0x20 and ord(ch) != 0x7f)
        return quote(text or "x", safe="")
    return v


@schemathesis.hook
def before_call(ctx, case, **kwargs):
    if case.method.upper() == "PUT" and case.path.startswith("/mode") and isinstance(case.body, dict) and \
            str(case.body.get("mode", "")).upper().startswith("READONLY"):
        case.body = dict(case.body, mode="READWRITE")
    if case.method.upper() == "POST" and case.media_type is None and \
            not any(k.lower() == "content-type" for k in (case.headers or {})):
        case.headers = dict(case.headers or {}, **{"Content-Type": "application/vnd.schemaregistry.v1+json"})
    if case.path_parameters:
        case.path_parameters = {k: _clean(v) for k, v in case.path_parameters.items()}
