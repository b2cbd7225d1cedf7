"""Keystone API calls for scripts/keystone-sandbox.sh (run with Debian's /usr/bin/python3; standard library only).

  keystone-sandbox.py setup KDIR URL              after bootstrap: the identity endpoint, a service user for
                                                  neutron, a test project + user + application credential;
                                                  writes KDIR/clouds.yaml and KDIR/neutron-authtoken.conf
                                                  (both mode 600) and prints the non-secret ids as KEY=VALUE.
  keystone-sandbox.py register KDIR TYPE NAME URL  (re)points service TYPE's public/internal/admin endpoints at
                                                  URL (e.g. network neutron http://127.0.0.1:PORT).

Passwords and secrets are generated here and written only to those two files (the bootstrap admin's password is
read from KDIR/admin-password): never to stdout, stderr or a command line.
"""
import json
import os
import secrets
import sys
import urllib.error
import urllib.request

REGION = "RegionOne"
TEST_PROJECT = "vnetplan"
TEST_USER = "vnetplan"
SERVICE_USER = "neutron"
APPCRED_NAME = "vnetplan-test"


def fail(msg):
    print(f"keystone-sandbox: {msg}", file=sys.stderr)
    sys.exit(1)


class Keystone:
    def __init__(self, url):
        self.url = url.rstrip("/") + "/v3"
        self.token = None

    def call(self, method, path, body=None, token=None, expect=(200, 201, 204)):
        req = urllib.request.Request(self.url + path, method=method)
        req.add_header("Content-Type", "application/json")
        if token or self.token:
            req.add_header("X-Auth-Token", token or self.token)
        data = json.dumps(body).encode() if body is not None else None
        try:
            with urllib.request.urlopen(req, data, timeout=30) as resp:
                raw = resp.read()
                status, headers = resp.status, resp.headers
        except urllib.error.HTTPError as e:
            raw, status, headers = e.read(), e.code, e.headers
        if status not in expect:
            # The body of an error names the cause, never a secret we sent.
            fail(f"{method} {path}: HTTP {status}: {raw[:300].decode(errors='replace')}")
        return (json.loads(raw) if raw else {}), headers

    def login(self, user, password, project):
        body = {"auth": {
            "identity": {"methods": ["password"], "password": {
                "user": {"name": user, "domain": {"id": "default"}, "password": password}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}}
        reply, headers = self.call("POST", "/auth/tokens", body, expect=(201,))
        return headers["X-Subject-Token"], reply["token"]

    def find(self, collection, name, **query):
        q = "&".join([f"name={name}"] + [f"{k}={v}" for k, v in query.items()])
        items = self.call("GET", f"/{collection}?{q}")[0][collection]
        return items[0] if items else None

    def ensure(self, collection, singular, body):
        found = self.find(collection, body["name"])
        if found:
            return found
        return self.call("POST", f"/{collection}", {singular: body})[0][singular]

    def grant(self, project_id, user_id, role_id):
        self.call("PUT", f"/projects/{project_id}/users/{user_id}/roles/{role_id}")

    def register(self, service_type, name, url):
        services = self.call("GET", f"/services?type={service_type}")[0]["services"]
        if services:
            service = services[0]
        else:
            service = self.call("POST", "/services", {"service": {"type": service_type, "name": name}})[0]["service"]
        for ep in self.call("GET", f"/endpoints?service_id={service['id']}")[0]["endpoints"]:
            self.call("DELETE", f"/endpoints/{ep['id']}")
        for interface in ("public", "internal", "admin"):
            self.call("POST", "/endpoints", {"endpoint": {
                "service_id": service["id"], "interface": interface, "url": url, "region_id": REGION}})


def write_secret_file(path, text):
    fd = os.open(path + ".tmp", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(text)
    os.replace(path + ".tmp", path)


def admin_session(kdir, url):
    with open(os.path.join(kdir, "admin-password")) as f:
        admin_password = f.read().strip()
    ks = Keystone(url)
    ks.token, _ = ks.login("admin", admin_password, "admin")
    return ks, admin_password


def setup(kdir, url):
    ks, admin_password = admin_session(kdir, url)
    auth_url = url.rstrip("/") + "/v3"
    ks.register("identity", "keystone", auth_url)

    roles = {r["name"]: r["id"] for r in ks.call("GET", "/roles")[0]["roles"]}
    if "service" not in roles:  # bootstrap makes admin, member and reader; keystonemiddleware's user wants service
        roles["service"] = ks.call("POST", "/roles", {"role": {"name": "service"}})[0]["role"]["id"]

    service_project = ks.ensure("projects", "project", {"name": "service", "domain_id": "default"})
    service_password = secrets.token_urlsafe(24)
    service_user = ks.ensure("users", "user", {"name": SERVICE_USER, "domain_id": "default",
                                                "password": service_password})
    ks.grant(service_project["id"], service_user["id"], roles["service"])

    project = ks.ensure("projects", "project", {"name": TEST_PROJECT, "domain_id": "default"})
    password = secrets.token_urlsafe(24)
    user = ks.ensure("users", "user", {"name": TEST_USER, "domain_id": "default", "password": password,
                                       "default_project_id": project["id"]})
    # member, and admin: creating provider (VLAN) and external networks in Neutron takes the admin role.
    for role in ("member", "admin"):
        ks.grant(project["id"], user["id"], roles[role])

    # The application credential is made by the user itself (Keystone's rule) and inherits its roles.
    user_token, _ = ks.login(TEST_USER, password, TEST_PROJECT)
    appcred = ks.call("POST", f"/users/{user['id']}/application_credentials",
                      {"application_credential": {"name": APPCRED_NAME,
                                                  "description": "vnetplan tests"}},
                      token=user_token)[0]["application_credential"]

    def q(s):
        return json.dumps(s)  # a JSON string is a valid YAML scalar

    clouds = f"""# Written by scripts/keystone-sandbox.sh for a throwaway Keystone on loopback.
clouds:
  vnetplan-password:
    auth_type: password
    auth:
      auth_url: {q(auth_url)}
      username: {q(TEST_USER)}
      password: {q(password)}
      project_name: {q(TEST_PROJECT)}
      user_domain_name: Default
      project_domain_name: Default
    region_name: {REGION}
    interface: public
    identity_api_version: 3
  vnetplan-appcred:
    auth_type: v3applicationcredential
    auth:
      auth_url: {q(auth_url)}
      application_credential_id: {q(appcred["id"])}
      application_credential_secret: {q(appcred["secret"])}
    region_name: {REGION}
    interface: public
    identity_api_version: 3
  admin:
    auth_type: password
    auth:
      auth_url: {q(auth_url)}
      username: admin
      password: {q(admin_password)}
      project_name: admin
      user_domain_name: Default
      project_domain_name: Default
    region_name: {REGION}
    interface: public
    identity_api_version: 3
"""
    write_secret_file(os.path.join(kdir, "clouds.yaml"), clouds)
    write_secret_file(os.path.join(kdir, "neutron-authtoken.conf"), f"""[keystone_authtoken]
www_authenticate_uri = {auth_url}
auth_url = {auth_url}
auth_type = password
username = {SERVICE_USER}
password = {service_password}
project_name = service
user_domain_id = default
project_domain_id = default
region_name = {REGION}
# Every request's token is checked with Keystone (no cache of validations): a token Keystone revoked or let
# expire is refused at once, as tests of re-authentication need.
token_cache_time = -1
""")
    print(f"PROJECT_ID={project['id']}")
    print(f"PROJECT_NAME={TEST_PROJECT}")
    print(f"USER_ID={user['id']}")
    print(f"USER_NAME={TEST_USER}")
    print(f"APPCRED_ID={appcred['id']}")


def main(argv):
    if len(argv) == 4 and argv[1] == "setup":
        setup(argv[2], argv[3])
    elif len(argv) == 6 and argv[1] == "register":
        with open(os.path.join(argv[2], "url")) as f:
            url = f.read().strip()
        ks, _ = admin_session(argv[2], url)
        ks.register(argv[3], argv[4], argv[5])
    else:
        fail(__doc__)


if __name__ == "__main__":
    main(sys.argv)
