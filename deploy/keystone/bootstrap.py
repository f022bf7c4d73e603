"""The placement service user (role service) and the placement endpoints."""

import json
import os
import time
import urllib.request

BASE = "http://127.0.0.1:5000/v3"


def call(method, path, body=None, token=None):
    request = urllib.request.Request(
        BASE + path, method=method, data=json.dumps(body).encode() if body else None,
        headers={"content-type": "application/json", **({"x-auth-token": token} if token else {})})
    with urllib.request.urlopen(request, timeout=30) as response:
        text = response.read()
        return response.headers, (json.loads(text) if text else None)


def password_token(name, password, project):
    headers, _ = call("POST", "/auth/tokens", {"auth": {
        "identity": {"methods": ["password"], "password": {"user": {
            "name": name, "domain": {"id": "default"}, "password": password}}},
        "scope": {"project": {"name": project, "domain": {"id": "default"}}}}})
    return headers["x-subject-token"]


for _ in range(120):
    try:
        admin = password_token("admin", os.environ["KEYSTONE_ADMIN_PASSWORD"], "admin")
        break
    except OSError:
        time.sleep(1)
project = call("POST", "/projects", {"project": {"name": "service", "domain_id": "default"}},
               admin)[1]["project"]["id"]
user = call("POST", "/users", {"user": {"name": "placement", "domain_id": "default",
                                         "password": os.environ["PLACEMENT_SERVICE_PASSWORD"]}},
            admin)[1]["user"]["id"]
role = call("GET", "/roles?name=service", token=admin)[1]["roles"][0]["id"]
call("PUT", f"/projects/{project}/users/{user}/roles/{role}", token=admin)
service = call("POST", "/services", {"service": {"name": "placement", "type": "placement"}},
               admin)[1]["service"]["id"]
for interface, url in (("public", os.environ["PLACEMENT_PUBLIC_URL"]),
                       ("internal", os.environ["PLACEMENT_INTERNAL_URL"])):
    call("POST", "/endpoints", {"endpoint": {"service_id": service, "interface": interface,
                                             "url": url, "region_id": "RegionOne"}}, admin)
print("keystone: placement user and endpoints created", flush=True)
