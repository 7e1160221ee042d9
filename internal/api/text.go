package api

import (
	"fmt"
	"time"
)

// The wording of a new registration token, shared by the CLI's answer
// ('admin token create') and the admin center's, so that both say it alike.

// LifetimeText is d in whole days (from 2 days), hours or minutes when it
// is one: "7 days", "24 hours", "90 minutes".
func LifetimeText(d time.Duration) string {
	plural := func(n int64, unit string) string {
		if n == 1 {
			return "1 " + unit
		}
		return fmt.Sprintf("%d %ss", n, unit)
	}
	switch {
	case d >= 48*time.Hour && d%(24*time.Hour) == 0:
		return plural(int64(d/(24*time.Hour)), "day")
	case d >= time.Hour && d%time.Hour == 0:
		return plural(int64(d/time.Hour), "hour")
	case d%time.Minute == 0:
		return plural(int64(d/time.Minute), "minute")
	}
	return d.Round(time.Second).String()
}

// RegistrationsText says how many registrations a token with maxUses allows.
func RegistrationsText(maxUses int) string {
	switch maxUses {
	case 0:
		return "any number of registrations until then"
	case 1:
		return "1 registration"
	}
	return fmt.Sprintf("%d registrations", maxUses)
}

// SourceText says where an application's certificate comes from, for
// people: "ACME (obtained from the ACME CA, renewed automatically)".
func (c AppCertificate) SourceText() string {
	switch c.Source {
	case CertSourceApp:
		return "its own (--cert-file)"
	case CertSourceACME:
		return "ACME (renewed automatically)"
	case CertSourceEdge:
		return "the edge certificate (cloud serve --edge-cert)"
	case CertSourceCloudCA:
		return "the cloud CA's (trusted only where the cloud CA is installed)"
	}
	return c.Source
}

// ExpiryText is the certificate's end and the days left:
// "2026-03-01 12:00 UTC (85 days left)", or "... (expired)".
func (c AppCertificate) ExpiryText() string {
	if c.NotAfter.IsZero() {
		return "-"
	}
	left := fmt.Sprintf("%d days left", c.DaysLeft)
	switch {
	case c.DaysLeft < 0: // whole days rounded away from zero once expired
		left = "expired"
	case c.DaysLeft == 1:
		left = "1 day left"
	}
	return c.NotAfter.UTC().Format("2006-01-02 15:04 UTC") + " (" + left + ")"
}
