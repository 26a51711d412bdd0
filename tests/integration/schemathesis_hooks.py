"""schemathesis hooks for test_registry_schemathesis.py (SCHEMATHESIS_HOOKS=schemathesis_hooks): control characters
are taken out of path parameters before a request is sent. sluice's HTTP layer refuses them (400) before any route,
by design (a subject with a newline would forge log lines), and the OpenAPI file documents no 400 for those
operations. (A filter_path_parameters hook is not applied in every phase; before_call is.)"""
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
    if case.path_parameters:
        case.path_parameters = {k: _clean(v) for k, v in case.path_parameters.items()}
