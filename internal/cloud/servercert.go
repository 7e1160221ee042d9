package cloud

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sallyport/sallyport/internal/pki"
	"github.com/sallyport/sallyport/internal/problem"
)

// ServerCertsFile records, in the data directory, the cloud's own server
// certificates: the current one's serial, those retired and not yet
// expired (listed in the CRL), and the last CRL number.
const ServerCertsFile = "server-certs.json"

// CRLPath is where the cloud CA's CRL is served on the cloud's own name
// (without authentication).
const CRLPath = "/pki/cloud-ca.crl"

const (
	// serverCertLifetime is how long the cloud's own server certificate
	// (NAME, *.NAME) is valid; it is re-issued (new key) once less than
	// serverCertRenewBefore remains: every 4 weeks, so a key lives in
	// memory at most 28 days (then the CRL lists its certificate), while
	// the certificate in service always has more than the 60 days below
	// which TLS scanners (testssl.sh) flag an expiry as near.
	serverCertLifetime    = 90 * 24 * time.Hour
	serverCertRenewBefore = 62 * 24 * time.Hour
	// crlLifetime is a CRL's nextUpdate after its thisUpdate; it is
	// re-signed once less than crlResignBefore remains.
	crlLifetime     = 7 * 24 * time.Hour
	crlResignBefore = 2 * 24 * time.Hour
)

// serverCertRecord is one server certificate in ServerCertsFile.
type serverCertRecord struct {
	Serial    string    `json:"serial"` // hexadecimal
	NotAfter  time.Time `json:"not_after"`
	RetiredAt time.Time `json:"retired_at,omitzero"`
}

// serverCertsState is ServerCertsFile's content.
type serverCertsState struct {
	CRLNumber int64              `json:"crl_number"`
	Current   *serverCertRecord  `json:"current,omitempty"`
	Retired   []serverCertRecord `json:"retired"`
}

// serverCerts holds the cloud's current server certificate and CRL. The
// handshakes read them through atomic pointers; mu serialises their
// replacement (at start, and by the maintain loop).
type serverCerts struct {
	mu      sync.Mutex
	path    string
	state   serverCertsState // what the file holds
	renewAt time.Time        // on the server's clock
	cert    atomic.Pointer[tls.Certificate]
	crl     atomic.Pointer[signedCRL]
}

// signedCRL is the CRL being served.
type signedCRL struct {
	der        []byte
	thisUpdate time.Time
	nextUpdate time.Time
}

// serverCert is the cloud's current server certificate (NAME, *.NAME).
func (s *Server) serverCert() *tls.Certificate { return s.certs.cert.Load() }

// crlURL is the CRL's address in the server certificates: the cloud's
// name, with the port of --listen unless it is 443 (as applications'
// external URLs are built) or 0 (tests: no port is known before listening).
func (s *Server) crlURL() string {
	u := "https://" + s.settings.Name
	if port := s.urlPort(); port != "" {
		u += ":" + port
	}
	return u + CRLPath
}

// urlPort is the port the cloud's URLs carry: --listen's, unless 443 (or
// 0, a test's).
func (s *Server) urlPort() string {
	if port := s.publicPort(); port != "443" && port != "0" {
		return port
	}
	return ""
}

// startServerCerts loads ServerCertsFile, retires the previous run's
// certificate (its key went with that process), issues a new one and signs
// the CRL.
func (s *Server) startServerCerts() error {
	s.certs = &serverCerts{path: filepath.Join(s.cfg.DataDir, ServerCertsFile)}
	data, err := os.ReadFile(s.certs.path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
	case err != nil:
		return problem.Newf(400, "data_dir", "check the data directory's permissions", "The data directory's %s cannot be read (%v)", ServerCertsFile, err)
	default:
		if err := json.Unmarshal(data, &s.certs.state); err != nil || s.certs.state.CRLNumber < 0 {
			return problem.Newf(400, "data_dir", "restore it from a backup, or remove it (the certificates it retired are then no longer listed in the CRL, and expire within 90 days)",
				"The record of the cloud's server certificates %s is damaged", s.certs.path)
		}
	}
	return s.rotateServerCert()
}

// rotateServerCert retires the current server certificate (if any),
// issues a new one with a new key, signs the CRL that lists the retired
// one, records both, and only then puts them in service.
func (s *Server) rotateServerCert() error {
	c := s.certs
	c.mu.Lock()
	defer c.mu.Unlock()
	now := s.now()
	cert, err := s.ca.IssueServer([]string{s.settings.Name, "*." + s.settings.Name}, serverCertLifetime, pki.DistributionPoint(s.crlURL()))
	if err != nil {
		return fmt.Errorf("issuing the cloud's server certificate: %w", err)
	}
	next := c.state
	next.Retired = append([]serverCertRecord(nil), c.state.Retired...)
	if next.Current != nil {
		r := *next.Current
		r.RetiredAt = now
		next.Retired = append(next.Retired, r)
	}
	next.Current = &serverCertRecord{Serial: cert.Leaf.SerialNumber.Text(16), NotAfter: cert.Leaf.NotAfter}
	crl, err := s.signCRL(&next, now)
	if err != nil {
		return err
	}
	if err := c.save(next); err != nil {
		return err
	}
	c.cert.Store(cert)
	c.crl.Store(crl)
	c.renewAt = now.Add(serverCertLifetime - serverCertRenewBefore)
	return nil
}

// resignCRL signs the CRL again with a new number (the list's entries as
// they are, less the expired ones).
func (s *Server) resignCRL() error {
	c := s.certs
	c.mu.Lock()
	defer c.mu.Unlock()
	next := c.state
	next.Retired = append([]serverCertRecord(nil), c.state.Retired...)
	crl, err := s.signCRL(&next, s.now())
	if err != nil {
		return err
	}
	if err := c.save(next); err != nil {
		return err
	}
	c.crl.Store(crl)
	return nil
}

// signCRL drops the expired retired certificates from st, takes the next
// CRL number and signs the list of the others.
func (s *Server) signCRL(st *serverCertsState, now time.Time) (*signedCRL, error) {
	var entries []x509.RevocationListEntry
	kept := st.Retired[:0]
	for _, r := range st.Retired {
		if !r.NotAfter.After(now) {
			continue // expired: no client accepts it anyway
		}
		serial, ok := new(big.Int).SetString(r.Serial, 16)
		if !ok {
			continue
		}
		kept = append(kept, r)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: serial, RevocationTime: r.RetiredAt.UTC(), ReasonCode: pki.ReasonSuperseded})
	}
	st.Retired = kept
	st.CRLNumber++
	next := now.Add(crlLifetime)
	der, err := s.ca.CreateCRL(big.NewInt(st.CRLNumber), now, next, entries)
	if err != nil {
		return nil, err
	}
	return &signedCRL{der: der, thisUpdate: now, nextUpdate: next}, nil
}

// save writes st to ServerCertsFile (0600, atomically), then keeps it.
func (c *serverCerts) save(st serverCertsState) error {
	if st.Retired == nil {
		st.Retired = []serverCertRecord{}
	}
	data, err := json.MarshalIndent(st, "", "  ")
	if err != nil {
		return err
	}
	if err := pki.WriteFileAtomic(c.path, append(data, '\n'), 0o600); err != nil {
		return problem.Newf(400, "data_dir", "check the directory's permissions and free space", "Writing %s failed (%v)", c.path, err)
	}
	c.state = st
	return nil
}

// maintainServerCert re-issues the server certificate once less than
// serverCertRenewBefore remains, and re-signs the CRL before its
// nextUpdate (the maintain loop calls it). Handshakes already made keep
// their certificate; new ones get the new one.
func (s *Server) maintainServerCert() {
	now := s.now()
	s.certs.mu.Lock()
	renew := !now.Before(s.certs.renewAt)
	s.certs.mu.Unlock()
	if renew {
		old := s.serverCert().Leaf.SerialNumber.Text(16)
		if err := s.rotateServerCert(); err != nil {
			s.log.Warn("re-issuing the cloud's server certificate failed; retrying at the next check", "error", err.Error())
			return
		}
		s.log.Info("the cloud's server certificate was re-issued; the previous one is listed in the CRL", "previous", old, "serial", s.serverCert().Leaf.SerialNumber.Text(16))
		return
	}
	if crl := s.certs.crl.Load(); now.After(crl.nextUpdate.Add(-crlResignBefore)) {
		if err := s.resignCRL(); err != nil {
			s.log.Warn("re-signing the cloud CA's CRL failed; retrying at the next check", "error", err.Error())
		}
	}
}

// handleCRL serves the cloud CA's CRL (DER), cacheable until its nextUpdate.
func (s *Server) handleCRL(w http.ResponseWriter, r *http.Request) {
	crl := s.certs.crl.Load()
	age := max(int64(crl.nextUpdate.Sub(s.now())/time.Second), 0)
	w.Header().Set("Content-Type", "application/pkix-crl")
	w.Header().Set("Cache-Control", "public, max-age="+strconv.FormatInt(age, 10))
	w.Header().Set("Last-Modified", crl.thisUpdate.UTC().Format(http.TimeFormat))
	w.Header().Set("Content-Length", strconv.Itoa(len(crl.der)))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(crl.der)
	}
}
