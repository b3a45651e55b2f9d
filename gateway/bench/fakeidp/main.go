// Command fakeidp stands in for Keycloak in the benchmarks: it serves the realm's OpenID
// discovery document and JWKS on loopback, and writes RS256 access tokens shaped like the
// ones the shop realm issues (iss, aud shop-api, sub, typ Bearer, azp webapp,
// realm_access.roles, preferred_username, scope, sid, ...) to files that wrk's Lua script
// and the checkout load generator read. It also writes the public key as PEM for HAProxy's
// jwt_verify.
//
// A fresh 2048-bit key is made on every start, so tokens are only good for that run.
//
//	fakeidp -addr 127.0.0.1:18180 -dir .cache/bench/idp -many 1000
//
// It also answers the client-credentials and token-exchange grants for the order and
// payment services.
//
// It writes, into dir: issuer.txt, public.pem, token.txt (one user), admin-token.txt (USER and
// ADMIN), bad-tokens.txt (tokens a checking door must refuse), tokens-<n>.txt (one token per
// line, each of a distinct user) and, last, ready, once the listener accepts connections.
package main

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"flag"
	"fmt"
	"log"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:18180", "listen address (loopback)")
	dir := flag.String("dir", ".", "folder the token files are written to")
	realm := flag.String("realm", "shop", "realm name in the issuer URL")
	many := flag.Int("many", 1000, "number of distinct users in tokens-<many>.txt")
	manyList := flag.String("many-list", "", "comma-separated sizes of further distinct-token files, e.g. 1000,12000")
	ttl := flag.Duration("ttl", 3*time.Hour, "token lifetime (a benchmark must not outlive it)")
	flag.Parse()

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		log.Fatal(err)
	}
	issuer := fmt.Sprintf("http://%s/realms/%s", ln.Addr().String(), *realm)

	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	kid := randomHex(16)
	m := &minter{key: key, kid: kid, issuer: issuer, ttl: *ttl, now: time.Now()}

	if err := os.MkdirAll(*dir, 0o755); err != nil {
		log.Fatal(err)
	}
	write := func(name string, data []byte) {
		if err := os.WriteFile(filepath.Join(*dir, name), data, 0o644); err != nil {
			log.Fatal(err)
		}
	}
	pub, err := x509.MarshalPKIXPublicKey(&key.PublicKey)
	if err != nil {
		log.Fatal(err)
	}
	write("issuer.txt", []byte(issuer+"\n"))
	write("public.pem", pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pub}))
	write("token.txt", []byte(m.token(user(0), []string{"USER"})+"\n"))
	write("admin-token.txt", []byte(m.token(user(-1), []string{"USER", "ADMIN"})+"\n"))
	write("bad-tokens.txt", []byte(m.badTokens()))
	sizes := []int{*many}
	for _, s := range strings.Split(*manyList, ",") {
		if n, err := strconv.Atoi(strings.TrimSpace(s)); err == nil && n > 0 {
			sizes = append(sizes, n)
		}
	}
	for _, n := range sizes {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			b.WriteString(m.token(user(i), []string{"USER"}))
			b.WriteByte('\n')
		}
		write(fmt.Sprintf("tokens-%d.txt", n), []byte(b.String()))
	}

	mux := http.NewServeMux()
	base := "/realms/" + *realm
	mux.HandleFunc("GET "+base+"/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{
			"issuer":                                issuer,
			"authorization_endpoint":                issuer + "/protocol/openid-connect/auth",
			"token_endpoint":                        issuer + "/protocol/openid-connect/token",
			"userinfo_endpoint":                     issuer + "/protocol/openid-connect/userinfo",
			"end_session_endpoint":                  issuer + "/protocol/openid-connect/logout",
			"jwks_uri":                              issuer + "/protocol/openid-connect/certs",
			"response_types_supported":              []string{"code"},
			"subject_types_supported":               []string{"public"},
			"id_token_signing_alg_values_supported": []string{"RS256"},
			"code_challenge_methods_supported":      []string{"S256"},
		})
	})
	mux.HandleFunc("GET "+base+"/protocol/openid-connect/certs", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"keys": []map[string]any{{
			"kid": kid, "kty": "RSA", "alg": "RS256", "use": "sig",
			"n": b64(key.PublicKey.N.Bytes()), "e": b64(big.NewInt(int64(key.PublicKey.E)).Bytes()),
		}}})
	})
	// Client credentials for the services' own accounts (calls with no user behind them,
	// such as the payment service's notices to the order service). Any secret is taken.
	// And token exchange (RFC 8693), with which each service reads or charges for a user
	// with a token addressed to the service it calls.
	mux.HandleFunc("POST "+base+"/protocol/openid-connect/token", func(w http.ResponseWriter, r *http.Request) {
		client, _, ok := r.BasicAuth()
		if !ok {
			client = r.PostForm.Get("client_id")
		}
		aud, known := serviceAudience[client]
		if err := r.ParseForm(); err != nil || !known {
			w.WriteHeader(http.StatusUnauthorized)
			writeJSON(w, map[string]string{"error": "invalid_client"})
			return
		}
		switch r.PostForm.Get("grant_type") {
		case "client_credentials":
			writeJSON(w, map[string]any{"access_token": m.serviceToken(client, aud), "token_type": "Bearer", "expires_in": 300})
		case "urn:ietf:params:oauth:grant-type:token-exchange":
			tok, err := m.exchange(r.PostForm.Get("subject_token"), client, r.PostForm.Get("audience"))
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				writeJSON(w, map[string]string{"error": "invalid_request", "error_description": err.Error()})
				return
			}
			writeJSON(w, map[string]any{"access_token": tok, "token_type": "Bearer", "expires_in": 300,
				"issued_token_type": "urn:ietf:params:oauth:token-type:access_token"})
		default:
			w.WriteHeader(http.StatusBadRequest)
			writeJSON(w, map[string]string{"error": "unsupported_grant_type"})
		}
	})
	write("ready", []byte(issuer+"\n"))
	log.Printf("fake Keycloak issuer %s", issuer)
	log.Fatal((&http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}).Serve(ln))
}

// serviceAudience is the audience mapper of each service client of the shop realm: a
// service's token is addressed to the service it calls.
var serviceAudience = map[string]string{"order-service": "payment-service", "payment-service": "order-service"}

// serviceSubject is the id of each service's account.
var serviceSubject = map[string]string{
	"order-service": "00000000-0000-4000-8000-0000000005e1", "payment-service": "00000000-0000-4000-8000-0000000005e2",
}

// serviceToken is a client-credentials access token of a service account.
func (m *minter) serviceToken(client, aud string) string {
	iat := time.Now().Unix()
	claims := map[string]any{
		"exp": iat + 300, "iat": iat, "jti": randomUUID(), "iss": m.issuer, "aud": aud,
		"sub": serviceSubject[client], "typ": "Bearer", "azp": client,
		"realm_access": map[string]any{"roles": []string{"SERVICE"}}, "scope": "profile email",
		"preferred_username": "service-account-" + client, "clientId": client,
	}
	return m.sign(claims)
}

// exchange is Keycloak's standard token exchange as far as the benchmark needs it: the
// subject token must be one of this realm's (its signature is checked) and the audience the
// one the client's mapper names; the new token keeps the user, session, roles and expiry,
// and names the audience alone with the client as azp. Unlike Keycloak it does not check
// that the subject token names the client in its audience: the benchmark's user tokens
// name shop-api alone, as the HAProxy door's single-string audience check needs.
func (m *minter) exchange(subject, client, audience string) (string, error) {
	if audience != serviceAudience[client] {
		return "", fmt.Errorf("requested audience not available: %s", audience)
	}
	parts := strings.Split(subject, ".")
	if len(parts) != 3 {
		return "", errors.New("invalid token")
	}
	sig, err := base64.RawURLEncoding.DecodeString(parts[2])
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err != nil || rsa.VerifyPKCS1v15(&m.key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
		return "", errors.New("invalid token")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	var in map[string]any
	if err != nil || json.Unmarshal(payload, &in) != nil {
		return "", errors.New("invalid token")
	}
	out := map[string]any{
		"exp": in["exp"], "iat": time.Now().Unix(), "jti": randomUUID(), "iss": m.issuer, "aud": audience,
		"sub": in["sub"], "typ": "Bearer", "azp": client, "sid": in["sid"], "realm_access": in["realm_access"], "scope": "",
	}
	return m.sign(out), nil
}

type identity struct{ sub, name string }

// user is the i-th benchmark user; -1 is the admin.
func user(i int) identity {
	if i < 0 {
		return identity{sub: "00000000-0000-4000-8000-0000000000ad", name: "bench-admin"}
	}
	return identity{sub: fmt.Sprintf("00000000-0000-4000-8000-%012d", i), name: fmt.Sprintf("bench-user-%d", i)}
}

type minter struct {
	key    *rsa.PrivateKey
	kid    string
	issuer string
	ttl    time.Duration
	now    time.Time
}

// token signs an access token with the claims Keycloak puts into the shop realm's
// access tokens for the webapp client (audience mapper shop-api, realm roles, scopes).
func (m *minter) token(u identity, roles []string) string {
	return m.tokenWith(u, roles, nil)
}

// badTokens are tokens every checking front door must refuse, one "name<TAB>token" a line:
// each differs from a good token in exactly one respect.
func (m *minter) badTokens() string {
	u := user(0)
	good := m.token(u, []string{"USER"})
	other, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		log.Fatal(err)
	}
	forged := &minter{key: other, kid: m.kid, issuer: m.issuer, ttl: m.ttl, now: m.now}
	lines := [][2]string{
		{"no-token", ""},
		{"tampered-payload", tamper(good)},
		{"foreign-key", forged.token(u, []string{"USER"})},
		{"wrong-audience", m.tokenWith(u, []string{"USER"}, map[string]any{"aud": "another-api"})},
		{"wrong-issuer", m.tokenWith(u, []string{"USER"}, map[string]any{"iss": "http://127.0.0.1:1/realms/other"})},
		{"expired", m.tokenWith(u, []string{"USER"}, map[string]any{"exp": m.now.Add(-time.Hour).Unix(), "iat": m.now.Add(-2 * time.Hour).Unix()})},
		{"id-token", m.tokenWith(u, []string{"USER"}, map[string]any{"typ": "ID"})},
	}
	var b strings.Builder
	for _, l := range lines {
		b.WriteString(l[0] + "\t" + l[1] + "\n")
	}
	return b.String()
}

// tamper changes one claim of a signed token without signing it again.
func tamper(tok string) string {
	parts := strings.Split(tok, ".")
	payload, _ := base64.RawURLEncoding.DecodeString(parts[1])
	payload = []byte(strings.Replace(string(payload), `"USER"`, `"ADMIN"`, 1))
	return parts[0] + "." + b64(payload) + "." + parts[2]
}

// tokenWith signs a token whose claims are the usual ones with override applied.
func (m *minter) tokenWith(u identity, roles []string, override map[string]any) string {
	iat := m.now.Unix()
	sid := randomUUID()
	claims := map[string]any{
		"exp": iat + int64(m.ttl/time.Second), "iat": iat, "auth_time": iat, "jti": randomUUID(),
		"iss": m.issuer, "aud": "shop-api", "sub": u.sub, "typ": "Bearer", "azp": "webapp",
		"sid": sid, "session_state": sid, "acr": "1",
		"allowed-origins": []string{"http://localhost:8080"},
		"realm_access":    map[string]any{"roles": roles},
		"resource_access": map[string]any{"account": map[string]any{"roles": []string{"manage-account", "view-profile"}}},
		"scope":           "openid profile email", "email_verified": true,
		"name": u.name, "preferred_username": u.name, "given_name": "Bench", "family_name": u.name,
		"email": u.name + "@example.com",
	}
	for k, v := range override {
		claims[k] = v
	}
	return m.sign(claims)
}

// sign makes a compact RS256 JWS of claims.
func (m *minter) sign(claims map[string]any) string {
	header := map[string]any{"alg": "RS256", "typ": "JWT", "kid": m.kid}
	signing := b64(mustJSON(header)) + "." + b64(mustJSON(claims))
	digest := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, m.key, crypto.SHA256, digest[:])
	if err != nil {
		log.Fatal(err)
	}
	return signing + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		log.Fatal(err)
	}
	return b
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write(mustJSON(v))
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

func randomUUID() string {
	h := randomHex(16)
	return h[0:8] + "-" + h[8:12] + "-4" + h[13:16] + "-a" + h[17:20] + "-" + h[20:32]
}
