"""``GET /empmix-boot.js``: the collector serves the SDK's boot script (in-process)."""

from __future__ import annotations

from importlib import resources

from tests.collector.conftest import Collector


def test_the_boot_script_is_served_with_its_headers(client: Collector) -> None:
    package = resources.files("empmix_web")
    minified = package.joinpath("boot.min.js")  # ./build.sh setup makes it; served when present
    source = (minified if minified.is_file() else package.joinpath("boot.js")).read_bytes()
    r = client.http.get("/empmix-boot.js", headers={"Accept-Encoding": "gzip"})
    assert r.status_code == 200 and r.content == source  # the client decodes the gzip body
    assert r.headers["content-type"] == "text/javascript; charset=utf-8"
    assert r.headers["content-encoding"] == "gzip" and "max-age" in r.headers["cache-control"]
    again = client.http.get("/empmix-boot.js", headers={"If-None-Match": r.headers["etag"]})
    assert again.status_code == 304
