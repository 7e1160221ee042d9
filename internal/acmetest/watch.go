package acmetest

import (
	"bytes"
	"crypto"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"log"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/ocsp"
)

// newOrderPath is Pebble's newOrder endpoint (its directory's "newOrder").
const newOrderPath = "/order-plz"

// orderCounter stands in front of Pebble's ACME API and counts the new
// orders by the names they ask for. Pebble builds its URLs from the
// request's Host, which the proxy keeps, so clients never bypass it.
type orderCounter struct {
	mu     sync.Mutex
	orders []string // each order's names, comma-joined
}

// startOrderCounter serves, with Pebble's API certificate, a proxy to the
// Pebble listening at pebble (HOST:PORT) that trusts roots, and returns
// its origin (https://127.0.0.1:PORT). It stops when the test ends.
func startOrderCounter(t testing.TB, pebble string, roots *x509.CertPool, cert tls.Certificate) (*orderCounter, string) {
	t.Helper()
	oc := &orderCounter{}
	target := &url.URL{Scheme: "https", Host: pebble}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host // Pebble's URLs then name the proxy
		},
		Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: roots}},
		ErrorLog:  log.New(io.Discard, "", 0), // a client's request before Pebble listens is answered 502
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == newOrderPath {
			body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			oc.record(body)
			r.Body = io.NopCloser(bytes.NewReader(body))
		}
		rp.ServeHTTP(w, r)
	}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	t.Cleanup(rp.Transport.(*http.Transport).CloseIdleConnections)
	return oc, "https://" + srv.Listener.Addr().String()
}

// record notes the names of a newOrder request (a JWS whose payload lists
// the identifiers); one it cannot read counts as an order for "?".
func (oc *orderCounter) record(jws []byte) {
	var msg struct {
		Payload string `json:"payload"`
	}
	var order struct {
		Identifiers []struct {
			Value string `json:"value"`
		} `json:"identifiers"`
	}
	names := "?"
	if json.Unmarshal(jws, &msg) == nil {
		if p, err := base64.RawURLEncoding.DecodeString(msg.Payload); err == nil && json.Unmarshal(p, &order) == nil {
			var ns []string
			for _, id := range order.Identifiers {
				ns = append(ns, id.Value)
			}
			names = strings.Join(ns, ",")
		}
	}
	oc.mu.Lock()
	oc.orders = append(oc.orders, names)
	oc.mu.Unlock()
}

// Orders is how many new orders clients have made at Pebble.
func (s *Server) Orders() int {
	s.counter.mu.Lock()
	defer s.counter.mu.Unlock()
	return len(s.counter.orders)
}

// OrdersFor is how many new orders have named name.
func (s *Server) OrdersFor(name string) int {
	s.counter.mu.Lock()
	defer s.counter.mu.Unlock()
	n := 0
	for _, o := range s.counter.orders {
		for ns := range strings.SplitSeq(o, ",") {
			if ns == name {
				n++
				break
			}
		}
	}
	return n
}

// ocspResponder answers OCSP requests for Pebble's certificates, as Pebble
// itself does not: the status comes from Pebble's management API
// (/cert-status-by-serial/), the response is signed with the issuing
// intermediate's key (/intermediate-keys/0, which Pebble gives out for
// RSA keys only: with Options.OCSP its keys are RSA).
type ocspResponder struct {
	s *Server

	mu      sync.Mutex
	issuer  *x509.Certificate
	key     crypto.Signer
	answers int
}

// startOCSPResponder serves OCSP over plain HTTP on 127.0.0.1 and returns
// its URL, for Pebble's ocspResponderURL. Pebble's keys are fetched at the
// first request (Pebble is not running yet).
func startOCSPResponder(t testing.TB, s *Server) (*ocspResponder, string) {
	t.Helper()
	o := &ocspResponder{s: s}
	srv := httptest.NewServer(http.HandlerFunc(o.serve))
	t.Cleanup(srv.Close)
	return o, srv.URL
}

// OCSPAnswers is how many OCSP requests the responder has answered.
func (s *Server) OCSPAnswers() int {
	if s.ocsp == nil {
		return 0
	}
	s.ocsp.mu.Lock()
	defer s.ocsp.mu.Unlock()
	return s.ocsp.answers
}

func (o *ocspResponder) serve(w http.ResponseWriter, r *http.Request) {
	var raw []byte
	var err error
	switch r.Method {
	case http.MethodPost:
		raw, err = io.ReadAll(io.LimitReader(r.Body, 1<<16))
	case http.MethodGet:
		raw, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(r.URL.Path, "/"))
	default:
		http.Error(w, "GET or POST", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req, err := ocsp.ParseRequest(raw)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	resp, err := o.respond(req.SerialNumber)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	w.Write(resp)
}

// respond signs the status Pebble gives for serial.
func (o *ocspResponder) respond(serial *big.Int) ([]byte, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.issuer == nil {
		if err := o.loadIssuer(); err != nil {
			return nil, err
		}
	}
	var st struct{ Status string }
	if err := o.s.mgmtJSON("/cert-status-by-serial/"+serial.Text(16), &st); err != nil {
		return nil, err
	}
	now := time.Now().Truncate(time.Minute)
	tmpl := ocsp.Response{SerialNumber: serial, Status: ocsp.Good, ThisUpdate: now, NextUpdate: now.Add(time.Hour)}
	if st.Status == "Revoked" {
		tmpl.Status, tmpl.RevokedAt = ocsp.Revoked, now
	}
	b, err := ocsp.CreateResponse(o.issuer, o.issuer, tmpl, o.key)
	if err == nil {
		o.answers++
	}
	return b, err
}

// loadIssuer fetches Pebble's first intermediate and its key.
func (o *ocspResponder) loadIssuer() error {
	certPEM, err := o.s.mgmtGet("/intermediates/0")
	if err != nil {
		return err
	}
	keyPEM, err := o.s.mgmtGet("/intermediate-keys/0")
	if err != nil {
		return err
	}
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || kb == nil {
		return fmt.Errorf("pebble's intermediate or its key is not PEM")
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return err
	}
	key, err := parseKey(kb.Bytes)
	if err != nil {
		return err
	}
	o.issuer, o.key = cert, key
	return nil
}

// parseKey parses a PKCS #8, PKCS #1 or SEC 1 private key.
func parseKey(der []byte) (crypto.Signer, error) {
	if k, err := x509.ParsePKCS8PrivateKey(der); err == nil {
		if s, ok := k.(crypto.Signer); ok {
			return s, nil
		}
	}
	if k, err := x509.ParsePKCS1PrivateKey(der); err == nil {
		return k, nil
	}
	return x509.ParseECPrivateKey(der)
}

// mgmtGet fetches path from Pebble's management API.
func (s *Server) mgmtGet(path string) ([]byte, error) {
	resp, err := s.API.Get(s.mgmt + path)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err == nil && resp.StatusCode != http.StatusOK {
		err = fmt.Errorf("pebble's %s: %s", path, resp.Status)
	}
	return b, err
}

// mgmtJSON fetches path from Pebble's management API into v.
func (s *Server) mgmtJSON(path string, v any) error {
	b, err := s.mgmtGet(path)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}
