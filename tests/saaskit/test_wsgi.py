"""``saaskit.wsgi``: what granian calls."""

from __future__ import annotations

from saaskit.wsgi import without_server_headers


def test_http_variables_of_the_server_environment_do_not_read_as_request_headers():
    seen = []
    app = without_server_headers(lambda environ, start_response: seen.append(dict(environ)) or [b""],
                                 {"HTTP_PROXY": "http://proxy:3128", "PATH": "/usr/bin"})
    app({"HTTP_PROXY": "http://proxy:3128", "PATH_INFO": "/"}, None)  # granian copied it from its environment
    app({"HTTP_PROXY": "http://evil:80", "PATH_INFO": "/"}, None)  # a Proxy header the client sent
    assert [e.get("HTTP_PROXY") for e in seen] == [None, "http://evil:80"]
    assert without_server_headers(app, {"PATH": "/usr/bin"}) is app
