package cloud

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"image/png"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/sallyport/sallyport/internal/eventlog"
	"github.com/sallyport/sallyport/internal/store"
)

// The second factor: TOTP (RFC 6238: 6 digits, 30 s, SHA-1, what every
// authenticator app reads from the QR code), one step of clock skew
// either way, and ten single-use recovery codes.

const (
	totpPeriod    = 30
	totpSkew      = 1
	recoveryCount = 10
)

// totpGuard checks TOTP codes and refuses a code used once already (a
// code seen over a shoulder or replayed within its 90 s window). The
// last step used is kept per user in memory, and each step accepted is
// also claimed in the store (claim), so that the other instances sharing
// it refuse the same code, and a restarted instance too.
type totpGuard struct {
	mu   sync.Mutex
	last map[string]uint64 // user id → last accepted time step
	// claim records u's step in the store; false: used already (or the
	// store failed). nil: nothing to claim (tests).
	claim func(u store.User, step uint64) bool
}

// check reports whether code is u's current TOTP code, not used before.
func (g *totpGuard) check(u store.User, code string, now time.Time) bool {
	if len(u.TOTPSecret) == 0 || len(code) != 6 {
		return false
	}
	secret := string(u.TOTPSecret)
	step := uint64(now.Unix()) / totpPeriod
	for d := -totpSkew; d <= totpSkew; d++ {
		st := step + uint64(d)
		want, err := totp.GenerateCodeCustom(secret, time.Unix(int64(st*totpPeriod), 0), totp.ValidateOpts{
			Period: totpPeriod, Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
		if err != nil || want != code {
			continue
		}
		g.mu.Lock()
		if g.last == nil {
			g.last = map[string]uint64{}
		}
		if last, ok := g.last[u.ID]; ok && st <= last {
			g.mu.Unlock()
			return false
		}
		g.last[u.ID] = st
		g.mu.Unlock()
		return g.claim == nil || g.claim(u, st)
	}
	return false
}

// claimTOTPStep records that u used the TOTP code of step (a grant of
// kind store.GrantTOTP, expiring with the code's window): false when it
// was recorded already, by this instance or another, or the store failed.
func (s *Server) claimTOTPStep(u store.User, step uint64) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	now := s.now().UTC()
	err := s.store.CreateGrant(ctx, store.Grant{
		Hash: hashToken(fmt.Sprintf("totp/%s/%s/%d", u.TenantID, u.ID, step)), Kind: store.GrantTOTP,
		TenantID: u.TenantID, UserID: u.ID, CreatedAt: now,
		ExpiresAt: time.Unix(int64((step+totpSkew+1)*totpPeriod), 0).UTC(),
	})
	if err != nil && !errors.Is(err, store.ErrConflict) {
		s.log.Warn("recording a used second factor code failed; the code is refused", "user", u.Name, "error", err.Error())
	}
	return err == nil
}

// newRecoveryCodes returns recovery codes (xxxxx-xxxxx, base32 lower
// case: 50 bits each) and their hashes.
func newRecoveryCodes() (codes, hashes []string) {
	for range recoveryCount {
		b := make([]byte, 7)
		rand.Read(b)
		c := strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b))[:10]
		c = c[:5] + "-" + c[5:]
		codes = append(codes, c)
		hashes = append(hashes, hashRecoveryCode(c))
	}
	return codes, hashes
}

// looksLikeRecoveryCode reports whether s may be a recovery code as typed.
func looksLikeRecoveryCode(s string) bool {
	n := normalizeRecoveryCode(s)
	return len(n) == 11 && n[5] == '-'
}

func normalizeRecoveryCode(s string) string {
	s = strings.ToLower(strings.NewReplacer(" ", "", "-", "").Replace(strings.TrimSpace(s)))
	if len(s) != 10 {
		return ""
	}
	return s[:5] + "-" + s[5:]
}

// hashRecoveryCode is what the store keeps of a recovery code.
func hashRecoveryCode(code string) string {
	h := sha256.Sum256([]byte("sallyport-recovery:" + normalizeRecoveryCode(code)))
	return hex.EncodeToString(h[:])
}

// handleEnrollPage shows a new TOTP secret as a QR code with the recovery
// codes: for a sign-in of a tenant that requires a second factor, or for
// a signed-in user who wants one.
func (s *Server) handleEnrollPage(w http.ResponseWriter, r *http.Request) {
	g, d, u, ten, err := s.pending(r, "enroll")
	if err != nil {
		// A signed-in user enrolling on their own.
		c, cerr := r.Cookie(cloudCookie)
		if cerr != nil {
			s.messagePage(w, r, err)
			return
		}
		cs, _ := s.sessionOf(r.Context(), sourceOf(r.RemoteAddr), c.Value, prefixCookie, store.SessionCloud, "")
		if cs == nil {
			s.messagePage(w, r, err)
			return
		}
		user, uerr := s.store.UserByID(r.Context(), cs.TenantID, cs.UserID)
		if uerr != nil {
			s.messagePage(w, r, err)
			return
		}
		s.startSecondFactor(w, r, user, signinFlow{TenantID: cs.TenantID}, "enroll")
		return
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: "Sallyport " + ten.Domain, AccountName: u.Name, Period: totpPeriod,
		Digits: otp.DigitsSix, Algorithm: otp.AlgorithmSHA1})
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	codes, hashes := newRecoveryCodes()
	d.Secret, d.Codes = key.Secret(), hashes
	g.Data, _ = json.Marshal(d)
	if err := s.store.UpdateGrant(r.Context(), g); err != nil {
		s.messagePage(w, r, err)
		return
	}
	img, err := key.Image(240, 240)
	if err != nil {
		s.messagePage(w, r, err)
		return
	}
	var buf bytes.Buffer
	png.Encode(&buf, img)
	s.renderPage(w, r, http.StatusOK, "enroll", mfaView{User: u.Name, Tenant: ten.Domain, CSRF: s.csrfToken(w, r),
		QR:     template.URL("data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())),
		Secret: key.Secret(), Recovery: codes})
}

func (s *Server) handleEnrollPost(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxFormBytes)
	if err := s.checkCSRF(r); err != nil {
		s.messagePage(w, r, err)
		return
	}
	g, d, u, ten, err := s.pending(r, "enroll")
	if err != nil || d.Secret == "" {
		s.messagePage(w, r, errNoPending)
		return
	}
	src := sourceOf(r.RemoteAddr)
	if err := s.signin.admit(src); err != nil {
		s.messagePage(w, r, err)
		return
	}
	probe := u
	probe.TOTPSecret = []byte(d.Secret)
	if !s.totp.check(probe, strings.TrimSpace(r.PostFormValue("code")), s.now()) {
		s.logSigninFailure(ten, u.Name, "wrong code at enrolment", r.RemoteAddr)
		s.renderPage(w, r, http.StatusUnauthorized, "message", messageView{Title: "Enrolment failed",
			Message: "The code does not match: check the time of your phone, then scan the new QR code", Retry: "/signin/enroll"})
		return
	}
	if _, err := s.store.TakeGrant(r.Context(), store.GrantFlow, g.Hash, s.now()); err != nil {
		s.messagePage(w, r, errNoPending)
		return
	}
	if err := s.store.SetUserMFA(r.Context(), u.TenantID, u.ID, []byte(d.Secret), s.now().UTC(), d.Codes); err != nil {
		s.messagePage(w, r, err)
		return
	}
	s.events.Event(eventlog.MFAEnrolled, fmt.Sprintf("%s enrolled a second factor", u.Name), "tenant", ten.Domain, "user", u.Name)
	if d.Flow.AppID == "" && d.Flow.Device == "" && !d.Flow.Home {
		http.SetCookie(w, &http.Cookie{Name: mfaCookie, Value: "", Path: "/", MaxAge: -1, Secure: true, HttpOnly: true, SameSite: http.SameSiteLaxMode})
		s.renderPage(w, r, http.StatusOK, "message", messageView{Title: "Second factor enrolled",
			Message: "From your next sign-in on, Sallyport asks for the code of your authenticator app"})
		return
	}
	s.finishSignIn(w, r, u, ten, d.Flow, "password+totp")
}
