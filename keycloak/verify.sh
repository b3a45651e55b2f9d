#!/usr/bin/env bash
# Checks a running Keycloak against what the `shop` realm promises (see keycloak/README.md).
#
#   keycloak/verify.sh [KEYCLOAK_URL]      default http://localhost:8180
#
# Needs bash, curl and python3 (for JSON and JWTs; no jq). Uses the dev secrets and passwords,
# or the same SHOP_* variables the realm import reads. Logs users in through Keycloak's own
# login form with a cookie jar, the way a browser would. Exits non-zero if any check fails.
# It never enters a wrong password, so brute-force protection is not triggered.
set -uo pipefail

KC="${1:-http://localhost:8180}"
KC="${KC%/}"
REALM="$KC/realms/shop"
OIDC="$REALM/protocol/openid-connect"
WEBAPP_URL="${SHOP_WEBAPP_URL:-http://localhost:8080}"
REDIRECT="$WEBAPP_URL/auth/callback"
TESTER_SECRET="${SHOP_API_TESTER_SECRET:-api-tester-dev-secret}"
ORDER_SECRET="${SHOP_ORDER_SERVICE_SECRET:-order-service-dev-secret}"
PAYMENT_SECRET="${SHOP_PAYMENT_SERVICE_SECRET:-payment-service-dev-secret}"
ALICE_PASSWORD="${SHOP_ALICE_PASSWORD:-alice-dev-pass}"
BOB_PASSWORD="${SHOP_BOB_PASSWORD:-bob-dev-pass}"
ADA_PASSWORD="${SHOP_ADA_PASSWORD:-ada-dev-pass}"
ADMIN_USER="${KC_BOOTSTRAP_ADMIN_USERNAME:-admin}"
ADMIN_PASSWORD="${KC_BOOTSTRAP_ADMIN_PASSWORD:-admin}"

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
failures=0
pass() { printf 'PASS  %s\n' "$*"; }
fail() { printf 'FAIL  %s\n' "$*"; failures=$((failures + 1)); }
check() { # check "description" command...  (passes when the command succeeds)
  local what=$1; shift
  if out=$("$@" 2>&1); then pass "$what${out:+: $out}"; else fail "$what${out:+: $out}"; fi
}

# json FILE EXPR: evaluates a python expression over the parsed JSON `j`, prints the result.
json() { python3 -c 'import json,sys; j=json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' "$1" "$2"; }
# claims JWT: prints the JWT payload as JSON (signature is not checked here; the services do that).
claims() {
  python3 -c 'import base64,sys; p=sys.argv[1].split(".")[1]; print(base64.urlsafe_b64decode(p+"="*(-len(p)%4)).decode())' "$1"
}
# token_ok FILE PYTHON-CONDITION: succeeds when the token response holds an access token whose
# claims `c` satisfy the condition; prints the interesting claims.
token_ok() {
  python3 - "$1" "$2" <<'PY'
import base64, json, sys
r = json.load(open(sys.argv[1]))
if "access_token" not in r:
    print("no token:", r.get("error"), r.get("error_description")); sys.exit(1)
p = r["access_token"].split(".")[1]
c = json.loads(base64.urlsafe_b64decode(p + "=" * (-len(p) % 4)))
c.setdefault("realm_access", {"roles": []})
aud = c.get("aud"); c["auds"] = aud if isinstance(aud, list) else [aud] if aud else []
c["scopes"] = c.get("scope", "").split()
print("aud=%s azp=%s roles=%s scope=%r user=%s" % (c["auds"], c.get("azp"), sorted(c["realm_access"]["roles"]), c.get("scope"), c.get("preferred_username")))
sys.exit(0 if eval(sys.argv[2]) else 1)
PY
}
# refused FILE ERRORS...: succeeds when the response holds no token and one of the given errors.
refused() {
  python3 - "$@" <<'PY'
import json, sys
try: r = json.load(open(sys.argv[1]))
except Exception: print("not JSON"); sys.exit(1)
print("%s (%s)" % (r.get("error"), r.get("error_description")))
sys.exit(0 if "access_token" not in r and r.get("error") in sys.argv[2:] else 1)
PY
}

# ---------------------------------------------------------------------------------------------
echo "== discovery ($REALM)"
curl -sf "$REALM/.well-known/openid-configuration" -o "$tmp/disc.json" || { fail "discovery not reachable"; exit 1; }
check "issuer is $REALM" test "$(json "$tmp/disc.json" 'j["issuer"]')" = "$REALM"
check "S256 advertised" test "$(json "$tmp/disc.json" '"S256" in j["code_challenge_methods_supported"]')" = True
check "JWKS has a RS256 signing key" test "$(curl -sf "$(json "$tmp/disc.json" 'j["jwks_uri"]')" -o "$tmp/jwks.json" && json "$tmp/jwks.json" 'any(k.get("alg")=="RS256" and k.get("use")=="sig" for k in j["keys"])')" = True

# ---------------------------------------------------------------------------------------------
echo "== password grant refused by every client (tried with alice's real password)"
secret_of() { case $1 in api-tester) echo "$TESTER_SECRET";; order-service) echo "$ORDER_SECRET";; payment-service) echo "$PAYMENT_SECRET";; esac; }
clients="webapp api-tester order-service payment-service admin-cli account account-console security-admin-console broker realm-management"
# With admin credentials, also make sure the list above is every client in the realm.
if curl -sf -d grant_type=password -d client_id=admin-cli --data-urlencode "username=$ADMIN_USER" \
    --data-urlencode "password=$ADMIN_PASSWORD" "$KC/realms/master/protocol/openid-connect/token" -o "$tmp/admin.json"; then
  curl -sf -H "Authorization: Bearer $(json "$tmp/admin.json" 'j["access_token"]')" "$KC/admin/realms/shop/clients" -o "$tmp/clients.json"
  check "realm has exactly the expected clients" python3 -c '
import json,sys; have=sorted(c["clientId"] for c in json.load(open(sys.argv[1]))); want=sorted(sys.argv[2].split())
print(" ".join(have)); sys.exit(have!=want)' "$tmp/clients.json" "$clients"
  check "directAccessGrantsEnabled is false on every client" python3 -c '
import json,sys; on=[c["clientId"] for c in json.load(open(sys.argv[1])) if c.get("directAccessGrantsEnabled")]
print("on: %s" % on if on else ""); sys.exit(bool(on))' "$tmp/clients.json"
else
  echo "      (no master admin login as $ADMIN_USER: skipping the client inventory check)"
fi
for c in $clients; do
  s=$(secret_of "$c")
  curl -s "$OIDC/token" -d grant_type=password -d "client_id=$c" ${s:+-d "client_secret=$s"} \
    -d username=alice --data-urlencode "password=$ALICE_PASSWORD" -d scope=openid -o "$tmp/pw.json"
  check "password grant refused: $c" refused "$tmp/pw.json" unauthorized_client invalid_client
done

# ---------------------------------------------------------------------------------------------
echo "== client credentials"
curl -s "$OIDC/token" -u "order-service:$ORDER_SECRET" -d grant_type=client_credentials -o "$tmp/cc.json"
check "order-service: aud payment-service, role SERVICE only" token_ok "$tmp/cc.json" \
  'c["auds"]==["payment-service"] and c["azp"]=="order-service" and c["realm_access"]["roles"]==["SERVICE"]'
check "order-service: no refresh token" test "$(json "$tmp/cc.json" '"refresh_token" in j')" = False
curl -s "$OIDC/token" -u "payment-service:$PAYMENT_SECRET" -d grant_type=client_credentials -o "$tmp/cc2.json"
check "payment-service: aud order-service, role SERVICE only" token_ok "$tmp/cc2.json" \
  'c["auds"]==["order-service"] and c["azp"]=="payment-service" and c["realm_access"]["roles"]==["SERVICE"]'
curl -s "$OIDC/token" -u "order-service:$ORDER_SECRET" -d grant_type=client_credentials -d "scope=admin:read" -o "$tmp/cc3.json"
check "order-service cannot get admin:read" python3 -c '
import json,sys; r=json.load(open(sys.argv[1])); print(r.get("error") or r.get("scope")); sys.exit("admin:read" in r.get("scope",""))' "$tmp/cc3.json"
curl -s "$OIDC/token" -u "order-service:wrong-secret" -d grant_type=client_credentials -o "$tmp/cc4.json"
check "order-service with a wrong secret refused" refused "$tmp/cc4.json" unauthorized_client invalid_client
curl -s "$OIDC/token" -u "api-tester:$TESTER_SECRET" -d grant_type=client_credentials -o "$tmp/cc5.json"
check "api-tester has no service account" refused "$tmp/cc5.json" unauthorized_client

urlenc() { python3 -c 'import sys,urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
# location URL: prints the Location header of a GET (no redirects followed).
location() { curl -s -o /dev/null -w '%{redirect_url}' "$@"; }
# qparam URL NAME: a parameter from the query or the fragment of URL.
qparam() { python3 -c 'import sys,urllib.parse as u; s=u.urlsplit(sys.argv[1]); q=u.parse_qs(s.query+"&"+s.fragment); print(q.get(sys.argv[2],[""])[0])' "$1" "$2"; }

# ---------------------------------------------------------------------------------------------
echo "== webapp: FAPI 2.0 with DPoP (policy shop-fapi-2-dpop; the web shop itself does PAR, private_key_jwt, DPoP)"
curl -s "$OIDC/token" -u "webapp:webapp-dev-secret" -d grant_type=client_credentials -o "$tmp/cc6.json"
check "webapp refuses a client secret" refused "$tmp/cc6.json" invalid_client unauthorized_client
loc=$(location "$OIDC/auth?client_id=webapp&redirect_uri=$(urlenc "$REDIRECT")&response_type=code&scope=openid&state=s&nonce=n&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc&code_challenge_method=S256")
check "webapp: an authorization request without PAR gets no code" test -z "$(qparam "$loc" code)"
curl -s "$OIDC/ext/par/request" -u "webapp:webapp-dev-secret" -d response_type=code -d "redirect_uri=$REDIRECT" -d scope=openid \
  -d code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc -d code_challenge_method=S256 -o "$tmp/par.json"
check "webapp: PAR with a client secret refused" refused "$tmp/par.json" invalid_client unauthorized_client

# ---------------------------------------------------------------------------------------------
echo "== authorization endpoint (api-tester, the test client with the webapp's flow minus FAPI)"
base="$OIDC/auth?client_id=api-tester&redirect_uri=$(urlenc "$REDIRECT")&state=s1&nonce=n1"

loc=$(location "$base&response_type=code&scope=openid")
check "code request without code_challenge refused" test "$(qparam "$loc" error)" = invalid_request
loc=$(location "$base&response_type=code&scope=openid&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc&code_challenge_method=plain")
check "code_challenge_method=plain refused" test "$(qparam "$loc" error)" = invalid_request
loc=$(location "$base&response_type=token&scope=openid")
check "implicit flow refused" test "$(qparam "$loc" error)" = unauthorized_client
code=$(curl -s -o /dev/null -w '%{http_code}' "$OIDC/auth?client_id=api-tester&redirect_uri=$(urlenc "$WEBAPP_URL/elsewhere")&response_type=code&scope=openid&state=s&code_challenge=abcdefghijabcdefghijabcdefghijabcdefghijabc&code_challenge_method=S256")
check "unregistered redirect_uri refused (HTTP $code)" test "$code" = 400

# ---------------------------------------------------------------------------------------------
echo "== browser logins through the login form (api-tester, PKCE S256)"
# pkce: prints "verifier challenge".
pkce() { python3 -c 'import base64,hashlib,secrets; v=secrets.token_urlsafe(48); print(v, base64.urlsafe_b64encode(hashlib.sha256(v.encode()).digest()).rstrip(b"=").decode())'; }
# authorize JAR SCOPE [USER PASSWORD]: runs an authorization request with the cookie jar; logs in
# through the form when Keycloak shows it. Sets $verifier, $auth_code (empty if refused) and
# $page (the last HTML page, for error messages).
authorize() {
  local jar=$1 scope=$2 user=${3:-} password=${4:-} challenge loc action
  read -r verifier challenge < <(pkce)
  auth_code=""; page=""
  loc=$(curl -s -c "$jar" -b "$jar" -o "$tmp/page.html" -w '%{redirect_url}' \
    "$base&response_type=code&scope=$(urlenc "$scope")&code_challenge=$challenge&code_challenge_method=S256")
  if [ -z "$loc" ] && [ -n "$user" ] && grep -q 'id="kc-form-login"' "$tmp/page.html"; then
    action=$(python3 -c 'import html,re,sys; print(html.unescape(re.search(r"<form[^>]*id=\"kc-form-login\"[^>]*action=\"([^\"]+)\"", open(sys.argv[1]).read()).group(1)))' "$tmp/page.html")
    loc=$(curl -s -c "$jar" -b "$jar" -o "$tmp/page.html" -w '%{redirect_url}' "$action" \
      --data-urlencode "username=$user" --data-urlencode "password=$password" -d credentialId=)
  fi
  page=$(python3 -c 'import html,re,sys; m=re.search(r"class=\"instruction\">([^<]*)<", open(sys.argv[1]).read()); print(html.unescape(m.group(1)).strip() if m else "")' "$tmp/page.html")
  case $loc in "$REDIRECT"*) auth_code=$(qparam "$loc" code);; esac
}
# redeem [VERIFIER]: exchanges $auth_code at the token endpoint into $tmp/tok.json.
redeem() {
  curl -s "$OIDC/token" -u "api-tester:$TESTER_SECRET" -d grant_type=authorization_code \
    --data-urlencode "code=$auth_code" --data-urlencode "redirect_uri=$REDIRECT" \
    ${1:+--data-urlencode "code_verifier=$1"} -o "$tmp/tok.json"
}

alice="$tmp/alice.jar"; ada="$tmp/ada.jar"
authorize "$alice" "openid" alice "$ALICE_PASSWORD"
check "alice logs in (code issued)" test -n "$auth_code"
redeem ""
check "code without code_verifier refused" refused "$tmp/tok.json" invalid_grant
authorize "$alice" "openid"   # silent, on alice's SSO session
check "alice silent re-authorization (SSO cookie, no form)" test -n "$auth_code"
redeem "$verifier"
check "alice token: aud shop-api, USER, azp api-tester, no admin:read" token_ok "$tmp/tok.json" \
  '"shop-api" in c["auds"] and c["azp"]=="api-tester" and c["preferred_username"]=="alice" and c["realm_access"]["roles"]==["USER"] and "openid" in c["scopes"] and "admin:read" not in c["scopes"] and c["exp"]-c["iat"]==300'
check "alice token response has a refresh token" test "$(json "$tmp/tok.json" 'bool(j.get("refresh_token"))')" = True
cp "$tmp/tok.json" "$tmp/alice-tok.json"

# Token exchange (RFC 8693): each service turns the caller's token into one for the next.
exchange() { # exchange CLIENT:SECRET SUBJECT-TOKEN AUDIENCE OUT
  curl -s "$OIDC/token" -u "$1" -d grant_type=urn:ietf:params:oauth:grant-type:token-exchange \
    --data-urlencode "subject_token=$2" -d subject_token_type=urn:ietf:params:oauth:token-type:access_token \
    -d requested_token_type=urn:ietf:params:oauth:token-type:access_token -d "audience=$3" -o "$4"
}
alice_at=$(json "$tmp/alice-tok.json" 'j["access_token"]')
exchange "order-service:$ORDER_SECRET" "$alice_at" payment-service "$tmp/x1.json"
check "order-service exchanges alice's token: aud payment-service only, USER, azp order-service" token_ok "$tmp/x1.json" \
  'c["auds"]==["payment-service"] and c["azp"]=="order-service" and c["realm_access"]["roles"]==["USER"]'
exchange "payment-service:$PAYMENT_SECRET" "$(json "$tmp/x1.json" 'j.get("access_token","")')" order-service "$tmp/x2.json"
check "payment-service exchanges that onward: aud order-service only, USER" token_ok "$tmp/x2.json" \
  'c["auds"]==["order-service"] and c["azp"]=="payment-service" and c["realm_access"]["roles"]==["USER"]'
exchange "api-tester:$TESTER_SECRET" "$alice_at" payment-service "$tmp/x3.json"
check "api-tester may not exchange" refused "$tmp/x3.json" invalid_request invalid_client access_denied unauthorized_client
exchange "order-service:$ORDER_SECRET" "$alice_at" webapp "$tmp/x4.json"
check "order-service may not exchange into another audience" refused "$tmp/x4.json" invalid_request invalid_client access_denied

# Refresh with a wider scope: Keycloak must not add admin:read (it answers invalid_scope or
# ignores the extra scope; either way the refresh token is rotated, so continue with the new one).
rt1=$(json "$tmp/alice-tok.json" 'j["refresh_token"]')
curl -s "$OIDC/token" -u "api-tester:$TESTER_SECRET" -d grant_type=refresh_token --data-urlencode "refresh_token=$rt1" \
  --data-urlencode "scope=openid admin:read" -o "$tmp/widen.json"
check "refresh cannot widen alice's scope to admin:read" python3 -c '
import json,sys; r=json.load(open(sys.argv[1])); print(r.get("error") or "scope=%r" % r.get("scope")); sys.exit("admin:read" in r.get("scope",""))' "$tmp/widen.json"
rt2=$(json "$tmp/widen.json" 'j.get("refresh_token") or ""'); [ -n "$rt2" ] || rt2=$rt1
curl -s "$OIDC/token" -u "api-tester:$TESTER_SECRET" -d grant_type=refresh_token --data-urlencode "refresh_token=$rt2" -o "$tmp/r1.json"
check "refresh works and rotates the refresh token" python3 -c '
import json,sys; r=json.load(open(sys.argv[1])); print(r.get("error_description") or "new access and refresh token"); sys.exit(not(r.get("access_token") and r.get("refresh_token") and r["refresh_token"]!=sys.argv[2]))' "$tmp/r1.json" "$rt2"
curl -s "$OIDC/token" -u "api-tester:$TESTER_SECRET" -d grant_type=refresh_token --data-urlencode "refresh_token=$rt2" -o "$tmp/r2.json"
check "reused refresh token refused" refused "$tmp/r2.json" invalid_grant
rt3=$(json "$tmp/r1.json" 'j.get("refresh_token") or ""')
curl -s "$OIDC/token" -u "api-tester:$TESTER_SECRET" -d grant_type=refresh_token --data-urlencode "refresh_token=$rt3" -o "$tmp/r3.json"
check "after a reuse, the newest refresh token of that session is dead too" refused "$tmp/r3.json" invalid_grant

# A refused request counts as one failed login for brute-force protection (and two within a
# second lock the account for a minute), so each shopper is refused once per run, and bob logs
# in normally afterwards, which resets his counter.
authorize "$alice" "openid admin:read"   # step-up attempt on alice's existing session
check "alice asking for admin:read on her session is denied (${page:-no message})" test -z "$auth_code"
authorize "$alice" "openid"
check "alice's session still works for normal requests after the refusal" test -n "$auth_code"
authorize "$tmp/bob.jar" "openid admin:read" bob "$BOB_PASSWORD"   # fresh login
check "bob asking for admin:read on a fresh login is denied (${page:-no message})" test -z "$auth_code"
authorize "$tmp/bob2.jar" "openid" bob "$BOB_PASSWORD"
check "bob's normal login still works" test -n "$auth_code"

authorize "$ada" "openid" ada "$ADA_PASSWORD"
redeem "$verifier"
check "ada normal login: USER+ADMIN, no admin:read" token_ok "$tmp/tok.json" \
  '"shop-api" in c["auds"] and sorted(c["realm_access"]["roles"])==["ADMIN","USER"] and "admin:read" not in c["scopes"]'
authorize "$ada" "openid admin:read"   # silent step-up on ada's SSO session
check "ada silent step-up gets a code (no form)" test -n "$auth_code"
redeem "$verifier"
check "ada step-up token carries admin:read" token_ok "$tmp/tok.json" '"admin:read" in c["scopes"] and "shop-api" in c["auds"]'
authorize "$tmp/ada2.jar" "openid admin:read" ada "$ADA_PASSWORD"
redeem "$verifier"
check "ada fresh login with admin:read carries it" token_ok "$tmp/tok.json" '"admin:read" in c["scopes"]'

echo
if [ "$failures" -eq 0 ]; then echo "all checks passed"; else echo "$failures check(s) failed"; exit 1; fi
