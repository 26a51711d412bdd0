"""A browser's way into a console with credentials: a page without them leads to /login (an HTML answer, not JSON);
/login and its script answer anyone, the rest does not; GET /api/login checks the credential sent in the
Authorization header and keeps it in an HttpOnly, SameSite=Strict cookie that then stands for it (operator or
viewer, a viewer's writes refused); a forged or logged-out cookie is nobody. An unknown page is an HTML 404 for a
browser (the path escaped), JSON for the rest."""
import os
import sys
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from test_console import CONFIG, Console, sluice  # noqa: E402

HTML = {"Accept": "text/html,application/xhtml+xml"}


def cookie_of(headers):
    sc = headers.get("Set-Cookie") or headers.get("set-cookie")
    assert sc, headers
    return sc


def test_login_cookie_roles_and_html_404(tmp_path):
    cfg = tmp_path / "sluice.yaml"
    cfg.write_text(CONFIG.format(data=tmp_path / "data", count=50, topic="users_created", kafka="")
                   + "  read_token_env: SL_TEST_READ_TOKEN\n")
    assert sluice("up", "--until-done", "-c", str(cfg), "-q").returncode == 0
    env = dict(os.environ, SLUICE_CONSOLE_TOKEN="op-s3cret", SL_TEST_READ_TOKEN="view-s3cret")
    con = Console(str(cfg), env=env)
    try:
        # A browser without credentials: led to the login page; an API client: JSON as before.
        status, headers, body = con.get("/", HTML)
        assert status == 401 and headers["Content-Type"].startswith("text/html")
        assert b'url=/login' in body and b'href="/login"' in body
        status, headers, body = con.get("/")
        assert status == 401 and headers["Content-Type"].startswith("application/json")
        for p in ("/login", "/login.js", "/login.css"):
            assert con.get(p)[0] == 200, p
        assert b'id="token"' in con.get("/login")[2]
        for p in ("/app.js", "/index.html", "/style.css", "/favicon.svg", "/api/overview", "/api/login", "/metrics"):
            assert con.get(p)[0] == 401, p

        assert con.get("/api/login", {"Authorization": "Bearer wrong"})[0] == 401
        status, headers, body = con.get("/api/login", {"Authorization": "Bearer op-s3cret"})
        assert status == 200 and b'"role":"operator"' in body
        sc = cookie_of(headers)
        assert "HttpOnly" in sc and "SameSite=Strict" in sc and "Path=/" in sc
        cookie = sc.split(";")[0]
        assert cookie == "sluice_auth=" + "Bearer op-s3cret".encode().hex()
        jar = {"Cookie": cookie}
        status, _, body = con.get("/api/whoami", jar)
        assert status == 200 and b'"role":"operator"' in body
        assert con.get("/", dict(jar, **HTML))[0] == 200
        assert con.get("/app.js", jar)[0] == 200

        # The viewer's token: logged in as a viewer, writes refused.
        status, headers, body = con.get("/api/login", {"Authorization": "Bearer view-s3cret"})
        assert status == 200 and b'"role":"viewer"' in body
        vjar = {"Cookie": cookie_of(headers).split(";")[0], "Content-Type": "application/json"}
        assert b'"role":"viewer"' in con.get("/api/whoami", vjar)[2]
        status, _, _ = con.get("/api/alerts/silence", vjar, method="POST",
                               data=b'{"alert":"x","pipeline":"users","duration_ms":1000}')
        assert status == 403

        # A forged cookie (another token, not hex) is nobody; logout clears the cookie.
        assert con.get("/api/whoami", {"Cookie": "sluice_auth=" + b"Bearer guess".hex()})[0] == 401
        assert con.get("/api/whoami", {"Cookie": "sluice_auth=zz"})[0] == 401
        status, headers, _ = con.get("/api/logout", jar)
        assert status == 200 and "Max-Age=0" in cookie_of(headers)

        # An unknown page: HTML for a browser, with the path escaped; JSON otherwise.
        status, headers, body = con.get("/nope%3Cb%3E", dict(jar, **HTML))
        assert status == 404 and headers["Content-Type"].startswith("text/html")
        assert b"No such page" in body and b"/nope&lt;b&gt;" in body and b"<b>" not in body
        status, headers, body = con.get("/nope", jar)
        assert status == 404 and headers["Content-Type"].startswith("application/json")
        # Probes still answer anyone.
        assert con.get("/health")[0] == 200
    finally:
        con.close()
